"""The PASCAL VOC protocol: per-class average precision and its mean, as the VOC devkit computes it.

The semantics are those of ``voc_eval.py`` (py-faster-rcnn / ssd.pytorch's ``eval.py``, the code behind the SSD
tutorials' 77.2 mAP on VOC2007 test), a port of the MATLAB devkit's ``VOCevaldet.m``:

* Per class, detections of all images are sorted by score, descending (ties keep the prediction order; the devkit's
  ``np.argsort`` leaves their order unspecified).
* Each detection is compared with EVERY ground-truth object of its class in its image (matched or not, difficult
  or not) and takes the one of highest IoU (the first on ties). If that IoU is ``> iou_threshold`` (strict in
  ``voc_eval.py``; MATLAB's ``VOCevaldet.m`` uses ``>=``, which differs only at exactly 0.5):
  the object is difficult/ignored -> the detection is neither TP nor FP; else unmatched -> TP (and the object is
  matched); else (already matched) -> FP, a duplicate. Otherwise the detection is an FP. A detection whose best
  object is already matched is an FP even if another unmatched object overlaps it enough: the devkit does not look
  further.
* Positives are the non-ignored objects; ``recall = TP / positives``, ``precision = TP / max(TP + FP, eps)``.
* AP: ``use_07_metric`` -> the VOC2007 11-point interpolation, the mean over ``t in np.arange(0, 1.1, 0.1)`` of the
  highest precision at recall ``>= t`` (0 if none); else (VOC2010+) the area under the precision envelope (precision
  made monotone from the right) at every recall change.
* Pixel convention (``plus_one=True``, the devkit's): boxes are inclusive pixel ranges, so widths and heights are
  ``x2 - x1 + 1``, ``y2 - y1 + 1`` and two boxes sharing one pixel row intersect. ``plus_one=False`` treats boxes
  as continuous coordinates (``x2 - x1``).

Additions: ``Sample.ignore`` is the difficult flag. ``min_size`` also ignores ground truth whose height (in the same
convention, ``y2 - y1 + 1`` with ``plus_one``) is below ``min_size`` pixels, and ``max_size`` that at or above it. The mean AP is over the classes with at
least one positive; classes without positives get no AP (the devkit divides by zero). Predictions of images absent
from the data are ignored (and counted in the details); images absent from the predictions have no detections.
"""

from __future__ import annotations

import numpy as np

from singleshot.boxes import pairwise_iou_xyxy_numpy
from singleshot.evaluation.result import Curve, EvalResult
from singleshot.registry import EVAL_PROTOCOLS
from singleshot.structures import AnnotationSet


def box_iou_voc(boxes: np.ndarray, gt: np.ndarray, plus_one: bool = True) -> np.ndarray:
    """``(N, M)`` IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes, with the devkit's ``+1`` when ``plus_one``."""
    return pairwise_iou_xyxy_numpy(boxes, gt, plus_one=plus_one)


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """Average precision of a ``(T,)`` recall / precision curve (detections in score order), as ``voc_eval.py``."""
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if use_07_metric:
        # np.arange(0, 1.1, 0.1) as the devkit port, float steps included (its 4th value is 0.30000000000000004).
        return float(
            sum(precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in np.arange(0.0, 1.1, 0.1)) / 11
        )
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the precision envelope
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


