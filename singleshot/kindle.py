"""Kindling: label a folder of unlabelled photos with a teacher detector and write a training set.

The face-detector author's trick ("kindling", after the Smiling Bot write-up): run an existing detector over
many unlabelled photos and train on its boxes. A teacher is anything with ``detect(image_rgb) -> (boxes_xyxy,
scores)``; :func:`create_teacher` makes one from a singleshot checkpoint (self-training) or from a peer detector
(:mod:`singleshot.peers`: RetinaFace-MobileNet-0.25, MTCNN, BlazeFace, Haar), imported only when asked for.

The labelling rule (documented in docs/kindling.md):

- score >= ``min_score``: a positive box;
- ``ignore_score <= score < min_score``: an *ignore* region -- the teacher is unsure, so the student is neither
  taught that a face is there nor that background is there (the SCRFD / WIDER ``invalid`` treatment);
- score < ``ignore_score``: dropped (background).

Resumable: each labelled image is appended to ``OUT/kindle_state.jsonl`` as soon as it is done, and a rerun skips
the images already in it; the dataset files (``boxes.csv`` or ``annotations.json``) and ``kindle_report.json``
are written at the end. ``OUT/images`` is a relative symbolic link to the image folder, so the dataset reads the
photos where they are (nothing is copied) and ``csv:OUT`` / ``coco:OUT/annotations.json`` load it directly.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from singleshot.atomic import atomic_write, write_text
from singleshot.data.formats.folder import find_images
from singleshot.data.formats.simple import link_images
from singleshot.errors import SingleshotError
from singleshot.images import decode_image, image_problem

STATE_FILE = "kindle_state.jsonl"
REPORT_FILE = "kindle_report.json"
DATASET_FILES = {"csv": "boxes.csv", "coco": "annotations.json"}
#: Upper edges of the score histogram's bins (the first bin starts at 0).
SCORE_BINS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


class KindleError(SingleshotError, ValueError):
    """A kindling run that cannot start or go on; the message says why and what to do."""


class Teacher(Protocol):
    """What kindling needs from a detector: boxes in pixels of the given image and one score per box."""

    name: str

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``image_rgb`` ``(H, W, 3)`` uint8 -> ``boxes_xyxy`` ``(N, 4)`` float pixels and ``scores`` ``(N,)``;
        ``(N, 14)`` with each box's five landmarks after it when the teacher gives them (RetinaFace does)."""
        ...


class CheckpointTeacher:
    """A singleshot checkpoint (or ``None``: the bundled face model) as a teacher, class 1 taken as the face."""

    def __init__(self, weights: str | Path | None, input_size: int = 640, threads: int | None = None,
                 large_face_pass: bool | str = "auto") -> None:
        from singleshot.predictor import Detector

        self.detector = Detector(weights, input_size=input_size, threads=threads, large_face_pass=large_face_pass)
        self.name = f"checkpoint:{weights}" if weights else "bundled face model"

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # a very low threshold: the kindling rule decides, not the teacher's default
        det = self.detector.detect(image_rgb, min_score=0.05)
        boxes = det.boxes_xyxy.numpy().astype(np.float32)
        if det.landmarks is not None:  # a landmark model teaches its points too
            points = det.landmarks.numpy().reshape(len(boxes), 2 * det.landmarks.shape[1])
            boxes = np.concatenate((boxes, points.astype(np.float32)), 1)
        return boxes, det.scores.numpy().astype(np.float32)


class PeerTeacher:
    """A peer detector (:func:`singleshot.peers.create_peer`) as a teacher, optionally run at a set long side."""

    def __init__(self, name: str, threads: int | None = None, long_side: int | None = None, **options: Any) -> None:
        from singleshot.peers import create_peer

        self.peer = create_peer(name, **options)
        if hasattr(self.peer, "with_landmarks"):  # RetinaFace: its five points come with its boxes
            self.peer.with_landmarks = True
        if threads:
            self.peer.set_threads(threads)
        self.long_side = long_side
        self.name = name

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from singleshot.peers import detect_resized

        boxes, scores = detect_resized(self.peer, image_rgb, self.long_side)
        boxes = np.asarray(boxes, np.float32)
        return boxes if boxes.ndim == 2 else boxes.reshape(-1, 4), np.asarray(scores, np.float32).reshape(-1)


