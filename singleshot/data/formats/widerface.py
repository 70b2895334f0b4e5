"""WIDER FACE (Yang et al., CVPR 2016): face boxes with six attributes, in the official ``bbx_gt`` text files.

``PATH`` is the WIDER root, its ``wider_face_split/`` folder, or one ``wider_face_<split>_bbx_gt.txt`` file (the split
is then taken from the file name). The official layout is::

    ROOT/wider_face_split/wider_face_<split>_bbx_gt.txt   annotations (split = train or val)
    ROOT/WIDER_<split>/images/<event>/<name>.jpg          images, e.g. 0--Parade/0_Parade_marchingband_1_465.jpg

Each ``bbx_gt`` file holds records (``wider_face_split/readme.txt``)::

    <event>/<name>.jpg
    <number of faces n>
    x1 y1 w h blur expression illumination invalid occlusion pose     (n lines, integers)

with ``blur`` 0 clear / 1 normal / 2 heavy, ``expression`` 0 typical / 1 exaggerated, ``illumination`` 0 normal /
1 extreme, ``invalid`` 0 valid / 1 invalid, ``occlusion`` 0 none / 1 partial / 2 heavy, ``pose`` 0 typical /
1 atypical. Images without faces come in two spellings across releases: a count of ``0`` followed by one dummy
line of ten zeros (read as no box), or a count of ``1`` with an all-zero box (the release in
``shared/data/annotations_only/widerface``: 4 such images in val, 4 in train), which is dropped as an empty box.

Boxes become xyxy pixels ``[x1, y1, x1 + w, y1 + h]``. Boxes with zero (or negative) width or height exist in the
official files (11 in val, 31 in train, the all-zero boxes above included): :func:`make_sample` drops them and counts
them in the report, which is what training and statistics want. The official evaluation does not read these files
but ``wider_face_val.mat`` (see :mod:`singleshot.evaluation.widerface`), so it keeps every face whatever its size.

The six attributes are kept per face in ``Sample.extra`` (int64 arrays named as above; ``-1`` where a line gives
only the four coordinates). ``ignore = invalid == 1``. One class, ``face`` (label 1). The sample key is the image
path relative to ROOT (``WIDER_val/images/0--Parade/0_Parade_marchingband_1_465.jpg``). Images are not opened
(they are often absent): ``Sample.width`` and ``height`` stay ``None`` and no box is clipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from singleshot.data.formats.base import DataError, make_sample, read_text, relative_key, require_file
from singleshot.registry import DATASET_FORMATS
from singleshot.structures import AnnotationReport, AnnotationSet

SPLIT_DIR = "wider_face_split"
ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
_GT_FILE = re.compile(r"wider_face_(\w+?)_bbx_gt\.txt$")


def gt_file_name(split: str) -> str:
    """The official annotation file name of ``split`` (``wider_face_val_bbx_gt.txt`` for ``val``)."""
    return f"wider_face_{split}_bbx_gt.txt"


def image_dir(root: Path, split: str) -> Path:
    """``ROOT/WIDER_<split>/images``: the folder holding one sub-folder of images per event."""
    return root / f"WIDER_{split}" / "images"


def _locate(path: Path, split: str) -> tuple[Path, Path, str]:
    """The dataset root, the ``bbx_gt`` file to read and its split."""
    if path.is_file():
        match = _GT_FILE.search(path.name)
        if match is None:
            raise DataError(f"{path}: expected a file named wider_face_<split>_bbx_gt.txt (or the WIDER root folder)")
        # ROOT/wider_face_split/<file>: the root is the folder above the file's folder.
        return path.parent.parent, path, match.group(1)
    if not path.is_dir():
        raise DataError(f"{path}: WIDER FACE root folder or wider_face_<split>_bbx_gt.txt file not found")
    name = gt_file_name(split)
    if path.name == SPLIT_DIR and (path / name).is_file():
        return path.parent, path / name, split
    return path, require_file(path / SPLIT_DIR / name, f"WIDER FACE {split} annotations"), split


def _numbers(line: str) -> list[float] | None:
    """The line's whitespace-separated numbers, or None when a token is not a number."""
    try:
        return [float(tok) for tok in line.split()]
    except ValueError:
        return None


