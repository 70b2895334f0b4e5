"""Dataset formats. Each module registers a reader ``(path, **options) -> AnnotationSet`` in DATASET_FORMATS.

Use :func:`load_annotations` with a ``FORMAT:PATH`` spec, e.g. ``csv:../shared/data/faces/face_counting/val``.
"""

from __future__ import annotations

from pathlib import Path

from singleshot.data.formats.base import DataError, make_sample, relative_key
from singleshot.registry import DATASET_FORMATS
from singleshot.structures import AnnotationSet

# Importing the modules registers their formats.
from singleshot.data.formats import coco, dlib, fddb, folder, points, simple, voc, widerface, yolo  # noqa: F401  isort: skip


def parse_spec(spec: str) -> tuple[str, Path]:
    """Split ``FORMAT:PATH`` into the format name and the path; a clear error when malformed."""
    name, sep, path = spec.partition(":")
    if not sep or not name or not path:
        raise DataError(f"{spec!r}: expected FORMAT:PATH, e.g. csv:data/faces (formats: {', '.join(list_formats())})")
    if name not in DATASET_FORMATS:
        try:
            DATASET_FORMATS.get(name)
        except KeyError as err:
            raise DataError(err.args[0]) from None
    return name, Path(path)


def load_annotations(spec: str, **options) -> AnnotationSet:
    """Read a dataset given as ``FORMAT:PATH`` with the registered reader of that format."""
    name, path = parse_spec(spec)
    return DATASET_FORMATS.get(name)(path, **options)


def list_formats() -> list[str]:
    """Registered format names."""
    return DATASET_FORMATS.names()


__all__ = ["DataError", "list_formats", "load_annotations", "make_sample", "parse_spec", "relative_key"]
