"""Faces with known points for a point network: :func:`extract_faces` cuts every usable face of the training sets
into a small context crop once (kept in an ``.npz`` cache), and :func:`augment_face` makes each training crop from
one of them (box noise, rotation, mirror, grey, brightness), its points moved alike."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singleshot.config import DatasetConfig
from singleshot.landmarks import box_crop_matrix, map_points, warp_crop
from singleshot.points.config import PointError

#: Index of each point's mirror image: left and right eye, nose, left and right mouth corner.
FLIP_ORDER = (1, 0, 2, 4, 3)


@dataclass
class FaceSet:
    """Faces cut out for training, all in the same context-crop pixels.

    Attributes:
        crops: ``(N, C, C, 3)`` uint8 context crops (a square of ``context`` box sides around each box).
        points_xy: ``(N, 5, 2)`` float32 points in crop pixels (NaN: unknown).
        boxes_xyxy: ``(N, 4)`` float32 boxes in crop pixels.
        source: ``(N,)`` index of the training set each face came from; ``val``: ``(N,)`` bool, held out.
        counts: faces per set, by spec.
    """

    crops: np.ndarray
    points_xy: np.ndarray
    boxes_xyxy: np.ndarray
    source: np.ndarray
    val: np.ndarray
    counts: dict[str, int]


def _cache_key(sets: Sequence[DatasetConfig], size: int, context: float, min_points: int, min_face: float,
               val_fraction: float) -> str:
    text = json.dumps([[s.spec, s.options] for s in sets] + [size, context, min_points, min_face, val_fraction],
                      sort_keys=True, default=str)
    return hashlib.md5(text.encode()).hexdigest()


def extract_faces(sets: Sequence[DatasetConfig], cache: str | Path, size: int = 96, context: float = 2.0,
                  min_points: int = 3, min_face: float = 12.0, val_fraction: float = 0.05,
                  progress: bool = True) -> FaceSet:
    """Every face of ``sets`` with at least ``min_points`` known points, not an ignore region, and a box side of at
    least ``min_face`` px, as a ``size`` px context crop; read from ``cache`` when it was made from the same sets and
    settings, else made and written there. Photos that cannot be read are counted and named in one line, not lost
    silently. ``val`` marks the faces of the ``val_fraction`` of photos held out by name hash.
    """
    import cv2
    from tqdm import tqdm

    from singleshot.atomic import atomic_write
    from singleshot.data.formats import held_out, load_annotations

    cache = Path(cache)
    key = _cache_key(sets, size, context, min_points, min_face, val_fraction)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            if str(stored["key"]) == key:
                return FaceSet(stored["crops"], stored["points"], stored["boxes"], stored["source"], stored["val"],
                               json.loads(str(stored["counts"])))
    if not sets:
        raise PointError("no training sets: give train (datasets whose faces have five points)")
    crops, points, boxes, source, val, counts, unreadable = [], [], [], [], [], {}, []
    for k, spec in enumerate(sets):
        data = load_annotations(spec.spec, **spec.options)
        before = len(crops)
        for sample in tqdm(data.samples, desc=f"faces of {spec.spec}", unit="photo", disable=not progress):
            marks = (sample.extra or {}).get("landmarks")
            if marks is None:
                continue
            marks = np.asarray(marks, np.float64)
            wh = sample.boxes_xyxy[:, 2:4] - sample.boxes_xyxy[:, 0:2]
            ignore = np.asarray(sample.ignore, bool) if sample.ignore is not None else np.zeros(len(marks), bool)
            usable = (np.isfinite(marks).all(2).sum(1) >= min_points) & ~ignore & (wh.min(1) >= min_face)
            if not usable.any():
                continue
            image = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
            if image is None:
                unreadable.append(str(sample.image_path))
                continue
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            is_val = held_out(sample.key, val_fraction) if val_fraction > 0 else False
            for i in np.flatnonzero(usable):
                m = box_crop_matrix(sample.boxes_xyxy[i], size, context)
                crops.append(np.clip(warp_crop(image, m, size) + 0.5, 0, 255).astype(np.uint8))
                points.append(map_points(marks[i], m))
                boxes.append(map_points(np.asarray(sample.boxes_xyxy[i], np.float64).reshape(2, 2), m).reshape(4))
                source.append(k)
                val.append(is_val)
        counts[spec.spec] = len(crops) - before
    if unreadable:
        print(f"warning: {len(unreadable)} photos could not be read and were left out, e.g. {unreadable[0]}")
    if not crops:
        raise PointError(f"no face with {min_points}+ known points in {', '.join(s.spec for s in sets)}")
    faces = FaceSet(np.stack(crops), np.stack(points).astype(np.float32), np.stack(boxes).astype(np.float32),
                    np.asarray(source, np.int16), np.asarray(val, bool), counts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(cache) as f:
        np.savez(f, crops=faces.crops, points=faces.points_xy, boxes=faces.boxes_xyxy, source=faces.source,
                 val=faces.val, counts=json.dumps(counts), key=key)
    return faces


def augment_face(crop: np.ndarray, points_xy: np.ndarray, box_xyxy: np.ndarray, size: int, crop_scale: float,
                 rng: np.random.Generator, shift: float = 0.0, scale: float = 0.0, rotate_deg: float = 0.0,
                 rotate_p: float = 0.0, flip: bool = False, grayscale_p: float = 0.0,
                 photometric: bool = False, cut_p: float = 0.0,
                 cut_max: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """One training crop: the network's crop around a noisy copy of the box (centre moved by ``N(0, shift)`` box
    sides, sides scaled by ``exp(N(0, scale))``), turned by up to ``rotate_deg`` (on a ``rotate_p`` share), mirrored
    half the time (``flip``; points swapped, :data:`FLIP_ORDER`), grey on a ``grayscale_p`` share, and with random
    contrast and brightness (``photometric``). On a ``cut_p`` share the face is cut as a closely cropped face put in
    a photo is: each side of the crop flat grey (one level, drawn) up to a band reaching ``0..cut_max`` box sides
    inside the face box; the points keep their places (the face is cut, not moved). Its draws are taken only when
    ``cut_p`` > 0, so other runs keep their random stream.

    Returns:
        ``(size, size, 3)`` float32 crop in 0-255 and its ``(5, 2)`` points in crop pixels.
    """
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2 + rng.normal(0, shift) * w if shift else (x1 + x2) / 2
    cy = (y1 + y2) / 2 + rng.normal(0, shift) * h if shift else (y1 + y2) / 2
    if scale:
        w, h = w * math.exp(rng.normal(0, scale)), h * math.exp(rng.normal(0, scale))
    angle = rng.uniform(-rotate_deg, rotate_deg) if rotate_deg and rng.random() < rotate_p else 0.0
    m = box_crop_matrix((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), size, crop_scale, angle)
    out = warp_crop(crop, m, size)
    pts = map_points(points_xy, m)
    if flip and rng.random() < 0.5:
        out = out[:, ::-1]
        pts = pts[list(FLIP_ORDER)].copy()
        pts[:, 0] = size - 1 - pts[:, 0]  # pixel centres at integers: u -> S - 1 - u
    if grayscale_p and rng.random() < grayscale_p:
        out = np.repeat(out.mean(2, keepdims=True), 3, axis=2)
    if cut_p and rng.random() < cut_p:
        corners = map_points(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64), m)
        (bx1, by1), (bx2, by2) = corners.min(0), corners.max(0)
        bw, bh = bx2 - bx1, by2 - by1
        top, bottom, left, right = rng.uniform(0, cut_max, 4)
        keep = np.zeros(out.shape[:2], bool)
        rows = slice(max(0, round(by1 + top * bh)), max(0, round(by2 - bottom * bh)))
        cols = slice(max(0, round(bx1 + left * bw)), max(0, round(bx2 - right * bw)))
        keep[rows, cols] = True
        out = np.where(keep[..., None], out, np.float32(rng.uniform(0, 255)))
    if photometric:
        out = out * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
    return np.clip(out, 0, 255).astype(np.float32), pts.astype(np.float32)