def parse_bbx_gt(gt_path: Path, report: AnnotationReport | None = None) -> list[tuple[str, int, np.ndarray]]:
    """Parse a ``wider_face_<split>_bbx_gt.txt`` file.

    Returns one ``(name, line_no, rows)`` per image, in file order: ``name`` as written (``<event>/<file>.jpg``),
    ``line_no`` the 1-based line of the name, ``rows`` a ``(n, 10)`` float64 array ``x1 y1 w h blur expression
    illumination invalid occlusion pose`` (attributes ``-1`` where a line gives only the four coordinates). The
    dummy line that follows a count of 0 is consumed and gives no row. Raises :class:`DataError` naming the file
    and line on malformed input.
    """
    text = read_text(gt_path, report)  # a file that is not UTF-8 is read as Latin-1, noted in ``report``
    # Line numbers of the non-blank lines (blank lines, e.g. a trailing one, carry nothing).
    lines = [(no, ln.strip()) for no, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not lines:
        raise DataError(f"{gt_path}: empty file (expected records: image name, face count, face lines)")
    records: list[tuple[str, int, np.ndarray]] = []
    i = 0
    while i < len(lines):
        name_no, name = lines[i]
        if _numbers(name) is not None:
            raise DataError(f"{gt_path}:{name_no}: expected an image name (<event>/<file>.jpg), got {name!r}")
        if i + 1 >= len(lines):
            raise DataError(f"{gt_path}:{name_no}: image {name!r} has no face-count line")
        count_no, count_text = lines[i + 1]
        try:
            count = int(count_text)
        except ValueError:
            raise DataError(
                f"{gt_path}:{count_no}: expected the number of faces of {name!r}, got {count_text!r}"
            ) from None
        if count < 0:
            raise DataError(f"{gt_path}:{count_no}: negative number of faces ({count}) for {name!r}")
        i += 2
        # No more rows than lines left: a hostile count (1e20) must end in the error below, not in a huge allocation.
        rows = np.zeros((min(count, len(lines) - i), 10), dtype=np.float64)
        for k in range(count):
            if i >= len(lines):
                raise DataError(
                    f"{gt_path}:{count_no}: {name!r} announces {count} faces but the file ends after {k} face line(s)"
                )
            no, line = lines[i]
            values = _numbers(line)
            if values is None:
                raise DataError(
                    f"{gt_path}:{no}: {name!r} announces {count} faces (line {count_no}) but line {no} is not a face "
                    f"line after {k}: {line!r}"
                )
            if len(values) < 4:
                raise DataError(f"{gt_path}:{no}: expected x1 y1 w h [6 attributes], got {len(values)} number(s)")
            rows[k, : min(len(values), 10)] = values[:10]
            if len(values) < 10:
                rows[k, len(values) :] = -1  # attributes not given
            i += 1
        # Official releases write one dummy line of ten zeros after a count of 0: consume it, it is no face.
        if count == 0 and i < len(lines) and _numbers(lines[i][1]) is not None:
            i += 1
        records.append((name, name_no, rows))
    return records


@DATASET_FORMATS.register("widerface")
def read_widerface(path: Path, split: str = "val") -> AnnotationSet:
    """Read WIDER FACE annotations of ``split`` (see the module docstring for the layout and conventions)."""
    root, gt_path, split = _locate(Path(path), split)
    report = AnnotationReport()
    images = image_dir(root, split)
    samples = []
    for name, line_no, rows in parse_bbx_gt(gt_path, report):
        image_path = images / name
        boxes = np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:4]], axis=1)  # x1 y1 w h -> x1 y1 x2 y2
        attributes = {attr: rows[:, 4 + j].astype(np.int64) for j, attr in enumerate(ATTRIBUTES)}
        samples.append(
            make_sample(
                image_path,
                relative_key(image_path, root),
                boxes,
                np.ones(len(rows), dtype=np.int64),
                attributes["invalid"] == 1,
                report,
                f"{gt_path}:{line_no}",
                extra=attributes,
            )
        )
    return AnnotationSet(
        root=root, samples=samples, class_names=["background", "face"], format="widerface", report=report
    )
