"""Extra latency of an attribute head (smile) on a 640x480 frame with faces, per frame and per face.

The frame is the demo photo (5 faces) resized to 640x480, decoded in memory. End to end with and without
``attributes=["smile"]`` (calls interleaved), p50 of ``--runs`` calls each after warm-up, and the attribute stage
alone as the detector times it (``Detector.timing.attributes_ms``), 2 threads, for the PyTorch and ONNX Runtime
detector runtimes (the attribute head runs on ONNX Runtime, one thread, when it is installed; else on PyTorch).

    python benchmarks/attribute_latency.py [--attribute smile|CKPT] [--runs 50]

Prints a markdown table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from singleshot.predictor import Detector

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attribute", default="smile")
    parser.add_argument("--image", default=str(ROOT / "assets" / "demo.jpg"))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtimes", default="ort,torch",
                        help="detector runtimes, in order (ort first: torch's OpenMP threads spin-wait for a while "
                             "after its last op and would slow what runs next)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image = cv2.cvtColor(cv2.imread(args.image), cv2.COLOR_BGR2RGB)
    frame = np.ascontiguousarray(cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA))
    rows = []
    for runtime in args.runtimes.split(","):
        detector = Detector(input_size=640, threads=args.threads, runtime=runtime)
        faces = len(detector.detect(frame, min_score=0.5))
        for _ in range(5):  # warm-up, the attribute network loaded
            detector.detect(frame, min_score=0.5, attributes=[args.attribute])
        # Interleaved, so the machine's drift (it is shared) falls on both series alike.
        base_ms, with_ms, head_ms = [], [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            detector.detect(frame, min_score=0.5)
            base_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            detector.detect(frame, min_score=0.5, attributes=[args.attribute])
            with_ms.append((time.perf_counter() - start) * 1000)
            head_ms.append(detector.timing.attributes_ms)
        base, with_attr, head = (statistics.median(v) for v in (base_ms, with_ms, head_ms))
        extra = with_attr - base
        rows.append({"runtime": runtime, "faces": faces, "frame_ms": base, "frame_with_attribute_ms": with_attr,
                     "extra_ms": extra, "extra_per_face_ms": extra / max(faces, 1), "extra_share": extra / base,
                     "attribute_stage_ms": head, "attribute_stage_share": head / base})
    print(f"| detector runtime | faces | frame ms | with {args.attribute} ms | extra ms | per face ms | extra % "
          "| attribute stage ms (share) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['runtime']} | {r['faces']} | {r['frame_ms']:.2f} | {r['frame_with_attribute_ms']:.2f} | "
              f"{r['extra_ms']:.2f} | {r['extra_per_face_ms']:.2f} | {100 * r['extra_share']:.0f}% | "
              f"{r['attribute_stage_ms']:.2f} ({100 * r['attribute_stage_share']:.0f}%) |")
    print(json.dumps({"attribute": args.attribute, "threads": args.threads, "runs": args.runs, "rows": rows}))


if __name__ == "__main__":
    main()
