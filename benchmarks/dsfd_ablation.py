"""DSFD ablation on face_slim at equal training budget: baseline, +IAM, +PAL, +FEM, all three.

Each variant trains from scratch with configs/face_slim.yaml and the same budget (``--epochs``), then is scored on
face_counting/val (VOC AP@0.5, score 0.02, long side 640) for all faces >= 16 px and for faces of 16-32 px, and
timed end to end at 640x480 with 2 threads (PyTorch, p50 of 30 calls). Runs are resumable: rerun the same command
and finished variants are skipped, unfinished ones resume from their last.pt.

    python benchmarks/dsfd_ablation.py --epochs 8 --parallel 2        # trains (about an hour on 2 cores)
    python benchmarks/dsfd_ablation.py --epochs 8 --report-only       # scores and times what is trained

Prints a markdown table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "baseline": [],
    "iam": ["data.augment.data_anchor_p=0.6"],
    "pal": ["model.options.pal=true"],
    "fem": ["model.options.fem=true"],
    "all": ["data.augment.data_anchor_p=0.6", "model.options.pal=true", "model.options.fem=true"],
}


def train_command(name: str, args: argparse.Namespace) -> list[str]:
    out = Path(args.out) / name
    cmd = [sys.executable, "-m", "singleshot", "train", args.config, "--no-progress", "--out-dir", str(out),
           "--set", f"train.epochs={args.epochs}", "--set", f"eval.every_epochs={args.epochs}",
           "--set", f"train.threads={args.threads}"]
    for override in VARIANTS[name]:
        cmd += ["--set", override]
    if (out / "last.pt").exists():
        cmd += ["--resume", str(out / "last.pt")]
    return cmd


def finished(name: str, args: argparse.Namespace) -> bool:
    log = Path(args.out) / name / "val_log.csv"
    return log.exists() and any(line.startswith(f"{args.epochs},") for line in log.read_text().splitlines())


def train_all(args: argparse.Namespace) -> None:
    todo = [n for n in args.variants if not finished(n, args)]
    running: list[tuple[str, subprocess.Popen]] = []
    while todo or running:
        while todo and len(running) < args.parallel:
            name = todo.pop(0)
            log = open(Path(args.out) / f"{name}.log", "a")  # noqa: SIM115 - closed with the process
            Path(args.out, name).mkdir(parents=True, exist_ok=True)
            print(f"training {name}", file=sys.stderr)
            running.append((name, subprocess.Popen(train_command(name, args), stdout=log, stderr=log, cwd=ROOT)))
        time.sleep(10)
        for name, proc in list(running):
            if proc.poll() is not None:
                running.remove((name, proc))
                print(f"{name}: exit {proc.returncode}", file=sys.stderr)


def report(args: argparse.Namespace) -> list[dict]:
    import cv2
    import torch
    from common import median_ms

    from singleshot.data.cache import decode_image
    from singleshot.data.formats import load_annotations
    from singleshot.evaluation import evaluate
    from singleshot.predictor import Detector

    data = load_annotations(f"csv:{args.data}")
    images = {s.key: decode_image(s.image_path)[0] for s in data.samples}
    frame = cv2.resize(next(iter(images.values())), (640, 480), interpolation=cv2.INTER_AREA)
    rows = []
    for name in args.variants:
        ckpt = Path(args.out) / name / "last.pt"
        if not finished(name, args):
            print(f"{name}: not trained to {args.epochs} epochs yet; skipped", file=sys.stderr)
            continue
        torch.set_num_threads(2)
        detector = Detector(ckpt, input_size=640)
        predictions = {k: detector.detect(img, min_score=0.02).to_rows() for k, img in images.items()}
        ap_all = evaluate(data, predictions, protocol="voc", min_size=16).metrics["mAP"]
        ap_small = evaluate(data, predictions, protocol="voc", min_size=16, max_size=32).metrics["mAP"]
        latency = median_ms(lambda d=detector: d.detect(frame, min_score=0.5), 30, warmup=5)
        train_log = (Path(args.out) / name / "train_log.csv").read_text().splitlines()
        first, last = train_log[1].split(","), train_log[-1].split(",")
        rows.append({
            "variant": name, "overrides": VARIANTS[name], "epochs": args.epochs,
            "ap_all": ap_all, "ap_small_16_32": ap_small, "latency_p50_ms": latency,
            "params": sum(p.numel() for p in detector.model.parameters()),
            "train_minutes": (float(last[-1]) - float(first[-1])) / 60,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/face_slim.yaml")
    parser.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "faces" / "face_counting" / "val"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default="runs/dsfd_ablation")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--parallel", type=int, default=1, help="variants trained at once")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per training")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    args.variants = [v for v in args.variants.split(",") if v]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        train_all(args)
    rows = report(args)
    print("| variant | AP@0.5 (>= 16 px) | AP@0.5 (16-32 px) | latency p50 ms (640x480, 2 thr, torch) | params | train min |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['ap_all']:.4f} | {r['ap_small_16_32']:.4f} | {r['latency_p50_ms']:.1f} | "
              f"{r['params']:,} | {r['train_minutes']:.0f} |")
    print(json.dumps({"epochs": args.epochs, "rows": rows}))


if __name__ == "__main__":
    main()
