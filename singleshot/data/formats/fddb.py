"""FDDB (Jain & Learned-Miller, 2010): faces annotated as ellipses, in ten folds.

``PATH`` is the FDDB root, one ``FDDB-folds/`` folder of the root, or one ``FDDB-fold-NN-ellipseList.txt`` file.
The official layout is::

    ROOT/FDDB-folds/FDDB-fold-NN-ellipseList.txt   annotations of fold NN (NN = 01..10)
    ROOT/FDDB-folds/FDDB-fold-NN.txt               the image list of fold NN (only cross-checked)
    ROOT/originalPics/<name>.jpg                   images, <name> like ``2002/08/11/big/img_591``

If ``ROOT/originalPics`` does not exist the images are looked up at ``ROOT/<name>.jpg``. The sample key is the image
path relative to ROOT (``originalPics/2002/08/11/big/img_591.jpg``, or ``2002/08/11/big/img_591.jpg`` without
``originalPics``). Images are not opened: ``Sample.width`` and ``height`` stay ``None``.

Each ellipse list holds records ``<name>``, ``<number of faces n>``, then n lines
``major_axis_radius minor_axis_radius angle center_x center_y 1`` (README of FDDB-folds.tgz).

Ellipse to box. ``angle`` (radians) is the angle of the MAJOR axis from the image x axis. The official ``evaluate``
program draws an annotation with ``cvEllipse(mask, (cx, cy), (major, minor), angle_in_degrees, ...)``
(``EllipsesSingleImage.cpp`` stores ``(pi - angle) * 180 / pi`` and ``EllipseR::display`` passes
``180 - that``), and OpenCV puts its first axis (``major``) along ``(cos t, sin t)`` in image coordinates (y
down). The box is the exact axis-aligned bounding box of that rotated ellipse: with a = major radius,
b = minor radius, t = angle::

    half_width  = sqrt(a^2 cos^2 t + b^2 sin^2 t)
    half_height = sqrt(a^2 sin^2 t + b^2 cos^2 t)
    box = (cx - half_width, cy - half_height, cx + half_width, cy + half_height)

FDDB's angles are mostly near +-pi/2, so the major axis is vertical and the boxes are taller than wide (99.8 % of
fold 01). The box is not clipped (image sizes are unknown at parse time); ellipses of faces cut by the image edge
reach outside it. The ellipse parameters are kept per face in ``Sample.extra`` (``major_radius``,
``minor_radius``, ``angle``, ``center_x``, ``center_y``) for the FDDB evaluation, which scores against the
ellipses themselves. One class, ``face`` (label 1); FDDB has no ignore flag.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from singleshot.data.formats.base import DataError, make_sample, read_text, require_file
from singleshot.registry import DATASET_FORMATS
from singleshot.structures import AnnotationReport, AnnotationSet, Sample

FOLDS_DIR = "FDDB-folds"
IMAGES_DIR = "originalPics"
_ELLIPSE_FILE = re.compile(r"FDDB-fold-(\d+)-ellipseList\.txt$")
EXTRA_COLUMNS = ("major_radius", "minor_radius", "angle", "center_x", "center_y")


def ellipse_to_box(
    major_radius: np.ndarray, minor_radius: np.ndarray, angle: np.ndarray, center_x: np.ndarray, center_y: np.ndarray
) -> np.ndarray:
    """``(K, 4)`` float64 xyxy boxes: the exact axis-aligned bounding boxes of ``K`` rotated ellipses.

    Arguments are ``(K,)`` arrays (or scalars): radii in pixels, ``angle`` of the major axis from the x axis in
    radians (FDDB's convention, see the module docstring), centres in pixels.
    """
    a, b, t = np.asarray(major_radius, float), np.asarray(minor_radius, float), np.asarray(angle, float)
    cos2, sin2 = np.cos(t) ** 2, np.sin(t) ** 2
    half_w = np.sqrt(a * a * cos2 + b * b * sin2)
    half_h = np.sqrt(a * a * sin2 + b * b * cos2)
    cx, cy = np.asarray(center_x, float), np.asarray(center_y, float)
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1).reshape(-1, 4)


def _locate(path: Path, folds: Sequence[int] | None) -> tuple[Path, list[Path]]:
    """The dataset root and the ellipse-list files to read."""
    if path.is_file():
        if folds is not None:
            raise DataError(f"{path}: folds= selects files in an FDDB root folder; this is one ellipse-list file")
        root = path.parent.parent if path.parent.name == FOLDS_DIR else path.parent
        return root, [path]
    if not path.is_dir():
        raise DataError(f"{path}: FDDB root folder or ellipse-list file not found")
    if (path / FOLDS_DIR).is_dir():
        root, folds_dir = path, path / FOLDS_DIR
    else:  # PATH is the FDDB-folds folder itself (or any folder holding the ellipse lists)
        root = path.parent if path.name == FOLDS_DIR else path
        folds_dir = path
    if folds is None:
        files = sorted(p for p in folds_dir.iterdir() if _ELLIPSE_FILE.match(p.name))
        if not files:
            raise DataError(f"{folds_dir}: no FDDB-fold-NN-ellipseList.txt files (expected the FDDB-folds layout)")
        return root, files
    files = []
    for fold in folds:
        if not 1 <= int(fold) <= 99:
            raise DataError(f"{folds_dir}: fold {fold!r} out of range (FDDB folds are 1..10)")
        files.append(require_file(folds_dir / f"FDDB-fold-{int(fold):02d}-ellipseList.txt", f"FDDB fold {fold}"))
    return root, files


def _parse_face(line: str, where: str) -> list[float]:
    fields = line.split()
    if len(fields) not in (5, 6):
        raise DataError(
            f"{where}: expected 'major_radius minor_radius angle center_x center_y 1', got {len(fields)} field(s)"
        )
    try:
        values = [float(v) for v in fields[:5]]
    except ValueError:
        raise DataError(f"{where}: ellipse fields must be numbers, got {line.strip()!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise DataError(f"{where}: ellipse fields must be finite, got {line.strip()!r}")
    return values


def _read_ellipse_list(file: Path, report: AnnotationReport) -> list[tuple[str, list[list[float]], str]]:
    """``(image name, [[major, minor, angle, cx, cy], ...], 'file:line')`` per record, in file order."""
    lines = read_text(file, report).splitlines()
    records = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():  # tolerate blank lines between records (and at the end)
            i += 1
            continue
        name, where = lines[i].strip(), f"{file}:{i + 1}"
        if len(name.split()) != 1:
            raise DataError(f"{where}: expected an image name like 2002/08/11/big/img_591, got {name!r}")
        if i + 1 >= len(lines):
            raise DataError(f"{file}:{i + 2}: file ends after image name {name!r}; expected the number of faces")
        count_text = lines[i + 1].strip()
        if not count_text.isdigit():
            raise DataError(f"{file}:{i + 2}: expected the number of faces of {name!r}, got {count_text!r}")
        count = int(count_text)
        if i + 2 + count > len(lines):
            raise DataError(
                f"{file}:{len(lines)}: file ends inside {name!r}: {count} face line(s) announced, "
                f"{len(lines) - i - 2} present"
            )
        faces = [_parse_face(lines[i + 2 + k], f"{file}:{i + 3 + k}") for k in range(count)]
        records.append((name.removesuffix(".jpg"), faces, where))
        i += 2 + count
    if not records:
        raise DataError(f"{file}: no images (expected FDDB ellipse-list records)")
    return records


def _check_image_list(ellipse_file: Path, names: list[str], report: AnnotationReport) -> None:
    """Compare with the fold's ``FDDB-fold-NN.txt`` list when it is there; differences are only reported."""
    match = _ELLIPSE_FILE.match(ellipse_file.name)
    list_file = ellipse_file.with_name(f"FDDB-fold-{match.group(1)}.txt") if match else None
    if list_file is None or not list_file.is_file():
        return
    listed = [line.strip().removesuffix(".jpg") for line in read_text(list_file, report).splitlines() if line.strip()]
    repeated = sorted(name for name, n in Counter(listed).items() if n > 1)
    if repeated:
        report.note(str(list_file), f"{len(repeated)} image(s) listed more than once (e.g. {repeated[0]})")
    missing = sorted(set(listed) - set(names))
    if missing:
        report.note(str(list_file), f"{len(missing)} listed image(s) have no annotation (e.g. {missing[0]})")
    unlisted = sorted(set(names) - set(listed))
    if unlisted:
        report.note(str(ellipse_file), f"{len(unlisted)} annotated image(s) not in {list_file.name}")


@DATASET_FORMATS.register("fddb")
def read_fddb(path: Path, folds: Sequence[int] | None = None) -> AnnotationSet:
    """Read FDDB ellipse annotations as boxes (see the module docstring for the layout and the ellipse rule).

    Args:
        path: the FDDB root, its ``FDDB-folds`` folder, or one ``FDDB-fold-NN-ellipseList.txt``.
        folds: fold numbers to read (1..10; default: every ellipse list found).
    """
    root, files = _locate(Path(path), folds)
    image_dir = root / IMAGES_DIR if (root / IMAGES_DIR).is_dir() else root
    key_prefix = f"{IMAGES_DIR}/" if image_dir != root else ""
    report = AnnotationReport()
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    for file in files:
        records = _read_ellipse_list(file, report)
        _check_image_list(file, [name for name, _, _ in records], report)
        for name, faces, where in records:
            if name in seen:
                report.skipped_images += 1
                report.note(where, f"image {name!r} already annotated at {seen[name]}; this record skipped")
                continue
            seen[name] = where
            params = np.asarray(faces, dtype=np.float64).reshape(-1, 5)
            boxes = ellipse_to_box(*params.T)
            # A non-positive radius is a degenerate ellipse: give it an empty box so make_sample drops (and reports) it.
            degenerate = (params[:, 0] <= 0) | (params[:, 1] <= 0)
            boxes[degenerate, 2:] = boxes[degenerate, :2]
            samples.append(
                make_sample(
                    image_dir / f"{name}.jpg", f"{key_prefix}{name}.jpg", boxes, np.ones(len(params)), None, report,
                    where, extra={col: params[:, j] for j, col in enumerate(EXTRA_COLUMNS)},
                )
            )
    return AnnotationSet(root=root, samples=samples, class_names=["background", "face"], format="fddb", report=report)
