"""Extra latency of an attribute head (smile) on a 640x480 frame with faces, per frame and per face.

The frame is the demo photo (5 faces) resized to 640x480, decoded in memory. End to end with and without
``attributes=["smile"]``, p50 of ``--runs`` calls after warm-up, 2 threads, for the PyTorch and ONNX Runtime
detector runtimes (the attribute head runs on the detector's runtime: PyTorch, or ONNX Runtime on one thread).

    python benchmarks/attribute_latency.py [--attribute smile|CKPT] [--runs 50]

Prints a markdown table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from common import median_ms

from singleshot.predictor import Detector

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attribute", default="smile")
    parser.add_argument("--image", default=str(ROOT / "assets" / "demo.jpg"))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image = cv2.cvtColor(cv2.imread(args.image), cv2.COLOR_BGR2RGB)
    frame = np.ascontiguousarray(cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA))
    rows = []
    for runtime in ("torch", "ort"):
        detector = Detector(input_size=640, threads=args.threads, runtime=runtime)
        faces = len(detector.detect(frame, min_score=0.5))
        base = median_ms(lambda d=detector: d.detect(frame, min_score=0.5), args.runs, warmup=5)
        with_attr = median_ms(lambda d=detector: d.detect(frame, min_score=0.5, attributes=[args.attribute]), args.runs,
                              warmup=5)
        extra = with_attr - base
        rows.append({"runtime": runtime, "faces": faces, "frame_ms": base, "frame_with_attribute_ms": with_attr,
                     "extra_ms": extra, "extra_per_face_ms": extra / max(faces, 1), "extra_share": extra / base})
    print(f"| detector runtime | faces | frame ms | with {args.attribute} ms | extra ms | per face ms | extra % |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['runtime']} | {r['faces']} | {r['frame_ms']:.2f} | {r['frame_with_attribute_ms']:.2f} | "
              f"{r['extra_ms']:.2f} | {r['extra_per_face_ms']:.2f} | {100 * r['extra_share']:.0f}% |")
    print(json.dumps({"attribute": args.attribute, "threads": args.threads, "runs": args.runs, "rows": rows}))


if __name__ == "__main__":
    main()
