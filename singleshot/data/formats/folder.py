"""A plain folder of images, searched recursively (for inference and pseudo-labelling): samples without boxes."""

from __future__ import annotations

from pathlib import Path

from singleshot.data.formats.base import DataError, make_sample, relative_key
from singleshot.registry import DATASET_FORMATS
from singleshot.structures import AnnotationReport, AnnotationSet

#: File suffixes treated as images (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def find_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, in sorted order."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


@DATASET_FORMATS.register("folder")
def read_folder(path: Path) -> AnnotationSet:
    """Every image under ``path`` (recursively) as a sample with no objects."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    images = find_images(root)
    if not images:
        raise DataError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    report = AnnotationReport()
    samples = [make_sample(p, relative_key(p, root), [], [], None, report, str(p)) for p in images]
    return AnnotationSet(root=root, samples=samples, class_names=["background"], format="folder", report=report)
