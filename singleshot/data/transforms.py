"""SSD training augmentation, box-aware and vectorised.

Every step takes and returns the same four arrays, in the pixels of the image it returns:

* ``image``      -- ``(H, W, 3)`` uint8 **RGB**;
* ``boxes_xyxy`` -- ``(K, 4)`` float32 ``(x1, y1, x2, y2)`` absolute pixels (continuous coordinates: the image
  spans ``[0, W] x [0, H]``, so pixel ``i`` covers ``[i, i + 1)``), or ``(K, 4 + 2L)`` with each box's L landmarks
  after it as ``x, y`` pairs (NaN where unknown): every geometric step moves the points with the image, crops
  clip the boxes but not the points, and the flip also swaps left and right points (:data:`FLIP_ORDER`);
* ``labels``     -- ``(K,)`` int64;
* ``ignore``     -- ``(K,)`` bool;

and the random ones draw everything from an ``rng: np.random.Generator``, so a seed reproduces a sample exactly.
K may be 0. :class:`SSDAugmentation` chains the steps and ends with :func:`to_network_input`, which returns an
:class:`AugmentedSample`: a normalised ``(3, H, W)`` float32 tensor and boxes normalised to ``[0, 1]`` of the
network input. Evaluation and inference do not come through here: they resize keeping the aspect ratio and pad
in :mod:`singleshot.inference` (:func:`~singleshot.inference.resize_keep_aspect`), which maps detections back to
the original image itself.

The training recipe is the SSD paper's (Liu et al. 2016, section 2.2 "Data augmentation" and section 3.6
"Data augmentation for small object accuracy") with the parameters of the authors' Caffe code as carried over
by the PyTorch SSD tutorial (sgrvinod/a-PyTorch-Tutorial-to-Object-Detection, ``utils.py``: ``transform``,
``photometric_distort``, ``expand``, ``random_crop``, ``flip``, ``resize``) and ssd.pytorch
(``utils/augmentations.py``). Where this module departs from them it says so, and why.

Speed: training runs on a 2-core CPU, so the image stays uint8 until the final normalisation, brightness and
contrast are single saturating uint8 passes, saturation and hue share one uint8 HSV round trip and one lookup
table (``cv2.LUT``), crops are views, and the flip is done after the resize, on the (small) network-sized image.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from singleshot.boxes import pairwise_iou_xyxy

#: ImageNet RGB mean and standard deviation in 0-255 pixel units: the statistics the torchvision-style
#: ImageNet backbones were trained with (the tutorial's ``[0.485, 0.456, 0.406]`` / ``[0.229, 0.224, 0.225]``
#: times 255). The mean is also the zoom-out fill, so that filled pixels normalise to about 0.
IMAGENET_MEAN_RGB: tuple[float, float, float] = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB: tuple[float, float, float] = (58.395, 57.12, 57.375)

#: Minimum-IoU choices of the random crop, drawn uniformly. SSD paper 2.2: "use the entire original input
#: image" (``None``), "sample a patch so that the minimum jaccard overlap with the objects is 0.1, 0.3, 0.5, 0.7
#: or 0.9", or "randomly sample a patch" (``0.0``: any patch that keeps an object centre). The tutorial's
#: ``random_crop`` draws from exactly these seven; ssd.pytorch's ``RandomSampleCrop`` omits 0.5.
CROP_MIN_IOU_CHOICES: tuple[float | None, ...] = (None, 0.0, 0.1, 0.3, 0.5, 0.7, 0.9)

#: The tutorial re-draws the IoU choice until a crop succeeds (``while True``); it ends because ``None`` (no
#: crop) is one of the choices. Without ``None`` among the choices and with unreachable IoUs it would spin
#: forever, so after this many draws the image is returned uncropped.
_MAX_CROP_ROUNDS = 100

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""``(image, boxes_xyxy, labels, ignore)`` as described in the module docstring."""

#: Landmark order after a horizontal flip: the left eye becomes the right one, the left mouth corner the right one
#: (five face points: left eye, right eye, nose, left mouth corner, right mouth corner).
FLIP_ORDER = (1, 0, 2, 4, 3)


