"""Box geometry: format conversions, pairwise IoU, clipping, and SSD offset encoding.

Formats are named in every identifier:

* ``xyxy``   -- ``(x1, y1, x2, y2)``, corners (the format of ground truth and detections).
* ``cxcywh`` -- ``(cx, cy, w, h)``, centre and size (the format of priors).

All functions work on any number of leading dimensions (``(..., 4)``) unless stated otherwise, and never
produce NaN or inf for degenerate boxes (zero width or height).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

#: Variances of the SSD centre-size offsets (Liu et al., SSD, eq. 2 as implemented in the original Caffe code
#: and the PyTorch tutorial): centre offsets are divided by 0.1 and log-size offsets by 0.2 so that both have
#: roughly unit scale for the regression loss.
DEFAULT_VARIANCES: tuple[float, float] = (0.1, 0.2)

#: Sizes below this are treated as this when a logarithm or a division needs a positive number.
_EPS = 1e-6
#: Largest log-size offset accepted when decoding: exp() of more would turn a wild prediction into inf
#: (the same guard as torchvision's ``bbox_xform_clip``, log(1000/16)).
_MAX_LOG_SCALE = math.log(1000.0 / 16)


def xyxy_to_cxcywh(boxes_xyxy: Tensor) -> Tensor:
    """Convert ``(..., 4)`` corner boxes to ``(..., 4)`` centre-size boxes."""
    x1, y1, x2, y2 = boxes_xyxy.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def cxcywh_to_xyxy(boxes_cxcywh: Tensor) -> Tensor:
    """Convert ``(..., 4)`` centre-size boxes to ``(..., 4)`` corner boxes."""
    cx, cy, w, h = boxes_cxcywh.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def box_area_xyxy(boxes_xyxy: Tensor) -> Tensor:
    """Area of ``(..., 4)`` corner boxes, ``(...)``; inverted boxes count as empty (area 0)."""
    w = (boxes_xyxy[..., 2] - boxes_xyxy[..., 0]).clamp(min=0)
    h = (boxes_xyxy[..., 3] - boxes_xyxy[..., 1]).clamp(min=0)
    return w * h


def pairwise_iou_xyxy(boxes1_xyxy: Tensor, boxes2_xyxy: Tensor) -> Tensor:
    """Intersection over union of every pair of boxes.

    Args:
        boxes1_xyxy: ``(N, 4)`` or batched ``(B, N, 4)`` corner boxes.
        boxes2_xyxy: ``(M, 4)`` or batched ``(B, M, 4)`` corner boxes (leading dimensions broadcast).

    Returns:
        ``(N, M)`` or ``(B, N, M)`` IoU in ``[0, 1]``. Two empty boxes have IoU 0 (not NaN).
    """
    area1 = box_area_xyxy(boxes1_xyxy)[..., :, None]  # (..., N, 1)
    area2 = box_area_xyxy(boxes2_xyxy)[..., None, :]  # (..., 1, M)
    b1 = boxes1_xyxy[..., :, None, :]  # (..., N, 1, 4)
    b2 = boxes2_xyxy[..., None, :, :]  # (..., 1, M, 4)
    # One coordinate at a time with in-place updates: the (..., N, M) temporaries dominate the cost for large
    # batches (e.g. 32 x 50 objects x 8,732 priors when matching), so create as few of them as possible.
    inter = torch.minimum(b1[..., 2], b2[..., 2]).sub_(torch.maximum(b1[..., 0], b2[..., 0])).clamp_(min=0)
    inter_h = torch.minimum(b1[..., 3], b2[..., 3]).sub_(torch.maximum(b1[..., 1], b2[..., 1])).clamp_(min=0)
    inter.mul_(inter_h)
    del inter_h
    union = torch.add(area1, area2).sub_(inter)
    # Degenerate pairs have union 0 and intersection 0; dividing by a floor keeps the IoU at 0.
    return inter.div_(union.clamp_(min=_EPS * _EPS))


def elementwise_iou_xyxy(boxes1_xyxy: Tensor, boxes2_xyxy: Tensor) -> Tensor:
    """IoU of matching pairs: ``(..., 4)`` and ``(..., 4)`` -> ``(...)``.

    Same arithmetic, in the same order, as :func:`pairwise_iou_xyxy`, so both give bit-identical values.
    """
    inter = torch.minimum(boxes1_xyxy[..., 2], boxes2_xyxy[..., 2]).sub_(
        torch.maximum(boxes1_xyxy[..., 0], boxes2_xyxy[..., 0])
    ).clamp_(min=0)
    inter_h = torch.minimum(boxes1_xyxy[..., 3], boxes2_xyxy[..., 3]).sub_(
        torch.maximum(boxes1_xyxy[..., 1], boxes2_xyxy[..., 1])
    ).clamp_(min=0)
    inter.mul_(inter_h)
    union = torch.add(box_area_xyxy(boxes1_xyxy), box_area_xyxy(boxes2_xyxy)).sub_(inter)
    return inter.div_(union.clamp_(min=_EPS * _EPS))


def clip_boxes_xyxy(boxes_xyxy: Tensor, width: float = 1.0, height: float = 1.0) -> Tensor:
    """Clip ``(..., 4)`` corner boxes to the image ``[0, width] x [0, height]`` (normalised by default)."""
    x = boxes_xyxy[..., 0::2].clamp(0, width)
    y = boxes_xyxy[..., 1::2].clamp(0, height)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)


def encode_offsets(
    boxes_cxcywh: Tensor, priors_cxcywh: Tensor, variances: tuple[float, float] = DEFAULT_VARIANCES
) -> Tensor:
    """Encode boxes as SSD offsets from their priors (SSD paper, eq. 2).

    ``g_cx = (cx - p_cx) / (p_w * v0)``, ``g_w = log(w / p_w) / v1`` (same for y and h).

    Args:
        boxes_cxcywh: ``(..., P, 4)`` boxes, one per prior.
        priors_cxcywh: ``(P, 4)`` priors (broadcast against the leading dimensions of ``boxes_cxcywh``).

    Returns:
        ``(..., P, 4)`` offsets. A box of zero width or height gets a large negative but finite log offset.
    """
    prior_wh = priors_cxcywh[..., 2:].clamp(min=_EPS)
    centre = (boxes_cxcywh[..., :2] - priors_cxcywh[..., :2]) / (prior_wh * variances[0])
    size = torch.log(boxes_cxcywh[..., 2:].clamp(min=_EPS) / prior_wh) / variances[1]
    return torch.cat((centre, size), dim=-1)


def decode_offsets(
    offsets: Tensor, priors_cxcywh: Tensor, variances: tuple[float, float] = DEFAULT_VARIANCES
) -> Tensor:
    """Invert :func:`encode_offsets`: ``(..., P, 4)`` offsets and ``(P, 4)`` priors -> ``(..., P, 4)`` cxcywh boxes.

    Log-size offsets are capped at log(1000/16) before ``exp`` so that no prediction decodes to inf.
    """
    centre = priors_cxcywh[..., :2] + offsets[..., :2] * variances[0] * priors_cxcywh[..., 2:]
    log_scale = (offsets[..., 2:] * variances[1]).clamp(max=_MAX_LOG_SCALE)
    size = priors_cxcywh[..., 2:] * torch.exp(log_scale)
    return torch.cat((centre, size), dim=-1)


def encode_landmarks(
    landmarks: Tensor, priors_cxcywh: Tensor, variances: tuple[float, float] = DEFAULT_VARIANCES
) -> Tensor:
    """Encode points as offsets from their priors' centres (RetinaFace's ``encode_landm``, as SSD's centres).

    ``g_x = (x - p_cx) / (p_w * v0)``, ``g_y = (y - p_cy) / (p_h * v0)`` for each point.

    Args:
        landmarks: ``(..., P, L, 2)`` normalised points, one set per prior (NaN stays NaN).
        priors_cxcywh: ``(P, 4)`` priors.

    Returns:
        ``(..., P, 2L)`` offsets, ``x1, y1, x2, y2, ...``.
    """
    prior_c = priors_cxcywh[..., None, :2]  # (P, 1, 2)
    prior_wh = priors_cxcywh[..., None, 2:].clamp(min=_EPS)
    offsets = (landmarks - prior_c) / (prior_wh * variances[0])
    return offsets.flatten(-2)


def decode_landmarks(
    offsets: Tensor, priors_cxcywh: Tensor, variances: tuple[float, float] = DEFAULT_VARIANCES
) -> Tensor:
    """Invert :func:`encode_landmarks`: ``(..., P, 2L)`` offsets and ``(P, 4)`` priors -> ``(..., P, L, 2)`` points."""
    points = offsets.unflatten(-1, (-1, 2))  # (..., P, L, 2)
    return priors_cxcywh[..., None, :2] + points * variances[0] * priors_cxcywh[..., None, 2:]


def pairwise_iou_xyxy_numpy(boxes_xyxy: np.ndarray, other_xyxy: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """``(N, M)`` IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes in numpy (float64), for the numpy runtimes' box voting
    and the evaluators. ``plus_one``: the VOC devkit's pixel-inclusive sizes (``x2 - x1 + 1``)."""
    one = 1.0 if plus_one else 0.0
    a = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    b = np.asarray(other_xyxy, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + one
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + one
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
