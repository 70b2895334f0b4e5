"""Dataset formats. Each module registers a reader ``(path, **options) -> AnnotationSet`` in DATASET_FORMATS.

Use :func:`load_annotations` with a ``FORMAT:PATH`` spec, e.g. ``csv:../shared/data/faces/face_counting/val``.
"""

from __future__ import annotations

import dataclasses
import hashlib
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


#: Options every format takes, beside its reader's own: a part of a set held out for choosing models.
HOLD_OUT_OPTIONS = ("hold_out", "take")


def held_out(key: str, fraction: float) -> bool:
    """Whether the image ``key`` falls in the held-out ``fraction`` of its set: decided by the MD5 of the key alone,
    so the same images on every machine and whatever else the set holds (a set that grows keeps its old split)."""
    return int(hashlib.md5(key.encode()).hexdigest()[:8], 16) / 16**8 < fraction


def load_annotations(spec: str, hold_out: float | None = None, take: str = "rest", **options) -> AnnotationSet:
    """Read a dataset given as ``FORMAT:PATH`` with the registered reader of that format.

    ``hold_out`` (a fraction in (0, 1)) sets that share of the images aside by :func:`held_out`, for choosing
    models on a set that has no validation split of its own (or keeping its validation split for one final
    figure): ``take="rest"`` (the default) returns the others, ``take="held_out"`` only those. The remaining
    ``options`` go to the format's reader.
    """
    if take not in ("rest", "held_out"):
        raise DataError(f"{spec}: take must be 'rest' or 'held_out', got {take!r}")
    if hold_out is not None and not (isinstance(hold_out, (int, float)) and 0 < hold_out < 1):
        raise DataError(f"{spec}: hold_out must be a fraction between 0 and 1, got {hold_out!r}")
    if take == "held_out" and hold_out is None:
        raise DataError(f"{spec}: take=held_out needs hold_out (the fraction held out)")
    name, path = parse_spec(spec)
    data = DATASET_FORMATS.get(name)(path, **options)
    if hold_out is None:
        return data
    keep = [s for s in data.samples if held_out(s.key, hold_out) == (take == "held_out")]
    return dataclasses.replace(data, samples=keep)


def list_formats() -> list[str]:
    """Registered format names."""
    return DATASET_FORMATS.names()


__all__ = ["HOLD_OUT_OPTIONS", "DataError", "held_out", "list_formats", "load_annotations", "make_sample", "parse_spec", "relative_key"]