def _pairs(values: tuple[float, float], columns: int) -> np.ndarray:
    """``(x, y)`` repeated over ``columns`` box-and-point columns (all of them coordinate pairs)."""
    return np.tile(np.asarray(values, np.float32), columns // 2)


def _shift(boxes: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Boxes (and their points) moved by ``(dx, dy)`` pixels."""
    return boxes + _pairs((dx, dy), boxes.shape[1])


def _scale(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Boxes (and their points) scaled by ``(sx, sy)``."""
    return boxes * _pairs((sx, sy), boxes.shape[1])


def _clip_boxes(boxes: np.ndarray, x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    """A copy with the box columns clipped to ``[x1, x2] x [y1, y2]``; points are left where they are."""
    out = boxes.copy()
    out[:, :4] = np.clip(out[:, :4], np.array([x1, y1, x1, y1], np.float32), np.array([x2, y2, x2, y2], np.float32))
    return out


def _centres(boxes: np.ndarray) -> np.ndarray:
    """``(K, 2)`` box centres."""
    return (boxes[:, :2] + boxes[:, 2:4]) / 2


def _centres_inside(boxes_xyxy: np.ndarray, windows_xyxy: np.ndarray) -> np.ndarray:
    """``(T, K)``: whether box k's centre lies strictly inside window t (``windows_xyxy`` ``(T, 4)``).

    Strictly: a kept box clipped to its window is then non-empty on both axes.
    """
    centres = _centres(boxes_xyxy)[None]  # (1, K, 2)
    windows = np.asarray(windows_xyxy)[:, None]  # (T, 1, 4)
    return ((centres > windows[..., :2]) & (centres < windows[..., 2:4])).all(axis=2)


# ----------------------------------------------------------------------------------------------------------------
# Output types
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class AugmentedSample:
    """One image ready for the network.

    Attributes:
        image: ``(3, H, W)`` float32, ``(pixel - mean_rgb) / std_rgb`` per RGB channel (uint8 pixels when the
            transform was made with ``normalize=False``).
        boxes_xyxy: ``(K', 4)`` float32 corner boxes **normalised** to ``[0, 1]`` (fractions of W and H), each
            with positive area.
        labels: ``(K',)`` int64, aligned with ``boxes_xyxy``.
        ignore: ``(K',)`` bool, aligned with ``boxes_xyxy``.
        landmarks: ``(K', L, 2)`` float32 points normalised like the boxes (NaN where unknown), when the input
            boxes carried points; else None.
    """

    image: Tensor
    boxes_xyxy: Tensor
    labels: Tensor
    ignore: Tensor
    landmarks: Tensor | None = None

    def __len__(self) -> int:
        return int(self.boxes_xyxy.shape[0])


# ----------------------------------------------------------------------------------------------------------------
# Checking and finishing
# ----------------------------------------------------------------------------------------------------------------


def as_arrays(
    image: np.ndarray,
    boxes_xyxy: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    ignore: np.ndarray | None = None,
) -> Arrays:
    """Check and convert inputs to the dtypes and shapes of the module contract.

    Boxes are clipped to the image and boxes left with no area are dropped (with their labels and flags), so
    that every later step may assume ``0 <= x1 < x2 <= W`` and ``0 <= y1 < y2 <= H``. Missing ``boxes_xyxy``
    means no boxes (inference); missing ``labels`` / ``ignore`` default to 1 / False.

    Raises:
        ValueError: the image is not ``(H, W, 3)`` uint8, or the per-box arrays differ in length.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an (H, W, 3) uint8 RGB array, got {got}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: {image.shape}")
    boxes = np.zeros((0, 4), np.float32) if boxes_xyxy is None else np.asarray(boxes_xyxy, np.float32)
    if boxes.ndim != 2 or boxes.shape[1] < 4 or boxes.shape[1] % 2:
        boxes = boxes.reshape(-1, 4)
    k = len(boxes)
    labels_arr = np.ones(k, np.int64) if labels is None else np.asarray(labels, np.int64).reshape(-1)
    ignore_arr = np.zeros(k, bool) if ignore is None else np.asarray(ignore, bool).reshape(-1)
    if len(labels_arr) != k or len(ignore_arr) != k:
        raise ValueError(f"{k} boxes but {len(labels_arr)} labels and {len(ignore_arr)} ignore flags")
    if k:
        h, w = image.shape[:2]
        boxes = _clip_boxes(boxes, 0, 0, w, h)  # a new array: the caller's is untouched
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # also False for NaN
        if not keep.all():
            boxes, labels_arr, ignore_arr = boxes[keep], labels_arr[keep], ignore_arr[keep]
    return image, boxes, labels_arr, ignore_arr


def normalize_image(
    image: np.ndarray, mean_rgb: Sequence[float] = IMAGENET_MEAN_RGB, std_rgb: Sequence[float] = IMAGENET_STD_RGB
) -> Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(3, H, W)`` float32 tensor ``(x - mean) / std``.

    The only float copy of the image in the pipeline: one strided uint8 -> float copy into a contiguous CHW
    tensor, then two in-place passes (measured ~3x faster than numpy ``astype`` + transpose at 640x640).
    """
    h, w = image.shape[:2]
    out = torch.empty((3, h, w), dtype=torch.float32)
    with warnings.catch_warnings():
        # A read-only input (a view of the memory-mapped image cache) is only read here, never written.
        warnings.simplefilter("ignore", UserWarning)
        source = torch.from_numpy(np.ascontiguousarray(image))
    out.copy_(source.permute(2, 0, 1))
    return _standardise_(out, mean_rgb, std_rgb)


def normalize_batch(
    images_uint8: Tensor, mean_rgb: Sequence[float] = IMAGENET_MEAN_RGB, std_rgb: Sequence[float] = IMAGENET_STD_RGB
) -> Tensor:
    """``(B, 3, H, W)`` uint8 RGB (on any device) -> float32 ``(x - mean) / std``.

    The same float operations as :func:`normalize_image` (both end in ``_standardise_``), so the result is
    bitwise the same; used where batches travel as uint8 (a quarter of the bytes) and are normalised where the
    network runs (training on a GPU).
    """
    return _standardise_(images_uint8.float(), mean_rgb, std_rgb)


def _standardise_(out: Tensor, mean_rgb: Sequence[float], std_rgb: Sequence[float]) -> Tensor:
    """In place on float32 ``(..., 3, H, W)``: subtract the mean, multiply by the reciprocal std (float64 in Python)."""
    out.sub_(torch.tensor(mean_rgb, dtype=torch.float32, device=out.device).view(3, 1, 1))
    out.mul_(torch.tensor([1.0 / s for s in std_rgb], dtype=torch.float32, device=out.device).view(3, 1, 1))
    return out


def to_network_input(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    labels: np.ndarray,
    ignore: np.ndarray,
    mean_rgb: Sequence[float] = IMAGENET_MEAN_RGB,
    std_rgb: Sequence[float] = IMAGENET_STD_RGB,
    normalize: bool = True,
) -> AugmentedSample:
    """Normalise the image and turn pixel boxes into ``[0, 1]`` fractions of its width and height.

    ``normalize=False`` keeps the image uint8 ``(3, H, W)`` (normalised later with :func:`normalize_batch`).
    Boxes are clipped to ``[0, 1]`` (float rounding of earlier steps may overshoot by an ulp) and any box left
    without area is dropped with its label and flag, so the output keeps the :class:`AugmentedSample` promise.
    """
    h, w = image.shape[:2]
    columns = boxes_xyxy.shape[1] if boxes_xyxy.ndim == 2 else 4
    scaled = _scale(boxes_xyxy.reshape(-1, columns), 1.0 / w, 1.0 / h)
    boxes = np.clip(scaled[:, :4], 0.0, 1.0)
    points = scaled[:, 4:].reshape(len(scaled), (columns - 4) // 2, 2) if columns > 4 else None
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if not keep.all():
        boxes, labels, ignore = boxes[keep], labels[keep], ignore[keep]
        points = points[keep] if points is not None else None
    return AugmentedSample(
        image=normalize_image(image, mean_rgb, std_rgb) if normalize
        else torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
        boxes_xyxy=torch.from_numpy(np.ascontiguousarray(boxes, np.float32)),
        labels=torch.from_numpy(np.ascontiguousarray(labels, np.int64)),
        ignore=torch.from_numpy(np.ascontiguousarray(ignore, bool)),
        landmarks=torch.from_numpy(np.ascontiguousarray(points, np.float32)) if points is not None else None,
    )


def _fill_uint8(fill_rgb: Sequence[float]) -> tuple[int, int, int]:
    """A 0-255 RGB colour rounded to the uint8 pixel it fills with."""
    r, g, b = (int(np.clip(round(float(c)), 0, 255)) for c in fill_rgb)
    return r, g, b


# ----------------------------------------------------------------------------------------------------------------
# Photometric distortions
# ----------------------------------------------------------------------------------------------------------------

_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = range(4)
_IDENTITY_LUT = np.arange(256, dtype=np.float32)


def random_canvas_rgb(rng: np.random.Generator) -> tuple[int, int, int]:
    """A canvas colour other than the mean: black, white, a random grey or a random colour, equally likely.

    Photos reach a detector on borders the training photos never show: letterboxed video (black), scans and
    pages (white), faces pasted on a plain canvas. With the mean as the only fill (SSD paper 3.6), a face on a
    black canvas is found less often than on a mid-grey one (docs/attributes.md, the canvas table).
    """
    kind = int(rng.integers(4))
    if kind == 0:
        return 0, 0, 0
    if kind == 1:
        return 255, 255, 255
    if kind == 2:
        grey = int(rng.integers(256))
        return grey, grey, grey
    r, g, b = (int(v) for v in rng.integers(0, 256, size=3))
    return r, g, b


def low_resolution(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    labels: np.ndarray,
    ignore: np.ndarray,
    rng: np.random.Generator,
    scale_range: tuple[float, float] = (0.2, 0.6),
    min_face_px: float = 16.0,
) -> Arrays:
    """Shrink the image by ``uniform(*scale_range)`` and enlarge it back: a small photo shown large.

    A small photo enlarged for display (a 64 px face crop shown at 320 px) carries a fifth of the detail its size
    suggests; cameras and downloads do the same to faces of any size. The factor is drawn no lower than
    ``min_face_px`` over the smallest face's short side, so no labelled face drops below ``min_face_px`` pixels
    at the low resolution (a face the network could not be asked to find); when even ``scale_range``'s top
    would, the image is returned as it is. Shrinking uses area averaging, enlarging bilinear or bicubic (equally
    likely: how photos are enlarged varies). Boxes do not move.
    """
    lo, hi = scale_range
    faces = ~ignore
    if faces.any():
        sides = np.minimum(boxes_xyxy[faces, 2] - boxes_xyxy[faces, 0], boxes_xyxy[faces, 3] - boxes_xyxy[faces, 1])
        lo = max(lo, min_face_px / max(float(sides.min()), 1e-3))
    if lo > hi:
        return image, boxes_xyxy, labels, ignore
    factor = rng.uniform(lo, hi)
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    enlarge = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
    return cv2.resize(small, (w, h), interpolation=enlarge), boxes_xyxy, labels, ignore


def _lut(values: np.ndarray) -> np.ndarray:
    """Float table of 256 values -> uint8 table (rounded, saturated as uint8 arithmetic would)."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def photometric_distort(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    labels: np.ndarray,
    ignore: np.ndarray,
    rng: np.random.Generator,
    p: float = 0.5,
    brightness_range: tuple[float, float] = (0.5, 1.5),
    contrast_range: tuple[float, float] = (0.5, 1.5),
    saturation_range: tuple[float, float] = (0.5, 1.5),
    hue_delta_deg: float = 18.0,
) -> Arrays:
    """Brightness, contrast, saturation and hue distortions, each with probability ``p``, in random order.

    The tutorial's ``photometric_distort`` (itself after the Caffe SSD recipe): a random order of the four
    distortions, each applied with probability 0.5, with

    * brightness: multiply by ``uniform(0.5, 1.5)`` (the tutorial's factor, as torchvision/PIL; ssd.pytorch
      instead adds ``uniform(-32, 32)``);
    * contrast: blend with the image's mean grey level, factor ``uniform(0.5, 1.5)`` (PIL ``Contrast``);
    * saturation: scale HSV saturation by ``uniform(0.5, 1.5)`` (ssd.pytorch ``RandomSaturation``);
    * hue: rotate the hue by ``uniform(-18, 18)`` degrees (ssd.pytorch ``RandomHue``, delta 18 on a 0-360
      hue; the tutorial passes 18/255 of a turn to torchvision, i.e. about +-25 degrees).

    Brightness and contrast are affine per-value maps ``saturate(round(a * x + b))``, each one uint8
    ``cv2.addWeighted`` pass: the same result as a 256-entry ``cv2.LUT`` (up to float32 rounding of ties) but
    SIMD, measured 0.22 ms against 0.55 ms for ``cv2.LUT`` on a 612x408 image, one thread. Saturation and hue
    commute (they touch different HSV channels), so when both are drawn they are applied together, at the
    place of the first of them in the order, in one uint8 HSV round trip and one 3-channel LUT: a brightness
    or contrast step drawn between them moves after both, a negligible change to the distribution that
    halves the colour conversions. ``HSV_FULL`` (hue in 0-255 rather than OpenCV's 0-179) keeps a finer hue
    step (1.4 degrees) and makes the hue rotation a plain modulo-256 table.

    Boxes, labels and ignore flags are returned unchanged (the same objects); the input image is never
    modified in place.
    """
    order = rng.permutation(4)
    applied = rng.random(4) < p
    u = rng.random(4)  # one uniform draw per distortion, used only if it is applied
    factor = {
        _BRIGHTNESS: brightness_range[0] + u[_BRIGHTNESS] * (brightness_range[1] - brightness_range[0]),
        _CONTRAST: contrast_range[0] + u[_CONTRAST] * (contrast_range[1] - contrast_range[0]),
        _SATURATION: saturation_range[0] + u[_SATURATION] * (saturation_range[1] - saturation_range[0]),
        _HUE: (2.0 * u[_HUE] - 1.0) * hue_delta_deg,
    }
    out = image
    hsv_done = False
    for op in order:
        if not applied[op]:
            continue
        if op == _BRIGHTNESS:
            out = cv2.addWeighted(out, factor[op], out, 0.0, 0.0)
        elif op == _CONTRAST:
            # Blend towards the mean grey level (PIL's Contrast: mean of the "L" image, ITU-R 601 luma). The
            # grey image's mean over a flat view is ~2x faster than cv2.mean's per-channel means of the RGB image.
            grey = cv2.mean(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).reshape(-1))[0]
            out = cv2.addWeighted(out, factor[op], out, 0.0, (1.0 - factor[op]) * grey)
        elif not hsv_done:
            hsv_done = True
            hue_table = _IDENTITY_LUT
            sat_table = _IDENTITY_LUT
            if applied[_HUE]:
                hue_table = np.mod(np.rint(_IDENTITY_LUT + factor[_HUE] * (256.0 / 360.0)), 256.0)
            if applied[_SATURATION]:
                sat_table = _IDENTITY_LUT * factor[_SATURATION]
            table = np.stack([_lut(hue_table), _lut(sat_table), _lut(_IDENTITY_LUT)], axis=-1)  # (256, 3)
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV_FULL)
            out = cv2.cvtColor(cv2.LUT(hsv, table.reshape(256, 1, 3)), cv2.COLOR_HSV2RGB_FULL)
    return out, boxes_xyxy, labels, ignore


# ----------------------------------------------------------------------------------------------------------------
# Geometric steps
# ----------------------------------------------------------------------------------------------------------------


def zoom_out(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    labels: np.ndarray,
    ignore: np.ndarray,
    rng: np.random.Generator,
    max_zoom_out: float = 4.0,
    fill_rgb: Sequence[float] = IMAGENET_MEAN_RGB,
) -> Arrays:
    """Place the image at a random position on a canvas ``uniform(1, max_zoom_out)`` times larger, filled with
    ``fill_rgb``.

    SSD paper 3.6 ("zoom out" for small objects: "randomly place an image on a canvas of 16x of the original
    image size filled with mean values", i.e. up to 4x per side); the tutorial's ``expand``: canvas side
    ``int(factor * side)``, top-left offset uniform over the integer positions that keep the image inside.
    Boxes keep their size and move by the offset. Always zooms; the caller decides the probability (0.5).
    """
    h, w = image.shape[:2]
    factor = rng.uniform(1.0, max_zoom_out)
    new_h, new_w = int(factor * h), int(factor * w)
    left = int(rng.integers(0, new_w - w + 1))
    top = int(rng.integers(0, new_h - h + 1))
    # copyMakeBorder writes every canvas pixel once (no fill-then-paste).
    canvas = cv2.copyMakeBorder(
        image, top, new_h - h - top, left, new_w - w - left, cv2.BORDER_CONSTANT, value=_fill_uint8(fill_rgb)
    )
    return canvas, _shift(boxes_xyxy, left, top), labels, ignore


def random_min_iou_crop(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    labels: np.ndarray,
    ignore: np.ndarray,
    rng: np.random.Generator,
    min_iou_choices: Sequence[float | None] = CROP_MIN_IOU_CHOICES,
    min_scale: float = 0.3,
    aspect_ratio_range: tuple[float, float] = (0.5, 2.0),
    max_trials: int = 50,
) -> Arrays:
    """SSD's random crop ("zoom in"), SSD paper 2.2, with the parameters of the tutorial's ``random_crop``.

    Draw a minimum IoU from ``min_iou_choices`` (``None``: return the image uncropped). Then up to
    ``max_trials`` (50, the Caffe code's number) crops, each side ``int(uniform(min_scale, 1) * side)``
    independently (0.3: the authors' code, where the paper says 0.1), are tried: a crop is accepted if its
    height / width ratio lies strictly inside ``aspect_ratio_range`` (1/2 to 2, paper), some box has IoU with it
    of at least the drawn minimum, and some box centre lies strictly inside it. If no trial succeeds, draw a
    new minimum IoU and try again, as the tutorial does.

    The crop keeps the boxes whose centre lies inside it (paper: "we keep the overlapped part of the ground
    truth box if the center of it is in the sampled patch"), clipped to the crop; the others are dropped with
    their labels and ignore flags. Ignored boxes count like any other in the tests above (as the tutorial's
    "difficult" objects do), so an image whose only boxes are ignored is still cropped around them.

    With K = 0 the box tests are void and any crop of an acceptable shape is taken (the paper's "randomly
    sample a patch"): negative images get zoomed in too.

    The ``max_trials`` candidates are drawn and tested at once (one ``(T, K)`` IoU matrix) and the first that
    passes is taken: the same distribution as the tutorial's loop, without a Python loop per trial.

    Returns the crop as a view of ``image`` (no copy: the resize that follows reads it directly).
    """
    h, w = image.shape[:2]
    k = len(boxes_xyxy)
    if k:
        boxes_t = torch.from_numpy(np.ascontiguousarray(boxes_xyxy[:, :4], np.float32))
    for _ in range(_MAX_CROP_ROUNDS):
        min_iou = min_iou_choices[int(rng.integers(len(min_iou_choices)))]
        if min_iou is None:
            break
        scale = rng.uniform(min_scale, 1.0, size=(max_trials, 2))  # (T, 2): height and width fractions
        crop_h = np.maximum((scale[:, 0] * h).astype(np.int64), 1)  # (T,)
        crop_w = np.maximum((scale[:, 1] * w).astype(np.int64), 1)
        aspect = crop_h / crop_w
        ok = (aspect > aspect_ratio_range[0]) & (aspect < aspect_ratio_range[1])  # (T,)
        left = rng.integers(0, w - crop_w + 1)  # (T,) integer pixel offsets, as the tutorial
        top = rng.integers(0, h - crop_h + 1)
        crops = np.stack([left, top, left + crop_w, top + crop_h], axis=1)  # (T, 4) xyxy
        if k:
            iou = pairwise_iou_xyxy(torch.from_numpy(crops.astype(np.float32)), boxes_t).numpy()  # (T, K)
            ok &= iou.max(axis=1) >= min_iou
            inside = _centres_inside(boxes_xyxy, crops)  # (T, K)
            ok &= inside.any(axis=1)
        passed = np.flatnonzero(ok)
        if passed.size == 0:
            continue
        t = int(passed[0])
        x1, y1, x2, y2 = (int(v) for v in crops[t])
        cropped = image[y1:y2, x1:x2]
        if not k:
            return cropped, boxes_xyxy, labels, ignore
        keep = inside[t]
        # A centre strictly inside the crop keeps the clipped box non-empty on both axes.
        boxes = _shift(_clip_boxes(boxes_xyxy[keep], x1, y1, x2, y2), -x1, -y1)
        return cropped, boxes, labels[keep], ignore[keep]
    return image, boxes_xyxy, labels, ignore


def random_square_crop(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    labels: np.ndarray,
    ignore: np.ndarray,
    rng: np.random.Generator,
    scale_range: tuple[float, float] = (0.3, 2.0),
    max_trials: int = 50,
    fill_rgb: Sequence[float] = IMAGENET_MEAN_RGB,
) -> Arrays:
    """A square crop whose side is ``uniform(*scale_range)`` times the image's short side, the face detectors' crop.

    RetinaFace crops squares of 0.3-1 of the short side; SCRFD goes up to 2.0, the part outside the image filled
    with the mean, "more positives for stride 8" (SCRFD paper, section 4.1). Square, so the resize to a square
    input does not stretch faces (inference keeps the aspect ratio), and the scale range spreads face sizes
    around those met at inference. A crop must hold the centre of some box (any crop when there are none); up to
    ``max_trials`` are drawn at once and the first valid one is taken; if none is valid the whole image is padded
    to a square. Boxes whose centre lies inside are kept, clipped to the crop; the others are dropped.
    """
    h, w = image.shape[:2]
    short = min(h, w)
    k = len(boxes_xyxy)
    side = np.maximum((rng.uniform(*scale_range, size=max_trials) * short).astype(np.int64), 1)  # (T,)
    # offsets: the crop inside the image when it fits, the image inside the crop when it does not
    left = np.where(side <= w, rng.integers(0, np.maximum(w - side, 0) + 1), -rng.integers(0, np.maximum(side - w, 0) + 1))
    top = np.where(side <= h, rng.integers(0, np.maximum(h - side, 0) + 1), -rng.integers(0, np.maximum(side - h, 0) + 1))
    t = 0
    if k:
        inside = _centres_inside(boxes_xyxy, np.stack([left, top, left + side, top + side], axis=1))  # (T, K)
        passed = np.flatnonzero(inside.any(axis=1))
        if passed.size == 0:
            side_t, left_t, top_t = max(h, w), 0, 0
            keep = np.ones(k, bool)
        else:
            t = int(passed[0])
            side_t, left_t, top_t = int(side[t]), int(left[t]), int(top[t])
            keep = inside[t]
    else:
        side_t, left_t, top_t = int(side[0]), int(left[0]), int(top[0])
    return _cut_square(image, boxes_xyxy, labels, ignore, left_t, top_t, side_t, fill_rgb, keep if k else None)


def _cut_square(image: np.ndarray, boxes_xyxy: np.ndarray, labels: np.ndarray, ignore: np.ndarray, left: int,
                top: int, side: int, fill_rgb: Sequence[float], keep: np.ndarray | None) -> Arrays:
    """The ``side`` square at ``(left, top)`` (the part outside the image filled with ``fill_rgb``), with the boxes
    ``keep`` selects clipped to it and moved into its frame (None: no boxes)."""
    h, w = image.shape[:2]
    x1, y1 = max(left, 0), max(top, 0)
    x2, y2 = min(left + side, w), min(top + side, h)
    if left >= 0 and top >= 0 and left + side <= w and top + side <= h:
        cropped = image[y1:y2, x1:x2]  # a view: the resize that follows reads it directly
    else:
        cropped = np.empty((side, side, 3), np.uint8)
        cropped[:] = _fill_uint8(fill_rgb)
        cropped[y1 - top : y2 - top, x1 - left : x2 - left] = image[y1:y2, x1:x2]
    if keep is None:
        return cropped, boxes_xyxy, labels, ignore
    boxes = _shift(_clip_boxes(boxes_xyxy[keep], x1, y1, x2, y2), -left, -top)
    return cropped, boxes, labels[keep], ignore[keep]


def face_crop(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    labels: np.ndarray,
    ignore: np.ndarray,
    rng: np.random.Generator,
    cut_range: tuple[float, float] = (1.0, 1.6),
    min_face_px: float = 32.0,
    fill_rgb: Sequence[float] = IMAGENET_MEAN_RGB,
    around_face: bool = True,
) -> Arrays:
    """A square cut around one labelled face, ``uniform(*cut_range)`` times its box's long side: the photo a face
    crop dataset holds (GENKI-4K's Haar crops, LFW's 64 px crops), which :class:`SSDAugmentation` then places on a
    plain canvas. Web photos never show a face whose photo ends at its chin and brow, and a detector trained on them
    alone misses such faces (docs/model_card.md, "Face crops on a canvas").

    The face is drawn among those of long side ``min_face_px`` or more (none: the sample is returned as it is) and
    placed at random inside the cut. A cut below the face's size goes through it and its box is clipped (the
    default range does not: such boxes of face parts made a detector report more parts of large faces). The
    part of the cut outside the photo is filled with ``fill_rgb``; other boxes whose centre lies inside are kept,
    clipped. ``around_face=False``: a cut of the same size anywhere in the photo (mostly no face: a neck, a shirt,
    a wall, as a face crop dataset's failed crops are), so that a small photo on a canvas is not a face by itself.
    """
    sides = np.maximum(boxes_xyxy[:, 2] - boxes_xyxy[:, 0], boxes_xyxy[:, 3] - boxes_xyxy[:, 1])
    candidates = np.flatnonzero(~ignore & (sides >= min_face_px))
    if not candidates.size:
        return image, boxes_xyxy, labels, ignore
    k = int(rng.choice(candidates))
    side = max(round(float(sides[k]) * rng.uniform(*cut_range)), 1)
    if around_face:
        box = boxes_xyxy[k, :4].astype(np.float64)
        slack = np.maximum(side - (box[2:] - box[:2]), 0.0) / 2  # how far the face can move and stay inside the cut
        centre = (box[:2] + box[2:]) / 2 + rng.uniform(-1.0, 1.0, size=2) * slack
        left, top = (round(float(c) - side / 2) for c in centre)
    else:
        h, w = image.shape[:2]
        left, top = (int(rng.integers(0, max(n - side, 0) + 1)) for n in (w, h))
    keep = _centres_inside(boxes_xyxy, np.array([[left, top, left + side, top + side]]))[0]  # (K,)
    keep[k] |= around_face
    return _cut_square(image, boxes_xyxy, labels, ignore, left, top, side, fill_rgb, keep)


def data_anchor_sample(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    labels: np.ndarray,
    ignore: np.ndarray,
    rng: np.random.Generator,
    anchor_sizes: Sequence[float],
    out_size: tuple[int, int],
    fill_rgb: Sequence[float] = IMAGENET_MEAN_RGB,
) -> tuple[Arrays, dict] | None:
    """Data-anchor sampling (PyramidBox, section 3.3; DSFD's improved anchor matching, section 3.4).

    Pick a face (not an ignored one) of size ``s = sqrt(w * h)``; find the anchor size nearest to it, index
    ``i``; choose a target anchor ``j`` uniformly from ``0 .. min(i + 1, last)`` (so small anchors get more faces);
    draw a target size uniformly in ``[a_j / 2, 2 a_j]`` (capped at the input's short side); rescale the image by
    ``target / s`` and cut an ``out_size`` window holding that face (mean-filled outside the image). Done as one
    crop-then-resize of the matching window of the original, never a resize of the whole image.

    Args:
        anchor_sizes: the model's prior sizes in input pixels.
        out_size: ``(H, W)`` of the result (the network input).

    Returns:
        ``((image (H, W, 3), boxes, labels, ignore), info)`` with ``info`` = ``{"face": index, "anchor": a_j,
        "target": size}``; None when there is no face to pick (the caller uses another crop).
    """
    candidates = np.flatnonzero(~ignore) if len(ignore) else np.zeros(0, int)
    if not candidates.size:
        return None
    anchors = np.sort(np.asarray(anchor_sizes, np.float64))
    j_face = int(candidates[rng.integers(candidates.size)])
    x1, y1, x2, y2 = (float(v) for v in boxes_xyxy[j_face, :4])
    size = math.sqrt(max(x2 - x1, 1e-3) * max(y2 - y1, 1e-3))
    nearest = int(np.argmin(np.abs(anchors - size)))
    target_index = int(rng.integers(0, min(nearest + 1, len(anchors) - 1) + 1))
    anchor = float(anchors[target_index])
    out_h, out_w = out_size
    target = min(rng.uniform(anchor / 2, anchor * 2), float(min(out_h, out_w)))
    ratio = target / size
    # the window in original pixels, placed at random so that the chosen face lies inside it (centred if larger)
    win_w, win_h = out_w / ratio, out_h / ratio

    def place(lo: float, hi: float, win: float) -> float:
        free = win - (hi - lo)
        return lo - (rng.uniform(0, free) if free > 0 else free / 2)
    left, top = place(x1, x2, win_w), place(y1, y2, win_h)
    matrix = np.array([[ratio, 0, -left * ratio], [0, ratio, -top * ratio]])
    interpolation = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    out = cv2.warpAffine(image, matrix, (out_w, out_h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=_fill_uint8(fill_rgb))
    keep = _centres_inside(boxes_xyxy, np.array([[left, top, left + win_w, top + win_h]]))[0]  # (K,)
    keep[j_face] = True
    boxes = _scale(_shift(boxes_xyxy[keep], -left, -top), ratio, ratio)
    boxes = _clip_boxes(boxes, 0, 0, out_w, out_h).astype(np.float32)
    ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    kept_sources = np.flatnonzero(keep)[ok]  # original index of each output box
    where = np.flatnonzero(kept_sources == j_face)
    info = {"face": int(where[0]) if where.size else -1, "anchor": anchor, "target": target}
    return (out, boxes[ok], labels[keep][ok], ignore[keep][ok]), info


def horizontal_flip(image: np.ndarray, boxes_xyxy: np.ndarray, labels: np.ndarray, ignore: np.ndarray) -> Arrays:
    """Mirror the image left-right; a box ``[x1, x2]`` becomes ``[W - x2, W - x1]``.

    Continuous coordinates (as ssd.pytorch's ``RandomMirror``): the tutorial's ``W - x - 1`` treats
    coordinates as pixel indices and shifts every box one pixel left. Always flips; the caller decides the
    probability (0.5, tutorial and paper).
    """
    w = image.shape[1]
    boxes = boxes_xyxy.copy()
    boxes[:, 0] = w - boxes_xyxy[:, 2]
    boxes[:, 2] = w - boxes_xyxy[:, 0]
    if boxes.shape[1] > 4:  # points: mirrored, and left and right swapped (the left eye is now on the right)
        points = boxes[:, 4:].reshape(len(boxes), (boxes.shape[1] - 4) // 2, 2)
        points[..., 0] = w - points[..., 0]
        if points.shape[1] == len(FLIP_ORDER):
            points = points[:, FLIP_ORDER]
        boxes[:, 4:] = points.reshape(len(boxes), boxes.shape[1] - 4)
    return cv2.flip(image, 1), boxes, labels, ignore


def rotate90(image: np.ndarray, boxes_xyxy: np.ndarray, labels: np.ndarray, ignore: np.ndarray, turns: int) -> Arrays:
    """Rotate the image by ``turns`` quarter turns counter-clockwise (1, 2 or 3); boxes and their points follow.

    A point ``(x, y)`` of a ``W x H`` image goes to ``(y, W - x)`` after one turn, ``(W - x, H - y)`` after two and
    ``(H - y, x)`` after three (continuous coordinates, as :func:`horizontal_flip`). Points keep their order: after
    a turn, "left eye" names the same eye, no longer the one with the smaller x.
    """
    turns = int(turns) % 4
    if turns == 0:
        return image, boxes_xyxy, labels, ignore
    h, w = image.shape[:2]
    xs, ys = boxes_xyxy[:, 0::2].copy(), boxes_xyxy[:, 1::2].copy()  # x1, x2, (px...) and y1, y2, (py...)
    if turns == 1:
        new_x, new_y, code = ys, w - xs, cv2.ROTATE_90_COUNTERCLOCKWISE
    elif turns == 2:
        new_x, new_y, code = w - xs, h - ys, cv2.ROTATE_180
    else:
        new_x, new_y, code = h - ys, xs, cv2.ROTATE_90_CLOCKWISE
    boxes = np.empty_like(boxes_xyxy)
    boxes[:, 0::2], boxes[:, 1::2] = new_x, new_y
    # the corners moved: the box is again (min x, min y, max x, max y)
    x1, x2 = np.minimum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 0], boxes[:, 2])
    y1, y2 = np.minimum(boxes[:, 1], boxes[:, 3]), np.maximum(boxes[:, 1], boxes[:, 3])
    boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3] = x1, y1, x2, y2
    return np.ascontiguousarray(cv2.rotate(image, code)), boxes, labels, ignore


def resize(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    labels: np.ndarray,
    ignore: np.ndarray,
    size: tuple[int, int],
    interpolation: int = cv2.INTER_LINEAR,
) -> Arrays:
    """Resize to ``size = (H, W)`` (aspect ratio not kept, as the tutorial's ``resize`` for SSD300); boxes are
    scaled with the image and stay in (output) pixels."""
    h, w = image.shape[:2]
    out_h, out_w = size
    out = image if (h, w) == (out_h, out_w) else cv2.resize(image, (out_w, out_h), interpolation=interpolation)
    return out, _scale(boxes_xyxy, out_w / w, out_h / h), labels, ignore


# ----------------------------------------------------------------------------------------------------------------
# Pipelines
# ----------------------------------------------------------------------------------------------------------------


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise ValueError(f"size must be (H, W) positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _check_normalisation(
    mean_rgb: Sequence[float], std_rgb: Sequence[float]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean = tuple(float(m) for m in mean_rgb)
    std = tuple(float(s) for s in std_rgb)
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean_rgb and std_rgb must be 3 values, std > 0; got {mean_rgb}, {std_rgb}")
    return mean, std


def _check_probability(name: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {p}")
    return float(p)


def _check_range(name: str, lo_hi: tuple[float, float], lowest: float) -> tuple[float, float]:
    lo, hi = lo_hi
    if not lowest <= lo <= hi:
        raise ValueError(f"{name} must be ({lowest} <=) low <= high, got {lo_hi}")
    return float(lo), float(hi)


class SSDAugmentation:
    """SSD training augmentation: photometric distortions, zoom out, min-IoU crop, flip, resize, normalise.

    The order of the tutorial's ``transform`` (after SSD paper 2.2 and 3.6):

    1. :func:`photometric_distort` (each distortion with probability ``photometric_prob``, random order);
    2. :func:`zoom_out` with probability ``zoom_out_prob`` by ``uniform(1, max_zoom_out)``, filled with
       ``mean_rgb``;
    3. :func:`random_min_iou_crop` (``crop=False`` skips it);
    4. :func:`resize` to ``size`` (``cv2.INTER_LINEAR``);
    5. :func:`horizontal_flip` with probability ``flip_prob`` -- after the resize, unlike the tutorial: flip
       and resize commute, and the resized image is usually far smaller than a zoomed-out canvas;
       :func:`rotate90` (1-3 quarter turns) with probability ``rotate90_prob``, before the resize;
    6. :func:`to_network_input`: ``(x - mean_rgb) / std_rgb`` and boxes normalised to ``[0, 1]``.

    Input boxes are first clipped to the image and empty ones dropped (:func:`as_arrays`).

    Args:
        size: ``(H, W)`` of the network input.
        mean_rgb: 0-255 RGB mean: normalisation and zoom-out fill.
        std_rgb: 0-255 RGB standard deviation.
        photometric_prob: probability of each photometric distortion (0 turns them off).
        brightness_range, contrast_range, saturation_range: factor ranges (tutorial: 0.5 to 1.5).
        hue_delta_deg: hue rotation range in degrees, ``uniform(-d, d)`` (ssd.pytorch: 18).
        zoom_out_prob: probability of zooming out (tutorial: 0.5; 0 turns it off).
        max_zoom_out: largest zoom-out factor per side (paper 3.6: 16x area, i.e. 4).
        crop: apply the min-IoU random crop.
        crop_min_ious: the minimum-IoU choices (:data:`CROP_MIN_IOU_CHOICES`).
        crop_min_scale: smallest crop side as a fraction of the image side (authors' code: 0.3).
        crop_aspect_ratio_range: allowed crop height / width (paper: 1/2 to 2).
        crop_max_trials: crops tried per IoU choice (Caffe: 50).
        crop_mode: ``min_iou`` (SSD's crop, :func:`random_min_iou_crop`) or ``square`` (the face detectors'
            square crop of :func:`random_square_crop`, sides ``square_crop_scale`` times the short side).
        square_crop_scale: the side range of the square crop, in short sides (SCRFD: 0.3 to 2.0).
        data_anchor_prob: probability of :func:`data_anchor_sample` instead of zoom-out and crop (DSFD: 0.6);
            needs ``anchor_sizes``, the model's prior sizes in input pixels.
        flip_prob: probability of a horizontal flip (0.5).
        grayscale_prob: probability of turning the crop grey (luma in all three channels): photos in black and
            white or from grey cameras, which colour jitter alone never shows (0: off, and no draw is made, so
            earlier recipes keep their random streams).
        rotate90_prob: probability of 1, 2 or 3 quarter turns (equally likely) of the crop: for sets whose photos
            come in any orientation (a camera on its side, photos stored rotated, as in the SHWD subset); 0: off,
            no draw made.
        canvas_fill_prob: probability that the canvas outside the photo (zoom-out, a square crop larger than the
            photo, data-anchor windows) is filled with :func:`random_canvas_rgb` instead of ``mean_rgb``; 0: off,
            no draw made.
        blank_prob: probability that the photo is replaced by a blank frame of its size in one
            :func:`random_canvas_rgb` colour, with no face: a detector taught that faces sit beside plain canvases
            must also learn that a plain frame (a covered camera, a black video frame) holds none. Teaches only with
            the loss's ``min_negatives_per_image`` > 0 (no face, no hard negatives otherwise); 0: off, no draw made.
        lowres_prob: probability of :func:`low_resolution` on the resized crop (``lowres_scale`` its factor
            range); 0: off, no draw made.
        face_crop_prob: probability of :func:`face_crop` (cut ``face_crop_scale`` times a face's side) placed on a
            canvas up to ``face_crop_canvas`` times its side (:func:`zoom_out`, in the canvas colour drawn above),
            instead of data-anchor sampling, zoom-out and the crop: a face crop shown in a photo; 0: off, no draw
            made. ``face_crop_negative`` of those cuts are of the same size anywhere in the photo, mostly without
            a face (teaches with ``min_negatives_per_image`` > 0).
        interpolation: OpenCV interpolation of the resize.
        normalize: False: return the image uint8 (a quarter of the bytes between processes and to a GPU), for
            :func:`normalize_batch` where the network runs.
    """

    def __init__(
        self,
        size: tuple[int, int] = (300, 300),
        mean_rgb: tuple[float, float, float] = IMAGENET_MEAN_RGB,
        std_rgb: tuple[float, float, float] = IMAGENET_STD_RGB,
        *,
        photometric_prob: float = 0.5,
        brightness_range: tuple[float, float] = (0.5, 1.5),
        contrast_range: tuple[float, float] = (0.5, 1.5),
        saturation_range: tuple[float, float] = (0.5, 1.5),
        hue_delta_deg: float = 18.0,
        zoom_out_prob: float = 0.5,
        max_zoom_out: float = 4.0,
        crop: bool = True,
        crop_min_ious: Sequence[float | None] = CROP_MIN_IOU_CHOICES,
        crop_min_scale: float = 0.3,
        crop_aspect_ratio_range: tuple[float, float] = (0.5, 2.0),
        crop_max_trials: int = 50,
        crop_mode: str = "min_iou",
        square_crop_scale: tuple[float, float] = (0.3, 2.0),
        data_anchor_prob: float = 0.0,
        anchor_sizes: Sequence[float] = (),
        flip_prob: float = 0.5,
        grayscale_prob: float = 0.0,
        rotate90_prob: float = 0.0,
        canvas_fill_prob: float = 0.0,
        blank_prob: float = 0.0,
        lowres_prob: float = 0.0,
        lowres_scale: tuple[float, float] = (0.2, 0.6),
        face_crop_prob: float = 0.0,
        face_crop_scale: tuple[float, float] = (1.0, 1.6),
        face_crop_canvas: float = 3.0,
        face_crop_negative: float = 0.0,
        interpolation: int = cv2.INTER_LINEAR,
        normalize: bool = True,
    ) -> None:
        self.size = _check_size(size)
        self.mean_rgb, self.std_rgb = _check_normalisation(mean_rgb, std_rgb)
        self.normalize = bool(normalize)
        self.photometric_prob = _check_probability("photometric_prob", photometric_prob)
        self.brightness_range = _check_range("brightness_range", brightness_range, 0.0)
        self.contrast_range = _check_range("contrast_range", contrast_range, 0.0)
        self.saturation_range = _check_range("saturation_range", saturation_range, 0.0)
        if not 0.0 <= hue_delta_deg <= 180.0:
            raise ValueError(f"hue_delta_deg must be in [0, 180], got {hue_delta_deg}")
        self.hue_delta_deg = float(hue_delta_deg)
        self.zoom_out_prob = _check_probability("zoom_out_prob", zoom_out_prob)
        if max_zoom_out < 1.0:
            raise ValueError(f"max_zoom_out must be >= 1, got {max_zoom_out}")
        self.max_zoom_out = float(max_zoom_out)
        self.crop = bool(crop)
        self.crop_min_ious = tuple(crop_min_ious)
        if self.crop and not self.crop_min_ious:
            raise ValueError("crop_min_ious is empty; pass crop=False to turn the crop off")
        if not 0.0 < crop_min_scale <= 1.0:
            raise ValueError(f"crop_min_scale must be in (0, 1], got {crop_min_scale}")
        self.crop_min_scale = float(crop_min_scale)
        self.crop_aspect_ratio_range = _check_range("crop_aspect_ratio_range", crop_aspect_ratio_range, 0.0)
        if crop_max_trials < 1:
            raise ValueError(f"crop_max_trials must be >= 1, got {crop_max_trials}")
        self.crop_max_trials = int(crop_max_trials)
        if crop_mode not in ("min_iou", "square"):
            raise ValueError(f"crop_mode must be 'min_iou' or 'square', got {crop_mode!r}")
        self.crop_mode = crop_mode
        self.square_crop_scale = _check_range("square_crop_scale", square_crop_scale, 0.0)
        self.data_anchor_prob = _check_probability("data_anchor_prob", data_anchor_prob)
        self.anchor_sizes = tuple(float(a) for a in anchor_sizes)
        if self.data_anchor_prob > 0 and not self.anchor_sizes:
            raise ValueError("data_anchor_prob > 0 needs anchor_sizes (the model's prior sizes in pixels)")
        self.flip_prob = _check_probability("flip_prob", flip_prob)
        self.grayscale_prob = _check_probability("grayscale_prob", grayscale_prob)
        self.rotate90_prob = _check_probability("rotate90_prob", rotate90_prob)
        self.canvas_fill_prob = _check_probability("canvas_fill_prob", canvas_fill_prob)
        self.blank_prob = _check_probability("blank_prob", blank_prob)
        self.lowres_prob = _check_probability("lowres_prob", lowres_prob)
        low, high = (float(v) for v in lowres_scale)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"lowres_scale must be 0 < low <= high <= 1, got {lowres_scale}")
        self.lowres_scale = (low, high)
        self.face_crop_prob = _check_probability("face_crop_prob", face_crop_prob)
        self.face_crop_scale = _check_range("face_crop_scale", face_crop_scale, 0.1)
        if face_crop_canvas < 1.0:
            raise ValueError(f"face_crop_canvas must be >= 1, got {face_crop_canvas}")
        self.face_crop_canvas = float(face_crop_canvas)
        self.face_crop_negative = _check_probability("face_crop_negative", face_crop_negative)
        self.interpolation = interpolation

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size={self.size}, photometric_prob={self.photometric_prob}, "
            f"zoom_out_prob={self.zoom_out_prob}, max_zoom_out={self.max_zoom_out}, crop={self.crop}, "
            f"crop_mode={self.crop_mode!r}, "
            f"flip_prob={self.flip_prob}, grayscale_prob={self.grayscale_prob}, rotate90_prob={self.rotate90_prob}, "
            f"canvas_fill_prob={self.canvas_fill_prob}, blank_prob={self.blank_prob}, lowres_prob={self.lowres_prob}, "
            f"face_crop_prob={self.face_crop_prob})"
        )

    def __call__(
        self,
        image: np.ndarray,
        boxes_xyxy: np.ndarray,
        labels: np.ndarray,
        ignore: np.ndarray,
        rng: np.random.Generator,
    ) -> AugmentedSample:
        """Augment one image: inputs as in the module docstring, output an :class:`AugmentedSample`."""
        sample = as_arrays(image, boxes_xyxy, labels, ignore)
        fill: Sequence[float] = self.mean_rgb
        if self.canvas_fill_prob > 0 and rng.random() < self.canvas_fill_prob:  # drawn only when on: streams kept
            fill = random_canvas_rgb(rng)
        if self.blank_prob > 0 and rng.random() < self.blank_prob:
            h, w = sample[0].shape[:2]
            # box columns kept: points ride with boxes; a crop larger than the frame adds the canvas fill around it
            sample = (np.full((h, w, 3), random_canvas_rgb(rng), np.uint8),
                      np.zeros((0, sample[1].shape[1]), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))
        if self.photometric_prob > 0:
            sample = photometric_distort(
                *sample, rng, p=self.photometric_prob, brightness_range=self.brightness_range,
                contrast_range=self.contrast_range, saturation_range=self.saturation_range,
                hue_delta_deg=self.hue_delta_deg,
            )
        if self.face_crop_prob > 0 and rng.random() < self.face_crop_prob:  # drawn only when on: streams kept
            around_face = not (self.face_crop_negative > 0 and rng.random() < self.face_crop_negative)
            cut = face_crop(*sample, rng, cut_range=self.face_crop_scale, fill_rgb=fill, around_face=around_face)
            if cut[0] is not sample[0]:  # a cut was made (no face of 32 px or more: the usual steps below)
                flip = rng.random() < self.flip_prob
                sample = resize(*zoom_out(*cut, rng, max_zoom_out=self.face_crop_canvas, fill_rgb=fill), self.size,
                                self.interpolation)
                return self._finish(horizontal_flip(*sample) if flip else sample, rng)
        if self.data_anchor_prob > 0 and rng.random() < self.data_anchor_prob:
            sampled = data_anchor_sample(*sample, rng, self.anchor_sizes, self.size, fill_rgb=fill)
            if sampled is not None:
                flip = rng.random() < self.flip_prob
                sample = sampled[0]
                if flip:
                    sample = horizontal_flip(*sample)
                return self._finish(sample, rng)
        # Every coin is tossed whatever the switches, so turning one step off leaves the others' draws alone.
        if rng.random() < self.zoom_out_prob:
            sample = zoom_out(*sample, rng, max_zoom_out=self.max_zoom_out, fill_rgb=fill)
        if self.crop and self.crop_mode == "square":
            sample = random_square_crop(
                *sample, rng, scale_range=self.square_crop_scale, max_trials=self.crop_max_trials,
                fill_rgb=fill,
            )
        elif self.crop:
            sample = random_min_iou_crop(
                *sample, rng, min_iou_choices=self.crop_min_ious, min_scale=self.crop_min_scale,
                aspect_ratio_range=self.crop_aspect_ratio_range, max_trials=self.crop_max_trials,
            )
        flip = rng.random() < self.flip_prob
        if self.rotate90_prob > 0 and rng.random() < self.rotate90_prob:  # drawn only when on: streams kept
            sample = rotate90(*sample, turns=int(rng.integers(1, 4)))
        sample = resize(*sample, self.size, self.interpolation)
        if flip:
            sample = horizontal_flip(*sample)
        return self._finish(sample, rng)

    def _finish(self, sample: Arrays, rng: np.random.Generator) -> AugmentedSample:
        if self.lowres_prob > 0 and rng.random() < self.lowres_prob:  # drawn only when on: streams kept
            sample = low_resolution(*sample, rng, scale_range=self.lowres_scale)
        # grey after the resize: the conversion then costs the network input's pixels, not the photo's
        if self.grayscale_prob > 0 and rng.random() < self.grayscale_prob:
            luma = cv2.cvtColor(sample[0], cv2.COLOR_RGB2GRAY)
            sample = (cv2.cvtColor(luma, cv2.COLOR_GRAY2RGB), *sample[1:])
        return to_network_input(*sample, mean_rgb=self.mean_rgb, std_rgb=self.std_rgb, normalize=self.normalize)
