"""The FDDB protocol: discrete and continuous ROC (Jain & Learned-Miller, "FDDB: A Benchmark for Face Detection in
Unconstrained Settings", UMass tech. report UM-CS-2010-009, and its ``evaluate`` C++ program).

What the official program does, and what this module does the same way:

* Overlap of an annotation and a detection is the ratio of the pixel counts of their intersection and union, the
  regions drawn on the image's pixel grid (``Matching::computeScore`` = ``Region::setIntersect / setUnion`` over
  masks drawn with ``cvEllipse`` / ``cvRectangle``, ``CV_FILLED``). Annotations are the ellipses; detections are
  rectangles ``[x1, y1, x2, y2]`` (the official ``left_x top_y width height`` with ``width = x2 - x1``).
* Pixel convention, from the drawing calls: a rectangle covers the pixels ``round(x1)..round(x2)`` by
  ``round(y1)..round(y2)``, both ends included (``cvRectangle`` from ``cvPointFrom32f(x, y)`` to
  ``cvPointFrom32f(x + w, y + h)``); an ellipse has its centre rounded to the nearest pixel, its radii truncated to
  whole pixels (``static_cast<int>``) and its angle rounded to whole degrees (``cv::ellipse`` rounds it), and is
  filled by OpenCV's own ellipse filler (an inscribed polygon with its edge pixels), which this module calls too,
  on a local canvas: a pixel-centre test would give about 2.6 % fewer pixels, and up to 13 % different masks for
  the smallest faces. Both masks are image-sized in the official program, so regions are clipped to the image.
* Per image and per detection-score threshold ``s`` (every distinct score of the image), detections with
  ``score >= s`` are matched to annotations by a maximum-weight bipartite matching of the overlaps (the official
  program's Hungarian algorithm, here ``scipy.optimize.linear_sum_assignment``); pairs with zero overlap are not
  matches.
* Discrete score: a matched pair with overlap ``> 0.5`` (strict, ``Results.cpp``) is a true positive; every other
  detection above the threshold is a false positive. Continuous score: the sum of the overlaps of all matched
  pairs (also those ``<= 0.5``). Both ROC curves share the discrete false-positive count as x axis
  (``Results::saveROC``), and the true-positive rate is the score divided by the number of annotated faces.
* Per-image results are merged over every distinct threshold of all images (``Results::merge``): the point at
  threshold ``s`` counts, in every image, the detections with ``score >= s``.

Additions of this module (none changes FDDB numbers): the curves start at the origin (threshold above every score);
ground truth of other formats is scored as rectangles; ignored ground truth (not in FDDB) is matched like any face
but not counted in the number of faces, and a detection matched to it with overlap ``> 0.5`` is neither a true nor
a false positive. The headline metric reads the curve at ``max_false_positives`` (1,000 by convention): the point
of the lowest threshold whose false positives do not exceed it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from singleshot.data.formats.fddb import EXTRA_COLUMNS
from singleshot.evaluation.result import Curve, EvalResult
from singleshot.registry import EVAL_PROTOCOLS
from singleshot.structures import AnnotationSet, Sample

#: Discrete true positives need an overlap strictly above this (``Results.cpp``: ``score > 0.5``).
DISCRETE_OVERLAP = 0.5


def rectangle_pixels(boxes_xyxy: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """``(K, 4)`` int64 inclusive pixel ranges ``[px1, py1, px2, py2]`` covered by ``(K, 4)`` xyxy boxes.

    As ``cvRectangle`` fills them: corners rounded to the nearest pixel (half to even, as ``cvRound``), both ends
    included (swapped corners fill the same pixels), clipped to the ``(width, height)`` image when ``size`` is
    given. Ranges wholly outside the image come out empty: ``px2 < px1`` or ``py2 < py1``.
    """
    pixels = np.rint(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)).astype(np.int64)
    # cvRectangle fills the same pixels whichever corner comes first.
    pixels = np.concatenate([np.minimum(pixels[:, :2], pixels[:, 2:]), np.maximum(pixels[:, :2], pixels[:, 2:])], 1)
    if size is not None:
        width, height = size
        pixels[:, :2] = np.maximum(pixels[:, :2], 0)
        pixels[:, 2] = np.minimum(pixels[:, 2], width - 1)
        pixels[:, 3] = np.minimum(pixels[:, 3], height - 1)
    return pixels


def ellipse_mask(
    major_radius: float, minor_radius: float, angle: float, center_x: float, center_y: float,
    size: tuple[int, int] | None = None,
) -> tuple[int, int, np.ndarray]:
    """The pixels of one FDDB ellipse as ``(x0, y0, mask)``: ``mask`` is ``(h, w)`` bool, pixel ``(x0 + j, y0 + i)``.

    Drawn as the official program draws it: ``cv2.ellipse`` filled, with the centre rounded to the nearest pixel,
    the radii truncated to whole pixels and the angle (radians, the major axis' angle from the x axis, y down) in
    degrees, which OpenCV rounds. It is drawn on a local canvas around the ellipse, which gives the same pixels as
    the official image-sized mask, clipped to the ``(width, height)`` image when ``size`` is given.
    """
    cx, cy = int(np.rint(center_x)), int(np.rint(center_y))
    a, b = int(major_radius), int(minor_radius)
    degrees = float(np.rad2deg(angle))
    t = np.deg2rad(np.rint(degrees))
    half_w, half_h = np.hypot(a * np.cos(t), b * np.sin(t)), np.hypot(a * np.sin(t), b * np.cos(t))
    # OpenCV fills an inscribed polygon with its edge pixels, within a pixel of the exact bounding box: 2 px margin.
    x0, x1 = int(np.floor(cx - half_w)) - 2, int(np.ceil(cx + half_w)) + 2
    y0, y1 = int(np.floor(cy - half_h)) - 2, int(np.ceil(cy + half_h)) + 2
    if size is not None:
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size[0] - 1), min(y1, size[1] - 1)
    canvas = np.zeros((max(y1 - y0 + 1, 0), max(x1 - x0 + 1, 0)), dtype=np.uint8)
    if canvas.size:
        cv2.ellipse(canvas, (cx - x0, cy - y0), (max(a, 0), max(b, 0)), degrees, 0, 360, 1, thickness=-1)
    return x0, y0, canvas.astype(bool)


def region_overlaps(regions: list[tuple[int, int, np.ndarray]], det_pixels: np.ndarray) -> np.ndarray:
    """``(A, D)`` pixel IoU of ``A`` ground-truth masks ``(x0, y0, mask)`` and ``D`` rectangles.

    ``det_pixels`` is ``(D, 4)`` inclusive pixel ranges (:func:`rectangle_pixels`). Intersections are read from
    each mask's summed-area table, so the cost is one pass over each mask plus O(D) per mask.
    """
    det_pixels = np.asarray(det_pixels, dtype=np.int64).reshape(-1, 4)
    det_area = np.maximum(det_pixels[:, 2] - det_pixels[:, 0] + 1, 0) * np.maximum(
        det_pixels[:, 3] - det_pixels[:, 1] + 1, 0
    )
    out = np.zeros((len(regions), len(det_pixels)), dtype=np.float64)
    for i, (x0, y0, mask) in enumerate(regions):
        h, w = mask.shape
        table = np.zeros((h + 1, w + 1), dtype=np.int64)
        table[1:, 1:] = mask.cumsum(axis=0).cumsum(axis=1)
        # Detection ranges in the mask's grid, as half-open [lo, hi) indices into the summed-area table.
        ix0 = np.clip(det_pixels[:, 0] - x0, 0, w)
        ix1 = np.clip(det_pixels[:, 2] - x0 + 1, 0, w)
        iy0 = np.clip(det_pixels[:, 1] - y0, 0, h)
        iy1 = np.clip(det_pixels[:, 3] - y0 + 1, 0, h)
        inside = (ix1 > ix0) & (iy1 > iy0)
        inter = table[iy1, ix1] - table[iy0, ix1] - table[iy1, ix0] + table[iy0, ix0]
        inter = np.where(inside, inter, 0).astype(np.float64)
        union = table[h, w] + det_area - inter
        out[i] = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return out


def sweep_image(
    overlaps: np.ndarray, counted: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's results at each of its distinct scores, as the official per-image loop computes them.

    Args:
        overlaps: ``(A, D)`` overlaps of the annotations and the detections.
        counted: ``(A,)`` bool, False for ignored ground truth.
        scores: ``(D,)`` detection scores.

    Returns:
        ``(thresholds, tp_discrete, tp_continuous, false_positives)``, each ``(U,)``, thresholds decreasing: the
        results with the detections of ``score >= threshold``.
    """
    order = np.argsort(-scores, kind="stable")
    scores, overlaps = scores[order], overlaps[:, order]
    thresholds = np.unique(scores)[::-1]
    n_valid = np.searchsorted(-scores, -thresholds, side="right")  # detections with score >= each threshold
    touching = overlaps.max(axis=0) > 0 if len(overlaps) else np.zeros(len(scores), dtype=bool)
    tp_d, tp_c, fp = (np.zeros(len(thresholds)) for _ in range(3))
    last_cols, good, disc, cont = -1, 0, 0.0, 0.0
    for k, n in enumerate(n_valid):
        cols = np.flatnonzero(touching[:n])
        if len(cols) != last_cols and len(cols):  # only detections that touch a face can change the matching
            last_cols = len(cols)
            rows, picked = linear_sum_assignment(overlaps[:, cols], maximize=True)
            score = overlaps[rows, cols[picked]]
            rows, score = rows[score > 0], score[score > 0]  # zero-overlap pairs are no match (Matching.cpp)
            above = score > DISCRETE_OVERLAP
            good = int(above.sum())  # detections that are not false positives (incl. those on ignored faces)
            disc = float((above & counted[rows]).sum())
            cont = float(score[counted[rows]].sum())
        tp_d[k], tp_c[k], fp[k] = disc, cont, n - good
    return thresholds, tp_d, tp_c, fp


def _image_size(sample: Sample, read_sizes: bool) -> tuple[int, int] | None:
    if sample.width is not None and sample.height is not None:
        return int(sample.width), int(sample.height)
    if read_sizes and Path(sample.image_path).is_file():
        from singleshot.images import image_size

        size = image_size(sample.image_path)  # from the header, upright as the boxes were drawn on it
        return (size[1], size[0]) if size is not None else None
    return None


def _ground_truth_regions(
    sample: Sample, keep: np.ndarray, size: tuple[int, int] | None, ellipses: bool
) -> list[tuple[int, int, np.ndarray]]:
    if ellipses:
        params = np.stack([np.asarray(sample.extra[c], dtype=np.float64) for c in EXTRA_COLUMNS], axis=1)[keep]
        return [ellipse_mask(*p, size=size) for p in params]
    regions = []
    for px1, py1, px2, py2 in rectangle_pixels(sample.boxes_xyxy[keep], size):
        regions.append((int(px1), int(py1), np.ones((max(py2 - py1 + 1, 0), max(px2 - px1 + 1, 0)), dtype=bool)))
    return regions


@EVAL_PROTOCOLS.register("fddb")
def evaluate_fddb(
    data: AnnotationSet,
    predictions: dict[str, np.ndarray],
    max_false_positives: int = 1000,
    label: int | None = None,
    read_image_sizes: bool = True,
) -> EvalResult:
    """FDDB discrete and continuous ROC (see the module docstring).

    Args:
        data: ground truth; FDDB ellipses from ``Sample.extra`` when present, else the boxes as rectangles.
        predictions: ``{key: (K, 6) [x1, y1, x2, y2, score, label]}`` in pixels.
        max_false_positives: where the headline true-positive rates are read (1,000 in FDDB papers).
        label: score only this class (ground truth and detections); default every class, as one (FDDB has one).
        read_image_sizes: read image sizes from the image headers when the annotations lack them, to clip the
            regions to the image as the official program does.

    Returns:
        metrics ``discrete_tpr@{N}fp`` and ``continuous_tpr@{N}fp``; two ROC curves (x false positives, y
        true-positive rate) named as the metrics.
    """
    by_key = {s.key: s for s in data.samples}
    ellipses = all(all(c in s.extra for c in EXTRA_COLUMNS) for s in data.samples) and bool(data.samples)
    thresholds, deltas = [], []
    faces = detections = unsized = 0
    for sample in data.samples:
        keep = np.ones(len(sample), dtype=bool) if label is None else sample.labels == label
        counted = ~np.asarray(sample.ignore, dtype=bool)[keep]
        faces += int(counted.sum())
        dets = np.asarray(predictions.get(sample.key, np.zeros((0, 6))), dtype=np.float64).reshape(-1, 6)
        if label is not None:
            dets = dets[dets[:, 5] == label]
        detections += len(dets)
        if not len(dets):
            continue
        size = _image_size(sample, read_image_sizes)
        unsized += size is None
        regions = _ground_truth_regions(sample, keep, size, ellipses)
        overlaps = region_overlaps(regions, rectangle_pixels(dets[:, :4], size))
        thr, tp_d, tp_c, fp = sweep_image(overlaps, counted, dets[:, 4])
        thresholds.append(thr)
        # The image's contribution changes at each of its thresholds: keep the changes, summed over images below.
        deltas.append(np.diff(np.stack([tp_d, tp_c, fp], axis=1), axis=0, prepend=0.0))

    # Merge (Results::merge): the point at threshold s sums, over images, each image's result at its lowest
    # threshold >= s; i.e. the cumulative sum of all changes at thresholds >= s.
    thr = np.concatenate(thresholds) if thresholds else np.zeros(0)
    change = np.concatenate(deltas) if deltas else np.zeros((0, 3))
    order = np.argsort(-thr, kind="stable")
    thr, total = thr[order], np.cumsum(change[order], axis=0)
    last = np.flatnonzero(np.append(thr[1:] != thr[:-1], True)) if len(thr) else np.zeros(0, dtype=np.int64)
    points = np.vstack([np.zeros((1, 3)), total[last]])  # the origin: threshold above every score
    point_thr = np.concatenate([[np.inf], thr[last]])
    fp = np.rint(points[:, 2])
    tpr_d = points[:, 0] / faces if faces else np.zeros(len(points))
    tpr_c = points[:, 1] / faces if faces else np.zeros(len(points))

    at = int(np.flatnonzero(fp <= max_false_positives)[-1])  # fp[0] = 0, so there is one
    name_d, name_c = f"discrete_tpr@{max_false_positives}fp", f"continuous_tpr@{max_false_positives}fp"
    details = {
        "images": len(data.samples),
        "faces": faces,
        "detections": detections,
        "ground_truth": "ellipses (FDDB)" if ellipses else "boxes as rectangles (the data has no FDDB ellipses)",
        "matching": "max-weight bipartite matching of pixel-grid overlaps per image and threshold",
        "discrete_true_positive": f"overlap > {DISCRETE_OVERLAP}",
        "max_false_positives": max_false_positives,
        "false_positives_at_operating_point": int(fp[at]),
        # None: the origin, above every score (JSON has no infinity).
        "threshold_at_operating_point": float(point_thr[at]) if np.isfinite(point_thr[at]) else None,
        "false_positives_at_lowest_threshold": int(fp[-1]),
        "label": "all" if label is None else label,
        "images_not_clipped": unsized,
        "predictions_for_unknown_images": len(set(predictions) - set(by_key)),
    }
    if fp[-1] < max_false_positives:
        details["note"] = (
            f"only {int(fp[-1])} false positives at the lowest threshold (< {max_false_positives}): "
            "rates read at the last point of the ROC"
        )
    if unsized:
        details["note_sizes"] = f"{unsized} image(s) of unknown size: their regions were not clipped to the image"
    if not faces:
        details["note_faces"] = "no ground-truth faces: true-positive rates are 0"
    return EvalResult(
        protocol="fddb",
        metrics={name_d: float(tpr_d[at]), name_c: float(tpr_c[at])},
        curves=[
            Curve(name_d, fp.astype(np.float64), tpr_d, "false positives", "true positive rate"),
            Curve(name_c, fp.astype(np.float64), tpr_c, "false positives", "true positive rate"),
        ],
        details=details,
    )
