"""The official WIDER FACE evaluation (easy / medium / hard AP on the val set), reimplemented.

The reference is the MATLAB ``eval_tools`` released with the dataset (``wider_eval.m``, ``read_pred.m``,
``norm_score.m``, ``evaluation.m``, ``boxoverlap.m``, ``plot/VOCap.m``, Shuo Yang, 2015); the widely used Python port
``WiderFace-Evaluation`` (wondervictor) follows it with the differences noted below. Everything that decides the
numbers, in order (``docs/evaluation-widerface.md`` has the full account):

1. Ground truth: ``wider_face_val.mat`` (``event_list``, ``file_list``, ``face_bbx_list``: per image an ``(G, 4)``
   int32 array of ``x y w h``) and, per setting, ``wider_<setting>_val.mat`` whose ``gt_list`` gives per image the
   1-based indices of the faces that count in that setting. Every face of ``face_bbx_list`` takes part in matching,
   whatever its size (images without faces hold one ``[0 0 0 0]`` box); faces outside the setting are "ignored".
2. Predictions: per image ``x y w h score``, sorted by score, descending (``read_pred.m``; a stable sort, as
   MATLAB's ``sort``). The Python port does not sort and relies on the file order.
3. Scores are min-max normalised over all predictions of all evaluated images (``norm_score.m``). MATLAB starts
   from ``max = realmin('single')``, ``min = realmax('single')``, so both bounds, and the normalised scores, are
   single precision (MATLAB gives ``single`` for any mix of single and double); the normalised value of a score
   ``s`` is ``(single(s) - min) / (max - min)`` in float32, stored back as a double. This decides on which side of a
   threshold ``1 - t/1000`` a score such as 0.3 falls. When ``max == min`` (one prediction, or all scores equal)
   MATLAB divides 0 by 0 and every score becomes NaN, so nothing is ever counted and AP is 0; here every
   normalised score is set to 1 instead, so the predictions count at every threshold.
4. Matching, per image (``image_evaluation`` in ``evaluation.m``): boxes become corners by ``x2 = x + w``, overlaps
   use ``boxoverlap.m``'s pixel convention (``width = x2 - x1 + 1``, an intersection with ``w <= 0`` or ``h <= 0``
   is 0), in double precision (the port's Cython ``bbox_overlaps`` uses float32). For each prediction in score
   order: take the face of highest overlap (the first one on ties); if the overlap is ``>= iou_threshold``: an
   ignored face marks the prediction as no proposal (-1); a face of the setting is recalled (once). ``pred_recall``
   of a prediction is the number of faces recalled so far.
5. Images whose ground truth or predictions are empty are skipped, after their setting faces were counted in
   ``count_face`` (``evaluation.m``): faces of an image without predictions are misses, predictions on an image
   without ground-truth boxes are not false positives (never the case with the official files).
6. ``thresh_num = 1000`` thresholds ``t_i = 1 - i/1000`` (``i = 1..1000``). Per image and threshold, the last
   prediction (in score order) with normalised score ``>= t_i`` gives the number of proposals up to it and its
   ``pred_recall``; both are summed over images. ``precision = recalled / proposals`` (0/0 = NaN where no image has
   a proposal), ``recall = recalled / count_face``.
7. AP is ``VOCap``: all-point interpolated area under the precision envelope, with sentinels ``recall 0 -> 1`` and
   precision ``0``. MATLAB's ``max`` skips NaN, so NaN precisions (the thresholds above every score) never enter
   the area; the port's ``np.maximum`` propagates them but only to points of recall 0, which add no area: both give
   the same AP, and so does :func:`voc_ap` (``np.fmax``). A setting with no face (``count_face = 0``) has AP NaN.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singleshot.data.formats.base import DataError
from singleshot.evaluation.result import Curve, EvalResult
from singleshot.registry import EVAL_PROTOCOLS
from singleshot.structures import AnnotationSet

SETTINGS = ("easy", "medium", "hard")
GT_FILE = "wider_face_val.mat"
SETTING_FILES = {setting: f"wider_{setting}_val.mat" for setting in SETTINGS}
#: Where the ground-truth .mat files are looked for under the data root, in order (the official archive unpacks
#: ``eval_tools/ground_truth``).
GT_DIR_CANDIDATES = ("eval_tools/ground_truth", "ground_truth", "eval_tools_ground_truth")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

# norm_score.m starts its running max/min at realmin('single') / realmax('single').
_REALMIN_SINGLE = np.float32(np.finfo(np.float32).tiny)
_REALMAX_SINGLE = np.float32(np.finfo(np.float32).max)


@dataclass
class WiderImage:
    """One image of the official val ground truth.

    Attributes:
        event: event folder, e.g. ``0--Parade``.
        name: file stem, e.g. ``0_Parade_marchingband_1_465``.
        boxes_xywh: ``(G, 4)`` float64 faces ``x y w h`` from ``face_bbx_list`` (all faces, degenerate ones too).
        keep: setting -> ``(k,)`` int64 1-based indices into ``boxes_xywh`` of the faces that count in it.
    """

    event: str
    name: str
    boxes_xywh: np.ndarray
    keep: dict[str, np.ndarray]


# --------------------------------------------------------------------------------------------------- ground truth
def _cells(value: object, where: str) -> list:
    """The elements of a MATLAB cell array read by scipy (an object ndarray), in MATLAB's linear (column) order."""
    if not isinstance(value, np.ndarray) or value.dtype != object:
        raise DataError(f"{where}: expected a cell array, got {type(value).__name__}")
    return list(value.ravel(order="F"))


