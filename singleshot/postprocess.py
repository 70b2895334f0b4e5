"""Post-processing: raw ``(loc, conf)`` outputs -> per-image :class:`~singleshot.structures.Detections`.

Decode the offsets against the priors, take class probabilities by softmax, drop scores below ``min_score``, keep
the ``pre_nms_top_k`` best boxes of each class, run class-aware NMS (``max_overlap``) and keep the ``top_k`` best
boxes of each image. Every step runs on the whole batch at once: all (image, class) groups go through one
:func:`~singleshot.ops.nms_padded` call, so post-processing stays cheap next to the network (peers' users often
find it costs more than the forward pass when it loops in Python).
"""

from __future__ import annotations

import torch
from torch import Tensor

from singleshot.boxes import DEFAULT_VARIANCES, clip_boxes_xyxy, cxcywh_to_xyxy, decode_landmarks, decode_offsets
from singleshot.ops import nms_padded, vote_padded
from singleshot.structures import Detections


def foreground_scores(conf: Tensor) -> Tensor:
    """Class logits ``(..., C)`` (class 0 = background) -> foreground probabilities ``(..., C - 1)`` (softmax).

    With one foreground class, softmax's p1 is sigmoid(z1 - z0): the same value without a softmax over rows of two,
    which costs about 15x more in PyTorch on the CPU (0.67 vs 0.04 ms for 17,720 priors on 2 cores, a third of
    :func:`postprocess`) and about a tenth of the network at 640x480 in ONNX Runtime (the export traces this too).
    """
    if conf.shape[-1] == 2:
        return torch.sigmoid(conf[..., 1:] - conf[..., :1])
    return conf.softmax(dim=-1)[..., 1:]


@torch.no_grad()
def postprocess(
    loc: Tensor,
    conf: Tensor,
    priors_cxcywh: Tensor,
    image_size: tuple[int, int],
    min_score: float = 0.01,
    max_overlap: float = 0.45,
    top_k: int = 200,
    pre_nms_top_k: int = 400,
    variances: tuple[float, float] = DEFAULT_VARIANCES,
    vote_iou: float | None = None,
    landm: Tensor | None = None,
) -> list[Detections]:
    """Turn raw detector outputs into detections, one :class:`Detections` per image of the batch.

    Args:
        loc: ``(B, P, 4)`` predicted offsets.
        conf: ``(B, P, C)`` class logits; class 0 is background.
        priors_cxcywh: ``(P, 4)`` normalised priors.
        image_size: ``(H, W)`` in pixels of the network input; boxes are returned in these pixels.
        min_score: class probability below which a box is dropped.
        max_overlap: IoU above which NMS suppresses the lower-scoring box of the same class.
        top_k: detections kept per image, best first.
        pre_nms_top_k: candidates kept per image and class before NMS (bounds the NMS cost).
        vote_iou: box voting (:func:`~singleshot.ops.vote_boxes_padded`): each kept box becomes the score-weighted
            mean of the candidates of its class overlapping it by at least this IoU (None: off).
        landm: ``(B, P, 2L)`` predicted landmark offsets (:func:`~singleshot.boxes.encode_landmarks`), or None;
            decoded for the candidates, voted with their boxes, and returned as ``Detections.landmarks``.

    Returns:
        ``B`` :class:`Detections`, boxes in ``xyxy`` pixels of the input, clipped to it (landmarks in the same
        pixels, not clipped: a point may lie outside the input).
    """
    batch, num_priors, num_classes = conf.shape
    height, width = image_size
    scores = foreground_scores(conf).transpose(1, 2)  # (B, C-1, P)

    # Candidates: the best pre_nms_top_k per (image, class), and no more than the most any group has above
    # min_score, so a confident model (few boxes above the threshold) pays for a small NMS, not a 400-box one.
    above = int((scores >= min_score).sum(dim=2).max()) if scores.numel() else 0
    k = max(1, min(pre_nms_top_k, num_priors, above))
    cand_scores, cand_index = scores.topk(k, dim=2)  # (B, C-1, K), sorted by score
    cand_valid = cand_scores >= min_score

    # Decode only the candidates (not every prior): (B, C-1, K, 4) boxes in input pixels.
    flat_index = cand_index.reshape(batch, -1)  # (B, (C-1) * K)
    cand_loc = torch.gather(loc, 1, flat_index[..., None].expand(-1, -1, 4))
    cand_priors = priors_cxcywh[flat_index]  # (B, (C-1) * K, 4)
    boxes = clip_boxes_xyxy(cxcywh_to_xyxy(decode_offsets(cand_loc, cand_priors, variances)))
    scale = torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    cand_boxes = (boxes * scale).view(batch, num_classes - 1, k, 4)

    values = cand_boxes  # what NMS keeps and voting averages: the boxes, then the landmarks if any
    if landm is not None:
        cand_landm = torch.gather(landm, 1, flat_index[..., None].expand(-1, -1, landm.shape[-1]))
        points = decode_landmarks(cand_landm, cand_priors, variances) * scale[:2]  # (B, (C-1) * K, L, 2) pixels
        values = torch.cat((cand_boxes, points.reshape(batch, num_classes - 1, k, -1)), dim=-1)
    keep = nms_padded(
        cand_boxes.reshape(-1, k, 4), cand_scores.reshape(-1, k), cand_valid.reshape(-1, k), max_overlap
    ).view(batch, num_classes - 1, k)
    if vote_iou is not None:
        values = vote_padded(
            cand_boxes.reshape(-1, k, 4), cand_scores.reshape(-1, k), cand_valid.reshape(-1, k), vote_iou,
            values.reshape(batch * (num_classes - 1), k, -1),
        ).view(batch, num_classes - 1, k, -1)

    # Best top_k survivors per image across classes.
    final_scores = cand_scores.masked_fill(~keep, float("-inf")).reshape(batch, -1)  # (B, (C-1) * K)
    n = min(top_k, final_scores.shape[1])
    best_scores, best = final_scores.topk(n, dim=1)  # (B, n)
    width_values = values.shape[-1]
    best_values = torch.gather(values.reshape(batch, -1, width_values), 1, best[..., None].expand(-1, -1, width_values))
    best_boxes = best_values[..., :4]
    best_points = best_values[..., 4:].unflatten(-1, (-1, 2)) if landm is not None else None  # (B, n, L, 2)
    best_labels = best // k + 1  # candidate index -> foreground class (1-based)
    found = torch.isfinite(best_scores)

    results = []
    for i in range(batch):  # slicing out each image's survivors; all computation above is batched
        m = found[i]
        results.append(Detections(boxes_xyxy=best_boxes[i][m], scores=best_scores[i][m], labels=best_labels[i][m],
                                  landmarks=best_points[i][m] if best_points is not None else None))
    return results



