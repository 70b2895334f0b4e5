"""Simple CSV boxes: ``image,width,height,x1,y1,x2,y2[,label[,ignore]]``, one row per object (``faces/face_counting``).

``PATH`` is the CSV file or a folder holding ``boxes.csv``. Image names are looked up in ``images/`` next to the
CSV, then next to the CSV itself. A row whose box fields are empty lists an image without objects. ``label``
is a class name (default ``face``); classes are numbered from 1 in order of first appearance. ``ignore`` (``0``
or ``1``, default 0) marks a region that is neither a positive nor a negative in training and is not counted as a
miss in evaluation (kindled datasets use it for boxes the teacher was unsure of). Ten more columns
``lx1,ly1,...,lx5,ly5`` after ``ignore`` (the header names them) give each face's five landmarks in pixels (left
eye, right eye, nose, left and right mouth corner; empty cells: unknown), read into ``extra["landmarks"]``.
"""

from __future__ import annotations

import csv
import io
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from singleshot.atomic import atomic_write
from singleshot.data.formats.base import DataError, make_sample, read_text, relative_key, require_file
from singleshot.registry import DATASET_FORMATS
from singleshot.structures import AnnotationReport, AnnotationSet

_HEADER = ["image", "width", "height", "x1", "y1", "x2", "y2"]
#: The optional landmark columns, after ``label`` and ``ignore``.
LANDMARK_HEADER = [f"l{axis}{i}" for i in range(1, 6) for axis in "xy"]


def _image_path(folder: Path, name: str) -> Path:
    candidate = folder / "images" / name
    return candidate if candidate.exists() or not (folder / name).exists() else folder / name


@DATASET_FORMATS.register("csv")
def read_csv(path: Path, default_label: str = "face") -> AnnotationSet:
    """Read a boxes CSV (see the module docstring)."""
    path = Path(path)
    csv_path = require_file(path / "boxes.csv" if path.is_dir() else path, "boxes CSV")
    root = csv_path.parent
    report = AnnotationReport()
    rows: OrderedDict[str, dict] = OrderedDict()
    class_names = ["background"]
    reader = csv.reader(io.StringIO(read_text(csv_path, report), newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{csv_path}: empty file (expected a header {','.join(_HEADER)}[,label])")
        if [h.strip().lower() for h in header[:7]] != _HEADER:
            raise DataError(f"{csv_path}:1: expected header {','.join(_HEADER)}[,label], got {','.join(header)!r}")
        with_points = [h.strip().lower() for h in header[9:19]] == LANDMARK_HEADER
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            where = f"{csv_path}:{reader.line_num}"  # the physical line: a quoted field may span lines
            if len(row) < 7:
                raise DataError(f"{where}: expected at least 7 fields, got {len(row)}")
            name = row[0].strip()
            try:
                width, height = int(float(row[1])), int(float(row[2]))
            except (ValueError, OverflowError):  # OverflowError: "inf"
                raise DataError(f"{where}: width and height must be numbers, got {row[1]!r}, {row[2]!r}") from None
            entry = rows.setdefault(
                name,
                {"width": width, "height": height, "boxes": [], "labels": [], "ignore": [], "points": [],
                 "line": f"{where} ({name})"},
            )
            if all(not c.strip() for c in row[3:7]):
                continue  # an image listed without objects
            try:
                box = [float(v) for v in row[3:7]]
            except ValueError:
                raise DataError(f"{where}: box coordinates must be numbers, got {row[3:7]}") from None
            label = row[7].strip() if len(row) > 7 and row[7].strip() else default_label
            if label not in class_names:
                class_names.append(label)
            flag = row[8].strip() if len(row) > 8 else ""
            if flag not in ("", "0", "1"):
                raise DataError(f"{where}: ignore must be 0 or 1, got {flag!r}")
            entry["boxes"].append(box)
            entry["labels"].append(class_names.index(label))
            entry["ignore"].append(flag == "1")
            if with_points:
                cells = [c.strip() for c in (row[9:19] + [""] * 10)[:10]]
                try:
                    entry["points"].append([float(c) if c else float("nan") for c in cells])
                except ValueError:
                    raise DataError(f"{where}: landmark coordinates must be numbers or empty, got {cells}") from None
    except csv.Error as err:  # an unclosed quote, a field over the csv module's size limit
        raise DataError(f"{csv_path}:{reader.line_num}: not a valid CSV row ({err})") from None
    if not rows:
        raise DataError(f"{csv_path}: no rows after the header")
    samples = []
    for name, entry in rows.items():
        image_path = _image_path(root, name)
        samples.append(
            make_sample(
                image_path, relative_key(image_path, root), entry["boxes"], entry["labels"], entry["ignore"], report,
                entry["line"], width=entry["width"], height=entry["height"],
                extra={"landmarks": np.asarray(entry["points"], np.float32).reshape(-1, 5, 2)} if with_points else None,
            )
        )
    return AnnotationSet(root=root, samples=samples, class_names=class_names, format="csv", report=report)


def write_csv(data: AnnotationSet, path: Path) -> Path:
    """Write ``data`` as ``PATH/boxes.csv`` (the format :func:`read_csv` reads): label and ignore columns, and the
    landmark columns when the samples carry ``extra["landmarks"]``. Image names are the samples' keys relative to
    the set's root; ``PATH/images`` links to that root's images when it is not ``PATH`` itself."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with_points = any("landmarks" in s.extra for s in data.samples)
    root = Path(data.root)
    images = root / "images" if (root / "images").is_dir() else root
    if images.resolve() != (path / "images").resolve():
        link_images(path, images)
    with atomic_write(path / "boxes.csv", "w", newline="") as f:  # a kill mid-write keeps the previous file whole
        writer = csv.writer(f)
        writer.writerow(_HEADER + ["label", "ignore"] + (LANDMARK_HEADER if with_points else []))
        for s in data.samples:
            name = os.path.relpath(Path(s.image_path).resolve(), images.resolve())
            size = [s.width or "", s.height or ""]
            if not len(s):
                writer.writerow([name, *size, "", "", "", "", "", ""])
            points = s.extra.get("landmarks")
            for i in range(len(s)):
                row = [name, *size, *(f"{v:.1f}" for v in s.boxes_xyxy[i]), data.class_names[s.labels[i]],
                       int(s.ignore[i])]
                if with_points:
                    values = points[i].reshape(-1) if points is not None else np.full(10, np.nan)
                    row += ["" if np.isnan(v) else f"{v:.1f}" for v in values]
                writer.writerow(row)
    return path


def link_images(out_dir: Path, images_dir: Path) -> None:
    """Make ``OUT/images`` a relative link to ``images_dir`` (a written dataset reads the photos where they are)."""
    link = out_dir / "images"
    target = os.path.relpath(images_dir.resolve(), out_dir.resolve())
    if link.is_symlink():
        if os.readlink(link) == target:
            return
        link.unlink()
    elif link.exists():
        raise DataError(f"{link} exists and is not the link to the images; move it or use another --out")
    link.symlink_to(target, target_is_directory=True)
