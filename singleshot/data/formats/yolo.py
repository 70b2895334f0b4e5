"""YOLO txt: one ``<image stem>.txt`` per image, lines ``class cx cy w h`` normalised to [0, 1].

``PATH`` is either a folder with ``images/`` and ``labels/`` side by side (the ultralytics layout, sub-folders
mirrored, e.g. ``images/train/x.jpg`` <-> ``labels/train/x.txt``), or a folder holding images with their ``.txt``
files next to them (the darknet layout). Class names come from ``classes.txt``, ``obj.names`` or the ``names:``
of a ``data.yaml`` in ``PATH`` (else ``class0``, ``class1``...); YOLO class ``k`` becomes label ``k + 1``.
Boxes are converted to pixels with the image size read from the image header (an image that cannot be opened
is reported and skipped). An image without a ``.txt`` file has no objects.
"""

from __future__ import annotations

from pathlib import Path

from singleshot.data.formats.base import DataError, make_sample, read_text, relative_key
from singleshot.data.formats.folder import find_images
from singleshot.images import image_size
from singleshot.registry import DATASET_FORMATS
from singleshot.structures import AnnotationReport, AnnotationSet


def _class_names(root: Path, report: AnnotationReport) -> list[str] | None:
    for name in ("classes.txt", "obj.names"):
        if (root / name).is_file():
            return [line.strip() for line in read_text(root / name, report).splitlines() if line.strip()]
    yaml_file = root / "data.yaml"
    if yaml_file.is_file():
        import yaml

        try:
            names = yaml.safe_load(read_text(yaml_file, report))
        except yaml.YAMLError as err:
            raise DataError(f"{yaml_file}: not valid YAML ({err})".replace("\n", " ")) from None
        names = names.get("names") if isinstance(names, dict) else None
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names)]
        if isinstance(names, list):
            return [str(n) for n in names]
    return None


def _label_file(image: Path, root: Path, layout_ultralytics: bool) -> Path:
    if not layout_ultralytics:
        return image.with_suffix(".txt")
    rel = image.relative_to(root / "images")
    return (root / "labels" / rel).with_suffix(".txt")


@DATASET_FORMATS.register("yolo")
def read_yolo(path: Path) -> AnnotationSet:
    """Read YOLO txt labels (see the module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: YOLO folder not found")
    ultralytics = (root / "images").is_dir() and (root / "labels").is_dir()
    images = find_images(root / "images" if ultralytics else root)
    if not images:
        raise DataError(f"{root}: no images found")
    report = AnnotationReport()
    names = _class_names(root, report)
    parsed = []
    max_class = -1
    for image in images:
        label_file = _label_file(image, root, ultralytics)
        rows = []
        if label_file.is_file():
            for line_no, line in enumerate(read_text(label_file, report).splitlines(), start=1):
                if not line.strip():
                    continue
                parts = line.split()
                where = f"{label_file}:{line_no}"
                if len(parts) < 5:
                    raise DataError(f"{where}: expected 'class cx cy w h', got {line.strip()!r}")
                try:
                    cls = int(parts[0])
                    cx, cy, w, h = (float(v) for v in parts[1:5])
                except ValueError:  # "1.0" as a class too: YOLO classes are whole numbers
                    raise DataError(f"{where}: expected an integer class and four numbers, got {line.strip()!r}") from None
                if cls < 0:
                    raise DataError(f"{where}: negative class {cls}")
                rows.append((cls, cx, cy, w, h))
                max_class = max(max_class, cls)
        size = image_size(image)
        if size is None:
            report.skipped_images += 1
            report.note(str(image), "cannot read the image's header; skipped")
            continue
        height, width = size
        parsed.append((image, label_file, rows, width, height))

    if names is None:
        names = [f"class{k}" for k in range(max_class + 1)]
    elif max_class >= len(names):
        raise DataError(f"{root}: a label uses class {max_class} but only {len(names)} class names are given")
    samples = []
    for image, label_file, rows, width, height in parsed:
        boxes = [[(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
                 for _, cx, cy, w, h in rows]
        samples.append(
            make_sample(image, relative_key(image, root), boxes, [r[0] + 1 for r in rows], None, report,
                        str(label_file), width=width, height=height)
        )
    return AnnotationSet(root=root, samples=samples, class_names=["background", *names], format="yolo", report=report)
