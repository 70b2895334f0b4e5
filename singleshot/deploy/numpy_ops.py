"""Post-processing of decoded outputs in numpy (the ONNX Runtime and OpenCV DNN runtimes: no torch in the loop).

Same rules as :func:`singleshot.postprocess.postprocess`: per class, the boxes with probability ``>= min_score``,
at most ``pre_nms_top_k`` of them, greedy NMS at IoU ``> max_overlap`` (optionally box voting), then the best
``top_k`` of the image.
"""

from __future__ import annotations

import numpy as np

from singleshot.boxes import pairwise_iou_xyxy_numpy


def nms_numpy(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS: ``(N, 4)`` boxes, ``(N,)`` scores -> kept indices ``(K,)`` by decreasing score.

    A box is suppressed by a kept box of higher score (equal scores: the earlier one) with IoU ``> iou_threshold``.
    One vectorised IoU row per kept box: the loop runs once per survivor, not per pair.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes_xyxy[:, i] for i in range(4))
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        if not rest.size:
            break
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def vote_boxes_numpy(
    boxes_xyxy: np.ndarray, scores: np.ndarray, kept: np.ndarray, vote_iou: float
) -> np.ndarray:
    """Box voting (as :func:`singleshot.ops.vote_boxes_padded`): ``(N, 4)`` candidates, ``(N,)`` scores, ``(K,)``
    kept indices -> ``(K, 4)`` kept boxes moved to the score-weighted mean of the candidates overlapping them by
    ``>= vote_iou``."""
    k = boxes_xyxy[kept]
    iou = pairwise_iou_xyxy_numpy(k[:, :4], boxes_xyxy[:, :4])  # (K, N); decoded boxes are clipped, never inverted
    weights = np.where(iou >= vote_iou, scores[None, :], 0.0)
    total = weights.sum(axis=1, keepdims=True)
    voted = weights @ boxes_xyxy / np.maximum(total, 1e-12)
    return np.where(total > 0, voted, k)


def postprocess_numpy(
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    min_score: float = 0.5,
    max_overlap: float = 0.45,
    top_k: int = 200,
    pre_nms_top_k: int = 400,
    vote_iou: float | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Detections from decoded outputs.

    Args:
        boxes_xyxy: ``(N, P, 4)`` decoded boxes (the exported graph's ``boxes``), or ``(N, P, 4 + 2L)`` with each
            box's points after it (a landmark graph, as the runtimes return it): NMS reads the boxes, voting
            averages the points with them, and the kept rows keep their points.
        scores: ``(N, P, C - 1)`` foreground probabilities (the graph's ``scores``).
        vote_iou: box voting threshold (None: off), as :func:`singleshot.postprocess.postprocess`.

    Returns:
        per image, ``(boxes (K, 4) float32, scores (K,) float32, labels (K,) int64 from 1)``, best first.
    """
    results = []
    for boxes_i, scores_i in zip(boxes_xyxy, scores):
        kept_boxes, kept_scores, kept_labels = [], [], []
        for c in range(scores_i.shape[1]):
            s = scores_i[:, c]
            idx = np.flatnonzero(s >= min_score)
            if idx.size > pre_nms_top_k:
                idx = idx[np.argpartition(-s[idx], pre_nms_top_k - 1)[:pre_nms_top_k]]
            if not idx.size:
                continue
            kept = nms_numpy(boxes_i[idx, :4], s[idx], max_overlap)
            keep = idx[kept]
            if vote_iou is not None:
                kept_boxes.append(vote_boxes_numpy(boxes_i[idx], s[idx], kept, vote_iou))
            else:
                kept_boxes.append(boxes_i[keep])
            kept_scores.append(s[keep])
            kept_labels.append(np.full(keep.size, c + 1, np.int64))
        if not kept_scores:
            results.append((np.zeros((0, boxes_i.shape[-1]), np.float32), np.zeros(0, np.float32),
                            np.zeros(0, np.int64)))
            continue
        b, s, lab = np.concatenate(kept_boxes), np.concatenate(kept_scores), np.concatenate(kept_labels)
        best = np.argsort(-s, kind="stable")[:top_k]
        results.append((b[best].astype(np.float32), s[best].astype(np.float32), lab[best]))
    return results
