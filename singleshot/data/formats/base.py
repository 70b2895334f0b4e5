"""What every dataset format shares: the error type, and turning raw boxes into a checked :class:`Sample`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from singleshot.errors import SingleshotError
from singleshot.structures import AnnotationReport, Sample


class DataError(SingleshotError):
    """Input that cannot be read at all (missing or unparseable annotation file).

    The message is one line that names the file (and line) and the problem; the CLI prints it without a traceback.
    """


def relative_key(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with ``/`` separators (the predictions-JSON key)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def make_sample(
    image_path: Path,
    key: str,
    boxes_xyxy: np.ndarray | list,
    labels: np.ndarray | list,
    ignore: np.ndarray | list | None,
    report: AnnotationReport,
    where: str,
    width: int | None = None,
    height: int | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Sample:
    """Build a checked :class:`Sample`.

    Boxes are clipped to the image when its size is known (each clipped box is counted in ``report``); boxes
    with no area left (or NaN or infinite coordinates) are dropped and reported as ``where: ...``. ``extra`` columns are
    filtered with the boxes.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    labels_arr = np.asarray(labels, dtype=np.int64).reshape(-1)
    ignore_arr = np.zeros(len(boxes), dtype=bool) if ignore is None else np.asarray(ignore, dtype=bool).reshape(-1)
    extra = {k: np.asarray(v) for k, v in (extra or {}).items()}
    if width is not None and height is not None and len(boxes):
        clipped = boxes.copy()
        np.clip(clipped[:, 0::2], 0, width, out=clipped[:, 0::2])
        np.clip(clipped[:, 1::2], 0, height, out=clipped[:, 1::2])
        changed = np.any(clipped != boxes, axis=1) & ~np.isnan(boxes).any(axis=1)
        if changed.any():
            report.clipped_boxes += int(changed.sum())
            report.note(where, f"{int(changed.sum())} box(es) outside the {width}x{height} image, clipped")
        boxes = clipped
    # False for NaN too; an infinite coordinate (``inf`` in a file, or float32 overflow) is no usable box either
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]) & np.isfinite(boxes).all(axis=1)
    if not keep.all():
        report.dropped_boxes += int((~keep).sum())
        report.note(where, f"{int((~keep).sum())} box(es) with no area dropped")
        boxes, labels_arr, ignore_arr = boxes[keep], labels_arr[keep], ignore_arr[keep]
        extra = {k: v[keep] for k, v in extra.items()}
    return Sample(
        image_path=image_path,
        key=key,
        boxes_xyxy=boxes,
        labels=labels_arr,
        ignore=ignore_arr,
        width=width,
        height=height,
        extra=extra,
    )


def read_text(path: Path, report: AnnotationReport | None = None) -> str:
    """The text of an annotation file: UTF-8 (a byte-order mark allowed), else Latin-1.

    Annotation files come from many tools and some write Windows code pages; Latin-1 maps every byte to one
    character, so a file that is not UTF-8 still parses with its line numbers intact, and only the non-ASCII
    characters (in image names, class names) may read differently. The fallback is noted in ``report`` with the
    first line that is not UTF-8, so it never passes unseen.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if report is not None:
            line = data.count(b"\n", 0, err.start) + 1
            report.note(f"{path}:{line}", f"not UTF-8 (byte 0x{data[err.start]:02x}); the file is read as Latin-1")
        return data.decode("latin-1")


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a readable file, else a :class:`DataError` naming it."""
    if not path.exists():
        raise DataError(f"{path}: {what} not found")
    if not path.is_file():
        raise DataError(f"{path}: {what} is not a file")
    return path
