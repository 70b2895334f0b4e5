"""Run one peer face detector over a ``csv`` dataset folder and/or time it; runs inside a peer venv (no torch).

    python benchmarks/peers/run_peer.py --peer retinaface --data ../shared/data/faces/face_counting/val \
        --long-side 640 --threads 2 --out PRED.json [--latency-image PATH --latency-size 640x480 --runs 30]

Loads only ``singleshot/peers.py`` (by file path: the peer venvs have neither torch nor the singleshot package).
Reads ``DATA/boxes.csv`` (first column: image name; images under ``DATA/images/``, else beside the CSV, as the
``csv`` reader of singleshot does), resizes each image so its long side is ``--long-side`` (aspect kept), detects,
maps the boxes back to original pixels and writes the predictions JSON of docs/formats.md, keyed like the
``csv`` reader's ``Sample.key`` (``images/<name>``), so ``singleshot eval --data csv:DATA`` reads it directly.

Latency (``--latency-image``): the image is decoded once and resized to exactly ``--latency-size`` (W x H);
each run times ``peer.detect`` on that array: the peer's own pre-processing (colour conversion, normalisation),
network and post-processing (decoding, NMS). ``--warmup`` runs are left out; p50 and p90 of ``--runs``.
The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def load_peers_module():
    """``singleshot/peers.py`` as a standalone module (it imports no torch and nothing of singleshot)."""
    spec = importlib.util.spec_from_file_location("singleshot_peers", ROOT / "singleshot" / "peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def read_image_list(data: Path) -> tuple[Path, list[tuple[str, Path]]]:
    """``[(key, image path)]`` in the CSV's order, each image once (keys as singleshot's ``csv`` reader)."""
    csv_path = data / "boxes.csv" if data.is_dir() else data
    root = csv_path.parent
    names: dict[str, None] = {}
    with csv_path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader, None)  # header
        for row in reader:
            if row and row[0].strip():
                names.setdefault(row[0].strip(), None)
    items = []
    for name in names:
        path = root / "images" / name
        if not path.exists() and (root / name).exists():
            path = root / name
        items.append((path.relative_to(root).as_posix(), path))
    return root, items


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"{path}: cannot read the image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    return w, h


def parse_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def limit_threads(peer, threads: int) -> str:
    """Apply the thread count: the peer's own setting, else pin the process to ``threads`` CPUs."""
    if peer.set_threads(threads):
        return "library"
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cpus)
        return f"cpu affinity {cpus}"
    return "not set"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", required=True, help="retinaface, mtcnn, blazeface or haar")
    parser.add_argument(
        "--option",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="peer option (e.g. score_threshold=0.02, min_face_size=16); repeatable",
    )
    parser.add_argument("--data", type=Path, help="csv dataset folder (with boxes.csv) or the CSV file")
    parser.add_argument("--long-side", type=int, default=640, help="resize each image's long side to this (0: as is)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="predictions JSON to write (needs --data)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (smoke runs)")
    parser.add_argument("--latency-image", type=Path)
    parser.add_argument("--latency-size", type=parse_size, default=(640, 480), metavar="WxH")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    if args.out and not args.data:
        parser.error("--out needs --data")
    if not args.data and not args.latency_image:
        parser.error("give --data (and --out) and/or --latency-image")

    peers = load_peers_module()
    try:
        peer = peers.create_peer(args.peer, **dict(args.option))
    except (KeyError, peers.PeerUnavailableError, TypeError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    threads_via = limit_threads(peer, args.threads)
    summary: dict[str, object] = {
        "peer": args.peer,
        "images": 0,
        "seconds": None,
        "latency_ms_p50": None,
        "latency_ms_p90": None,
        "threads": args.threads,
        "size": None,
        "threads_via": threads_via,
        "long_side": args.long_side,
        **peer.settings(),
    }

    if args.data:
        _, items = read_image_list(args.data)
        if args.limit:
            items = items[: args.limit]
        predictions = {}
        start = time.perf_counter()
        for i, (key, path) in enumerate(items, 1):
            boxes, scores = peers.detect_resized(peer, read_rgb(path), args.long_side or None)
            predictions[key] = [
                [round(float(v), 3) for v in box] + [round(float(s), 5)] for box, s in zip(boxes, scores)
            ]
            if i % 50 == 0:
                print(f"{i}/{len(items)} images, {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        summary["seconds"] = round(time.perf_counter() - start, 2)
        summary["images"] = len(items)
        summary["detections"] = sum(len(v) for v in predictions.values())
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(predictions))
            summary["out"] = str(args.out)

    if args.latency_image:
        w, h = args.latency_size
        image = read_rgb(args.latency_image)
        interpolation = cv2.INTER_AREA if w * h < image.shape[0] * image.shape[1] else cv2.INTER_LINEAR
        image = np.ascontiguousarray(cv2.resize(image, (w, h), interpolation=interpolation))
        for _ in range(args.warmup):
            peer.detect(image)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            peer.detect(image)
            times.append((time.perf_counter() - t0) * 1000)
        summary["latency_ms_p50"] = round(float(np.percentile(times, 50)), 2)
        summary["latency_ms_p90"] = round(float(np.percentile(times, 90)), 2)
        summary["size"] = f"{w}x{h}"
        summary["runs"] = args.runs

    peer.close()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
