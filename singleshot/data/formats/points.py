"""Faces labelled by points, not boxes: Caltech 10k WebFaces and MTFL.

Both carry each face's landmarks as ``Sample.extra["landmarks"]``: ``(K, 5, 2)`` float32 pixels in RetinaFace's
order (left eye, right eye, nose, left and right mouth corner; NaN where the set has no such point), so they filter
with the boxes like every per-box column.

``caltech:ROOT``: ``ROOT/WebFaces_GroundThruth.txt`` (one face per line: ``picNNNNN.jpg LEx LEy REx REy NOSEx
NOSEy MOUTHx MOUTHy``, eye centres, nose tip and mouth centre) and the photos, in ``ROOT/Caltech_WebFaces/`` or
``ROOT``. The mouth centre is not one of the five points: it is kept as ``extra["mouth_centre"]`` ``(K, 2)`` and the
mouth corners are NaN. There are no boxes: each face's box is estimated from its four points
(:func:`singleshot.landmarks.box_from_points`, the 112x112 alignment square times ``box_scale``) and
``extra["box_from_points"]`` is True. Not every face in a photo is labelled: train on it only with kindled boxes
beside (or ignore regions), never as complete labels. ``split``: ``all``, or ``train`` / ``val`` by a hash of the
photo's name (:func:`caltech_split`: a fixed 10% for validation, the same on every machine).

``mtfl:ROOT``: ``ROOT/new_training.txt`` (``split=train``, 10,000 crops) or ``ROOT/new_testing.txt`` (``split=test``,
2,995 crops, the AFLW part, the usual landmark test): ``path x1 .. x5 y1 .. y5`` per line, paths relative to
``ROOT``. Each 80x80 crop holds one face; its box is the whole crop (read from the image header). Its
``lfw_5590`` crops come from LFW: keep them away from smile-attribute training and evaluation.

The original MTFL release (``ROOT/training.txt``, 10,000 photos, and ``ROOT/testing.txt``, 2,995 AFLW photos; read
when ``new_*.txt`` is absent) has whole photos, not crops, and four attributes per face: ``path x1 .. x5 y1 .. y5
gender smile glasses pose`` (gender 1 male / 2 female, smile and glasses 1 yes / 2 no, pose 1-5 from left profile to
right profile). The box is estimated from the five points as for Caltech (``box_scale``; ``extra["box_from_points"]``)
and the attributes become per-face columns: ``extra["smile"]``, ``extra["glasses"]``, ``extra["female"]`` (0 / 1)
and ``extra["head_pose"]`` (1-5), which ``singleshot attribute crops --label smile`` sorts crops by. ``parts``:
the top folders to read, comma-separated (``net_7876`` leaves out LFW's photos), or ``all``. The crop layout
refuses ``parts`` and ``box_scale`` with one line rather than ignoring them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from singleshot.data.formats.base import DataError, make_sample, read_text, relative_key, require_file
from singleshot.images import image_size
from singleshot.landmarks import TEMPLATE_112, box_from_points
from singleshot.registry import DATASET_FORMATS
from singleshot.structures import AnnotationReport, AnnotationSet

#: The Caltech points' place in the template: eyes and nose as they are, the mouth centre between the corners.
_CALTECH_TEMPLATE = np.vstack((TEMPLATE_112[:3], TEMPLATE_112[3:].mean(0, keepdims=True)))


def _numbers(values: list[str], count: int, where: str) -> np.ndarray:
    if len(values) != count:
        raise DataError(f"{where}: expected {count} numbers after the file name, got {len(values)}")
    try:
        return np.array([float(v) for v in values], np.float64)
    except ValueError:
        raise DataError(f"{where}: the coordinates must be numbers") from None




def caltech_split(name: str) -> str:
    """``"val"`` for a tenth of the photos (by the MD5 of the file name), else ``"train"``."""
    import hashlib

    return "val" if int(hashlib.md5(name.encode()).hexdigest(), 16) % 10 == 0 else "train"


@DATASET_FORMATS.register("caltech")
def read_caltech(path: Path, box_scale: float = 1.0, split: str = "all") -> AnnotationSet:
    """Read Caltech 10k WebFaces (see the module docstring); ``box_scale`` grows the estimated boxes."""
    if split not in ("all", "train", "val"):
        raise DataError(f"caltech split must be 'all', 'train' or 'val', got {split!r}")
    root = Path(path)
    truth = require_file(root / "WebFaces_GroundThruth.txt", "Caltech WebFaces ground truth")
    images = root / "Caltech_WebFaces" if (root / "Caltech_WebFaces").is_dir() else root
    faces: dict[str, list[np.ndarray]] = {}
    report = AnnotationReport()
    for n, line in enumerate(read_text(truth, report).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        faces.setdefault(parts[0], []).append(_numbers(parts[1:], 8, f"{truth}:{n}").reshape(4, 2))
    if not faces:
        raise DataError(f"{truth}: no faces")
    samples = []
    for name, points in faces.items():
        if split != "all" and caltech_split(name) != split:
            continue
        four = np.stack(points)  # (K, 4, 2): left eye, right eye, nose, mouth centre
        five = np.full((len(four), 5, 2), np.nan, np.float32)
        five[:, :3] = four[:, :3]
        boxes = box_from_points(four, _CALTECH_TEMPLATE, scale=box_scale)
        extra = {"landmarks": five, "mouth_centre": four[:, 3].astype(np.float32),
                 "box_from_points": np.ones(len(four), bool)}
        image = images / name
        samples.append(make_sample(image, relative_key(image, root), boxes, np.ones(len(four)), None, report,
                                   f"{truth}: {name}", extra=extra))
    return AnnotationSet(root=root, samples=samples, class_names=["background", "face"], format="caltech",
                         report=report)


#: The original MTFL release's attribute columns after the points: name, then the value that means "yes".
_MTFL_ATTRIBUTES = (("female", 2), ("smile", 1), ("glasses", 1))


def _mtfl_original(root: Path, listing: Path, parts: set[str] | None, box_scale: float) -> AnnotationSet:
    """The original MTFL layout (whole photos, points and four attributes a face; see the module docstring)."""
    report = AnnotationReport()
    samples = []
    for n, line in enumerate(read_text(listing, report).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        name = fields[0].replace("\\", "/")
        if parts is not None and name.split("/", 1)[0] not in parts:
            continue
        where = f"{listing}:{n}"
        values = _numbers(fields[1:], 14, where)
        points = np.stack((values[:5], values[5:10]), axis=1)[None]  # (1, 5, 2)
        codes = values[10:].astype(np.int64)
        if codes[0] not in (1, 2) or codes[1] not in (1, 2) or codes[2] not in (1, 2) or not 1 <= codes[3] <= 5:
            raise DataError(f"{where}: attributes must be gender, smile, glasses in 1-2 and pose in 1-5, "
                            f"got {' '.join(fields[11:])}")
        extra = {key: np.array([int(code == yes)], np.int8) for (key, yes), code in zip(_MTFL_ATTRIBUTES, codes)}
        extra.update(head_pose=np.array([codes[3]], np.int8), landmarks=points.astype(np.float32),
                     box_from_points=np.ones(1, bool))
        image = root / name
        samples.append(make_sample(image, relative_key(image, root), box_from_points(points, scale=box_scale), [1],
                                   None, report, where, extra=extra))
    if not samples:
        raise DataError(f"{listing}: no photos listed" + (f" in {', '.join(sorted(parts))}" if parts else ""))
    return AnnotationSet(root=root, samples=samples, class_names=["background", "face"], format="mtfl", report=report)


@DATASET_FORMATS.register("mtfl")
def read_mtfl(path: Path, split: str = "test", parts: str = "all", box_scale: float = 1.0) -> AnnotationSet:
    """Read MTFL (see the module docstring): the five-landmark crops, or the original release with attributes;
    ``split``: ``train`` or ``test`` (AFLW); ``parts`` and ``box_scale``: the original release only."""
    root = Path(path)
    files = {"train": "new_training.txt", "test": "new_testing.txt"}
    if split not in files:
        raise DataError(f"mtfl split must be 'train' or 'test', got {split!r}")
    original = root / {"train": "training.txt", "test": "testing.txt"}[split]
    if not (root / files[split]).is_file() and original.is_file():
        wanted = None if parts == "all" else {p.strip() for p in str(parts).split(",") if p.strip()}
        return _mtfl_original(root, original, wanted, box_scale)
    listing = require_file(root / files[split], f"MTFL {split} list")
    # the crops are their own boxes and carry no folder choice: refuse the options rather than ignore them (with
    # this layout parts=net_7876 would still read the lfw_5590 crops)
    ignored = [name for name, given in (("parts", str(parts) != "all"), ("box_scale", float(box_scale) != 1.0))
               if given]
    if ignored:
        raise DataError(f"{listing}: option {', '.join(ignored)} applies only to the original MTFL release "
                        f"({original.name}); this folder has the crop layout ({listing.name})")
    report = AnnotationReport()
    samples = []
    for n, line in enumerate(read_text(listing, report).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{listing}:{n}"
        values = _numbers(fields[1:], 10, where)
        points = np.stack((values[:5], values[5:]), axis=1)[None].astype(np.float32)  # (1, 5, 2)
        image = root / fields[0]
        size = image_size(image)
        if size is None:
            raise DataError(f"{where}: {image} is missing or not an image (MTFL boxes are the whole crop)")
        height, width = size
        samples.append(make_sample(image, relative_key(image, root), [[0, 0, width, height]], [1], None, report,
                                   where, width=width, height=height, extra={"landmarks": points}))
    if not samples:
        raise DataError(f"{listing}: no crops listed")
    return AnnotationSet(root=root, samples=samples, class_names=["background", "face"], format="mtfl", report=report)
