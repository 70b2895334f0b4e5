"""Face crops for attributes: folders of labelled or unlabelled crops, crops cut around boxes (as at inference, or
from a detection dataset), the training augmentation and the crops' normalisation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from singleshot.attributes.config import AttributeError_
from singleshot.images import decode_image, image_problem


def _read_crop(path: Path, size: int) -> np.ndarray | None:
    """One crop file -> uint8 ``(size, size, 3)`` RGB; None (reported) when it cannot be read."""
    decoded = decode_image(path)  # upright, and bounded by the pixel limit, as every image the package reads
    if decoded is None:
        print(f"{path}: {image_problem(path) or 'cannot read the image'}; skipped")
        return None
    image = decoded[0]
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR)


def load_crop_folder(folder: str | Path, exclude: set[str], size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``folder/{0,1}/*`` crops -> uint8 ``(N, size, size, 3)`` RGB, int labels ``(N,)``, their paths.

    Raises:
        AttributeError_: the folder or its ``0/`` and ``1/`` subfolders are missing or empty.
    """
    from singleshot.data.formats.folder import find_images

    folder = Path(folder)
    images, labels, names = [], [], []
    for outcome in (0, 1):
        sub = folder / str(outcome)
        if not sub.is_dir():
            raise AttributeError_(f"{sub}: missing (expected one subfolder per outcome, 0/ and 1/)")
        for path in find_images(sub):
            rel = f"{folder.name}/{outcome}/{path.name}"
            if rel in exclude:
                continue
            image = _read_crop(path, size)
            if image is None:
                continue
            images.append(image)
            labels.append(outcome)
            names.append(rel)
    if not images:
        raise AttributeError_(f"{folder}: no crops in 0/ and 1/")
    return np.stack(images), np.array(labels, np.int64), names


def load_unlabeled_crops(folders: Sequence[str | Path], size: int) -> tuple[np.ndarray, list[str]]:
    """Every image under ``folders`` (recursively), resized to ``size``: uint8 ``(N, size, size, 3)`` RGB, and their
    names (``<folder index>/<path inside the folder>``, to match crops of the same faces cut another way).

    Raises:
        AttributeError_: a folder is missing or holds no images. Unreadable files are reported and skipped.
    """
    from singleshot.data.formats.folder import find_images

    images, names = [], []
    for k, folder in enumerate(folders):
        paths = find_images(Path(folder)) if Path(folder).is_dir() else []
        if not paths:
            raise AttributeError_(f"{folder}: no crops found (a folder of images is expected)")
        for path in paths:
            image = _read_crop(path, size)
            if image is not None:
                images.append(image)
                names.append(f"{k}/{path.relative_to(folder).as_posix()}")
    return (np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)), names


def read_exclude_list(path: str | Path | None) -> set[str]:
    """Relative paths listed (first whitespace-separated column) in an exclusion file; empty for None."""
    if not path:
        return set()
    path = Path(path)
    if not path.is_file():
        raise AttributeError_(f"{path}: exclusion list not found")
    return {line.split()[0] for line in path.read_text().splitlines() if line.strip()}


def augment_batch(images: Tensor, generator: torch.Generator, rotate_deg: float = 0.0) -> Tensor:
    """Vectorised crop augmentation of a ``(B, 3, S, S)`` float batch: flip, shift/scale (+-8%), rotation (+-
    ``rotate_deg``; head roll), brightness/contrast.

    The crops at inference come from detector boxes, slightly off the training crops' framing: the small random
    similarity transform teaches the head to tolerate that.
    """
    b = images.shape[0]
    rand = lambda *shape: torch.rand(*shape, generator=generator)
    scale = 1.0 + (rand(b) - 0.5) * 0.16
    flip = torch.where(rand(b) < 0.5, -1.0, 1.0)
    # drawn only when asked for, so that runs without rotation see the generator's stream as before
    angle = (rand(b) - 0.5) * (2 * math.radians(rotate_deg)) if rotate_deg else torch.zeros(b)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * cos * flip
    theta[:, 0, 1] = -scale * sin
    theta[:, 1, 0] = scale * sin * flip
    theta[:, 1, 1] = scale * cos
    theta[:, :, 2] = (rand(b, 2) - 0.5) * 0.16
    grid = nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    out = nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = (1.0 + (rand(b, 1, 1, 1) - 0.5) * 0.4)
    brightness = (rand(b, 1, 1, 1) - 0.5) * 0.4
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return (out - mean) * contrast + mean + brightness