def teacher_gives_points(teacher: Teacher) -> bool:
    """Whether ``teacher`` returns five face points with its boxes (RetinaFace; a checkpoint with a landmark head;
    a face detector given points by the point network, as the bundled one)."""
    detector = getattr(teacher, "detector", None)
    if detector is not None:
        return detector.has_landmarks or detector.point_refiner is not None
    return bool(getattr(getattr(teacher, "peer", None), "with_landmarks", False))


def create_teacher(spec: str, threads: int | None = None, input_size: int | None = None,
                   large_face_pass: bool | str = "auto") -> Teacher:
    """A teacher from ``spec``: a peer name (``retinaface``, ``mtcnn``, ``blazeface``, ``haar``), ``bundled``
    (the packaged face model) or a checkpoint path (``large_face_pass``: as :class:`~singleshot.predictor.Detector`'s,
    for a checkpoint).

    Raises:
        KindleError: the checkpoint does not exist, the name is neither a peer nor a file, or the peer's package is
            not installed (the message gives the pip command).
    """
    from singleshot.peers import PEER_NAMES, PeerUnavailableError

    if spec.strip().lower() in PEER_NAMES:
        try:
            return PeerTeacher(spec, threads=threads, long_side=input_size)
        except PeerUnavailableError as err:  # the standalone peers module has no SingleshotError
            raise KindleError(str(err)) from None
    if spec == "bundled":
        return CheckpointTeacher(None, input_size=input_size or 640, threads=threads, large_face_pass=large_face_pass)
    path = Path(spec)
    if not path.is_file():
        raise KindleError(
            f"teacher {spec!r}: no such checkpoint, and not a peer ({', '.join(PEER_NAMES)}) or 'bundled'"
        )
    return CheckpointTeacher(path, input_size=input_size or 640, threads=threads, large_face_pass=large_face_pass)


@dataclass
class KindleRecord:
    """One labelled image: its key (path relative to the image folder), size and the teacher's kept boxes."""

    key: str
    width: int
    height: int
    boxes_xyxy: list[list[float]]
    scores: list[float]
    ignore: list[bool]
    landmarks: list[list[float]] | None = None  # per box lx1, ly1, ..., lx5, ly5, when the teacher gives them

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))


@dataclass
class KindleReport:
    """What a kindling run produced (also written as ``kindle_report.json``)."""

    teacher: str
    images: int = 0
    images_with_faces: int = 0
    images_without_faces: int = 0
    unreadable: list[str] = field(default_factory=list)
    boxes: int = 0
    ignore_regions: int = 0
    score_histogram: dict[str, int] = field(default_factory=dict)
    faces_per_image: dict[str, int] = field(default_factory=dict)
    min_score: float = 0.0
    ignore_score: float = 0.0
    images_per_second: float | None = None
    dataset: str = ""

    def table(self) -> str:
        lines = [
            f"teacher: {self.teacher}",
            (
                f"images labelled: {self.images} ({self.images_with_faces} with faces, "
                f"{self.images_without_faces} with none); unreadable, skipped: {len(self.unreadable)}"
            ),
            (
                f"boxes: {self.boxes} positives (score >= {self.min_score}), {self.ignore_regions} ignore regions "
                f"({self.ignore_score} <= score < {self.min_score})"
            ),
            ("faces per image: " + ", ".join(f"{k}: {v}" for k, v in self.faces_per_image.items())),
            ("score histogram (kept boxes, upper bin edges): "
             + ", ".join(f"<={k}: {v}" for k, v in self.score_histogram.items())),
        ]
        if self.images_per_second:
            lines.append(f"speed: {self.images_per_second:.1f} images/s (this run)")
        if self.unreadable:
            lines.append("unreadable: " + "; ".join(self.unreadable[:5]) + (" ..." if len(self.unreadable) > 5 else ""))
        lines.append(f"dataset: {self.dataset}")
        return "\n".join(lines)


