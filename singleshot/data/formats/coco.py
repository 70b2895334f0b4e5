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
    categories = sorted(data.get("categories", []), key=lambda c: c["id"])
    label_of = {c["id"]: i + 1 for i, c in enumerate(categories)}
    class_names = ["background", *[str(c.get("name", c["id"])) for c in categories]]

    per_image: dict[int, list[dict]] = defaultdict(list)
    for i, ann in enumerate(data.get("annotations", [])):
        if "image_id" not in ann or "bbox" not in ann or len(ann["bbox"]) != 4:
            raise DataError(f"{json_path}: annotation {i} lacks image_id or a 4-number bbox")
        if ann.get("category_id") not in label_of:
            raise DataError(f"{json_path}: annotation {i} has unknown category_id {ann.get('category_id')!r}")
        per_image[ann["image_id"]].append(ann)

    report = AnnotationReport()
    samples = []
    for image in data["images"]:
        if "id" not in image or "file_name" not in image:
            raise DataError(f"{json_path}: image entry {image!r:.80} lacks id or file_name")
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
