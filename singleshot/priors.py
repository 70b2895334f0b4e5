"""Prior (default box, anchor) generation from a declarative per-feature-map spec.

A :class:`PriorSpec` says, for each feature map a detector predicts from, which boxes sit on each cell. The
boxes of one cell are laid out in the order the heads flatten their channels (see
:mod:`singleshot.models.heads`): cells in row-major order, and within a cell, for each size, for each aspect
ratio, with the SSD extra prior right after ratio 1. This is the order of the SSD tutorial's
``create_prior_boxes`` and of the original Caffe ``PriorBox`` layer.

Priors are returned in normalised ``cxcywh`` coordinates (fractions of the input width and height), so the same
spec serves any input size: the feature-map sizes come from the model for that input size.

Where the cell centres are depends on the unit (docs/priors.md has the measurements):

- ``"relative"`` specs (SSD) put cell ``j`` of a ``f_k``-cell map at ``(j + 0.5) / f_k`` of the input, as the SSD
  paper (section 2.2) and tutorial do; their input size is fixed (300 x 300), where that is the grid they train on.
- ``"pixels"`` specs (face detectors, run at any size) put it at ``(j + 0.5) * stride`` pixels, the level's true
  stride grid, as RetinaFace's prior boxes do. On an input whose side is a multiple of the stride both formulas
  agree; on any other side (a padded 480-row frame has 7.5 stride-64 cells, computed as 8) only the stride grid
  stays where the network computes its cells: ``(j + 0.5) / f_k`` would space them ``H / f_k`` apart instead of
  ``stride``, drifting up to half a stride off by the far edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import torch
from torch import Tensor

from singleshot.boxes import clip_boxes_xyxy, cxcywh_to_xyxy, xyxy_to_cxcywh

Unit = Literal["relative", "pixels"]


@dataclass(frozen=True)
class PriorLevel:
    """The priors on one feature map.

    Attributes:
        sizes: side of the ratio-1 prior(s); fractions of the input side (the SSD ``s_k``) when the spec's unit
            is ``"relative"``, pixels when it is ``"pixels"`` (face detectors size priors in pixels so a face
            of 20 px meets a 20 px prior at every input size). Several sizes tile one cell with several
            squares, as face detectors do (Ultra-Light's ``[10, 16, 24]``).
        aspect_ratios: width / height ratios; a prior of ratio ``a`` has width ``s * sqrt(a)`` and height
            ``s / sqrt(a)`` (SSD paper, section 2.2).
        next_size: if set, one extra ratio-1 prior of side ``sqrt(s_k * next_size)`` (SSD paper, section 2.2:
            "for the aspect ratio of 1, we also add a default box whose scale is sqrt(s_k s_k+1)"). Needs a
            single size and ratio 1 among the aspect ratios.
        stride: the feature map's stride in input pixels. Pixel specs place their cell centres on it (and need
            it); relative specs keep the SSD grid ``(j + 0.5) / f_k`` and treat it as information.
    """

    sizes: tuple[float, ...]
    aspect_ratios: tuple[float, ...] = (1.0,)
    next_size: float | None = None
    stride: int | None = None

    def __post_init__(self) -> None:
        if not self.sizes or any(s <= 0 for s in self.sizes):
            raise ValueError(f"PriorLevel.sizes must be positive, got {self.sizes}")
        if not self.aspect_ratios or any(a <= 0 for a in self.aspect_ratios):
            raise ValueError(f"PriorLevel.aspect_ratios must be positive, got {self.aspect_ratios}")
        if self.next_size is not None and (len(self.sizes) != 1 or 1.0 not in self.aspect_ratios):
            raise ValueError("PriorLevel.next_size (the SSD extra prior) needs exactly one size and ratio 1")
        if self.stride is not None and self.stride <= 0:
            raise ValueError(f"PriorLevel.stride must be positive, got {self.stride}")

    @property
    def priors_per_cell(self) -> int:
        """Number of priors on each cell of this level (the head's anchors per location)."""
        return len(self.sizes) * len(self.aspect_ratios) + (self.next_size is not None)

    def cell_shapes(self) -> list[tuple[float, float]]:
        """``(w, h)`` of the priors of one cell, in the spec's unit, in head order."""
        shapes: list[tuple[float, float]] = []
        for size in self.sizes:
            for ratio in self.aspect_ratios:
                shapes.append((size * math.sqrt(ratio), size / math.sqrt(ratio)))
                if ratio == 1.0 and self.next_size is not None:
                    extra = math.sqrt(size * self.next_size)
                    shapes.append((extra, extra))
        return shapes


@dataclass(frozen=True)
class PriorSpec:
    """Priors for every feature map of a detector, in the order of its heads.

    Attributes:
        levels: one :class:`PriorLevel` per feature map.
        unit: ``"relative"`` (sizes are fractions of the input side, as in SSD) or ``"pixels"``.
        clip: clip each prior to the image (as the SSD tutorial does), in corner form so centres stay consistent.
    """

    levels: tuple[PriorLevel, ...]
    unit: Unit = "relative"
    clip: bool = True

    def __post_init__(self) -> None:
        if self.unit not in ("relative", "pixels"):
            raise ValueError(f"PriorSpec.unit must be 'relative' or 'pixels', got {self.unit!r}")
        if self.unit == "pixels" and any(level.stride is None for level in self.levels):
            raise ValueError("a pixel PriorSpec needs every level's stride (its cell centres sit on the stride grid)")

    @property
    def square_input(self) -> bool:
        """Whether the detector is to see square inputs: relative priors are fractions of the input's sides and
        are learnt on square crops, so on a 320x256 input each would cover a different share of the photo's width
        than of its height. Photos keep their aspect ratio and are padded to a square (pixel priors need not)."""
        return self.unit == "relative"

    @property
    def priors_per_cell(self) -> tuple[int, ...]:
        """Priors per cell for each level (what each head must predict per location)."""
        return tuple(level.priors_per_cell for level in self.levels)

    def num_priors(self, feature_sizes: Sequence[tuple[int, int]]) -> int:
        """Total number of priors for the given ``(H, W)`` feature-map sizes."""
        self._check_levels(feature_sizes)
        return sum(h * w * n for (h, w), n in zip(feature_sizes, self.priors_per_cell))

    def _check_levels(self, feature_sizes: Sequence[tuple[int, int]]) -> None:
        if len(feature_sizes) != len(self.levels):
            raise ValueError(
                f"prior spec has {len(self.levels)} levels but {len(feature_sizes)} feature maps were given"
            )

    def cell_pitch(
        self, level: int, image_size: tuple[int, int], feature_size: tuple[int, int]
    ) -> tuple[float, float]:
        """``(pitch_x, pitch_y)``: distance between neighbouring cell centres of ``level``, normalised.

        ``stride / W`` and ``stride / H`` for pixel specs (the stride grid); ``1 / W_k`` and ``1 / H_k`` for
        relative ones (the SSD grid). A pixel level's map must cover the input to within one stride
        (``|f_k * stride - side| < stride``, true of ``ceil`` and ``floor`` maps): otherwise its declared stride is
        not the network's, and its priors would sit off the cells.
        """
        (image_h, image_w), (fh, fw) = image_size, feature_size
        lv = self.levels[level]
        if self.unit == "relative":
            return 1.0 / fw, 1.0 / fh
        stride = float(lv.stride)
        for cells, side, axis in ((fh, image_h, "height"), (fw, image_w, "width")):
            if abs(cells * stride - side) >= stride:
                raise ValueError(
                    f"prior level {level} declares stride {lv.stride}, but its map has {cells} cells across the "
                    f"input {axis} of {side} px: the declared stride is not the network's"
                )
        return stride / image_w, stride / image_h


def generate_priors(
    spec: PriorSpec, image_size: tuple[int, int], feature_sizes: Sequence[tuple[int, int]]
) -> Tensor:
    """Priors for one input size.

    Args:
        spec: the declarative prior spec.
        image_size: ``(H, W)`` of the network input in pixels.
        feature_sizes: ``(H_k, W_k)`` of each feature map the heads predict from, in head order.

    Returns:
        ``(P, 4)`` priors in normalised ``cxcywh``; ``P = sum_k H_k * W_k * priors_per_cell_k``. Cell ``(i, j)``
        is centred at ``((j + 0.5) * pitch_x, (i + 0.5) * pitch_y)`` (:meth:`PriorSpec.cell_pitch`): the SSD
        tutorial's ``((j + 0.5) / W_k, (i + 0.5) / H_k)`` for relative specs, the stride grid for pixel specs. The
        result is cached per arguments; treat it as read-only (clone before modifying).
    """
    return _generate_priors(spec, tuple(image_size), tuple(tuple(s) for s in feature_sizes))


@lru_cache(maxsize=64)
def _generate_priors(
    spec: PriorSpec, image_size: tuple[int, int], feature_sizes: tuple[tuple[int, int], ...]
) -> Tensor:
    spec._check_levels(feature_sizes)
    image_h, image_w = image_size
    per_level = []
    for k, (level, (fh, fw)) in enumerate(zip(spec.levels, feature_sizes)):
        shapes = torch.tensor(level.cell_shapes(), dtype=torch.float64)  # (A, 2) as (w, h)
        if spec.unit == "pixels":
            shapes = shapes / torch.tensor([image_w, image_h], dtype=torch.float64)
        pitch_x, pitch_y = spec.cell_pitch(k, image_size, (fh, fw))
        cy, cx = torch.meshgrid(
            (torch.arange(fh, dtype=torch.float64) + 0.5) * pitch_y,
            (torch.arange(fw, dtype=torch.float64) + 0.5) * pitch_x,
            indexing="ij",
        )  # (H_k, W_k) each
        centres = torch.stack((cx, cy), dim=-1).reshape(-1, 1, 2)  # (H_k * W_k, 1, 2)
        a = shapes.shape[0]
        priors = torch.cat((centres.expand(-1, a, 2), shapes[None].expand(centres.shape[0], a, 2)), dim=-1)
        per_level.append(priors.reshape(-1, 4))  # (H_k * W_k * A, 4), cell-major then prior
    priors_cxcywh = torch.cat(per_level, dim=0)
    if spec.clip:
        priors_cxcywh = xyxy_to_cxcywh(clip_boxes_xyxy(cxcywh_to_xyxy(priors_cxcywh)))
    return priors_cxcywh.float()


@dataclass(frozen=True)
class PriorGrid:
    """Priors together with the grid structure they were generated on, for fast matching.

    Priors on a feature map form one regular grid per within-cell shape; knowing that, a matcher can find the
    few priors near each object instead of comparing every object with every prior
    (:func:`singleshot.matching.match_priors` does so when given a ``PriorGrid``).

    Attributes:
        cxcywh: ``(P, 4)`` the priors, exactly :func:`generate_priors`' result.
        offset, rows, cols, per_cell, index_in_cell: ``(G,)`` long, one entry per (level, within-cell shape)
            group: index of the level's first prior, grid size, priors per cell, and the shape's position in the
            cell. Prior ``offset + (r * cols + c) * per_cell + index_in_cell`` sits on cell ``(r, c)``, centred
            (before clipping) at ``((c + 0.5) * pitch_x, (r + 0.5) * pitch_y)``.
        width, height: ``(G,)`` float, the group's unclipped prior size (normalised); clipping only shrinks priors.
        pitch_x, pitch_y: ``(G,)`` float, the distance between neighbouring cell centres (normalised).
        min_area: ``(G,)`` float, the smallest area of the group's priors after clipping (normalised), a bound the
            matcher's search window needs (a border cell of a map that overhangs the input is clipped hardest).
    """

    cxcywh: Tensor
    offset: Tensor
    rows: Tensor
    cols: Tensor
    per_cell: Tensor
    index_in_cell: Tensor
    width: Tensor
    height: Tensor
    pitch_x: Tensor
    pitch_y: Tensor
    min_area: Tensor

    @property
    def num_priors(self) -> int:
        return int(self.cxcywh.shape[0])


def generate_prior_grid(
    spec: PriorSpec, image_size: tuple[int, int], feature_sizes: Sequence[tuple[int, int]]
) -> PriorGrid:
    """Like :func:`generate_priors`, with the grid structure attached (cached per arguments; read-only)."""
    return _generate_prior_grid(spec, tuple(image_size), tuple(tuple(s) for s in feature_sizes))


@lru_cache(maxsize=64)
def _generate_prior_grid(
    spec: PriorSpec, image_size: tuple[int, int], feature_sizes: tuple[tuple[int, int], ...]
) -> PriorGrid:
    priors = _generate_priors(spec, image_size, feature_sizes)
    image_h, image_w = image_size
    groups = []
    offset = 0
    for k, (level, (fh, fw)) in enumerate(zip(spec.levels, feature_sizes)):
        shapes = level.cell_shapes()
        pitch_x, pitch_y = spec.cell_pitch(k, image_size, (fh, fw))
        level_priors = priors[offset : offset + fh * fw * len(shapes)].view(fh * fw, len(shapes), 4)
        for a, (w, h) in enumerate(shapes):
            if spec.unit == "pixels":
                w, h = w / image_w, h / image_h
            min_area = float((level_priors[:, a, 2] * level_priors[:, a, 3]).min())
            groups.append((offset, fh, fw, len(shapes), a, w, h, pitch_x, pitch_y, min_area))
        offset += fh * fw * len(shapes)
    columns = list(zip(*groups))
    longs = [torch.tensor(c, dtype=torch.long) for c in columns[:5]]
    floats = [torch.tensor(c, dtype=torch.float32) for c in columns[5:]]
    return PriorGrid(priors, *longs, *floats)


def ssd300_prior_spec() -> PriorSpec:
    """The SSD300 priors of the paper and tutorial: 8,732 boxes on 38, 19, 10, 5, 3 and 1 cell grids.

    Scales 0.1, 0.2, 0.375, 0.55, 0.725, 0.9 (the tutorial's table; conv4_3 gets 0.1 as in the paper's
    section 3.1 "we set default box with scale 0.1 on conv4_3"); ratios 1, 2, 1/2 everywhere plus 3 and 1/3 on
    conv7, conv8_2 and conv9_2; the extra prior uses the next level's scale, and 1 after the last level.
    """
    scales = (0.1, 0.2, 0.375, 0.55, 0.725, 0.9)
    strides = (8, 16, 32, 64, 100, 300)
    wide = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
    narrow = (1.0, 2.0, 0.5)
    ratios = (narrow, wide, wide, wide, narrow, narrow)
    levels = tuple(
        PriorLevel(sizes=(s,), aspect_ratios=r, next_size=scales[k + 1] if k + 1 < len(scales) else 1.0, stride=st)
        for k, (s, r, st) in enumerate(zip(scales, ratios, strides))
    )
    return PriorSpec(levels=levels, unit="relative", clip=True)


# ---------------------------------------------------------------------------------------------------------------
# Prior-spec factories of the zoo's recipes.


#: Face priors in pixels per level (strides 8, 16, 32, 64): 10 to 384 px, square, as the fast face detectors
#: (Ultra-Light's [10, 16, 24] [32, 48] [64, 96] [128, 192, 256], plus 384 for close-up selfies).
FACE_PRIOR_SIZES: tuple[tuple[float, ...], ...] = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256, 384))


