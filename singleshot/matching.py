"""Batched, vectorized matching of priors to ground-truth boxes (the SSD rule).

The face-detector author's GPU sat at 0% while Python loops matched anchors one box at a time; here one call
matches a whole batch with tensor operations only: no Python loop over images, priors or objects. Objects are
padded per image to a common count and carried with a validity mask (:func:`pad_targets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from singleshot.boxes import DEFAULT_VARIANCES, cxcywh_to_xyxy, encode_offsets, pairwise_iou_xyxy, xyxy_to_cxcywh

#: Class target of a prior matched to an object marked ``ignore``: neither positive nor negative in the loss.
IGNORE_LABEL = -1


@dataclass
class MatchResult:
    """Targets for every prior of every image.

    Attributes:
        labels: ``(B, P)`` long: the matched object's class (>= 1), 0 for background, or
            :data:`IGNORE_LABEL` (-1) for a prior matched to an ignored object.
        offsets: ``(B, P, 4)`` encoded offsets (:func:`singleshot.boxes.encode_offsets`) of the matched object;
            meaningful only where ``labels > 0``.
        matched_index: ``(B, P)`` long: index of the object each prior was compared with (its best object), or
            -1 for an image without objects.
        matched_iou: ``(B, P)`` IoU with that object (1 for priors forced onto an object, 0 without objects).
    """

    labels: Tensor
    offsets: Tensor
    matched_index: Tensor
    matched_iou: Tensor


def pad_targets(
    boxes_xyxy: Sequence[Tensor],
    labels: Sequence[Tensor],
    ignore: Sequence[Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Stack per-image targets of different lengths into padded batch tensors.

    Args:
        boxes_xyxy: ``B`` tensors of shape ``(M_i, 4)``.
        labels: ``B`` long tensors of shape ``(M_i,)``.
        ignore: optional ``B`` bool tensors of shape ``(M_i,)`` marking objects to ignore.

    Returns:
        ``boxes (B, M, 4)``, ``labels (B, M)``, ``ignore (B, M)``, ``valid (B, M)`` with ``M = max(1, max M_i)``;
        padding rows have ``valid`` False.
    """
    if len(boxes_xyxy) == 0:
        raise ValueError("pad_targets needs at least one image")
    device = boxes_xyxy[0].device
    lengths = torch.tensor([len(b) for b in boxes_xyxy], device=device)
    m = max(1, int(lengths.max()))
    # A dummy entry of length M makes pad_sequence pad to M >= 1 even when every image is empty.
    out_boxes = pad_sequence([*boxes_xyxy, boxes_xyxy[0].new_zeros(m, 4)], batch_first=True)[:-1]
    out_labels = pad_sequence([*labels, labels[0].new_zeros(m)], batch_first=True)[:-1].long()
    valid = torch.arange(m, device=device)[None] < lengths[:, None]
    if ignore is None:
        out_ignore = torch.zeros_like(valid)
    else:
        out_ignore = pad_sequence([*ignore, valid.new_zeros(m)], batch_first=True)[:-1].bool()
    return out_boxes.float(), out_labels, out_ignore, valid


