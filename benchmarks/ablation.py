"""Equal-budget training ablations: train named variants of a config (in parallel if asked), then score them.

A variant is a config plus ``--set`` overrides. Every variant trains for the same number of epochs with the same
recipe; runs are resumable (rerun the same command: finished variants are skipped, unfinished ones resume from
their last.pt). The report scores each variant's last checkpoint on face_counting/val (VOC AP@0.5, score 0.02,
long side 640) for faces >= 16 px and for faces of 16-32 px, and times it end to end at 640x480 with 2 threads
(PyTorch, p50 of 30 calls). Used by dsfd_ablation.py and pretrained_ablation.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VAL = ROOT / ".." / "shared" / "data" / "faces" / "face_counting" / "val"


@dataclass
class Variant:
    """One arm of an ablation: ``config`` trained with ``overrides`` (``key=value`` strings for ``--set``)."""

    config: str
    overrides: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser, variants: dict[str, Variant], out: str, epochs: int) -> None:
    """The command-line options every ablation shares."""
    parser.add_argument("--data", default=str(DEFAULT_VAL), help="labelled folder (CSV format) to score on")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--out", default=out)
    parser.add_argument("--variants", default=",".join(variants))
    parser.add_argument("--parallel", type=int, default=1, help="variants trained at once")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per training")
    parser.add_argument("--report-only", action="store_true")


def train_command(name: str, variant: Variant, args: argparse.Namespace) -> list[str]:
    out = Path(args.out) / name
    cmd = [sys.executable, "-m", "singleshot", "train", variant.config, "--no-progress", "--out", str(out),
           "--set", f"train.epochs={args.epochs}", "--set", f"eval.every_epochs={args.epochs}",
           "--set", f"train.threads={args.threads}"]
    for override in variant.overrides:
        cmd += ["--set", override]
    if (out / "last.pt").exists():
        cmd += ["--resume", str(out / "last.pt")]
    return cmd


def finished(name: str, args: argparse.Namespace) -> bool:
    """Whether ``name`` has been trained (and validated) to ``args.epochs`` epochs."""
    log = Path(args.out) / name / "val_log.csv"
    return log.exists() and any(line.startswith(f"{args.epochs},") for line in log.read_text().splitlines())


def train_all(variants: dict[str, Variant], args: argparse.Namespace) -> None:
    """Train every selected variant not yet finished, ``args.parallel`` at a time; logs in ``OUT/NAME.log``."""
    todo = [n for n in args.variants if not finished(n, args)]
    running: list[tuple[str, subprocess.Popen]] = []
    while todo or running:
        while todo and len(running) < args.parallel:
            name = todo.pop(0)
            Path(args.out, name).mkdir(parents=True, exist_ok=True)
            log = open(Path(args.out) / f"{name}.log", "a")  # noqa: SIM115 - closed with the process
            print(f"training {name}", file=sys.stderr)
            cmd = train_command(name, variants[name], args)
            running.append((name, subprocess.Popen(cmd, stdout=log, stderr=log, cwd=ROOT)))
        time.sleep(10)
        for name, proc in list(running):
            if proc.poll() is not None:
                running.remove((name, proc))
                print(f"{name}: exit {proc.returncode}", file=sys.stderr)


def train_minutes(run_dir: Path) -> float:
    """Wall minutes between the first and the last line of a run's train_log.csv (time is the last column)."""
    lines = (run_dir / "train_log.csv").read_text().splitlines()
    return (float(lines[-1].split(",")[-1]) - float(lines[1].split(",")[-1])) / 60


def train_threads(run_dir: Path) -> int | None:
    """The thread count the run trained with (its saved config.yaml)."""
    import yaml

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    return config.get("train", {}).get("threads")


def report(variants: dict[str, Variant], args: argparse.Namespace) -> list[dict]:
    """Score and time each finished variant (see the module docstring); one dict per variant."""
    import cv2
    import torch
    from common import median_ms

    from singleshot.data.formats import load_annotations
    from singleshot.evaluation import evaluate
    from singleshot.images import decode_image
    from singleshot.inference import predict_dataset
    from singleshot.predictor import Detector

    data = load_annotations(f"csv:{args.data}")
    frame = cv2.resize(decode_image(data.samples[0].image_path)[0], (640, 480), interpolation=cv2.INTER_AREA)
    rows = []
    for name in args.variants:
        run_dir = Path(args.out) / name
        if not finished(name, args):
            print(f"{name}: not trained to {args.epochs} epochs yet; skipped", file=sys.stderr)
            continue
        torch.set_num_threads(2)
        detector = Detector(run_dir / "last.pt", input_size=640)
        predictions, _ = predict_dataset(lambda images, d=detector: d.detect(images, min_score=0.02), data,
                                         batch_size=1, progress=False)
        rows.append({
            "variant": name, "config": variants[name].config, "overrides": variants[name].overrides,
            "epochs": args.epochs, "train_threads": train_threads(run_dir),
            "ap_all": evaluate(data, predictions, protocol="voc", min_size=16).metrics["mAP"],
            "ap_small_16_32": evaluate(data, predictions, protocol="voc", min_size=16, max_size=32).metrics["mAP"],
            "latency_p50_ms": median_ms(lambda d=detector: d.detect(frame, min_score=0.5), 30, warmup=5),
            "params": sum(p.numel() for p in detector.model.parameters()),
            "train_minutes": train_minutes(run_dir),
        })
    return rows


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    """The markdown table, then one JSON line."""
    print("| variant | AP@0.5 (>= 16 px) | AP@0.5 (16-32 px) | latency p50 ms (640x480, 2 thr, torch) | params "
          "| train min |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['ap_all']:.4f} | {r['ap_small_16_32']:.4f} | {r['latency_p50_ms']:.1f} | "
              f"{r['params']:,} | {r['train_minutes']:.0f} |")
    print(json.dumps({"epochs": args.epochs, "rows": rows}))


def main(description: str, variants: dict[str, Variant], out: str, epochs: int) -> None:
    """Parse the shared options, train what is missing (unless ``--report-only``), print the report."""
    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser, variants, out, epochs)
    args = parser.parse_args()
    args.variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in args.variants if v not in variants]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(variants)}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        train_all(variants, args)
    print_table(report(variants, args), args)
