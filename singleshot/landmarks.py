"""Five-point face landmarks: the standard alignment template, similarity fits, boxes from points (numpy).

Points are ``(..., 5, 2)`` pixel ``(x, y)`` in RetinaFace's order: left eye, right eye, nose tip, left and right
mouth corner ("left" = smaller x on a frontal face); an unknown point is NaN. :data:`TEMPLATE_112` is the
five-point template of the 112x112 aligned crops that face recognition uses (ArcFace / InsightFace's
``arcface_dst``); a face is aligned by the similarity transform that best maps its points onto it
(least squares, Umeyama 1991), and a face box can be estimated from any two or more known points by mapping the
template's square back.
"""

from __future__ import annotations

import math

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
    matrices, known = similarity_transforms(src[None], dst[None])
    if known[0] < 2:
        raise ValueError(f"a similarity needs two or more known points, got {known[0]}")
    if np.isnan(matrices[0]).any():
        raise ValueError("the points coincide: no similarity is defined")
    return matrices[0]


def similarity_transforms(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`similarity_transform` for ``K`` faces at once (it runs on every detection of every frame).

    Args:
        src, dst: ``(K, N, 2)`` corresponding points (either may be ``(N, 2)``, shared by all faces); pairs with a
            NaN in either are left out, face by face.

    Returns:
        ``(K, 2, 3)`` matrices (NaN for a face with fewer than two usable pairs, or all at one place) and ``(K,)``
        how many pairs each face had.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src, dst = np.broadcast_arrays(src.reshape(-1, *src.shape[-2:]), dst.reshape(-1, *dst.shape[-2:]))
    known = ~(np.isnan(src).any(-1) | np.isnan(dst).any(-1))  # (K, N)
    count = known.sum(1)
    weight = known[..., None]
    safe = np.maximum(count, 1)[:, None]
    mu_s = np.where(weight, src, 0.0).sum(1) / safe  # (K, 2)
    mu_d = np.where(weight, dst, 0.0).sum(1) / safe
    s = np.where(weight, src - mu_s[:, None], 0.0)
    d = np.where(weight, dst - mu_d[:, None], 0.0)
    spread = (s**2).sum((1, 2))
    # In the plane Umeyama's rotation and scale have a closed form: with points as complex numbers, the a that
    # minimises sum |d - a s|^2 is sum(conj(s) d) / sum |s|^2 (|a| the scale, arg a the angle); equal to the SVD
    # solution with its reflection check, and several times cheaper per face.
    with np.errstate(divide="ignore", invalid="ignore"):
        re = (s[..., 0] * d[..., 0] + s[..., 1] * d[..., 1]).sum(1) / spread
        im = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(1) / spread
    matrices = np.empty((len(src), 2, 3))
    matrices[:, 0, 0], matrices[:, 0, 1], matrices[:, 1, 0], matrices[:, 1, 1] = re, -im, im, re
    matrices[:, :, 2] = mu_d - np.einsum("kij,kj->ki", matrices[:, :, :2], mu_s)
    matrices[(count < 2) | ~(spread > 0)] = np.nan
    return matrices, count


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
    matrices, _ = similarity_transforms(template, points.reshape(-1, len(template), 2))  # NaN where undefined
    mapped = np.einsum("cj,kij->kci", corners, matrices[:, :, :2]) + matrices[:, None, :, 2]  # (K, 4, 2)
    return np.concatenate([mapped.min(1), mapped.max(1)], axis=1)


def aligned_template(size: int = 112, scale: float = 1.0) -> np.ndarray:
    """``(5, 2)`` :data:`TEMPLATE_112` for a ``size x size`` crop that shows ``scale`` times as much around the face
    (the template shrunk by ``scale`` about the crop's centre: 1.0 is the face recognition crop, eyebrows to chin)."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return ((TEMPLATE_112 - 56.0) / scale + 56.0) * (size / 112.0)


def align_faces(image: np.ndarray, landmarks: np.ndarray, size: int = 112, scale: float = 1.0,
                fill_rgb: tuple[int, int, int] | None = (0, 0, 0)) -> np.ndarray:
    """Aligned face crops: each face's five points mapped onto :data:`TEMPLATE_112` (scaled to ``size``) by the
    least-squares similarity, as face recognition and attribute models expect their inputs.

    Args:
        image: ``(H, W, 3)`` uint8 image.
        landmarks: ``(K, 5, 2)`` points in the image's pixels (a face with fewer than two known points gets a
            crop of zeros).
        scale: how much around the face the crop shows, in template crops (:func:`aligned_template`).
        fill_rgb: colour of the crop outside the image; None: the image's edge pixels repeated.

    Returns:
        ``(K, size, size, 3)`` uint8 crops.
    """
    import cv2

    template = aligned_template(size, scale)
    border = ({"borderMode": cv2.BORDER_REPLICATE} if fill_rgb is None
              else {"borderMode": cv2.BORDER_CONSTANT, "borderValue": tuple(int(v) for v in fill_rgb)})
    crops = np.zeros((len(landmarks), size, size, 3), np.uint8)
    matrices, _ = similarity_transforms(np.asarray(landmarks, np.float64).reshape(-1, len(template), 2), template)
    for k in np.flatnonzero(~np.isnan(matrices).any(axis=(1, 2))):
        crops[k] = cv2.warpAffine(image, matrices[k], (size, size), flags=cv2.INTER_LINEAR, **border)
    return crops


def blur_faces(image: np.ndarray, boxes_xyxy: np.ndarray, mode: str = "blur", grow: float = 0.1) -> np.ndarray:
    """A copy of ``image`` with every face box (grown by ``grow`` of its size on each side) anonymised.

    ``mode``: ``blur`` (a Gaussian blur strong enough that no feature survives: sigma a quarter of the box side) or
    ``pixelate`` (8x8 blocks across the box).
    """
    import cv2

    if mode not in ("blur", "pixelate"):
        raise ValueError(f"mode must be 'blur' or 'pixelate', got {mode!r}")
    out = image.copy()
    h, w = image.shape[:2]
    for x1, y1, x2, y2 in np.asarray(boxes_xyxy, np.float64).reshape(-1, 4):
        gx, gy = (x2 - x1) * grow, (y2 - y1) * grow
        a, b = max(0, int(x1 - gx)), max(0, int(y1 - gy))
        c, d = min(w, int(np.ceil(x2 + gx))), min(h, int(np.ceil(y2 + gy)))
        if c <= a or d <= b:
            continue
        region = out[b:d, a:c]
        if mode == "pixelate":
            small = cv2.resize(region, (8, 8), interpolation=cv2.INTER_AREA)
            out[b:d, a:c] = cv2.resize(small, (c - a, d - b), interpolation=cv2.INTER_NEAREST)
        else:
            sigma = max(c - a, d - b) / 4
            out[b:d, a:c] = cv2.GaussianBlur(region, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return out


def box_crop_matrix(box_xyxy: np.ndarray, size: int, scale: float, angle_deg: float = 0.0) -> np.ndarray:
    """``(2, 3)`` matrix taking photo pixels to a ``size x size`` crop: a square of ``scale`` times the box's long
    side around its centre, turned by ``angle_deg`` (counter-clockwise in the crop), pixel centres at integer
    coordinates as in ``cv2.warpAffine``: ``crop_xy = photo_xy @ M[:, :2].T + M[:, 2]``."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    side = max(scale * max(x2 - x1, y2 - y1), 1e-6)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    s = size / side
    a = math.radians(angle_deg)
    c, n = math.cos(a) * s, math.sin(a) * s
    return np.array([[c, -n, size / 2 - c * cx + n * cy], [n, c, size / 2 - n * cx - c * cy]])


