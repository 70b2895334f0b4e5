"""COCO JSON (``instances_*.json``): ``images``, ``annotations`` (``bbox`` as x, y, w, h), ``categories``.

``PATH`` is the JSON file; images are looked up under ``image_root`` (default: an ``images/`` folder next to the
JSON if there is one, else the JSON's folder), by each image's ``file_name``. Categories become labels 1..C in
order of category id; ``iscrowd=1`` becomes the ignore flag. Images without annotations are kept (negatives).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from singleshot.data.formats.base import DataError, make_sample, relative_key, require_file
from singleshot.registry import DATASET_FORMATS
from singleshot.structures import AnnotationReport, AnnotationSet


@DATASET_FORMATS.register("coco")
def read_coco(path: Path, image_root: Path | None = None) -> AnnotationSet:
    """Read a COCO detection JSON (see the module docstring)."""
    json_path = require_file(Path(path), "COCO annotation JSON")
    try:
        data = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{json_path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{json_path}: expected a COCO object with 'images', 'annotations' and 'categories'")
    if image_root is None:
        image_root = json_path.parent / "images" if (json_path.parent / "images").is_dir() else json_path.parent
    image_root = Path(image_root)
    categories = _entries(data, "categories", json_path)
    if not all(_is_id(c.get("id")) for c in categories):
        raise DataError(f"{json_path}: every category needs a number id")
    categories = sorted(categories, key=lambda c: c["id"])
    label_of = {c["id"]: i + 1 for i, c in enumerate(categories)}
    class_names = ["background", *[str(c.get("name", c["id"])) for c in categories]]

    per_image: dict[int, list[dict]] = defaultdict(list)
    for i, ann in enumerate(_entries(data, "annotations", json_path)):
        if not _is_key(ann.get("image_id")) or not _is_numbers(ann.get("bbox"), 4):
            raise DataError(f"{json_path}: annotation {i} lacks image_id or a 4-number bbox")
        if not _is_id(ann.get("category_id")) or ann["category_id"] not in label_of:
            raise DataError(f"{json_path}: annotation {i} has unknown category_id {ann.get('category_id')!r}")
        per_image[ann["image_id"]].append(ann)

    report = AnnotationReport()
    samples = []
    for image in _entries(data, "images", json_path):
        if not _is_key(image.get("id")) or not isinstance(image.get("file_name"), str):
            raise DataError(f"{json_path}: image entry {image!r:.80} lacks id or file_name")
        if not all(image.get(k) is None or _is_id(image[k]) for k in ("width", "height")):
            raise DataError(f"{json_path}: image {image['id']}: width and height must be whole numbers")
        anns = per_image.get(image["id"], [])
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
        image_path = image_root / image["file_name"]
        samples.append(
            make_sample(
                image_path,
                relative_key(image_path, image_root),
                boxes,
                [label_of[a["category_id"]] for a in anns],
                [bool(a.get("iscrowd", 0)) for a in anns],
                report,
                f"{json_path}: image {image['id']} ({image['file_name']})",
                width=image.get("width"),
                height=image.get("height"),
                extra={"annotation_id": [a.get("id", -1) for a in anns]},
            )
        )
    return AnnotationSet(root=image_root, samples=samples, class_names=class_names, format="coco", report=report)


def _entries(data: dict, key: str, json_path: Path) -> list[dict]:
    """``data[key]`` (a list of objects; missing: empty), or a DataError naming the file."""
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DataError(f"{json_path}: '{key}' must be a list of objects")
    return entries


def _is_id(value: object) -> bool:
    # bool is an int subclass in Python, but true/false in a COCO file is a mistake, not an id
    return isinstance(value, int) and not isinstance(value, bool)


def _is_key(value: object) -> bool:
    """An image id: COCO writes numbers; some converters write strings, which work as well."""
    return _is_id(value) or isinstance(value, str)


def _is_numbers(value: object, count: int) -> bool:
    return (isinstance(value, list) and len(value) == count
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