def split_by_score(
    boxes_xyxy: np.ndarray, scores: np.ndarray, min_score: float, ignore_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply the kindling rule: keep boxes with ``score >= ignore_score``; those under ``min_score`` are ignore.

    Args:
        boxes_xyxy: ``(N, 4)`` teacher boxes (``(N, 4 + 2L)`` with landmark columns, kept with their boxes).
        scores: ``(N,)`` teacher scores.

    Returns:
        ``boxes_xyxy`` ``(K, 4 [+ 2L])``, ``scores`` ``(K,)``, ``ignore`` ``(K,)`` bool, sorted by descending score.
    """
    if not 0.0 <= ignore_score <= min_score <= 1.0:
        raise KindleError(f"need 0 <= ignore_score <= min_score <= 1, got {ignore_score} and {min_score}")
    boxes_xyxy = np.asarray(boxes_xyxy, np.float32)
    boxes_xyxy = boxes_xyxy if boxes_xyxy.ndim == 2 else boxes_xyxy.reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    keep = (scores >= ignore_score) & (boxes_xyxy[:, 2] > boxes_xyxy[:, 0]) & (boxes_xyxy[:, 3] > boxes_xyxy[:, 1])
    order = np.argsort(-scores[keep], kind="stable")
    boxes_xyxy, scores = boxes_xyxy[keep][order], scores[keep][order]
    return boxes_xyxy, scores, scores < min_score


def _read_state(path: Path) -> dict[str, KindleRecord]:
    records: dict[str, KindleRecord] = {}
    if not path.exists():
        return records
    with path.open() as f:
        for line_no, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = KindleRecord(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                # a line cut short by a stopped run: that image is simply labelled again
                continue
            records[record.key] = record
    return records


def _write_csv(path: Path, records: Iterable[KindleRecord]) -> None:
    from singleshot.data.formats.simple import LANDMARK_HEADER

    records = list(records)
    with_points = any(r.landmarks for r in records)
    with atomic_write(path, "w", newline="") as f:  # a kill mid-write keeps the previous dataset file whole
        writer = csv.writer(f)
        writer.writerow(["image", "width", "height", "x1", "y1", "x2", "y2", "label", "ignore"]
                        + (LANDMARK_HEADER if with_points else []))
        for r in records:
            if not r.boxes_xyxy:
                writer.writerow([r.key, r.width, r.height, "", "", "", "", "", ""])
            for i, (box, ign) in enumerate(zip(r.boxes_xyxy, r.ignore)):
                points = [f"{v:.1f}" for v in r.landmarks[i]] if r.landmarks else [""] * len(LANDMARK_HEADER)
                writer.writerow([r.key, r.width, r.height, *(f"{v:.1f}" for v in box), "face", int(ign)]
                                + (points if with_points else []))


def _write_coco(path: Path, records: Iterable[KindleRecord]) -> None:
    images, annotations = [], []
    for image_id, r in enumerate(records, start=1):
        images.append({"id": image_id, "file_name": r.key, "width": r.width, "height": r.height})
        for box, score, ign in zip(r.boxes_xyxy, r.scores, r.ignore):
            x1, y1, x2, y2 = box
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                "bbox": [round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)],
                "area": round((x2 - x1) * (y2 - y1), 1), "iscrowd": int(ign), "score": round(score, 4),
            })
    write_text(path, json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "face"}]}))


def kindle(
    teacher: Teacher,
    images_dir: str | Path,
    out_dir: str | Path,
    *,
    min_score: float = 0.6,
    ignore_score: float = 0.3,
    fmt: str = "csv",
    force: bool = False,
    progress: bool = True,
    on_image: Callable[[KindleRecord], None] | None = None,
) -> KindleReport:
    """Label every image under ``images_dir`` (recursively) with ``teacher`` and write a dataset to ``out_dir``.

    Args:
        teacher: the labelling detector (:func:`create_teacher`).
        images_dir: folder of unlabelled photos (never modified).
        out_dir: the dataset folder to write (see the module docstring for its files).
        min_score: teacher score from which a box is a positive.
        ignore_score: teacher score from which a box below ``min_score`` becomes an ignore region.
        fmt: ``csv`` (``boxes.csv`` with ``label`` and ``ignore`` columns) or ``coco`` (``iscrowd`` = ignore).
        force: replace a finished dataset in ``out_dir`` (otherwise that is an error).
        progress: show a progress bar.
        on_image: called with each new record (tests, logging).

    Raises:
        KindleError: no images, a finished dataset in the way, a bad format or thresholds.
    """
    from tqdm import tqdm

    if fmt not in DATASET_FILES:
        raise KindleError(f"unknown format {fmt!r}; choose {' or '.join(DATASET_FILES)}")
    if not 0.0 <= ignore_score <= min_score <= 1.0:
        raise KindleError(f"need 0 <= ignore score ({ignore_score}) <= min score ({min_score}) <= 1")
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    if not images_dir.is_dir():
        raise KindleError(f"{images_dir}: image folder not found")
    paths = find_images(images_dir)
    if not paths:
        raise KindleError(f"{images_dir}: no images found")
    finished = [out_dir / name for name in (*DATASET_FILES.values(), REPORT_FILE) if (out_dir / name).exists()]
    if finished:
        if not force:
            raise KindleError(
                f"{out_dir} already holds a kindled dataset ({finished[0].name}); pass --force to replace it"
            )
        for name in (*DATASET_FILES.values(), REPORT_FILE, STATE_FILE):
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / STATE_FILE
    settings_path = out_dir / "kindle_settings.json"
    settings = {"teacher": teacher.name, "images": str(images_dir.resolve()), "min_score": min_score,
                "ignore_score": ignore_score}
    if state_path.exists() and settings_path.exists():
        previous = json.loads(settings_path.read_text())
        if previous != settings:
            raise KindleError(
                f"{out_dir} holds an unfinished run with other settings ({previous}); rerun with those, "
                "or pass --force to start again"
            )
    write_text(settings_path, json.dumps(settings, indent=1))
    done = _read_state(state_path)
    keys = [p.relative_to(images_dir).as_posix() for p in paths]
    todo = [(p, k) for p, k in zip(paths, keys) if k not in done]
    report = KindleReport(teacher=teacher.name, min_score=min_score, ignore_score=ignore_score)
    start, labelled = time.perf_counter(), 0
    with state_path.open("a") as state:
        bar = tqdm(todo, desc="kindling", unit="img", disable=not progress or not todo, initial=len(done),
                   total=len(paths))
        for path, key in bar:
            decoded = decode_image(path)
            if decoded is None:
                why = image_problem(path) or "cannot be decoded (corrupt or not an image)"  # e.g. over the pixel limit
                report.unreadable.append(f"{path}: {why}; skipped")
                continue
            image, (height, width) = decoded
            boxes, scores, ignore = split_by_score(*teacher.detect(image), min_score, ignore_score)
            points = [[round(float(v), 2) for v in b[4:]] for b in boxes] if boxes.shape[1] > 4 else None
            record = KindleRecord(key, width, height, [[round(float(v), 2) for v in b[:4]] for b in boxes],
                                  [round(float(s), 4) for s in scores], [bool(i) for i in ignore], points)
            state.write(record.to_json() + "\n")
            state.flush()
            done[key] = record
            labelled += 1
            if on_image is not None:
                on_image(record)
    elapsed = time.perf_counter() - start
    records = [done[k] for k in keys if k in done]
    link_images(out_dir, images_dir)
    dataset = out_dir / DATASET_FILES[fmt]
    (_write_csv if fmt == "csv" else _write_coco)(dataset, records)
    _fill_report(report, records)
    report.images_per_second = labelled / elapsed if labelled and elapsed > 0 else None
    report.dataset = f"{fmt}:{dataset if fmt == 'coco' else out_dir}"
    write_text(out_dir / REPORT_FILE, json.dumps(report.__dict__, indent=1))
    return report


def _fill_report(report: KindleReport, records: list[KindleRecord]) -> None:
    scores = np.array([s for r in records for s in r.scores], np.float32)
    edges = np.array((0.0, *SCORE_BINS), np.float32)
    counts = np.histogram(scores, bins=edges)[0] if scores.size else np.zeros(len(SCORE_BINS), int)
    report.score_histogram = {str(e): int(c) for e, c in zip(SCORE_BINS, counts) if e > report.ignore_score}
    positives = [sum(not i for i in r.ignore) for r in records]
    report.images = len(records)
    report.images_with_faces = sum(p > 0 for p in positives)
    report.images_without_faces = report.images - report.images_with_faces
    report.boxes = int(sum(positives))
    report.ignore_regions = int(sum(len(r.ignore) for r in records) - report.boxes)
    buckets = {"0": 0, "1": 0, "2-5": 0, "6-10": 0, "11-20": 0, ">20": 0}
    for p in positives:
        key = "0" if p == 0 else "1" if p == 1 else "2-5" if p <= 5 else "6-10" if p <= 10 else "11-20" if p <= 20 else ">20"
        buckets[key] += 1
    report.faces_per_image = buckets



@dataclass
class PointsReport:
    """What :func:`attach_points` or :func:`combine_human_points` did: faces counted by what happened to them, and
    for the latter the fit of boxes-from-points onto the teacher's boxes (size ratio, vertical shift in sides,
    median IoU after the fit)."""

    counts: Counter = field(default_factory=Counter)
    box_fit: tuple[float, float, float] = (1.0, 0.0, float("nan"))

    def line(self) -> str:
        c = self.counts
        if "human_faces" not in c:
            return (f"{c['with_points']} of {c['faces']} faces got the teacher's points (IoU match), "
                    f"{c['already_had_points']} kept their own; {c['images_without_teacher']} image(s) had no "
                    "teacher record")
        scale, shift, iou = self.box_fit
        return (f"{c['images']} images, {c['human_faces']} human-labelled faces: {c['confirmed']} in a teacher box "
                f"(points attached), {c['promoted_from_ignore']} in a teacher ignore region (made faces), "
                f"{c['added_from_points']} missed by the teacher (box from points), {c['ignored_from_points']} "
                f"missed (ignore regions); {c['teacher_only']} teacher faces without human points; boxes from points "
                f"fitted to the teacher's: scale {scale:.3f}, shift {shift:+.3f} of the side, median IoU {iou:.2f}"
                + (f"; {c['unusable_points']} human faces left out (no usable box from their points)"
                   if c["unusable_points"] else ""))


def attach_points(boxes_set, points_set, min_iou: float = 0.5) -> tuple[Any, PointsReport]:
    """Human boxes with a teacher's landmarks: each box of ``boxes_set`` takes the points of the ``points_set`` box
    (same image, matched by file name; not an ignore region; with known points) that overlaps it most, if by at least
    ``min_iou``. Boxes that already carry points keep them (human points win over a teacher's).

    Args:
        boxes_set, points_set: :class:`~singleshot.structures.AnnotationSet` s; ``points_set`` from a teacher with
            landmarks (``singleshot kindle --teacher retinaface``).

    Returns:
        ``boxes_set`` with ``extra["landmarks"]`` ``(K, 5, 2)`` on every sample (NaN where no point matched), and the
        counts.
    """
    import dataclasses

    from singleshot.boxes import pairwise_iou_xyxy_numpy

    by_name = {Path(s.image_path).name: s for s in points_set.samples}
    report = PointsReport()
    samples = []
    for sample in boxes_set.samples:
        k = len(sample)
        points = np.asarray(sample.extra.get("landmarks", np.full((k, 5, 2), np.nan)), np.float32).copy()
        known = ~np.isnan(points).all(axis=(1, 2))
        report.counts["faces"] += k
        report.counts["already_had_points"] += int(known.sum())
        teacher = by_name.get(Path(sample.image_path).name)
        if teacher is None:
            report.counts["images_without_teacher"] += 1
        elif k and len(teacher) and "landmarks" in teacher.extra:
            usable = ~teacher.ignore & ~np.isnan(teacher.extra["landmarks"]).any(axis=(1, 2))
            if usable.any():
                iou = pairwise_iou_xyxy_numpy(sample.boxes_xyxy, teacher.boxes_xyxy[usable])  # (K, T)
                best = iou.argmax(axis=1)
                take = (iou.max(axis=1) >= min_iou) & ~known
                points[take] = teacher.extra["landmarks"][usable][best[take]]
                report.counts["with_points"] += int(take.sum())
        samples.append(dataclasses.replace(sample, extra={**sample.extra, "landmarks": points}))
    return dataclasses.replace(boxes_set, samples=samples), report


def _contains(boxes_xyxy: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(T, K)``: box t holds every known point of face k (``points`` ``(K, P, 2)``, NaN unknown)."""
    x, y = points[None, ..., 0], points[None, ..., 1]  # (1, K, P)
    b = boxes_xyxy[:, None, None, :]
    inside = (x >= b[..., 0]) & (x <= b[..., 2]) & (y >= b[..., 1]) & (y <= b[..., 3])
    return (inside | np.isnan(x)).all(-1) & ~np.isnan(x).all(-1)


def _fit_boxes(teacher_xyxy: np.ndarray, points_xyxy: np.ndarray) -> tuple[float, float]:
    """Median size ratio and vertical centre shift (in sides) that take boxes-from-points onto the teacher's."""
    side_t = np.sqrt(np.prod(teacher_xyxy[:, 2:] - teacher_xyxy[:, :2], axis=1))
    side_p = np.sqrt(np.prod(points_xyxy[:, 2:] - points_xyxy[:, :2], axis=1))
    shift = ((teacher_xyxy[:, 1] + teacher_xyxy[:, 3]) - (points_xyxy[:, 1] + points_xyxy[:, 3])) / 2 / side_p
    return float(np.median(side_t / side_p)), float(np.median(shift))


def _adjust(boxes_xyxy: np.ndarray, scale: float, shift: float) -> np.ndarray:
    centre = (boxes_xyxy[:, :2] + boxes_xyxy[:, 2:]) / 2
    side = boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]
    centre = centre + np.stack([np.zeros(len(side)), shift * np.sqrt(side.prod(1))], 1)
    return np.concatenate([centre - side * scale / 2, centre + side * scale / 2], 1).astype(np.float32)


