"""Where two face detectors differ: AP by face height, missed faces and confident false positives, side by side.

The error analysis of docs/model_card.md ("Recipe of v3", "The target, and how it was reached"), as one command.
Each detector comes as a predictions file (docs/formats.md): ours from ``singleshot eval --weights CKPT ...
--save-predictions ours.json``, a peer's from ``benchmarks/peers/run_peer.py`` (``benchmarks/face_compare.py``
leaves them in ``benchmarks/peers/out``). Same evaluator as ``singleshot eval`` (VOC protocol, IoU > 0.5, faces
under ``--min-size`` px ignored).

Per detector:
- AP overall and per face-height band (the other bands' faces ignored; unmatched boxes count as false positives in
  every band, as in WIDER FACE's per-setting evaluation);
- recall at precision 0.9 and the highest recall reached;
- missed faces per band: no box of the file overlaps them by IoU > 0.5, whatever its score;
- confident false positives: boxes scored >= 0.5 / 0.7 / 0.9 that overlap no face (ignored ones included) by IoU > 0.5,
  and of those, the ones overlapping no face by IoU > 0.3 (background: hands, ears, clothing, rather than a face
  boxed badly or two faces boxed as one).

Usage: python benchmarks/face_errors.py --data csv:../shared/data/faces/face_counting/val \
           --predictions ours=ours.json --predictions retinaface=benchmarks/peers/out/retinaface.json
Prints a markdown table, then one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from singleshot.data.formats import load_annotations
from singleshot.data.formats.base import DataError
from singleshot.evaluation import evaluate
from singleshot.evaluation.predictions import read_predictions
from singleshot.evaluation.voc import box_iou_voc
from singleshot.structures import AnnotationSet

BANDS = ((16, 32), (32, 64), (64, 128), (128, None))
SCORES = (0.5, 0.7, 0.9)


def band_name(lo: int, hi: int | None) -> str:
    return f"{lo}-{hi} px" if hi else f">= {lo} px"


def recall_at_precision(recall: np.ndarray, precision: np.ndarray, target: float) -> float:
    """Highest recall whose precision is still >= ``target`` (0 if none)."""
    ok = precision >= target
    return float(recall[ok].max()) if ok.any() else 0.0


def analyse(data: AnnotationSet, predictions: dict[str, np.ndarray], min_size: int) -> dict:
    """The figures of one detector (see the module docstring), as a JSON-serialisable dict."""
    overall = evaluate(data, predictions, protocol="voc", min_size=min_size)
    curve = overall.curves[0]
    result = {
        "ap": overall.metrics["mAP"],
        "recall_at_p90": recall_at_precision(curve.x, curve.y, 0.9),
        "max_recall": float(curve.x.max()) if len(curve.x) else 0.0,
        "bands": {},
    }
    for lo, hi in BANDS:
        options = {"min_size": lo} | ({"max_size": hi} if hi else {})
        result["bands"][band_name(lo, hi)] = {"ap": evaluate(data, predictions, protocol="voc", **options).metrics["mAP"],
                                               "faces": 0, "missed": 0}
    false_pos = {s: {"no_face_iou_0.5": 0, "no_face_iou_0.3": 0} for s in SCORES}
    bands = list(result["bands"].values())
    edges = [lo for lo, _ in BANDS[1:]]  # a face of height h falls in band np.digitize(h, edges)
    for sample in data.samples:
        gt = np.asarray(sample.boxes_xyxy, np.float64).reshape(-1, 4)
        ignore = np.asarray(sample.ignore, bool) if sample.ignore is not None else np.zeros(len(gt), bool)
        rows = predictions.get(sample.key, np.zeros((0, 6)))  # read_predictions gives (K, 6) rows, K >= 0
        iou = box_iou_voc(rows[:, :4], gt) if len(rows) and len(gt) else np.zeros((len(rows), len(gt)))
        heights = gt[:, 3] - gt[:, 1] + 1  # the devkit's pixel convention, as the evaluator's min_size
        counted = ~ignore & (heights >= min_size) & (heights >= BANDS[0][0])  # faces under every band: no band
        found = (iou > 0.5).any(axis=0)
        for band, missed in zip(np.digitize(heights[counted], edges), ~found[counted]):
            bands[band]["faces"] += 1
            bands[band]["missed"] += int(missed)
        best = iou.max(axis=1) if len(gt) else np.zeros(len(rows))
        for s in SCORES:
            confident = rows[:, 4] >= s
            false_pos[s]["no_face_iou_0.5"] += int((confident & (best <= 0.5)).sum())
            false_pos[s]["no_face_iou_0.3"] += int((confident & (best <= 0.3)).sum())
    result["false_positives"] = {str(s): v for s, v in false_pos.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="ground truth, FORMAT:PATH")
    parser.add_argument("--predictions", action="append", required=True, metavar="NAME=PATH",
                        help="a detector's predictions file (repeatable)")
    parser.add_argument("--min-size", type=int, default=16, help="faces shorter than this are ignored (16)")
    args = parser.parse_args()
    sources = []
    for item in args.predictions:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--predictions: expected NAME=PATH, got {item!r}")
        sources.append((name, path))
    try:
        data = load_annotations(args.data)
        results = {name: analyse(data, read_predictions(path), args.min_size) for name, path in sources}
    except DataError as err:  # a missing or malformed file: one line naming it, not a traceback
        sys.exit(f"error: {err}")

    names = list(results)
    first = results[names[0]]
    print(f"{args.data}: {sum(b['faces'] for b in first['bands'].values())} faces >= {args.min_size} px\n")
    print("| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    print("| AP@0.5 | " + " | ".join(f"{results[n]['ap']:.4f}" for n in names) + " |")
    print("| recall at precision 0.9 | " + " | ".join(f"{results[n]['recall_at_p90']:.3f}" for n in names) + " |")
    print("| highest recall | " + " | ".join(f"{results[n]['max_recall']:.3f}" for n in names) + " |")
    for band, figures in first["bands"].items():
        print(f"| AP, faces {band} ({figures['faces']}) | "
              + " | ".join(f"{results[n]['bands'][band]['ap']:.4f}" for n in names) + " |")
    for band in first["bands"]:
        print(f"| missed faces {band} | " + " | ".join(str(results[n]["bands"][band]["missed"]) for n in names) + " |")
    for s in SCORES:
        print(f"| boxes >= {s} on no face (IoU <= 0.5; of them <= 0.3) | " + " | ".join(
            f"{results[n]['false_positives'][str(s)]['no_face_iou_0.5']} "
            f"({results[n]['false_positives'][str(s)]['no_face_iou_0.3']})" for n in names) + " |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
