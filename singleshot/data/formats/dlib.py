"""dlib imglab XML (``training.xml``, as used by dlib's detector examples and ``faces/dlib_tiny``).

``PATH`` is the XML file. ``<image file='...' [width= height=]>`` holds ``<box top left width height
[ignore='1']>`` elements with an optional ``<label>`` child; image files are relative to the XML's folder. Boxes
become ``[left, top, left + width, top + height]``; ``ignore='1'`` becomes the ignore flag. Classes are the labels
in sorted order (``face`` when no box has a label).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from singleshot.data.formats.base import DataError, make_sample, relative_key, require_file
from singleshot.registry import DATASET_FORMATS
from singleshot.structures import AnnotationReport, AnnotationSet


@DATASET_FORMATS.register("dlib")
def read_dlib(path: Path, default_label: str = "face") -> AnnotationSet:
    """Read a dlib imglab XML file (see the module docstring)."""
    xml_path = require_file(Path(path), "dlib imglab XML")
    try:
        tree = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise DataError(f"{xml_path}: not valid XML ({err})") from None
    images = tree.findall("./images/image")
    if not images:
        raise DataError(f"{xml_path}: no <images><image ...> entries")
    root = xml_path.parent
    parsed = []
    names: set[str] = set()
    for i, image in enumerate(images):
        where = f"{xml_path}: image {i}"
        file = image.get("file")
        if not file:
            raise DataError(f"{where}: <image> without a file attribute")
        boxes = []
        for j, box in enumerate(image.findall("box")):
            try:
                top, left, w, h = (float(box.get(k)) for k in ("top", "left", "width", "height"))
            except (TypeError, ValueError):
                raise DataError(f"{where} ({file}), box {j}: top, left, width and height must be numbers") from None
            label = (box.findtext("label") or default_label).strip()
            names.add(label)
            boxes.append(([left, top, left + w, top + h], label, box.get("ignore", "0") == "1"))
        size = (image.get("width"), image.get("height"))
        try:
            width, height = (int(size[0]), int(size[1])) if all(size) else (None, None)
        except ValueError:
            raise DataError(f"{where} ({file}): width and height must be whole numbers, got {size}") from None
        parsed.append((root / file, boxes, width, height, f"{where} ({file})"))
    class_names = ["background", *sorted(names or {default_label})]
    report = AnnotationReport()
    samples = [
        make_sample(image_path, relative_key(image_path, root), [b[0] for b in boxes],
                    [class_names.index(b[1]) for b in boxes], [b[2] for b in boxes], report, where,
                    width=width, height=height)
        for image_path, boxes, width, height, where in parsed
    ]
    return AnnotationSet(root=root, samples=samples, class_names=class_names, format="dlib", report=report)