def _string(value: object, where: str) -> str:
    arr = np.asarray(value).ravel()
    if arr.size != 1 or arr.dtype.kind not in "US":
        raise DataError(f"{where}: expected a string, got {value!r}")
    return str(arr[0])


def _load_mat(path: Path, keys: Iterable[str]) -> dict:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise DataError(f"{path}: WIDER FACE ground-truth file not found")
    try:
        mat = loadmat(str(path))
    except (MatReadError, ValueError, TypeError, OSError) as err:  # what scipy raises on a bad file
        raise DataError(f"{path}: cannot read as a MATLAB .mat file ({err})") from None
    missing = [k for k in keys if k not in mat]
    if missing:
        raise DataError(f"{path}: missing variable(s) {', '.join(missing)} (not an official WIDER FACE .mat file?)")
    return mat


def load_ground_truth(gt_dir: Path) -> list[WiderImage]:
    """Read ``wider_face_val.mat`` and the three ``wider_<setting>_val.mat`` files of ``gt_dir``.

    Returns the images in the files' order (event by event). Raises :class:`DataError` when a file is missing or
    its structure differs from the official one (cell arrays ``event_list`` ``(E, 1)``, ``file_list`` and
    ``face_bbx_list`` ``(E, 1)`` of ``(n_e, 1)`` cells; ``gt_list`` the same shape as ``file_list``).
    """
    gt_dir = Path(gt_dir)
    gt_path = gt_dir / GT_FILE
    mat = _load_mat(gt_path, ("event_list", "file_list", "face_bbx_list"))
    events = _cells(mat["event_list"], f"{gt_path}: event_list")
    files = _cells(mat["file_list"], f"{gt_path}: file_list")
    boxes = _cells(mat["face_bbx_list"], f"{gt_path}: face_bbx_list")
    if not len(events) == len(files) == len(boxes):
        raise DataError(
            f"{gt_path}: event_list, file_list and face_bbx_list differ in length ({len(events)}, {len(files)}, "
            f"{len(boxes)})"
        )
    setting_lists = {}
    for setting, file_name in SETTING_FILES.items():
        path = gt_dir / file_name
        lists = _cells(_load_mat(path, ("gt_list",))["gt_list"], f"{path}: gt_list")
        if len(lists) != len(events):
            raise DataError(f"{path}: gt_list has {len(lists)} events, {GT_FILE} has {len(events)}")
        setting_lists[setting] = (path, lists)

    images: list[WiderImage] = []
    for e, (event_cell, file_cells, box_cells) in enumerate(zip(events, files, boxes)):
        event = _string(event_cell, f"{gt_path}: event_list{{{e + 1}}}")
        names = _cells(file_cells, f"{gt_path}: file_list{{{e + 1}}}")
        event_boxes = _cells(box_cells, f"{gt_path}: face_bbx_list{{{e + 1}}}")
        if len(names) != len(event_boxes):
            raise DataError(f"{gt_path}: event {event}: {len(names)} files but {len(event_boxes)} box lists")
        event_keeps = {}
        for setting, (path, lists) in setting_lists.items():
            event_keeps[setting] = _cells(lists[e], f"{path}: gt_list{{{e + 1}}}")
            if len(event_keeps[setting]) != len(names):
                raise DataError(
                    f"{path}: event {event}: {len(event_keeps[setting])} images, {GT_FILE} has {len(names)}"
                )
        for j, (name_cell, box_cell) in enumerate(zip(names, event_boxes)):
            name = _string(name_cell, f"{gt_path}: file_list{{{e + 1}}}{{{j + 1}}}")
            arr = np.asarray(box_cell)
            if arr.size % 4 or (arr.size and arr.shape[-1] != 4):
                raise DataError(f"{gt_path}: {event}/{name}: face boxes must be (G, 4) x y w h, got shape {arr.shape}")
            gt = arr.astype(np.float64).reshape(-1, 4)
            keep = {}
            for setting in SETTINGS:
                # gt_list{e}{j} is (k, 1) uint8/uint16, or an empty (0, 0) / (0, 1) array.
                idx = np.asarray(event_keeps[setting][j]).ravel().astype(np.int64)
                if idx.size and (idx.min() < 1 or idx.max() > len(gt)):
                    raise DataError(
                        f"{setting_lists[setting][0]}: {event}/{name}: face index out of 1..{len(gt)}: {idx.tolist()}"
                    )
                keep[setting] = idx
            images.append(WiderImage(event=event, name=name, boxes_xywh=gt, keep=keep))
    return images