def combine_human_points(teacher_set, human_set, missed: str = "box",
                         min_side: float = 8.0) -> tuple[Any, PointsReport]:
    """A teacher's boxes (with its landmarks) combined with human points on the same photos (Caltech WebFaces).

    For each photo of ``human_set``: a human-labelled face whose known points all lie in a teacher box takes that
    box (the teacher's placement) and gives it its points (human points win, the teacher's fill the rest); a face in
    a teacher *ignore* region makes that region a face; a face the teacher missed becomes a box from its points --
    fitted to the teacher's convention (the median size ratio and vertical shift over the confirmed faces) -- when
    ``missed="box"``, or an ignore region when ``missed="ignore"`` (and always when under ``min_side`` pixels).
    Teacher faces without human points stay as they are. Only photos in both sets are kept.

    Args:
        teacher_set: a kindled :class:`~singleshot.structures.AnnotationSet` (``singleshot kindle``).
        human_set: a set whose faces carry ``extra["landmarks"]`` (``caltech:``; its mouth centre, when given as
            ``extra["mouth_centre"]``, counts for containment).

    Returns:
        The combined set (rooted at ``teacher_set``'s root) and the counts.
    """
    import dataclasses

    from singleshot.boxes import pairwise_iou_xyxy_numpy

    if missed not in ("box", "ignore"):
        raise KindleError(f"missed must be 'box' or 'ignore', got {missed!r}")
    teacher_by_name = {Path(s.image_path).name: s for s in teacher_set.samples}
    pairs = [(teacher_by_name[Path(h.image_path).name], h) for h in human_set.samples
             if Path(h.image_path).name in teacher_by_name]
    report = PointsReport(Counter(images=len(pairs), human_faces=0))

    def human_points(h) -> np.ndarray:
        points = np.asarray(h.extra["landmarks"], np.float32)
        if "mouth_centre" in h.extra:
            points = np.concatenate([points, np.asarray(h.extra["mouth_centre"], np.float32)[:, None]], 1)
        return points

    # First pass: one-to-one matches (greedy by IoU) of human faces to teacher boxes that hold all their points.
    matches = []
    fitted_t, fitted_p = [], []
    for t, h in pairs:
        iou = np.full((len(t), len(h)), -1.0)
        if len(t) and len(h):
            iou = np.where(_contains(t.boxes_xyxy, human_points(h)),
                           pairwise_iou_xyxy_numpy(t.boxes_xyxy, h.boxes_xyxy), -1.0)
        match = np.full(len(h), -1)
        for flat in np.argsort(-iou, axis=None):
            ti, hi = np.unravel_index(flat, iou.shape)
            if iou[ti, hi] < 0:
                break
            if match[hi] < 0 and ti not in match:
                match[hi] = ti
        for hi, ti in enumerate(match):
            if ti >= 0 and not t.ignore[ti]:
                fitted_t.append(t.boxes_xyxy[ti])
                fitted_p.append(h.boxes_xyxy[hi])
        matches.append(match)
    if fitted_t:
        scale, shift = _fit_boxes(np.array(fitted_t), np.array(fitted_p))
        adjusted = _adjust(np.array(fitted_p), scale, shift)
        report.box_fit = (scale, shift, float(np.median(np.diag(pairwise_iou_xyxy_numpy(np.array(fitted_t),
                                                                                          adjusted)))))

    samples = []
    for (t, h), match in zip(pairs, matches):
        boxes, labels, ignore = t.boxes_xyxy.copy(), t.labels.copy(), t.ignore.copy()
        points = np.asarray(t.extra.get("landmarks", np.full((len(t), 5, 2), np.nan)), np.float32).copy()
        human = np.asarray(h.extra["landmarks"], np.float32)
        report.counts["human_faces"] += len(h)
        extra_boxes, extra_points, extra_ignore = [], [], []
        for hi, ti in enumerate(match):
            if ti >= 0:
                if ignore[ti]:
                    ignore[ti] = False
                    report.counts["promoted_from_ignore"] += 1
                else:
                    report.counts["confirmed"] += 1
                known = ~np.isnan(human[hi])
                points[ti][known] = human[hi][known]
                continue
            box = _adjust(h.boxes_xyxy[hi:hi + 1], *report.box_fit[:2])[0]
            if t.width and t.height:
                box = np.clip(box, 0, [t.width, t.height, t.width, t.height])
            if not np.isfinite(box).all() or min(box[2:] - box[:2]) <= 1:
                report.counts["unusable_points"] += 1  # under two known points, or a box outside the photo
                continue
            as_ignore = missed == "ignore" or min(box[2:] - box[:2]) < min_side
            report.counts["ignored_from_points"] += int(as_ignore)
            report.counts["added_from_points"] += int(not as_ignore)
            extra_boxes.append(box)
            extra_points.append(np.full((5, 2), np.nan, np.float32) if as_ignore else human[hi])
            extra_ignore.append(as_ignore)
        report.counts["teacher_only"] += int(np.delete(~t.ignore, match[match >= 0]).sum())
        if extra_boxes:
            boxes = np.concatenate([boxes, np.array(extra_boxes, np.float32)])
            labels = np.concatenate([labels, np.ones(len(extra_boxes), labels.dtype)])
            ignore = np.concatenate([ignore, np.array(extra_ignore, bool)])
            points = np.concatenate([points, np.array(extra_points, np.float32)])
        samples.append(dataclasses.replace(t, boxes_xyxy=boxes, labels=labels, ignore=ignore,
                                           extra={"landmarks": points}))
    return dataclasses.replace(teacher_set, samples=samples), report