def match_priors(
    priors_cxcywh: Tensor,
    gt_boxes_xyxy: Tensor,
    gt_labels: Tensor,
    gt_valid: Tensor,
    gt_ignore: Tensor | None = None,
    iou_threshold: float = 0.5,
    variances: tuple[float, float] = DEFAULT_VARIANCES,
) -> MatchResult:
    """Match every prior of every image to ground truth (SSD paper, section 2.2, "Matching strategy").

    1. Each object is forced onto the prior with which it has the highest IoU, so no object goes unmatched.
       When two objects want the same prior, the one with the higher IoU keeps it (ties: lower index) and the
       other takes its best prior among those still free (the SSD tutorial lets the later object overwrite the
       earlier, which leaves the earlier one without any prior). An object that overlaps no prior at all (a
       zero-area box) is not forced anywhere.
    2. Every other prior takes the object of highest IoU if that IoU is ``>= iou_threshold``, else background.

    Args:
        priors_cxcywh: ``(P, 4)`` normalised priors.
        gt_boxes_xyxy: ``(B, M, 4)`` padded objects, normalised like the priors.
        gt_labels: ``(B, M)`` long classes (>= 1; 0 is background).
        gt_valid: ``(B, M)`` bool, False on padding rows.
        gt_ignore: optional ``(B, M)`` bool; priors matched to an ignored object get :data:`IGNORE_LABEL`.
        iou_threshold: minimum IoU for a positive (0.5 in SSD; face detectors often use 0.35).

    Returns:
        A :class:`MatchResult` of ``(B, P)`` labels and ``(B, P, 4)`` offsets.
    """
    batch, num_objects = gt_labels.shape
    num_priors = priors_cxcywh.shape[0]
    priors_xyxy = cxcywh_to_xyxy(priors_cxcywh)
    iou = pairwise_iou_xyxy(gt_boxes_xyxy, priors_xyxy[None])  # (B, M, P)
    iou = iou.masked_fill(~gt_valid[:, :, None], -1.0)  # padding never wins a prior

    best_iou, best_object = iou.max(dim=1)  # (B, P): each prior's best object
    forced = _force_best_priors(iou, gt_valid)  # (B, P): object forced onto each prior, or -1
    is_forced = forced >= 0
    best_object = torch.where(is_forced, forced, best_object)
    best_iou = torch.where(is_forced, torch.ones_like(best_iou), best_iou)

    labels = torch.gather(gt_labels, 1, best_object)  # (B, P)
    labels = torch.where(best_iou >= iou_threshold, labels, torch.zeros_like(labels))
    if gt_ignore is not None:
        ignored = torch.gather(gt_ignore, 1, best_object) & (labels > 0)
        labels = labels.masked_fill(ignored, IGNORE_LABEL)

    matched_boxes = torch.gather(gt_boxes_xyxy, 1, best_object[:, :, None].expand(batch, num_priors, 4))
    offsets = encode_offsets(xyxy_to_cxcywh(matched_boxes), priors_cxcywh, variances)  # (B, P, 4)

    has_objects = gt_valid.any(dim=1, keepdim=True)  # (B, 1)
    matched_index = torch.where(has_objects, best_object, torch.full_like(best_object, -1))
    matched_iou = best_iou.clamp(min=0)
    return MatchResult(labels=labels, offsets=offsets, matched_index=matched_index, matched_iou=matched_iou)


def _force_best_priors(iou: Tensor, valid: Tensor) -> Tensor:
    """Give every valid object its own prior: its best one, or its best free one after a conflict.

    Args:
        iou: ``(B, M, P)`` IoU of objects with priors (-1 on padding rows).
        valid: ``(B, M)`` bool.

    Returns:
        ``(B, P)`` long: index of the object forced onto each prior, -1 where none.

    Runs in rounds, each vectorized over the whole batch: every pending object proposes its best free prior, each
    proposed prior goes to its highest-IoU proposer (ties: lowest index), and the winners stop. Round ``r`` only
    runs for objects that lost ``r - 1`` conflicts, so there are usually one or two rounds.
    """
    batch, num_objects, num_priors = iou.shape
    device = iou.device
    object_index = torch.arange(num_objects, device=device).expand(batch, num_objects)
    spare = torch.full_like(object_index, num_priors)  # scatter target for objects not taking part
    forced = torch.full((batch, num_priors + 1), -1, dtype=torch.long, device=device)
    pending = valid.clone()
    for _ in range(num_objects):  # rounds of conflicts, not objects: stops as soon as nothing is pending
        taken = forced[:, None, :num_priors] >= 0  # (B, 1, P)
        proposal_iou, proposal = iou.masked_fill(taken, -1.0).max(dim=2)  # (B, M)
        pending &= proposal_iou > 0  # nothing left that this object overlaps
        if not bool(pending.any()):
            break
        column = torch.where(pending, proposal, spare)
        top_iou = torch.full((batch, num_priors + 1), -2.0, device=device)
        top_iou.scatter_reduce_(1, column, torch.where(pending, proposal_iou, -2.0), reduce="amax")
        contender = pending & (proposal_iou == torch.gather(top_iou, 1, column))
        winner = torch.full((batch, num_priors + 1), num_objects, dtype=torch.long, device=device)
        winner.scatter_reduce_(1, torch.where(contender, column, spare), object_index, reduce="amin")
        won = pending & (torch.gather(winner, 1, column) == object_index)
        forced.scatter_(1, torch.where(won, column, spare), torch.where(won, object_index, -1))
        forced[:, num_priors] = -1  # the spare column collects the non-winners' writes
        pending &= ~won
    return forced[:, :num_priors]
