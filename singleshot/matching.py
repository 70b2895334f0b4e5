"""Batched, vectorized matching of priors to ground-truth boxes (the SSD rule).

The face-detector author's GPU sat at 0% while Python loops matched anchors one box at a time; here one call
matches a whole batch with tensor operations only: no Python loop over images, priors or objects. Objects are
padded per image to a common count and carried with a validity mask (:func:`pad_targets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from singleshot.boxes import DEFAULT_VARIANCES, cxcywh_to_xyxy, elementwise_iou_xyxy, encode_offsets, xyxy_to_cxcywh
from singleshot.priors import PriorGrid

#: Class target of a prior matched to an object marked ``ignore``: neither positive nor negative in the loss.
IGNORE_LABEL = -1
#: Floor for divisions by a box side.
_TINY = 1e-12


@dataclass
class MatchResult:
    """Targets for every prior of every image.

    Attributes:
        labels: ``(B, P)`` long: the matched object's class (>= 1), 0 for background, or
            :data:`IGNORE_LABEL` (-1) for a prior matched to an ignored object.
        offsets: ``(B, P, 4)`` encoded offsets (:func:`singleshot.boxes.encode_offsets`) of the matched object;
            zero on background priors.
        matched_index: ``(B, P)`` long: slot (index in the image's object list) of the matched object, -1 on
            background priors.
        matched_iou: ``(B, P)`` IoU with the matched object (1 for a prior forced onto its object), 0 on
            background.
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
    priors: Tensor | PriorGrid,
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
    2. Every other prior takes the object of highest IoU (ties: lower index) if that IoU is ``>= iou_threshold``,
       else it is background.

    With a :class:`~singleshot.priors.PriorGrid` (what :meth:`SingleShotDetector.prior_grid` returns) only the
    priors near each object are compared with it: cells are found from the grid geometry with bounds that never
    skip a prior that could reach the threshold (or, for the forced match, overlap the object at all), so the
    result is identical to comparing every pair, at a small fraction of the cost. With a plain ``(P, 4)`` tensor
    every (object, prior) pair is compared.

    Args:
        priors: ``(P, 4)`` normalised ``cxcywh`` priors, or a :class:`PriorGrid` holding them.
        gt_boxes_xyxy: ``(B, M, 4)`` padded objects, normalised like the priors.
        gt_labels: ``(B, M)`` long classes (>= 1; 0 is background).
        gt_valid: ``(B, M)`` bool, False on padding rows.
        gt_ignore: optional ``(B, M)`` bool; priors matched to an ignored object get :data:`IGNORE_LABEL`.
        iou_threshold: minimum IoU for a positive, in ``(0, 1]`` (0.5 in SSD; face detectors often use 0.35).

    Returns:
        A :class:`MatchResult` of ``(B, P)`` labels and ``(B, P, 4)`` offsets.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    grid = priors if isinstance(priors, PriorGrid) else None
    priors_cxcywh = grid.cxcywh if grid is not None else priors
    batch = gt_labels.shape[0]
    num_priors = priors_cxcywh.shape[0]
    device = gt_labels.device
    priors_xyxy = cxcywh_to_xyxy(priors_cxcywh)

    # Objects flattened over the batch (row-major, so a lower object id means a lower slot in the same image).
    object_image, object_slot = gt_valid.nonzero(as_tuple=True)  # (N,) each
    boxes = gt_boxes_xyxy[object_image, object_slot]  # (N, 4)
    num_objects = boxes.shape[0]

    def scored_pairs(objects: Tensor, min_iou: float) -> tuple[Tensor, Tensor, Tensor]:
        """(object id, global prior key, IoU) for every pair that could have IoU >= min_iou (> 0 if 0)."""
        if grid is None:
            pair_object = objects.repeat_interleave(num_priors)
            pair_prior = torch.arange(num_priors, device=device).repeat(objects.shape[0])
        else:
            pair_object, pair_prior = _grid_window_pairs(grid, boxes, objects, min_iou)
        iou = elementwise_iou_xyxy(boxes[pair_object], priors_xyxy[pair_prior])
        return pair_object, object_image[pair_object] * num_priors + pair_prior, iou

    # Step 2's candidates: complete for IoU >= threshold.
    pair_object, pair_key, pair_iou = scored_pairs(torch.arange(num_objects, device=device), iou_threshold)
    hit = pair_iou >= iou_threshold
    assigned = _best_per_key(pair_key[hit], pair_object[hit], pair_iou[hit], batch * num_priors, num_objects)

    forced = _force_best_priors(
        pair_object, pair_key, pair_iou, scored_pairs, num_objects, batch * num_priors, iou_threshold,
        complete=grid is None,
    )
    assigned = torch.where(forced >= 0, forced, assigned).view(batch, num_priors)  # (B, P) object id or -1

    matched = assigned >= 0
    safe = assigned.clamp(min=0)
    matched_index = torch.where(matched, object_slot[safe] if num_objects else safe, -1)
    labels = torch.zeros(batch, num_priors, dtype=torch.long, device=device)
    matched_iou = torch.zeros(batch, num_priors, device=device)
    offsets = torch.zeros(batch, num_priors, 4, device=device)
    if num_objects:
        object_labels = gt_labels[object_image, object_slot]  # (N,)
        if gt_ignore is not None:
            object_labels = object_labels.masked_fill(gt_ignore[object_image, object_slot], IGNORE_LABEL)
        labels = torch.where(matched, object_labels[safe], 0)
        image_index, prior_index = matched.nonzero(as_tuple=True)
        chosen = assigned[image_index, prior_index]
        matched_priors = priors_cxcywh[prior_index]
        offsets[image_index, prior_index] = encode_offsets(xyxy_to_cxcywh(boxes[chosen]), matched_priors, variances)
        matched_iou[image_index, prior_index] = torch.where(
            forced.view(batch, num_priors)[image_index, prior_index] >= 0,
            1.0,
            elementwise_iou_xyxy(boxes[chosen], priors_xyxy[prior_index]),
        )
    return MatchResult(labels=labels, offsets=offsets, matched_index=matched_index, matched_iou=matched_iou)


def _best_per_key(key: Tensor, obj: Tensor, iou: Tensor, num_keys: int, num_objects: int) -> Tensor:
    """For each key, the object of highest IoU among the given pairs (ties: lowest id); -1 where none."""
    top_iou = torch.full((num_keys,), -1.0, device=iou.device).scatter_reduce(0, key, iou, reduce="amax")
    top = iou == top_iou[key]
    best = torch.full((num_keys,), num_objects, dtype=torch.long, device=key.device)
    best.scatter_reduce_(0, key[top], obj[top], reduce="amin")
    return best.masked_fill_(best == num_objects, -1)


def _force_best_priors(
    pair_object: Tensor,
    pair_key: Tensor,
    pair_iou: Tensor,
    scored_pairs,
    num_objects: int,
    num_keys: int,
    iou_threshold: float,
    complete: bool,
) -> Tensor:
    """Give every object its own prior: its best one, or its best free one after a conflict.

    Runs in rounds, each vectorized over all objects of the batch: every pending object proposes its best free
    prior (ties: lowest index), each proposed prior goes to its highest-IoU proposer (ties: lowest id), and the
    winners stop. Only objects that lost a conflict take part in a later round, so there are usually one or two.

    The candidate pairs are complete for IoU >= ``iou_threshold``; an object whose best free candidate is below
    that gets all its overlapping priors (``scored_pairs(objects, 0)``) before it proposes, so its proposal is
    its true best free prior. ``complete`` says the pairs already hold every prior.

    Returns:
        ``(num_keys,)`` long: the object forced onto each (image, prior) key, or -1.
    """
    device = pair_iou.device
    forced = torch.full((num_keys,), -1, dtype=torch.long, device=device)
    taken = torch.zeros(num_keys, dtype=torch.bool, device=device)
    pending = torch.ones(num_objects, dtype=torch.bool, device=device)
    expanded = torch.full((num_objects,), complete, dtype=torch.bool, device=device)
    for _ in range(2 * num_objects + 2):  # rounds of conflicts and expansions, not a loop over objects
        avail = pending[pair_object] & ~taken[pair_key]
        if not bool(avail.all()):  # drop settled objects' and taken priors' pairs: later rounds stay small
            pair_object, pair_key, pair_iou = pair_object[avail], pair_key[avail], pair_iou[avail]
            avail = torch.ones_like(pair_iou, dtype=torch.bool)
        best = torch.zeros(num_objects, device=device).scatter_reduce(
            0, pair_object[avail], pair_iou[avail], reduce="amax"
        )
        grow = pending & ~expanded & (best < iou_threshold)
        if bool(grow.any()):
            more_object, more_key, more_iou = scored_pairs(grow.nonzero().squeeze(1), 0.0)
            pair_object = torch.cat((pair_object, more_object))
            pair_key = torch.cat((pair_key, more_key))
            pair_iou = torch.cat((pair_iou, more_iou))
            expanded |= grow
            continue
        pending &= best > 0  # nothing free that this object overlaps
        if not bool(pending.any()):
            break
        proposal_pairs = avail & pending[pair_object] & (pair_iou == best[pair_object])
        proposal = torch.full((num_objects,), num_keys, dtype=torch.long, device=device)
        proposal.scatter_reduce_(0, pair_object[proposal_pairs], pair_key[proposal_pairs], reduce="amin")
        proposers = pending.nonzero().squeeze(1)
        winner = _best_per_key(proposal[proposers], proposers, best[proposers], num_keys, num_objects)
        won = proposers[winner[proposal[proposers]] == proposers]
        forced[proposal[won]] = won
        taken[proposal[won]] = True
        pending[won] = False
    return forced


def _grid_window_pairs(grid: PriorGrid, boxes: Tensor, objects: Tensor, min_iou: float) -> tuple[Tensor, Tensor]:
    """Pairs (object, prior) that could have IoU >= ``min_iou`` (> 0 when ``min_iou`` is 0), from grid geometry.

    For a group of priors of unclipped size ``(w, h)`` on a ``rows x cols`` grid of pitch ``(pitch_x, pitch_y)``,
    IoU >= t needs an intersection of at least ``t * max(area(box), area(prior))``; clipping only shrinks a prior,
    to no less than the group's ``min_area``. The intersection width is at most
    ``(box_w + w) / 2 - |dx|`` and its height at most ``min(box_h, h)``, which bounds ``|dx|`` (and ``|dy|``
    likewise): the cells within those bounds are a superset of the priors that can reach t, so no match is ever
    missed.

    Args:
        boxes: ``(N, 4)`` all objects (normalised xyxy); ``objects``: ``(K,)`` ids of those to pair.

    Returns:
        ``pair_object (T,)`` ids and ``pair_prior (T,)`` prior indices.
    """
    b = boxes[objects]  # (K, 4)
    box_w = (b[:, 2] - b[:, 0]).clamp(min=0)[:, None]  # (K, 1)
    box_h = (b[:, 3] - b[:, 1]).clamp(min=0)[:, None]
    centre_x = ((b[:, 0] + b[:, 2]) / 2)[:, None]
    centre_y = ((b[:, 1] + b[:, 3]) / 2)[:, None]
    w, h = grid.width[None], grid.height[None]  # (1, G)
    if min_iou > 0:
        prior_area_low = grid.min_area[None]
        need = min_iou * torch.maximum(box_w * box_h, prior_area_low)  # (K, G)
        need_w = need / torch.minimum(box_h, h).clamp(min=_TINY)
        need_h = need / torch.minimum(box_w, w).clamp(min=_TINY)
        slack = 1 + 1e-4  # float rounding must not turn "possible" into "impossible"
        possible = (need_w <= torch.minimum(box_w, w) * slack) & (need_h <= torch.minimum(box_h, h) * slack)
        half_x = (box_w + w) / 2 - need_w
        half_y = (box_h + h) / 2 - need_h
    else:
        possible = (box_w > 0) & (box_h > 0)  # a zero-area box has IoU 0 with everything
        half_x = (box_w + w) / 2
        half_y = (box_h + h) / 2
    cols, rows = grid.cols[None].float(), grid.rows[None].float()
    per_x, per_y = 1.0 / grid.pitch_x[None], 1.0 / grid.pitch_y[None]  # cells per unit of width and height
    tol = 1e-3  # in cells: widen every window a little so rounding never drops a cell
    col_lo = torch.ceil((centre_x - half_x) * per_x - 0.5 - tol).clamp(min=0)
    col_hi = torch.minimum(torch.floor((centre_x + half_x) * per_x - 0.5 + tol), cols - 1)
    row_lo = torch.ceil((centre_y - half_y) * per_y - 0.5 - tol).clamp(min=0)
    row_hi = torch.minimum(torch.floor((centre_y + half_y) * per_y - 0.5 + tol), rows - 1)
    n_cols = (col_hi - col_lo + 1).clamp(min=0)
    n_rows = (row_hi - row_lo + 1).clamp(min=0)
    count = torch.where(possible, n_cols * n_rows, 0).long().flatten()  # (K * G,)

    # Enumerate the cells of every window at once: one entry per (object, group, cell).
    window = torch.repeat_interleave(torch.arange(count.shape[0], device=count.device), count)  # (T,)
    first = torch.cumsum(count, 0) - count
    local = torch.arange(window.shape[0], device=count.device) - first[window]
    n_cols_w = n_cols.flatten().long()[window]
    row = row_lo.flatten().long()[window] + local // n_cols_w
    col = col_lo.flatten().long()[window] + local % n_cols_w
    group = window % grid.offset.shape[0]
    prior = grid.offset[group] + (row * grid.cols[group] + col) * grid.per_cell[group] + grid.index_in_cell[group]
    return objects[window // grid.offset.shape[0]], prior
