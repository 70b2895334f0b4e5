"""Non-maximum suppression in vectorized torch (torchvision's ops do not work with the CPU torch used here).

Greedy NMS keeps a box unless a higher-scoring *kept* box overlaps it by more than the threshold. Instead of a
Python loop over boxes, :func:`nms_padded` solves that recursion for many independent groups at once (images,
classes): with ``S[i, j]`` = "box i outranks and overlaps box j", the kept set is the unique fixed point of
``keep[j] = not any_i(keep[i] and S[i, j])``. Iterating that update from "keep everything" makes the first ``t``
boxes final after ``t`` rounds, so it converges exactly to the greedy result; in practice within a few rounds,
because suppression chains are short (13 rounds for SSD300 with random weights, the worst realistic case). Each
round is one batched tensor operation. Past a bound on rounds (a pathological chain), the plain greedy sweep
finishes the job, still vectorized across groups.
"""

from __future__ import annotations

import torch
from torch import Tensor

from singleshot.boxes import pairwise_iou_xyxy

#: Rounds of the fixed-point iteration before falling back to the sweep (each round costs one (G, K, K) product).
_MAX_FIXPOINT_ROUNDS = 24


def nms_padded(boxes_xyxy: Tensor, scores: Tensor, valid: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS on ``G`` independent groups of up to ``K`` boxes each.

    Args:
        boxes_xyxy: ``(G, K, 4)`` boxes.
        scores: ``(G, K)`` scores.
        valid: ``(G, K)`` bool; invalid entries are never kept and never suppress.
        iou_threshold: a box is suppressed by a kept box of higher score when their IoU is ``> iou_threshold``.

    Returns:
        ``(G, K)`` bool mask of the kept boxes. Equal scores are ranked by position (earlier first).
    """
    num_groups, k = scores.shape
    if k == 0:
        return valid.clone()
    order = scores.masked_fill(~valid, float("-inf")).sort(dim=1, descending=True, stable=True).indices  # (G, K)
    sorted_boxes = torch.gather(boxes_xyxy, 1, order[..., None].expand(num_groups, k, 4))
    sorted_valid = torch.gather(valid, 1, order)
    iou = pairwise_iou_xyxy(sorted_boxes, sorted_boxes)  # (G, K, K)
    upper = torch.ones(k, k, dtype=torch.bool, device=scores.device).triu(diagonal=1)  # i outranks j when i < j
    suppresses = (iou > iou_threshold) & upper & sorted_valid[:, :, None]  # (G, K, K)
    suppresses_f = suppresses.to(torch.float32)
    keep = sorted_valid.clone()
    for _ in range(_MAX_FIXPOINT_ROUNDS):  # usually converges in a handful of rounds (see module docstring)
        hit = torch.bmm(keep.to(torch.float32)[:, None, :], suppresses_f)[:, 0] > 0  # (G, K)
        new_keep = sorted_valid & ~hit
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    else:
        # A long suppression chain: finish with the plain greedy sweep, one rank at a time for all groups.
        keep = sorted_valid.clone()
        for i in range(k - 1):
            keep[:, i + 1 :] &= ~(keep[:, i, None] & suppresses[:, i, i + 1 :])
    return torch.zeros_like(keep).scatter_(1, order, keep)  # back to the input order


def nms(boxes_xyxy: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS (same contract as ``torchvision.ops.nms``).

    Args:
        boxes_xyxy: ``(N, 4)`` boxes.
        scores: ``(N,)`` scores.
        iou_threshold: suppress boxes overlapping a kept, higher-scoring box with IoU ``> iou_threshold``.

    Returns:
        ``(K,)`` long indices of the kept boxes, by decreasing score.
    """
    keep = nms_padded(boxes_xyxy[None], scores[None], torch.ones_like(scores, dtype=torch.bool)[None], iou_threshold)[0]
    kept = keep.nonzero().squeeze(1)
    return kept[scores[kept].sort(descending=True, stable=True).indices]


def batched_nms(boxes_xyxy: Tensor, scores: Tensor, group_ids: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware NMS: boxes only suppress boxes of the same group (same contract as torchvision's).

    Args:
        boxes_xyxy: ``(N, 4)`` boxes.
        scores: ``(N,)`` scores.
        group_ids: ``(N,)`` long group (class, or image * classes + class) of each box.
        iou_threshold: IoU above which a kept box suppresses a lower-scoring one of its group.

    Returns:
        ``(K,)`` long indices of the kept boxes, by decreasing score.
    """
    n = scores.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    # Lay the groups out as rows of a padded (G, K) table, so all groups run through one nms_padded call.
    groups, group_row, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    by_group = torch.sort(group_row, stable=True).indices  # boxes grouped, original order within a group
    starts = torch.cumsum(counts, 0) - counts
    column = torch.arange(n, device=scores.device) - starts[group_row[by_group]]
    g, k = groups.shape[0], int(counts.max())
    table_index = torch.full((g, k), -1, dtype=torch.long, device=scores.device)
    table_index[group_row[by_group], column] = by_group
    table_valid = table_index >= 0
    safe_index = table_index.clamp(min=0)
    keep = nms_padded(boxes_xyxy[safe_index], scores[safe_index], table_valid, iou_threshold)
    kept = table_index[keep]
    return kept[scores[kept].sort(descending=True, stable=True).indices]


def vote_boxes_padded(boxes_xyxy: Tensor, scores: Tensor, valid: Tensor, vote_iou: float) -> Tensor:
    """Box voting: each box moved to the score-weighted mean of the valid boxes overlapping it by ``>= vote_iou``.

    Applied to the boxes NMS keeps, it refines their positions with the neighbours NMS throws away (box voting,
    Gidaris & Komodakis 2015, "MR-CNN", section 5; used by the WIDER FACE entries of DSFD and RetinaFace). Scores
    are unchanged, so the ranking and the kept set stay those of NMS.

    Args:
        boxes_xyxy: ``(G, K, 4)``; scores: ``(G, K)``; valid: ``(G, K)`` bool (invalid boxes do not vote).

    Returns:
        ``(G, K, 4)`` voted boxes (a box with no valid voter, e.g. a degenerate one, is returned unchanged).
    """
    return vote_padded(boxes_xyxy, scores, valid, vote_iou, boxes_xyxy)


def vote_padded(boxes_xyxy: Tensor, scores: Tensor, valid: Tensor, vote_iou: float, values: Tensor) -> Tensor:
    """The voting of :func:`vote_boxes_padded` applied to any per-box ``values`` ``(G, K, D)`` (e.g. boxes and
    landmarks together): each row becomes the score-weighted mean of the rows of the valid boxes overlapping its box
    by ``>= vote_iou``; ``(G, K, D)``."""
    iou = pairwise_iou_xyxy(boxes_xyxy, boxes_xyxy)  # (G, K, K)
    weights = (iou >= vote_iou) & valid[:, None, :]
    weights = weights.to(values.dtype) * scores[:, None, :]
    total = weights.sum(dim=2, keepdim=True)  # (G, K, 1)
    voted = torch.bmm(weights, values) / total.clamp(min=1e-12)
    return torch.where(total > 0, voted, values)