def linear_scale_prior_spec(strides: Sequence[int], min_scale: float = 0.2, max_scale: float = 0.95) -> PriorSpec:
    """SSD priors with scales spread linearly from ``min_scale`` to ``max_scale`` over the levels (SSD paper, eq. 4).

    Each level has ratios 1, 2, 1/2, 3, 1/3 plus the extra ratio-1 prior of side ``sqrt(s_k s_k+1)`` (1 after the
    last level): six priors per cell, as torchvision's SSDLite (``DefaultBoxGenerator([[2, 3]] * 6, 0.2, 0.95)``).
    The TensorFlow SSDLite config's three-box first layer ("reduce_boxes_in_lowest_layer") is not reproduced.
    """
    m = len(strides)
    scales = [min_scale + (max_scale - min_scale) * k / max(m - 1, 1) for k in range(m)]
    ratios = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
    levels = tuple(
        PriorLevel(sizes=(s,), aspect_ratios=ratios, next_size=scales[k + 1] if k + 1 < m else 1.0, stride=st)
        for k, (s, st) in enumerate(zip(scales, strides))
    )
    return PriorSpec(levels=levels, unit="relative", clip=True)


def face_prior_spec(strides: Sequence[int]) -> PriorSpec:
    """The pixel face priors of :data:`FACE_PRIOR_SIZES` (10-384 px), spread over levels at ``strides``.

    Each size goes to the finest level whose stride is at least a third of it (a prior at most 3 cells wide, so
    each face overlaps several well-placed priors), and sizes too large for every level go to the deepest one. For
    strides 8, 16, 32, 64 this gives exactly ``FACE_PRIOR_SIZES``; for the finer stages a backbone may be asked
    for (the dual-shot face work's move to higher resolution), the small sizes move to the finer grid.
    """
    strides = tuple(int(s) for s in strides)
    per_level: list[list[float]] = [[] for _ in strides]
    for size in (float(s) for sizes in FACE_PRIOR_SIZES for s in sizes):
        level = next((k for k, st in enumerate(strides) if size <= 3 * st), len(strides) - 1)
        per_level[level].append(size)
    empty = [st for st, sizes in zip(strides, per_level) if not sizes]
    if empty:
        raise ValueError(f"no face prior size fits the level(s) at stride {empty} (strides {strides})")
    return PriorSpec(
        levels=tuple(PriorLevel(sizes=tuple(sizes), stride=st) for sizes, st in zip(per_level, strides)),
        unit="pixels",
        clip=True,
    )


def dsfd_prior_spec(strides: Sequence[int], aspect_h_over_w: float = 1.5) -> PriorSpec:
    """DSFD's anchor design (section 3.4): one anchor per cell of side 4 x stride (16-512 px for strides 4-128),
    "the equal-proportion interval principle", with aspect ratio 1.5:1 (height:width) from face statistics."""
    levels = tuple(
        PriorLevel(sizes=(4.0 * st,), aspect_ratios=(1.0 / aspect_h_over_w,), stride=st) for st in strides
    )
    return PriorSpec(levels=levels, unit="pixels", clip=True)


def scaled_prior_spec(spec: PriorSpec, factor: float) -> PriorSpec:
    """``spec`` with every prior size (and ``next_size``) multiplied by ``factor`` (PAL's first shot: 0.5)."""
    levels = tuple(
        replace(
            level,
            sizes=tuple(s * factor for s in level.sizes),
            next_size=None if level.next_size is None else level.next_size * factor,
        )
        for level in spec.levels
    )
    return replace(spec, levels=levels)
