"""Five-point face landmarks: the standard alignment template, similarity fits, boxes from points (numpy).

Points are ``(..., 5, 2)`` pixel ``(x, y)`` in RetinaFace's order: left eye, right eye, nose tip, left and right
mouth corner ("left" = smaller x on a frontal face); an unknown point is NaN. :data:`TEMPLATE_112` is the
five-point template of the 112x112 aligned crops that face recognition uses (ArcFace / InsightFace's
``arcface_dst``); a face is aligned by the similarity transform that best maps its points onto it
(least squares, Umeyama 1991), and a face box can be estimated from any two or more known points by mapping the
template's square back.
"""

from __future__ import annotations

import numpy as np

#: Landmark names, in order.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

#: The five points of a 112x112 aligned face crop (InsightFace's ``arcface_dst``), ``(5, 2)`` pixels.
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``(2, 3)`` matrix of the similarity (rotation, uniform scale, translation) best mapping ``src`` onto ``dst``.

    Args:
        src, dst: ``(N, 2)`` corresponding points, ``N >= 2``; rows with a NaN in either are left out.

    Returns:
        ``M`` with ``dst ~ src @ M[:, :2].T + M[:, 2]`` in the least-squares sense (Umeyama 1991, without
        reflection).

    Raises:
        ValueError: fewer than two usable point pairs, or all of them at one place.
    """
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    ok = ~(np.isnan(src).any(1) | np.isnan(dst).any(1))
    src, dst = src[ok], dst[ok]
    if len(src) < 2:
        raise ValueError(f"a similarity needs two or more known points, got {len(src)}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s <= 0:
        raise ValueError("the points coincide: no similarity is defined")
    cov = d.T @ s / len(src)  # (2, 2)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # no reflection
        sign[-1] = -1
    rotation = u @ np.diag(sign) @ vt
    scale = (sigma * sign).sum() / var_s
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_d - scale * rotation @ mu_s
    return matrix


def box_from_points(points: np.ndarray, template: np.ndarray = TEMPLATE_112, side: float = 112.0,
                    scale: float = 1.0) -> np.ndarray:
    """``(K, 4)`` xyxy face boxes estimated from ``(K, P, 2)`` points that correspond to ``template`` ``(P, 2)``.

    The ``side x side`` template square (centred, grown by ``scale``) is mapped through the similarity from the
    template onto each face's known points, and the box is its axis-aligned extent. ``scale`` sets the convention:
    1 gives the aligned-crop square; calibrate it against a detector's boxes for its own (forehead-to-chin) style.
    A face with fewer than two known points gets a NaN box.
    """
    points = np.asarray(points, np.float64)
    template = np.asarray(template, np.float64)
    half = side * scale / 2
    centre = side / 2
    corners = np.array([[centre - half, centre - half], [centre + half, centre - half],
                        [centre + half, centre + half], [centre - half, centre + half]])
    boxes = np.full((len(points), 4), np.nan)
    for k, face in enumerate(points):
        try:
            m = similarity_transform(template, face)
        except ValueError:
            continue
        mapped = corners @ m[:, :2].T + m[:, 2]
        boxes[k] = [*mapped.min(0), *mapped.max(0)]
    return boxes
