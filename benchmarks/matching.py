"""Vectorized prior matching vs the slow way: Python loops over images, objects and priors.

The face-detector author's GPU sat at 0% while his Python loops matched anchors one box at a time. This times
:func:`singleshot.matching.match_priors` on a batch of 32 images with 1-50 objects each against SSD300's 8,732
priors, against:

* ``naive``: a per-image, per-object, per-prior Python-loop matcher (IoU of one box pair at a time), the slow
  way; it implements the same rule, and the benchmark checks that it gives the same labels;
* ``per_object_numpy``: a per-image, per-object loop that computes one object's IoU with all priors in numpy
  (a stronger baseline, reported so the speed-up is not read against a straw man);
* ``all_pairs``: ``match_priors`` given a plain prior tensor, which compares every (object, prior) pair.

Prints one JSON line last: ``{"vectorized_ms", "naive_ms", "speedup", ...}``.
Usage: python benchmarks/matching.py [--batch 32] [--max-objects 50] [--threads 2] [--repeats 7]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import emit, median_ms, set_threads

from singleshot.boxes import cxcywh_to_xyxy
from singleshot.matching import match_priors, pad_targets
from singleshot.priors import generate_prior_grid, ssd300_prior_spec

SSD300_FEATURES = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]


def make_batch(batch: int, max_objects: int, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """VOC-like objects: side 0.05-0.7 of the image, aspect ratio 1/2-2, clipped to the image."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, max_objects + 1, (batch,), generator=g).tolist()
    boxes, labels = [], []
    for n in counts:
        side = 0.05 + 0.65 * torch.rand(n, generator=g)
        ratio = torch.exp((torch.rand(n, generator=g) * 2 - 1) * np.log(2))
        w, h = side * ratio.sqrt(), side / ratio.sqrt()
        c = torch.rand(n, 2, generator=g)
        boxes.append(torch.stack((c[:, 0] - w / 2, c[:, 1] - h / 2, c[:, 0] + w / 2, c[:, 1] + h / 2), 1).clamp(0, 1))
        labels.append(torch.randint(1, 21, (n,), generator=g))
    return boxes, labels


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def naive_match(priors_xyxy: list[list[float]], boxes: list[torch.Tensor], labels: list[torch.Tensor], threshold=0.5):
    """Loops over images, objects and priors; same rule as match_priors (forced best prior, conflicts by IoU)."""
    results = []
    for image_boxes, image_labels in zip(boxes, labels):
        objs = image_boxes.tolist()
        overlaps = [[_iou(o, p) for p in priors_xyxy] for o in objs]
        best_obj = [-1] * len(priors_xyxy)
        best_iou = [0.0] * len(priors_xyxy)
        for j, row in enumerate(overlaps):
            for i, v in enumerate(row):
                if v > best_iou[i]:
                    best_iou[i], best_obj[i] = v, j
        forced: dict[int, int] = {}
        pending = list(range(len(objs)))
        while pending:
            proposals: dict[int, list[int]] = {}
            for j in pending:
                best_i, best_v = -1, 0.0
                for i, v in enumerate(overlaps[j]):
                    if v > best_v and i not in forced:
                        best_i, best_v = i, v
                if best_i >= 0:
                    proposals.setdefault(best_i, []).append(j)
            for i, js in proposals.items():
                forced[i] = max(js, key=lambda j: (overlaps[j][i], -j))
            pending = [j for js in proposals.values() for j in js if j not in forced.values()]
        lab = image_labels.tolist()
        out = [lab[best_obj[i]] if best_iou[i] >= threshold else 0 for i in range(len(priors_xyxy))]
        for i, j in forced.items():
            out[i] = lab[j]
        results.append(out)
    return results


def per_object_numpy_match(priors_xyxy: np.ndarray, boxes: list[torch.Tensor], labels: list[torch.Tensor], threshold=0.5):
    """Loops over images and objects; one object's IoU with all priors at a time in numpy (tutorial-style forcing)."""
    areas = (priors_xyxy[:, 2] - priors_xyxy[:, 0]) * (priors_xyxy[:, 3] - priors_xyxy[:, 1])
    results = []
    for image_boxes, image_labels in zip(boxes, labels):
        best_iou = np.zeros(len(priors_xyxy))
        best_obj = np.zeros(len(priors_xyxy), dtype=np.int64)
        forced = []
        for j, b in enumerate(image_boxes.numpy()):
            w = np.clip(np.minimum(b[2], priors_xyxy[:, 2]) - np.maximum(b[0], priors_xyxy[:, 0]), 0, None)
            h = np.clip(np.minimum(b[3], priors_xyxy[:, 3]) - np.maximum(b[1], priors_xyxy[:, 1]), 0, None)
            inter = w * h
            iou = inter / ((b[2] - b[0]) * (b[3] - b[1]) + areas - inter)
            better = iou > best_iou
            best_iou[better], best_obj[better] = iou[better], j
            forced.append(int(iou.argmax()))
        for j, i in enumerate(forced):
            best_obj[i], best_iou[i] = j, 1.0
        lab = image_labels.numpy()[best_obj]
        lab[best_iou < threshold] = 0
        results.append(lab)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-objects", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    set_threads(args.threads)

    grid = generate_prior_grid(ssd300_prior_spec(), (300, 300), SSD300_FEATURES)
    boxes, labels = make_batch(args.batch, args.max_objects)

    def vectorized():
        gt, gt_labels, _, valid = pad_targets(boxes, labels)
        return match_priors(grid, gt, gt_labels, valid)

    def all_pairs():
        gt, gt_labels, _, valid = pad_targets(boxes, labels)
        return match_priors(grid.cxcywh, gt, gt_labels, valid)

    priors_xyxy = cxcywh_to_xyxy(grid.cxcywh)
    vectorized_ms = median_ms(vectorized, args.repeats)
    all_pairs_ms = median_ms(all_pairs, 3)
    numpy_ms = median_ms(lambda: per_object_numpy_match(priors_xyxy.double().numpy(), boxes, labels), args.repeats)
    priors_list = priors_xyxy.double().tolist()
    naive_ms = median_ms(lambda: naive_match(priors_list, boxes, labels), repeats=1, warmup=0)

    result = vectorized()
    reference = naive_match(priors_list, boxes, labels)
    agree = float((result.labels == torch.tensor(reference)).float().mean())
    emit(
        {
            "batch": args.batch,
            "objects": sum(len(b) for b in boxes),
            "priors": grid.num_priors,
            "threads": args.threads,
            "vectorized_ms": vectorized_ms,
            "naive_ms": naive_ms,
            "speedup": naive_ms / vectorized_ms,
            "per_object_numpy_ms": numpy_ms,
            "speedup_vs_per_object_numpy": numpy_ms / vectorized_ms,
            "all_pairs_ms": all_pairs_ms,
            "labels_agree_with_naive": agree,
        }
    )


if __name__ == "__main__":
    main()