def _has_gt_files(folder: Path) -> bool:
    return (folder / GT_FILE).is_file()


def find_ground_truth(root: Path, max_depth: int = 3) -> Path:
    """The folder holding ``wider_face_val.mat`` under the data root ``root``.

    Looks in ``ROOT/eval_tools/ground_truth``, ``ROOT/ground_truth``, ``ROOT/eval_tools_ground_truth``, ``ROOT``,
    then searches ``max_depth`` folder levels below ``ROOT`` (skipping the ``WIDER_*`` image folders, which hold
    thousands of files). Raises :class:`DataError` when not found.
    """
    root = Path(root)
    for candidate in (*GT_DIR_CANDIDATES, "."):
        if _has_gt_files(root / candidate):
            return root / candidate  # pathlib drops the "." of ROOT itself
    level = [root]
    for _ in range(max_depth):
        below = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda d: d.name)
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir() and not entry.name.startswith(("WIDER_", ".")):
                    if _has_gt_files(Path(entry.path)):
                        return Path(entry.path)
                    below.append(Path(entry.path))
        level = below
    raise DataError(
        f"{root}: {GT_FILE} not found (looked in {', '.join(GT_DIR_CANDIDATES)} and {max_depth} folder levels "
        f"below); unpack the official eval_tools there or pass gt_dir"
    )