@dataclass(frozen=True)
class Degradations:
    """Per-crop probabilities of the degradations that separate GENKI-4K's crops from faces met elsewhere
    (docs/attributes.md: grayscale, low resolution, blur, JPEG artefacts); each applies independently, in the order
    resolution, blur, JPEG, grayscale (a camera's order: optics, then the file, then the user's conversion).

    ``paste``, last: a face from a dataset of face crops (cut closer than the detector's box, then put in a photo)
    reaches the head with flat bands where the crop ended. Each side of the crop loses a band drawn from
    ``paste_margin`` (a fraction of the side), filled with one grey level drawn from 0..255 for the crop.
    """

    grayscale: float = 0.0
    low_resolution: float = 0.0      # down to a side drawn from ``resolution_px``, then back up (bilinear)
    resolution_px: tuple[int, int] = (16, 48)
    blur: float = 0.0                # Gaussian, sigma drawn from ``blur_sigma``
    blur_sigma: tuple[float, float] = (0.5, 2.0)
    jpeg: float = 0.0                # re-encoded at a quality drawn from ``jpeg_quality``
    jpeg_quality: tuple[int, int] = (15, 60)
    paste: float = 0.0               # the crop cut closer and pasted on a flat canvas, see below
    paste_margin: tuple[float, float] = (0.0, 0.2)

    def any(self) -> bool:
        return max(self.grayscale, self.low_resolution, self.blur, self.jpeg, self.paste) > 0


def degrade_batch(images: Tensor, generator: torch.Generator, degradations: Degradations,
                  mean_rgb: Sequence[float], std_rgb: Sequence[float]) -> Tensor:
    """Apply :class:`Degradations` to a normalised ``(B, 3, S, S)`` float batch (as :func:`_normalise` makes it).

    Each draw comes from ``generator``, so a seeded run degrades the same crops the same way.
    """
    if not degradations.any():
        return images
    mean = torch.tensor(mean_rgb, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(std_rgb, dtype=images.dtype).view(1, 3, 1, 1)
    x = images * std + mean  # pixel values, 0..255
    b, _, side, _ = x.shape
    draws = torch.rand(b, 7, generator=generator)
    # drawn only when used, so that runs without it keep their earlier random stream
    paste_draws = torch.rand(b, 6, generator=generator) if degradations.paste > 0 else None

    def between(lo: float, hi: float, u: Tensor) -> float:
        return float(lo + (hi - lo) * u)

    out = []
    for i in range(b):
        crop = x[i : i + 1]
        u = draws[i]
        if u[0] < degradations.low_resolution:
            lo, hi = degradations.resolution_px
            small = round(between(lo, hi, u[1]))
            crop = nn.functional.interpolate(crop, size=(small, small), mode="area")
            crop = nn.functional.interpolate(crop, size=(side, side), mode="bilinear", align_corners=False)
        if u[2] < degradations.blur:
            sigma = between(*degradations.blur_sigma, u[3])
            radius = max(1, math.ceil(2.5 * sigma))
            t = torch.arange(-radius, radius + 1, dtype=x.dtype)
            k = torch.exp(-(t**2) / (2 * sigma**2))
            k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
            crop = nn.functional.pad(crop, (radius, radius, radius, radius), mode="replicate")
            crop = nn.functional.conv2d(nn.functional.conv2d(crop, k, groups=3), k.transpose(2, 3), groups=3)
        if u[4] < degradations.jpeg:
            quality = round(between(*degradations.jpeg_quality, u[5]))
            bgr = crop[0].permute(1, 2, 0).clamp(0, 255).round().byte().numpy()[:, :, ::-1]
            _, data = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, quality])
            rgb = cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]
            crop = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(x.dtype)
        if u[6] < degradations.grayscale:
            luma = 0.299 * crop[:, 0:1] + 0.587 * crop[:, 1:2] + 0.114 * crop[:, 2:3]
            crop = luma.expand(-1, 3, -1, -1)
        if paste_draws is not None and paste_draws[i, 0] < degradations.paste:
            lo, hi = degradations.paste_margin
            top, bottom, left, right = (round(between(lo, hi, v) * side) for v in paste_draws[i, 1:5])
            keep = torch.zeros(1, 1, side, side, dtype=torch.bool)
            keep[..., top : side - bottom, left : side - right] = True
            crop = torch.where(keep, crop, torch.full_like(crop, round(float(paste_draws[i, 5]) * 255)))
        out.append(crop)
    return (torch.cat(out) - mean) / std