def map_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``(..., 2)`` points through the ``(2, 3)`` affine ``matrix`` (NaN stays NaN)."""
    points = np.asarray(points, np.float64)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The ``(2, 3)`` inverse of an invertible ``(2, 3)`` affine matrix."""
    full = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int, max_supersample: int = 8,
              keep_dtype: bool = False, area_first: bool = False) -> np.ndarray:
    """The ``size x size`` crop of ``image`` seen through ``matrix`` (photo -> crop), its edge pixels repeated outside.

    A crop that shrinks the photo is anti-aliased: it is sampled ``k x k`` times per pixel (``k`` the shrink factor
    rounded up, at most ``max_supersample``) and averaged, the sub-samples centred on each crop pixel, so the
    mapping stays exactly ``matrix`` (a plain bilinear shrink would alias fine detail away, and a network trained
    on smooth crops sees noise). Returns float32 ``(size, size, C)``, or the image's own dtype with ``keep_dtype``
    (uint8 stays uint8: values rounded, about twice as fast).

    ``area_first`` (a matrix without a turn only, e.g. :func:`box_crop_matrix`'s): shrink the crop's region of the
    photo by cv2's area filter to about the crop's scale, then warp by the small remaining scale and shift: the
    same mapping, a box filter of the same width, at a fraction of the cost of ``k x k`` samples for a large face.
    """
    import cv2

    matrix = np.asarray(matrix, np.float64)
    zoom = math.sqrt(abs(matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]))
    k = int(min(max_supersample, max(1, math.ceil(1.0 / max(zoom, 1e-9) - 1e-6))))
    if area_first and k > 1 and matrix[0, 1] == 0 and matrix[1, 0] == 0 and matrix[0, 0] > 0 and matrix[1, 1] > 0:
        return _area_then_warp(image, matrix, size, keep_dtype)
    fine = matrix * k
    fine[:, 2] += (k - 1) / 2  # crop pixel u covers fine pixels k*u .. k*u+k-1, centred on k*u + (k-1)/2
    big = cv2.warpAffine(image, fine, (size * k, size * k), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    big = big.reshape(size * k, size * k, -1)
    if not keep_dtype:
        big = big.astype(np.float32)
    if k == 1:
        return big
    # the k x k block means: cv2's area shrink by a whole factor is exactly that, 20x faster than a numpy mean
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, -1)