def merge_large_faces(main: Detections, coarse: Detections, large_side: float, max_overlap: float = 0.45,
                      top_k: int = 200) -> Detections:
    """One image's detections from two scales -> one set: large objects as the coarser scale sees them (the
    multi-scale test of S3FD and PyramidBox: an image shrunk for its large faces, enlarged for its small ones).

    Both sets are in the same (original) pixels. ``coarse`` detections of long side ``large_side`` or more are
    taken, smaller ones dropped (the main scale sees small objects better). A ``main`` detection as large as that
    gives way when the surest ``coarse`` detection of its label overlapping it with IoU > ``max_overlap`` (the same
    object) is large too: the coarse scale then decides its box and score, which is how it rejects large false
    detections. Every other ``main`` detection stays (none at that scale, or one it sees as small: a face near the
    size limit), so the union finds what either scale finds. Class-aware NMS at ``max_overlap`` then settles
    what is left between the two (a small face of the main scale against a large box of the coarse one: the higher
    score). Sorted by score, ``top_k`` at most.

    Returns:
        :class:`Detections` (attributes are not carried: they are scored on the merged boxes).
    """
    from singleshot.boxes import pairwise_iou_xyxy
    from singleshot.ops import batched_nms

    def long_sides(d: Detections) -> Tensor:
        return (d.boxes_xyxy[:, 2:] - d.boxes_xyxy[:, :2]).amax(dim=1)

    large = long_sides(coarse) >= large_side  # (Kc,)
    if not bool(large.any()):
        return main
    keep_main = torch.ones(len(main), dtype=torch.bool)
    if len(main):
        iou = pairwise_iou_xyxy(main.boxes_xyxy, coarse.boxes_xyxy)  # (Km, Kc)
        same = (iou > max_overlap) & (main.labels[:, None] == coarse.labels[None, :])
        # the coarse scale's surest box on the object: does that scale see it as large?
        best = torch.where(same, coarse.scores[None, :], -1.0).argmax(dim=1)  # (Km,)
        given_way = same.any(dim=1) & large[best] & (long_sides(main) >= large_side)
        keep_main = ~given_way
    parts = [(main, keep_main), (coarse, large)]
    boxes = torch.cat([d.boxes_xyxy[k] for d, k in parts])
    scores = torch.cat([d.scores[k] for d, k in parts])
    labels = torch.cat([d.labels[k] for d, k in parts])
    order = batched_nms(boxes, scores, labels, max_overlap)[:top_k]
    with_points = main.landmarks is not None and coarse.landmarks is not None
    return Detections(
        boxes_xyxy=boxes[order],
        scores=scores[order],
        labels=labels[order],
        landmarks=torch.cat([d.landmarks[k] for d, k in parts])[order] if with_points else None,
    )