def _normalise(images_uint8: np.ndarray | Tensor, mean_rgb: Sequence[float], std_rgb: Sequence[float]) -> Tensor:
    """``(N, S, S, 3)`` uint8 RGB crops -> float32 ``(N, 3, S, S)`` ``(x - mean) / std``.

    Not :func:`singleshot.data.transforms.normalize_batch`: that one multiplies by the reciprocal of std, which
    differs from this division by one ulp for about a quarter of the uint8 values under ImageNet's mean and std,
    and the attribute checkpoints were trained and measured with the division.
    """
    x = torch.as_tensor(images_uint8).permute(0, 3, 1, 2).float()
    mean = torch.tensor(mean_rgb).view(1, 3, 1, 1)
    std = torch.tensor(std_rgb).view(1, 3, 1, 1)
    return (x - mean) / std


def square_crops(image_rgb: np.ndarray, boxes_xyxy: np.ndarray, size: int, scale: float = 1.0,
                 fill_rgb: Sequence[float] = (124, 116, 104)) -> np.ndarray:
    """Cut a ``size x size`` square around each box (side = ``scale`` x the box's long side, same centre).

    Args:
        image_rgb: ``(H, W, 3)`` uint8.
        boxes_xyxy: ``(K, 4)`` pixel boxes.

    Returns:
        ``(K, size, size, 3)`` uint8; parts outside the image are filled with ``fill_rgb``.
    """
    crops = np.empty((len(boxes_xyxy), size, size, 3), np.uint8)
    fill = tuple(round(v) for v in fill_rgb)
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes_xyxy, np.float64)):
        side = max(x2 - x1, y2 - y1, 1.0) * scale
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        s = size / side
        # one affine warp per face: the output is size x size whatever the face size (cost ~ size^2)
        matrix = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
        crops[k] = cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return crops


def aligned_crops(image_rgb: np.ndarray, boxes_xyxy: np.ndarray, landmarks: np.ndarray | None, size: int,
                  scale: float = 1.0, fill_rgb: Sequence[float] = (124, 116, 104)) -> np.ndarray:
    """Crops aligned by each face's five points (:func:`singleshot.landmarks.align_faces`, ``scale`` x the
    template crop), as face attribute systems align before they classify; a face without two known points (or
    all faces, when ``landmarks`` is None) gets :func:`square_crops`' square around its box instead.

    Args:
        image_rgb: ``(H, W, 3)`` uint8. boxes_xyxy: ``(K, 4)`` pixels. landmarks: ``(K, 5, 2)`` pixels, NaN unknown.

    Returns:
        ``(K, size, size, 3)`` uint8.
    """
    from singleshot.landmarks import align_faces

    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    if landmarks is None:
        return square_crops(image_rgb, boxes, size, 1.0, fill_rgb)
    points = np.asarray(landmarks, np.float64).reshape(len(boxes), -1, 2)
    known = np.isfinite(points).all(axis=2).sum(axis=1) >= 2
    crops = np.empty((len(boxes), size, size, 3), np.uint8)
    if known.any():
        crops[known] = align_faces(image_rgb, points[known], size, scale, tuple(round(v) for v in fill_rgb))
    if (~known).any():
        crops[~known] = square_crops(image_rgb, boxes[~known], size, 1.0, fill_rgb)
    return crops


