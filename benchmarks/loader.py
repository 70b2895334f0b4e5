"""Data loading throughput: images per second through cache read + SSD augmentation + collate.

On ``faces/face_counting/train`` (3,100 photos, mostly 612x408): the images are decoded once into the image cache
(long side 640; its build time is reported, or 0 when it is reused), then batches of 32 are drawn through
:class:`singleshot.data.transforms.SSDAugmentation` at 300x300 and 640x640, with 0 and 2 DataLoader workers. A
no-cache row (decoding the JPEG every time, 0 workers, 300x300) shows what the cache saves.

Prints one JSON line last: ``{"300_w0": img/s, "300_w2": ..., "640_w0": ..., "640_w2": ..., ...}``.
Usage: python benchmarks/loader.py [--data csv:PATH] [--cache-dir .cache/singleshot] [--batches 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import emit, set_threads

from singleshot.data.dataset import DetectionDataset, make_loader
from singleshot.data.formats import load_annotations
from singleshot.data.transforms import SSDAugmentation

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "faces" / "face_counting" / "train"


def images_per_second(dataset: DetectionDataset, workers: int, batches: int, batch_size: int = 32) -> float:
    loader = make_loader(dataset, batch_size=batch_size, shuffle=True, workers=workers, seed=0, drop_last=True)
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start-up and first page-ins are not throughput
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        count += len(next(iterator))
    elapsed = time.perf_counter() - start
    del iterator, loader
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=f"csv:{DEFAULT_DATA}")
    parser.add_argument("--cache-dir", default=".cache/singleshot")
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)

    data = load_annotations(args.data)
    start = time.perf_counter()
    cached = DetectionDataset.with_cache(data, SSDAugmentation((300, 300)), Path(args.cache_dir), args.max_side)
    build_s = time.perf_counter() - start
    result = {"images": len(cached), "threads": args.threads, "batch": 32, "cache_build_s": build_s}
    for size in (300, 640):
        cached.transform = SSDAugmentation((size, size))
        for workers in (0, 2):
            result[f"{size}_w{workers}"] = images_per_second(cached, workers, args.batches)
            print(f"{size}x{size}, {workers} workers: {result[f'{size}_w{workers}']:.1f} img/s", flush=True)
    uncached = DetectionDataset(data, SSDAugmentation((300, 300)))
    result["300_w0_no_cache"] = images_per_second(uncached, 0, max(3, args.batches // 3))
    print(f"300x300, 0 workers, no cache: {result['300_w0_no_cache']:.1f} img/s", flush=True)
    emit(result)


if __name__ == "__main__":
    torch.multiprocessing.set_sharing_strategy("file_system")
    main()
