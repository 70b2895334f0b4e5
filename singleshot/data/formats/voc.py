"""PASCAL VOC XML (one ``.xml`` per image, with ``difficult``): the VOC devkit layout and ``faces/face_mask``.

``PATH`` is either a VOC year folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``) or any
folder with the XML files in ``annotations/`` (or ``Annotations/``) and the images in ``images/`` (or
``JPEGImages/``). Images are found by the XML's ``<filename>``.

Coordinates are kept as written (VOC's are 1-based inclusive pixels; shifting ground truth and predictions alike
changes no evaluation, and a 1-pixel shift is immaterial for training). ``difficult=1`` becomes the ignore flag;
``truncated`` is kept in ``Sample.extra``. Classes are numbered from 1 in sorted name order (for VOC that is the
standard order, aeroplane ... tvmonitor), unless ``classes`` is given; ``single_class`` maps every object to one
class (``face_mask``'s three mask classes are all faces).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from singleshot.data.formats.base import DataError, make_sample, read_text, relative_key
from singleshot.registry import DATASET_FORMATS
from singleshot.structures import AnnotationReport, AnnotationSet

#: Where <filename> names no file, the image named after the XML is looked for with these suffixes, in order.
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp")


def _first_dir(root: Path, names: Sequence[str]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _text(node: ET.Element, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None:
        raise DataError(f"{where}: missing <{tag}>")
    return child.text.strip()


@DATASET_FORMATS.register("voc")
def read_voc(
    path: Path, split: str | None = None, classes: Sequence[str] | None = None, single_class: str | None = None
) -> AnnotationSet:
    """Read VOC XML annotations (see the module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: VOC folder not found")
    ann_dir = _first_dir(root, ("Annotations", "annotations"))
    if ann_dir is None:
        raise DataError(f"{root}: no Annotations/ or annotations/ folder with VOC XML files")
    image_dir = _first_dir(root, ("JPEGImages", "images")) or root
    report = AnnotationReport()
    if split is not None:
        list_file = root / "ImageSets" / "Main" / f"{split}.txt"
        if not list_file.is_file():
            raise DataError(f"{list_file}: split list not found")
        xml_files = [ann_dir / f"{line.split()[0]}.xml" for line in read_text(list_file, report).splitlines()
                     if line.strip()]
    else:
        xml_files = sorted(ann_dir.glob("*.xml"))
    if not xml_files:
        raise DataError(f"{ann_dir}: no .xml files")

    parsed = []
    names: set[str] = set()
    for xml_file in xml_files:
        where = str(xml_file)
        if not xml_file.is_file():
            report.skipped_images += 1
            report.note(where, "annotation file listed in the split but missing; skipped")
            continue
        try:
            tree = ET.parse(xml_file).getroot()
        except ET.ParseError as err:
            report.skipped_images += 1
            report.note(where, f"not valid XML ({err}); skipped")
            continue
        filename = tree.findtext("filename", default=f"{xml_file.stem}.jpg").strip()
        size = tree.find("size")
        width = height = None
        if size is not None and size.findtext("width") and size.findtext("height"):
            try:
                width, height = int(float(size.findtext("width"))), int(float(size.findtext("height")))
            except (ValueError, OverflowError):  # OverflowError: "inf"
                raise DataError(f"{where}: <size> width and height must be numbers") from None
            if width <= 0 or height <= 0:
                width = height = None
        objects = []
        for i, obj in enumerate(tree.findall("object")):
            obj_where = f"{where}: object {i}"
            name = single_class or _text(obj, "name", obj_where)
            box = obj.find("bndbox")
            if box is None:
                raise DataError(f"{obj_where}: missing <bndbox>")
            try:
                coords = [float(_text(box, t, obj_where)) for t in ("xmin", "ymin", "xmax", "ymax")]
            except ValueError:
                raise DataError(f"{obj_where}: bndbox coordinates must be numbers") from None
            difficult = obj.findtext("difficult", default="0").strip() == "1"
            truncated = obj.findtext("truncated", default="0").strip() == "1"
            objects.append((name, coords, difficult, truncated))
            names.add(name)
        parsed.append((xml_file, filename, width, height, objects))

    class_names = ["background", *(classes if classes is not None else sorted(names))]
    samples = []
    for xml_file, filename, width, height, objects in parsed:
        unknown = {o[0] for o in objects} - set(class_names[1:])
        if unknown:
            raise DataError(f"{xml_file}: class(es) {sorted(unknown)} not in the given classes {list(class_names[1:])}")
        image_path = image_dir / filename
        if not image_path.is_file():
            # Labelling tools sometimes write the XML's own name (or a stale one) into <filename>; the devkit's
            # convention is the annotation's id, so an image named after the XML is the one it describes.
            found = next((p for p in (image_dir / f"{xml_file.stem}{e}" for e in _IMAGE_SUFFIXES) if p.is_file()), None)
            if found is not None:
                report.note(str(xml_file), f"<filename> {filename!r} not found; using {found.name}, named after the XML")
                image_path = found
        samples.append(
            make_sample(
                image_path,
                relative_key(image_path, root),
                [o[1] for o in objects],
                [class_names.index(o[0]) for o in objects],
                [o[2] for o in objects],
                report,
                str(xml_file),
                width=width,
                height=height,
                extra={"truncated": [o[3] for o in objects]},
            )
        )
    return AnnotationSet(root=root, samples=samples, class_names=class_names, format="voc", report=report)