#: What ``singleshot attribute align`` writes beside the crops: how they were aligned (read by training).
ALIGN_FILE = "aligned.json"


@dataclass
class AlignReport:
    """What :func:`align_crop_folder` wrote: crops aligned by the teacher's points, and crops where it found no
    face with points (written as they were, resized: kept, so no labelled crop is lost)."""

    crops: int
    aligned: int
    unaligned: list[str]
    unreadable: list[str]
    out: str


def reframe(crop: np.ndarray, zoom: float, angle_deg: float = 0.0) -> np.ndarray:
    """``crop`` zoomed about its centre (``zoom`` > 1: cut closer, the face's edges lost; < 1: looser, the border
    repeated) and turned by ``angle_deg``, at the same size: how another dataset may have framed the same face.

    Args:
        crop: ``(H, W, 3)`` uint8.
    """
    h, w = crop.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, zoom)
    return cv2.warpAffine(crop, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def align_crop_folder(src: str | Path, out: str | Path, teacher, size: int = 64, scale: float = 1.0,
                      canvas: int = 256, force: bool = False, progress: bool = True,
                      zoom: tuple[float, float] | None = None, grayscale: bool = False,
                      seed: int = 0) -> AlignReport:
    """Align a folder of face crops (e.g. GENKI-4K's ``train/0``, ``train/1``, ``test/...``; subfolders kept) by
    the five points a landmark detector finds on them, the way :class:`AttributeClassifier` aligns detections.

    Each crop is enlarged to half of a ``canvas`` px mid-grey square (a detector sees a face filling a whole image
    badly), the teacher's most confident face with points is taken, and the crop is warped onto the template
    (:func:`aligned_crops`; outside the crop its edge pixels repeat). ``out/aligned.json`` records ``size`` and
    ``scale`` for training (``AttributeConfig.align``).

    ``zoom`` or ``grayscale`` write another view of the same faces, as a photo of a crop from another dataset
    shows them (for ``AttributeConfig.train_views``): each crop is first :func:`reframe`'d by a zoom drawn
    uniformly from ``zoom`` (seeded by ``seed``; ``(1.25, 1.25)`` for one zoom) and/or turned grey, and the aligned
    crop is cut from the canvas itself, so that where the template reaches past the crop the canvas' flat grey
    shows, and the points are the ones the teacher finds on such a face (its errors included).

    Args:
        teacher: an object with ``detect(image_rgb) -> (boxes (N, 14) xyxy + five points, scores (N,))``, as
            :func:`singleshot.kindle.create_teacher` gives (RetinaFace, or a checkpoint with a landmark head).

    Raises:
        AttributeError_: no crops in ``src``, none of them readable, or ``out`` already holds images and
            ``force`` is off.
    """
    import json

    from tqdm import tqdm

    from singleshot.data.formats.folder import find_images
    from singleshot.landmarks import align_faces

    if zoom is not None and not 0 < zoom[0] <= zoom[1]:
        raise AttributeError_(f"zoom must be a range 0 < low <= high, got {zoom[0]:g}..{zoom[1]:g}")
    src, out = Path(src), Path(out)
    paths = find_images(src)
    if not paths:
        raise AttributeError_(f"{src}: no crops found")
    if out.is_dir() and find_images(out) and not force:
        raise AttributeError_(f"{out} already holds crops; pass --force to replace them")
    out.mkdir(parents=True, exist_ok=True)
    view = zoom is not None or grayscale
    zooms = np.random.default_rng(seed).uniform(*(zoom or (1.0, 1.0)), size=len(paths))
    aligned, unaligned, unreadable = 0, [], []
    half, grey = canvas // 2, 128  # the canvas: mid-grey, the crop over its middle half
    for path, crop_zoom in tqdm(zip(paths, zooms), total=len(paths), desc="aligning crops", unit="crop",
                                disable=not progress):
        decoded = decode_image(path)
        if decoded is None:
            unreadable.append(str(path))
            print(f"{path}: {image_problem(path) or 'cannot read the image'}; skipped")
            continue
        crop = decoded[0]
        if zoom is not None:
            crop = reframe(crop, float(crop_zoom))
        if grayscale:
            crop = np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        h, w = crop.shape[:2]
        enlarge = half / max(h, w)
        big = cv2.resize(crop, (round(w * enlarge), round(h * enlarge)), interpolation=cv2.INTER_LINEAR)
        page = np.full((canvas, canvas, 3), grey, np.uint8)
        top, left = (canvas - big.shape[0]) // 2, (canvas - big.shape[1]) // 2
        page[top : top + big.shape[0], left : left + big.shape[1]] = big
        boxes, scores = teacher.detect(page)
        boxes, scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64).reshape(-1)
        with_points = boxes.ndim == 2 and boxes.shape[1] >= 14 and len(scores) > 0
        if with_points:
            points = boxes[:, 4:14].reshape(-1, 5, 2)
            ok = np.isfinite(points).all(axis=(1, 2))
            with_points = bool(ok.any())
        if with_points:
            best = int(np.argmax(np.where(ok, scores, -np.inf)))
            if view:  # cut from the canvas: the flat grey beyond the crop shows, as in the photo
                result = align_faces(page, points[best][None], size, scale, fill_rgb=(grey,) * 3)[0]
            else:
                face = (points[best] - [left, top]) / enlarge  # back to the crop's pixels
                result = align_faces(crop, face[None], size, scale, fill_rgb=None)[0]
            aligned += 1
        else:  # kept as it was: no labelled crop is lost, and the count says how many
            result = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if max(h, w) > size
                                else cv2.INTER_LINEAR)
            unaligned.append(str(path))
        target = out / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        # the same file names (lists of crops, such as exclusion lists, still apply)
        cv2.imwrite(str(target), cv2.cvtColor(result, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if len(unreadable) == len(paths):
        raise AttributeError_(f"{src}: none of its {len(paths)} image file(s) could be read")
    (out / ALIGN_FILE).write_text(json.dumps({
        "size": size, "scale": scale, "canvas": canvas, "teacher": getattr(teacher, "name", str(teacher)),
        "crops": len(paths) - len(unreadable), "aligned": aligned, "unaligned": len(unaligned),
        "zoom": list(zoom) if zoom is not None else None, "grayscale": grayscale, "seed": seed,
    }, indent=1))
    return AlignReport(len(paths) - len(unreadable), aligned, unaligned, unreadable, str(out))


@dataclass
class CropReport:
    """What :func:`cut_face_crops` wrote."""

    images: int
    crops: int
    skipped_small: int
    skipped_ignore: int
    unreadable: list[str]
    out: str


def cut_face_crops(spec: str, out: str | Path, size: int = 64, crop_scale: float = 1.0, min_size: float = 40.0,
                   force: bool = False, progress: bool = True, data_options: dict | None = None,
                   align: str | None = None, label: str | None = None) -> CropReport:
    """Cut the faces of a detection dataset into square crops, as :class:`AttributeClassifier` cuts detections.

    Unlabelled crops for distillation (``AttributeConfig.unlabeled``) or for labelling a new attribute by hand.
    Faces marked ignore and faces whose long side is under ``min_size`` pixels (too blurred once enlarged) are
    skipped and counted. ``out`` gets one JPEG per face, ``<image key>_<face index>.jpg`` with ``/`` as ``__``.

    ``align``: a point network (:class:`singleshot.points.PointRefiner`'s ``weights``: ``face``, the bundled one,
    or a checkpoint) whose five points on each box align its crop onto the template (:func:`aligned_crops`,
    ``crop_scale`` x the template crop), as an attribute trained with ``align: true`` sees detections.

    ``label``: a per-face 0 / 1 column of the dataset (``extra[label]``, e.g. MTFL's ``smile``): each crop goes to
    ``out/0/`` or ``out/1/`` by it, a labelled set for ``AttributeConfig.train`` / ``test``.

    Raises:
        AttributeError_: ``out`` already holds images and ``force`` is off, or a face has no ``label`` column;
        DataError: an unreadable dataset.
    """
    from tqdm import tqdm

    from singleshot.data.formats import load_annotations
    from singleshot.data.formats.folder import find_images

    out = Path(out)
    if out.is_dir() and find_images(out) and not force:
        raise AttributeError_(f"{out} already holds crops; pass --force to add to it (same names are replaced)")
    dataset = load_annotations(spec, **(data_options or {}))  # before creating the folder: a bad spec leaves nothing behind
    if label is not None:
        unlabelled = next((s for s in dataset.samples if len(s.boxes_xyxy) and label not in s.extra), None)
        if unlabelled is not None:
            raise AttributeError_(f"{unlabelled.image_path}: its faces have no {label!r} label in {spec} (columns: "
                                  f"{', '.join(sorted(unlabelled.extra)) or 'none'})")
        for outcome in ("0", "1"):
            (out / outcome).mkdir(parents=True, exist_ok=True)
    refiner = None
    if align is not None:
        from singleshot.points import PointRefiner

        refiner = PointRefiner(align, runtime="auto")
    out.mkdir(parents=True, exist_ok=True)
    crops = small = ignored = 0
    unreadable = []
    for sample in tqdm(dataset.samples, desc="cutting crops", unit="image", disable=not progress):
        boxes = np.asarray(sample.boxes_xyxy, np.float64).reshape(-1, 4)
        keep = ~np.asarray(sample.ignore, bool)
        ignored += int((~keep).sum())
        long_side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        small += int((keep & (long_side < min_size)).sum())
        keep &= long_side >= min_size
        if not keep.any():
            continue
        # upright, as the dataset's boxes were drawn on it (EXIF orientation applied, as the detector's loaders do)
        decoded = decode_image(sample.image_path)
        if decoded is None:
            unreadable.append(str(sample.image_path))
            print(f"{sample.image_path}: {image_problem(sample.image_path) or 'cannot read the image'}; skipped")
            continue
        rgb = decoded[0]
        stem = Path(sample.key).with_suffix("").as_posix().replace("/", "__")
        if refiner is None:
            cut = square_crops(rgb, boxes[keep], size, crop_scale)
        else:
            cut = aligned_crops(rgb, boxes[keep], refiner.predict(rgb, boxes[keep]), size, crop_scale)
        for k, crop in zip(np.flatnonzero(keep), cut):
            folder = out if label is None else out / str(int(sample.extra[label][k] > 0))
            cv2.imwrite(str(folder / f"{stem}_{k}.jpg"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            crops += 1
    if refiner is not None:  # as `attribute align` records it: an aligned attribute reads its scale here
        import json

        (out / ALIGN_FILE).write_text(json.dumps({"size": size, "scale": crop_scale, "points": str(align),
                                                  "data": spec, "crops": crops}, indent=1))
    return CropReport(len(dataset.samples), crops, small, ignored, unreadable, str(out))
