"""Landmark accuracy: the usual normalised mean error, and the point-labelled detection measure of Caltech faces.

- :func:`normalised_mean_error`: per face, the mean distance of its predicted points to the labelled ones divided by
  the inter-ocular distance (the distance between the eye centres: MTFL / AFLW's usual metric, TCDCN), averaged
  over faces; with the failure rate at 0.1 (faces whose error is above 10% of the inter-ocular distance).
- :func:`point_labelled_recall`: on photos whose faces are labelled by points only (Caltech WebFaces: eyes, nose,
  mouth centre), the share of labelled faces that a detection at ``min_score`` covers (its box holds all the known
  points), and for those faces the eye error of the covering detection's landmarks divided by the face size
  (the square root of the area of the box estimated from the points).

Predictions are the rows of the predictions JSON with landmarks: ``(K, 16)`` ``[x1, y1, x2, y2, score, label, lx1,
ly1, ..., lx5, ly5]`` in original pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from singleshot.data.formats.base import DataError


@dataclass
class LandmarkResult:
    """What a landmark measure found; ``figures`` in the order to print."""

    figures: dict[str, float]
    details: dict[str, float | int] = field(default_factory=dict)


def normalised_mean_error(predicted: np.ndarray, truth: np.ndarray, failure_threshold: float = 0.1) -> LandmarkResult:
    """NME of ``(N, 5, 2)`` predicted points against ``(N, 5, 2)`` labelled ones, normalised by the labelled
    inter-ocular distance; a NaN prediction (no face found) counts as a failure and is left out of the mean.

    Returns:
        ``figures``: ``nme`` (mean over the faces with a prediction), ``failure_rate`` (share of all faces with
        error above ``failure_threshold`` or no prediction), ``eye_scale`` (median of predicted over labelled
        inter-ocular distance: a face alignment made from the points is zoomed by its inverse, so 1 is wanted);
        ``details``: ``faces``, ``missing``.
    """
    predicted = np.asarray(predicted, np.float64)
    truth = np.asarray(truth, np.float64)
    if predicted.shape != truth.shape or predicted.ndim != 3 or predicted.shape[2] != 2:
        raise DataError(f"landmark shapes differ or are not (N, L, 2): {predicted.shape} and {truth.shape}")
    interocular = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=1)  # (N,)
    errors = np.linalg.norm(predicted - truth, axis=2).mean(axis=1) / np.maximum(interocular, 1e-9)
    found = ~np.isnan(errors)
    failures = (~found) | (errors > failure_threshold)
    scale = np.linalg.norm(predicted[:, 0] - predicted[:, 1], axis=1) / np.maximum(interocular, 1e-9)
    return LandmarkResult(
        figures={"nme": float(errors[found].mean()) if found.any() else float("nan"),
                 "failure_rate": float(failures.mean()) if len(errors) else float("nan"),
                 "eye_scale": float(np.median(scale[found])) if found.any() else float("nan")},
        details={"faces": len(errors), "missing": int((~found).sum())},
    )


def best_points_per_crop(predictions: dict[str, np.ndarray], keys: list[str], num_points: int = 5) -> np.ndarray:
    """``(N, L, 2)`` landmarks of each key's highest-scoring detection (NaN when it has none or no landmarks)."""
    out = np.full((len(keys), num_points, 2), np.nan)
    for i, key in enumerate(keys):
        rows = np.asarray(predictions.get(key, np.zeros((0, 6))), np.float64)
        if len(rows) and rows.shape[1] >= 6 + 2 * num_points:
            out[i] = rows[int(np.argmax(rows[:, 4])), 6 : 6 + 2 * num_points].reshape(num_points, 2)
    return out


def point_labelled_recall(data, predictions: dict[str, np.ndarray], min_score: float = 0.5) -> LandmarkResult:
    """Share of point-labelled faces found, and their eye error (see the module docstring).

    Args:
        data: an annotation set whose samples carry ``extra["landmarks"]`` ``(K, 5, 2)`` (NaN where unknown) and,
            optionally, ``extra["mouth_centre"]`` (Caltech), all used as the points a covering box must hold.
        predictions: rows with landmarks, by sample key.

    Returns:
        ``figures``: ``found`` (share of faces), ``eye_error`` (mean over found faces of the two eyes' mean
        distance / face size); ``details``: ``faces``, ``found_faces``.
    """
    found, errors, total = 0, [], 0
    for sample in data.samples:
        if "landmarks" not in sample.extra:
            raise DataError(f"{sample.key}: no landmarks in this annotation set")
        rows = np.asarray(predictions.get(sample.key, np.zeros((0, 6))), np.float64)
        rows = rows[rows[:, 4] >= min_score] if len(rows) else rows
        points = np.asarray(sample.extra["landmarks"], np.float64)  # (K, 5, 2)
        extra = sample.extra.get("mouth_centre")
        for k in range(len(points)):
            known = points[k][~np.isnan(points[k]).any(axis=1)]
            if extra is not None:
                known = np.vstack((known, np.asarray(extra[k], np.float64)[None]))
            total += 1
            if not len(rows) or not len(known):
                continue
            lo, hi = known.min(axis=0), known.max(axis=0)
            covers = (rows[:, 0] <= lo[0]) & (rows[:, 1] <= lo[1]) & (rows[:, 2] >= hi[0]) & (rows[:, 3] >= hi[1])
            if not covers.any():
                continue
            found += 1
            best = rows[np.flatnonzero(covers)[np.argmax(rows[covers, 4])]]
            box = sample.boxes_xyxy[k]
            size = float(np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)))
            if len(best) >= 10:  # the detection's eye points against the labelled eye centres
                eyes = best[6:10].reshape(2, 2)
                errors.append(float(np.linalg.norm(eyes - points[k, :2], axis=1).mean()) / size)
    return LandmarkResult(
        figures={"found": found / total if total else float("nan"),
                 "eye_error": float(np.mean(errors)) if errors else float("nan")},
        details={"faces": total, "found_faces": found},
    )
