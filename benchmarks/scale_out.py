"""Scale-out figures: batch detection images/s on the local engine vs Ray with 1 and 2 workers, and training
images/s with 1 and 2 DistributedDataParallel processes (torchrun, gloo).

Usage (from the repository root; the figures in docs/deployment.md and docs/training.md come from here):

    singleshot export --weights singleshot/weights/face_slim.pt --out face.onnx --dynamic
    python benchmarks/scale_out.py --images ../shared/data/faces/face_counting/train/images --limit 1500 \\
        --weights face.onnx --iters 30 --out runs/scale_out.json

Detection: every engine runs the same ONNX file on ONNX Runtime with one thread per worker (the local engine: one
thread in this process), batches of 8, input long side 640; images/s counts wall-clock time from the call to the
last result, Ray's start-up and the actors' model loading included (printed apart as well). Training: face_mask
(VOC, single class) at the config's input size, ``train.batch_size`` per process, ``--iters`` iterations after
the image cache is filled, images/s of the run (all processes) from ``train_log.csv``, the first row dropped.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def detection_rows(images: Path, limit: int, weights: Path, workers: list[int]) -> list[dict]:
    import shutil

    from singleshot.batch import detect_batch
    from singleshot.data.formats.folder import find_images

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for path in find_images(images)[:limit]:
            shutil.copy(path, folder / path.name)
        options = {"weights": weights, "runtime": "ort", "threads": 1, "batch_size": 8, "progress": False}
        reference = None
        for engine, count in [("local", 1)] + [("ray", n) for n in workers]:
            start = time.perf_counter()
            report = detect_batch([folder], Path(tmp) / f"{engine}{count}", engine=engine, workers=count, **options)
            seconds = time.perf_counter() - start
            text = (Path(tmp) / f"{engine}{count}" / "detections.json").read_text()
            reference = reference or text
            rows.append({"engine": engine, "workers": count, "images": report.images, "seconds": round(seconds, 2),
                         "images_per_s": round(report.images / seconds, 2), "same_as_local": text == reference})
            print(rows[-1], file=sys.stderr)
    return rows


def training_rows(config: str, processes: list[int], iters: int, batch_size: int) -> list[dict]:
    rows = []
    face_mask = "voc:../shared/data/faces/face_mask"
    with tempfile.TemporaryDirectory() as tmp:
        for n in processes:
            out = Path(tmp) / f"p{n}"
            overrides = [f"data.train=[{{spec: '{face_mask}', options: {{single_class: face}}}}]", "data.val=null",
                         f"train.max_iters={iters}", "train.log_every=1", f"train.batch_size={batch_size}",
                         f"train.threads={max(1, 2 // n)}"]
            launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"] \
                if n > 1 else [sys.executable]
            command = [*launcher, "-m", "singleshot", "train", config, "--no-progress", "--out", str(out)]
            for o in overrides:
                command += ["--set", o]
            start = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False,
                                    env={**os.environ, "OMP_NUM_THREADS": str(max(1, 2 // n))})
            if result.returncode:
                raise SystemExit(result.stderr[-2000:])
            with open(out / "train_log.csv") as f:
                speeds = [float(r["img_per_s"]) for r in csv.DictReader(f)][1:]
            rows.append({"processes": n, "batch_per_process": batch_size, "global_batch": batch_size * n,
                         "iterations": iters, "images_per_s": round(sum(speeds) / len(speeds), 2),
                         "wall_s": round(time.perf_counter() - start, 1)})
            print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="folder of photos to detect in")
    parser.add_argument("--limit", type=int, default=300, help="photos used (300)")
    parser.add_argument("--weights", type=Path, required=True, help="a dynamic ONNX file (singleshot export --dynamic)")
    parser.add_argument("--workers", default="1,2", help="Ray worker counts (1,2)")
    parser.add_argument("--train-config", default="configs/face_slim.yaml", help="training config (face_slim)")
    parser.add_argument("--processes", default="1,2", help="training process counts (1,2)")
    parser.add_argument("--iters", type=int, default=12, help="training iterations per run (12)")
    parser.add_argument("--batch-size", type=int, default=16, help="training batch per process (16)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    figures = {
        "cpus": os.cpu_count(),
        "detection": detection_rows(args.images, args.limit, args.weights, [int(n) for n in args.workers.split(",")]),
        "training": training_rows(args.train_config, [int(n) for n in args.processes.split(",")], args.iters,
                                  args.batch_size),
    }
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