def _area_then_warp(image: np.ndarray, matrix: np.ndarray, size: int, keep_dtype: bool) -> np.ndarray:
    """:func:`warp_crop` of a scale-and-shift ``matrix`` that shrinks by ``1/s``: the crop's region of the photo is
    first shrunk ``f = floor(1/s)`` times by block means (cv2's whole-factor area path, cheap), then warped by the
    remaining scale (``s f``, between 0.5 and 1) with :func:`warp_crop`'s supersampling."""
    import cv2

    sx, sy, tx, ty = matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]
    f = math.floor(1.0 / max(sx, sy) + 1e-6)
    if f < 2:
        return warp_crop(image, matrix, size, keep_dtype=keep_dtype)
    h, w = image.shape[:2]
    # the photo region the crop sees (photo = (crop - t) / s), a block wider each side for the bilinear step,
    # a whole number of f x f blocks
    x0, y0 = math.floor(-tx / sx) - f, math.floor(-ty / sy) - f
    nx, ny = -(-(math.ceil((size - tx) / sx) + f - x0) // f), -(-(math.ceil((size - ty) / sy) + f - y0) // f)
    x1, y1 = x0 + nx * f, y0 + ny * f
    cx0, cy0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)  # the region clipped to the photo (at least a pixel)
    cx1, cy1 = max(min(x1, w), cx0 + 1), max(min(y1, h), cy0 + 1)
    region = image[cy0:cy1, cx0:cx1]
    pads = (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1)  # outside the photo: its edge pixels repeated
    region = cv2.copyMakeBorder(region, *pads, cv2.BORDER_REPLICATE) if any(pads) else np.ascontiguousarray(region)
    small = cv2.resize(region, (nx, ny), interpolation=cv2.INTER_AREA)
    # small pixel u covers photo pixels x0 + f u .. x0 + f u + f - 1, centred on x0 + f u + (f - 1) / 2
    rest = np.array([[sx * f, 0.0, sx * (x0 + (f - 1) / 2) + tx],
                     [0.0, sy * f, sy * (y0 + (f - 1) / 2) + ty]])
    return warp_crop(small.reshape(ny, nx, -1), rest, size, keep_dtype=keep_dtype)
