"""AP@0.5 of a detector at a range of inference long sides (one model, one runtime).

A detector whose priors sit where its network predicts them scores about the same at neighbouring input sizes;
a dip at one size (a padded side that is an odd multiple of a level's stride) means the priors drift off the grid.

    python benchmarks/input_sizes.py --data csv:../shared/data/faces/face_counting/val \\
        --sizes 576:1024:32 --eval-option min_size=16 [--weights W] [--runtime torch|ort] [--markdown]

Prints one line per size and, last, the JSON of every figure.
"""

from __future__ import annotations

import argparse
import time

from common import emit, set_threads


def parse_sizes(text: str) -> list[int]:
    """``"576:1024:32"`` (start:stop:step, stop included) or ``"640,800"`` -> sizes."""
    if ":" in text:
        start, stop, step = (int(v) for v in text.split(":"))
        return list(range(start, stop + 1, step))
    return [int(v) for v in text.split(",")]


def main() -> None:
    from singleshot.checkpoint import bundled_weights
    from singleshot.data.formats import load_annotations
    from singleshot.evaluation import evaluate
    from singleshot.inference import predict_dataset
    from singleshot.predictor import Detector

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="ground truth, FORMAT:PATH")
    parser.add_argument("--weights", default=None, help="checkpoint or ONNX file (default: the bundled model)")
    parser.add_argument("--runtime", default=None, choices=("torch", "ort", "opencv"))
    parser.add_argument("--sizes", default="576:1024:32", help="long sides, start:stop:step or a list")
    parser.add_argument("--eval-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--min-score", type=float, default=0.02)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table row")
    args = parser.parse_args()
    set_threads(args.threads)

    import yaml

    options = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.eval_option)}
    data = load_annotations(args.data)
    # the model at each size alone: past 1.5x a photo's long side a second, half-size pass would join in
    detector = Detector(args.weights or bundled_weights(), threads=args.threads, runtime=args.runtime,
                        large_face_pass=False)
    figures: dict[str, float] = {}
    for size in parse_sizes(args.sizes):
        start = time.perf_counter()
        predictions, _ = predict_dataset(
            lambda images, s=size: detector.detect(images, min_score=args.min_score, input_size=s), data,
            batch_size=1, desc=f"long side {size}",
        )
        ap = evaluate(data, predictions, protocol="voc", **options).metrics["mAP"]
        figures[str(size)] = ap
        print(f"long side {size}: AP@0.5 {ap:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
    if args.markdown:
        print("| " + " | ".join(figures) + " |")
        print("| " + " | ".join(f"{v:.3f}" for v in figures.values()) + " |")
    emit(figures)


if __name__ == "__main__":
    main()