@EVAL_PROTOCOLS.register("voc")
def evaluate_voc(
    data: AnnotationSet,
    predictions: dict[str, np.ndarray],
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
    min_size: float = 0.0,
    plus_one: bool = True,
    max_size: float | None = None,
) -> EvalResult:
    """PASCAL VOC AP per class and mAP (see the module docstring for every rule).

    Args:
        data: ground truth; ``Sample.ignore`` is the difficult flag.
        predictions: ``{key: (K, 6) [x1, y1, x2, y2, score, label]}`` in pixels.
        iou_threshold: a detection matches when its best IoU is strictly above this.
        use_07_metric: 11-point AP (VOC2007) instead of the all-point AP (VOC2010+).
        min_size: ground truth shorter than this (pixels) is ignored.
        max_size: ground truth taller than or as tall as this (pixels) is ignored too, so the AP is that of the
            faces in ``[min_size, max_size)`` (e.g. small faces: 16 to 32); detections matching it are not false.
        plus_one: the devkit's inclusive-pixel convention (``+1`` on widths and heights).

    Returns:
        metrics ``mAP`` and ``AP/<class>`` for each class with positives; a precision-recall curve per such class.
    """
    n_classes = len(data.class_names)
    one = 1.0 if plus_one else 0.0
    # Per detection: class, score, best IoU, global index of its best object (-1: none); in data/prediction order.
    det_label, det_score, det_iou, det_gt = [], [], [], []
    gt_ignored, gt_label = [], []
    offset = unknown_label = 0
    for sample in data.samples:
        boxes = np.asarray(sample.boxes_xyxy, np.float64).reshape(-1, 4)
        labels = np.asarray(sample.labels, np.int64)
        heights = boxes[:, 3] - boxes[:, 1] + one
        ignored = np.asarray(sample.ignore, bool) | (heights < min_size)
        if max_size is not None:
            ignored |= heights >= max_size
        gt_ignored.append(ignored)
        gt_label.append(labels)
        dets = np.asarray(predictions.get(sample.key, np.zeros((0, 6))), np.float64).reshape(-1, 6)
        dlabels = dets[:, 5].astype(np.int64)
        known = (dlabels >= 1) & (dlabels < n_classes) & (dets[:, 5] == dlabels)
        unknown_label += int((~known).sum())
        dets, dlabels = dets[known], dlabels[known]
        if len(dets):
            iou = box_iou_voc(dets[:, :4], boxes, plus_one)
            iou[dlabels[:, None] != labels[None, :]] = -np.inf  # only objects of the detection's class count
            if len(boxes):
                best = iou.argmax(axis=1)  # first of equal maxima, as np.argmax in voc_eval.py
                best_iou = iou[np.arange(len(dets)), best]
            else:
                best, best_iou = np.zeros(len(dets), np.int64), np.full(len(dets), -np.inf)
            det_gt.append(np.where(np.isfinite(best_iou), best + offset, -1))
            det_iou.append(best_iou)
            det_label.append(dlabels)
            det_score.append(dets[:, 4])
        offset += len(boxes)

    def cat(parts: list, dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    det_label, det_score, det_iou, det_gt = (
        cat(det_label, np.int64), cat(det_score, np.float64), cat(det_iou, np.float64), cat(det_gt, np.int64)
    )
    gt_ignored, gt_label = cat(gt_ignored, bool), cat(gt_label, np.int64)

    metrics: dict[str, float] = {}
    curves: list[Curve] = []
    positives: dict[str, int] = {}
    detections: dict[str, int] = {}
    without_positives: list[str] = []
    for c in range(1, n_classes):
        name = data.class_names[c]
        npos = int(((gt_label == c) & ~gt_ignored).sum())
        mine = np.flatnonzero(det_label == c)
        positives[name], detections[name] = npos, len(mine)
        if npos == 0:
            without_positives.append(name)
            continue
        mine = mine[np.argsort(-det_score[mine], kind="stable")]
        hit = det_iou[mine] > iou_threshold
        on_ignored = np.zeros(len(mine), dtype=bool)
        on_ignored[hit] = gt_ignored[det_gt[mine][hit]]
        candidate = np.flatnonzero(hit & ~on_ignored)
        tp = np.zeros(len(mine))
        # The first (highest-scoring) candidate of each object is its TP; the later ones are duplicates (FP).
        _, first = np.unique(det_gt[mine][candidate], return_index=True)
        tp[candidate[first]] = 1.0
        fp = (~on_ignored).astype(np.float64) - tp
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / npos
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        metrics[f"AP/{name}"] = voc_ap(recall, precision, use_07_metric)
        curves.append(Curve(f"AP/{name}", recall, precision))
    aps = list(metrics.values())
    metrics = {"mAP": float(np.mean(aps)) if aps else 0.0, **metrics}
    details = {
        "iou_threshold": iou_threshold,
        "iou_comparison": "IoU > threshold (strict, voc_eval.py)",
        "metric": "11-point (VOC2007)" if use_07_metric else "all-point (VOC2010+)",
        "plus_one": plus_one,
        "min_size": min_size,
        "max_size": max_size,
        "images": len(data.samples),
        "ignored_ground_truth": int(gt_ignored.sum()),
        "positives": positives,
        "detections": detections,
        "classes_without_positives": without_positives,
        "detections_with_unknown_label": unknown_label,
        "predictions_for_unknown_images": len(set(predictions) - {s.key for s in data.samples}),
    }
    if not aps:
        details["note"] = "no class has a positive: mAP is 0"
    return EvalResult(protocol="voc", metrics=metrics, curves=curves, details=details)