# -------------------------------------------------------------------------------------------------------- scoring
def box_overlap(gt_xyxy: np.ndarray, pred_xyxy: np.ndarray) -> np.ndarray:
    """``(P, G)`` IoU of ``(P, 4)`` predictions with ``(G, 4)`` faces, corners ``x1 y1 x2 y2`` inclusive pixels.

    The convention of ``boxoverlap.m``: widths and heights are ``x2 - x1 + 1``, an intersection whose width or
    height is ``<= 0`` gives 0. Float64, with the same operation order as the MATLAB, so results are bit-identical.
    """
    g = np.asarray(gt_xyxy, dtype=np.float64)[None, :, :]
    p = np.asarray(pred_xyxy, dtype=np.float64)[:, None, :]
    w = np.minimum(g[..., 2], p[..., 2]) - np.maximum(g[..., 0], p[..., 0]) + 1
    h = np.minimum(g[..., 3], p[..., 3]) - np.maximum(g[..., 1], p[..., 1]) + 1
    inter = w * h
    g_area = (g[..., 2] - g[..., 0] + 1) * (g[..., 3] - g[..., 1] + 1)
    p_area = (p[..., 2] - p[..., 0] + 1) * (p[..., 3] - p[..., 1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = inter / (g_area + p_area - inter)
    overlap[(w <= 0) | (h <= 0)] = 0
    return overlap


def normalise_scores(scores: list[np.ndarray]) -> tuple[list[np.ndarray], float, float]:
    """Min-max normalise the ``(K_i,)`` score arrays of all images together, as ``norm_score.m`` does.

    Returns the normalised arrays (float64 holding float32 values, see the module docstring, point 3) and the
    single-precision bounds used. When the bounds are equal every normalised score is 1.
    """
    nonempty = [s for s in scores if len(s)]
    if not nonempty:
        return [np.zeros(0) for _ in scores], float("nan"), float("nan")
    # max(realmin('single'), double) is single in MATLAB: the bounds are the extreme scores rounded to float32.
    hi = max(_REALMIN_SINGLE, np.float32(max(float(s.max()) for s in nonempty)))
    lo = min(_REALMAX_SINGLE, np.float32(min(float(s.min()) for s in nonempty)))
    span = np.float32(hi - lo)
    out = []
    for s in scores:
        if span == 0:
            # MATLAB: 0/0 = NaN for every score, then nothing passes any threshold (AP 0). We count them all.
            out.append(np.ones(len(s)))
        else:
            out.append(((s.astype(np.float32) - lo) / span).astype(np.float64))
    return out, float(lo), float(hi)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated average precision of a curve, as ``VOCap.m``.

    ``recall`` and ``precision`` are ``(T,)``, recall non-decreasing. Sentinels ``(0, 0)`` and ``(1, 0)`` are added,
    precision is replaced by its running maximum from the right (NaN skipped, as MATLAB's ``max``), and the area is
    the sum of ``recall step * precision`` where recall changes.
    """
    mrec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    mpre = np.fmax.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def thresholds(thresh_num: int = 1000) -> np.ndarray:
    """``(thresh_num,)`` decreasing score thresholds ``1 - i / thresh_num``, ``i = 1..thresh_num`` (``evaluation.m``)."""
    return 1 - np.arange(1, thresh_num + 1, dtype=np.float64) / thresh_num


def _image_counts(
    best: np.ndarray, best_iou: np.ndarray, in_setting: np.ndarray, n_above: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per threshold, the proposals and recalled faces of one image for one setting.

    ``best``/``best_iou``: ``(P,)`` index and IoU of each prediction's best face (predictions in score order);
    ``in_setting``: ``(G,)`` bool; ``n_above``: ``(T,)`` number of predictions with normalised score ``>= t``.
    The greedy loop of ``image_evaluation`` reduces to: a prediction stops being a proposal iff its best face is
    ignored and overlaps enough; a face is recalled by the first prediction matching it.
    """
    hit = best_iou >= iou_threshold
    counts_face = in_setting[best]
    proposal = ~(hit & ~counts_face)
    matched = np.flatnonzero(hit & counts_face)
    first = np.zeros(len(best), dtype=np.int64)
    if len(matched):
        _, first_pos = np.unique(best[matched], return_index=True)  # index of each face's first match
        first[matched[first_pos]] = 1
    proposals = np.concatenate([[0], np.cumsum(proposal)])
    recalled = np.concatenate([[0], np.cumsum(first)])
    return proposals[n_above], recalled[n_above]


# ---------------------------------------------------------------------------------------------------- predictions
def _key_parts(key: str) -> tuple[str | None, str]:
    """``(event or None, file stem)`` of a predictions key (``WIDER_val/images/<event>/<f>.jpg``, ``<event>/<f>``...)."""
    parts = [p for p in key.replace("\\", "/").split("/") if p]
    if not parts:
        return None, ""
    name = parts[-1]
    if name.lower().endswith(IMAGE_EXTENSIONS):
        name = name.rsplit(".", 1)[0]
    return (parts[-2] if len(parts) > 1 else None), name


def _match_keys(
    predictions: Mapping[str, np.ndarray], images: list[WiderImage]
) -> tuple[dict[int, tuple[str, np.ndarray]], list[str]]:
    """Map predictions keys to ground-truth image indices: on (event, stem) when the key names a known event, else
    on the stem alone (stems are unique in the official val set). Returns the matches and the unmatched keys."""
    by_event = {(im.event, im.name): i for i, im in enumerate(images)}
    by_stem: dict[str, int | None] = {}
    for i, im in enumerate(images):
        by_stem[im.name] = None if im.name in by_stem else i  # None: ambiguous without the event
    events = {im.event for im in images}
    matched: dict[int, tuple[str, np.ndarray]] = {}
    unmatched = []
    for key, rows in predictions.items():
        event, stem = _key_parts(key)
        index = by_event.get((event, stem)) if event in events else by_stem.get(stem)
        if index is None:
            unmatched.append(key)
            continue
        if index in matched:
            raise DataError(
                f"predictions: keys {matched[index][0]!r} and {key!r} both name image "
                f"{images[index].event}/{images[index].name}"
            )
        matched[index] = (key, rows)
    return matched, unmatched


def _prediction_rows(key: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(K, 4)`` x y w h boxes and ``(K,)`` scores of one image's ``(K, 5 or 6)`` xyxy predictions, label-1 rows
    only, in the given order. Also returns the number of rows dropped for another label."""
    arr = np.asarray(rows, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4)), np.zeros(0), 0
    if arr.ndim != 2 or arr.shape[1] not in (5, 6):
        raise DataError(
            f"predictions: entry {key!r}: expected (K, 6) rows [x1, y1, x2, y2, score, label], got {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise DataError(f"predictions: entry {key!r}: non-finite box or score")
    dropped = 0
    if arr.shape[1] == 6:
        face = arr[:, 5] == 1
        dropped = int((~face).sum())
        arr = arr[face]
    # w = x2 - x1 so that the official x2 = x + w gives back x2 (up to rounding).
    xywh = np.stack([arr[:, 0], arr[:, 1], arr[:, 2] - arr[:, 0], arr[:, 3] - arr[:, 1]], axis=1)
    return xywh, arr[:, 4].copy(), dropped


def read_wider_submission(folder: Path) -> dict[str, np.ndarray]:
    """Read predictions in the official submission layout into ``{key: (K, 6) [x1, y1, x2, y2, score, 1]}``.

    ``folder/<event>/<stem>.txt`` (files directly in ``folder`` are read too), each: line 1 the image name (not
    used: as ``read_pred.m``, the file's path names the image), line 2 the number of boxes ``K``, then ``K`` lines
    ``x y w h score`` (further numbers on a line and lines after the ``K``-th are ignored, as ``read_pred.m``; blank
    lines are skipped). Keys are ``<event>/<stem>.jpg``; ``x2 = x + w``, ``y2 = y + h``. Raises a one-line
    :class:`DataError` naming the file and line for a malformed file (``read_pred.m`` would print "Invalid format"
    and score the image as without predictions).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: submission folder not found (expected <folder>/<event>/<image>.txt)")
    paths = sorted(folder.glob("*.txt")) + sorted(folder.glob("*/*.txt"))
    if not paths:
        raise DataError(f"{folder}: no prediction files (expected <folder>/<event>/<image>.txt)")
    out: dict[str, np.ndarray] = {}
    for path in paths:
        rel = path.relative_to(folder)
        key = (rel.parent / f"{path.stem}.jpg").as_posix()
        out[key] = _read_submission_file(path)
    return out


def _read_submission_file(path: Path) -> np.ndarray:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    if not lines or not any(line.strip() for line in lines):
        raise DataError(f"{path}: empty file (expected: image name, number of boxes, then x y w h score lines)")
    if len(lines) < 2:
        raise DataError(f"{path}:1: no line 2 (the number of boxes)")
    try:
        count = int(lines[1].strip())
    except ValueError:
        raise DataError(f"{path}:2: expected the number of boxes, got {lines[1].strip()!r}") from None
    if count < 0:
        raise DataError(f"{path}:2: negative number of boxes ({count})")
    rows = np.zeros((count, 6), dtype=np.float64)
    rows[:, 5] = 1
    k = 0
    for line_no, line in enumerate(lines[2:], start=3):
        if k == count:
            break
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.replace(",", " ").split()]
        except ValueError:
            raise DataError(f"{path}:{line_no}: expected x y w h score, got {line.strip()!r}") from None
        if len(values) < 5:
            raise DataError(f"{path}:{line_no}: expected x y w h score (5 numbers), got {len(values)}")
        x, y, w, h, score = values[:5]
        rows[k, :5] = [x, y, x + w, y + h, score]
        k += 1
    if k < count:
        raise DataError(f"{path}:2: announces {count} boxes but the file holds {k} box line(s)")
    return rows


# ------------------------------------------------------------------------------------------------------- protocol
def _present(images: list[WiderImage], data: AnnotationSet) -> np.ndarray:
    """``(N,)`` bool: the image file exists, as a sample's ``image_path`` or at ``ROOT/WIDER_val/images``."""
    exists_by_name: dict[tuple[str | None, str], bool] = {}
    for sample in data.samples:
        event, stem = _key_parts(sample.key)
        if sample.image_path.exists():
            exists_by_name[(event, stem)] = True
    base = Path(data.root) / "WIDER_val" / "images"
    return np.array(
        [
            exists_by_name.get((im.event, im.name), False) or (base / im.event / f"{im.name}.jpg").exists()
            for im in images
        ],
        dtype=bool,
    )


@EVAL_PROTOCOLS.register("widerface")
def evaluate_widerface(
    data: AnnotationSet,
    predictions: dict[str, np.ndarray],
    present_only: bool = False,
    gt_dir: Path | None = None,
    iou_threshold: float = 0.5,
    thresh_num: int = 1000,
) -> EvalResult:
    """WIDER FACE val AP for the easy, medium and hard settings, as the official MATLAB evaluation computes it.

    Args:
        data: the val set as read by the ``widerface`` format; ``data.root`` locates the ground-truth ``.mat`` files
            (see :func:`find_ground_truth`), which are the ground truth actually used, as in the official code.
        predictions: ``{key: (K, 6) [x1, y1, x2, y2, score, label]}`` in pixels (``(K, 5)`` without label is
            accepted; only label-1 rows are kept). Keys are ``WIDER_val/images/<event>/<file>.jpg`` (the data-root
            relative path), ``<event>/<file>.jpg`` or ``<file>.jpg``; images without an entry have no detections.
        present_only: evaluate only the images whose file exists (a subset at hand); face counts cover them only.
        gt_dir: folder of ``wider_face_val.mat`` and ``wider_{easy,medium,hard}_val.mat`` (overrides the search).
        iou_threshold: minimum overlap of a match (official: 0.5).
        thresh_num: number of score thresholds of the precision-recall curve (official: 1000).

    Returns:
        metrics ``{"easy", "medium", "hard"}`` APs, one precision-recall :class:`Curve` per setting (thresholds with
        at least one proposal), and details: counts, the score normalisation bounds and the settings used.
    """
    if thresh_num < 1:
        raise ValueError(f"thresh_num must be >= 1, got {thresh_num}")
    root = Path(data.root)
    gt_dir = Path(gt_dir) if gt_dir is not None else find_ground_truth(root)
    images = load_ground_truth(gt_dir)
    if data.samples:
        known = {(im.event, im.name) for im in images}
        if not any(_key_parts(s.key) in known for s in data.samples):
            raise DataError(
                f"{root}: none of the {len(data)} images of the data is in {gt_dir / GT_FILE} "
                f"(e.g. {data.samples[0].key}); the official evaluation covers the val split"
            )
    matched, unmatched = _match_keys(predictions, images)
    if predictions and not matched:
        raise DataError(
            f"predictions: none of the {len(predictions)} keys names a val image (e.g. {next(iter(predictions))!r}; "
            f"expected WIDER_val/images/<event>/<file>.jpg)"
        )

    selected = _present(images, data) if present_only else np.ones(len(images), dtype=bool)
    if present_only and not selected.any():
        raise DataError(f"{root}: present_only: no val image found (looked for WIDER_val/images/<event>/<file>.jpg)")
    evaluated = np.flatnonzero(selected)

    # Predictions per evaluated image, sorted by score (read_pred.m), then normalised over all of them (norm_score.m).
    boxes, raw_scores = [], []
    other_labels = 0
    for i in evaluated:
        if i in matched:
            xywh, score, dropped = _prediction_rows(*matched[i])
            other_labels += dropped
            order = np.argsort(-score, kind="stable")
            boxes.append(xywh[order])
            raw_scores.append(score[order])
        else:
            boxes.append(np.zeros((0, 4)))
            raw_scores.append(np.zeros(0))
    scores, lo, hi = normalise_scores(raw_scores)

    thr = thresholds(thresh_num)
    proposals = {s: np.zeros(thresh_num, dtype=np.int64) for s in SETTINGS}
    recalled = {s: np.zeros(thresh_num, dtype=np.int64) for s in SETTINGS}
    faces = dict.fromkeys(SETTINGS, 0)
    without_predictions = 0
    for i, xywh, score in zip(evaluated, boxes, scores):
        image = images[i]
        for s in SETTINGS:
            faces[s] += len(image.keep[s])  # counted before the skip below, as evaluation.m
        if len(score) == 0:
            without_predictions += 1
        if len(score) == 0 or len(image.boxes_xywh) == 0:
            continue
        gt = image.boxes_xywh
        overlaps = box_overlap(
            np.concatenate([gt[:, :2], gt[:, :2] + gt[:, 2:]], axis=1),
            np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1),
        )
        overlaps[np.isnan(overlaps)] = -np.inf  # MATLAB's max skips NaN (only possible for degenerate boxes)
        best = overlaps.argmax(axis=1)  # first of equal maxima, as MATLAB's max
        best_iou = overlaps[np.arange(len(best)), best]
        # Scores are non-increasing, so "the last prediction with score >= t" is prediction number count(score >= t).
        n_above = np.searchsorted(-score, -thr, side="right")
        for s in SETTINGS:
            in_setting = np.zeros(len(gt), dtype=bool)
            in_setting[image.keep[s] - 1] = True
            p, r = _image_counts(best, best_iou, in_setting, n_above, iou_threshold)
            proposals[s] += p
            recalled[s] += r

    metrics: dict[str, float] = {}
    curves: list[Curve] = []
    for s in SETTINGS:
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = recalled[s] / proposals[s]  # 0/0 = NaN: no proposal at this threshold
        if faces[s] == 0:
            metrics[s] = float("nan")
            recall = np.full(thresh_num, np.nan)
        else:
            recall = recalled[s] / faces[s]
            metrics[s] = voc_ap(recall, precision)
        valid = proposals[s] > 0
        curves.append(Curve(name=s, x=recall[valid], y=precision[valid]))

    details = {
        "images": len(evaluated),
        "images_in_ground_truth": len(images),
        "images_without_predictions": without_predictions,
        **{f"faces_{s}": faces[s] for s in SETTINGS},
        "predictions": int(sum(len(s) for s in scores)),
        "predictions_for_unknown_images": len(unmatched),
        "predictions_for_absent_images": sum(1 for i in matched if not selected[i]),
        "predictions_other_labels_dropped": other_labels,
        "score_min": lo,
        "score_max": hi,
        "iou_threshold": float(iou_threshold),
        "thresh_num": int(thresh_num),
        "present_only": bool(present_only),
        "gt_dir": str(gt_dir),
    }
    if unmatched:
        details["predictions_for_unknown_images_examples"] = unmatched[:5]
    return EvalResult(protocol="widerface", metrics=metrics, curves=curves, details=details)
