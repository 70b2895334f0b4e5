"""Training an attribute: :func:`train_attribute` (AdamW, cosine schedule, augmentation, optional distillation from
a teacher, mixup, unlabelled crops and a held-out split), its scores (:func:`roc_auc`) and its
:class:`AttributeResult`."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from singleshot.attributes.config import AttributeConfig, AttributeError_
from singleshot.attributes.data import (
    ALIGN_FILE,
    Degradations,
    _normalise,
    augment_batch,
    degrade_batch,
    load_crop_folder,
    load_unlabeled_crops,
    read_exclude_list,
)
from singleshot.attributes.model import _probabilities, build_attribute_net, load_attribute_net, predict_crops
from singleshot.attributes.teachers import EXTERNAL_TEACHERS, load_external_teacher
from singleshot.checkpoint import FORMAT, VERSION, CheckpointError, save_checkpoint


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney U statistic, tied scores counted half."""
    scores = np.asarray(scores, np.float64)
    pos = np.asarray(labels) == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    # average rank of each run of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class AttributeResult:
    """What ``singleshot attribute train`` measured on the test split."""

    name: str
    backbone_init: str
    freeze_backbone: bool
    train_crops: int
    test_crops: int
    accuracy: float
    roc_auc: float
    train_seconds: float
    checkpoint: str
    history: list[dict[str, float]] = field(default_factory=list)


class _Teacher:
    """Soft targets for the student's normalised, augmented crops: the mean probability of one or more trained
    attribute networks (an ensemble is a better teacher than any of its members)."""

    def __init__(self, weights: str | Path | Sequence[str | Path], student_mean: Sequence[float],
                 student_std: Sequence[float]) -> None:
        paths = [weights] if isinstance(weights, (str, Path)) else list(weights)
        self.members = []
        s_mean, s_std = torch.tensor(student_mean).view(1, 3, 1, 1), torch.tensor(student_std).view(1, 3, 1, 1)
        self.student_mean, self.student_std = s_mean, s_std
        for path in paths:
            if str(path) in EXTERNAL_TEACHERS:  # a network trained elsewhere, on square crops
                external = load_external_teacher(str(path))
                self.members.append({"path": external.description, "external": external, "align": False,
                                     "size": external.input_size, "flip": False, "accuracy": None})
                continue
            if not Path(path).exists():
                raise CheckpointError(f"{path}: no such attribute checkpoint, nor a registered teacher "
                                      f"({', '.join(EXTERNAL_TEACHERS.names())})")
            net, checkpoint = load_attribute_net(path)
            for p in net.parameters():
                p.requires_grad_(False)
            meta = checkpoint["backbone"]
            t_mean = torch.tensor(meta["mean_rgb"]).view(1, 3, 1, 1)
            t_std = torch.tensor(meta["std_rgb"]).view(1, 3, 1, 1)
            # one affine map from the student's normalisation to this member's
            self.members.append({
                "path": str(path), "net": net, "size": int(checkpoint["input_size"]),
                "flip": bool(checkpoint.get("flip_tta", False)), "scale": s_std / t_std,
                "shift": (s_mean - t_mean) / t_std, "accuracy": checkpoint.get("metrics", {}).get("accuracy"),
                "align": bool(checkpoint.get("align", False)),
            })

    def describe(self) -> str:
        return "; ".join(f"{m['path']} (input {m['size']}, mirror average {m['flip']}, test accuracy "
                         f"{m['accuracy'] if m['accuracy'] is None else round(m['accuracy'], 4)})"
                         for m in self.members)

    @torch.no_grad()
    def __call__(self, x: Tensor, x_square: Tensor | None = None) -> Tensor:
        """``(B, 3, S, S)`` student-normalised crops -> ``(B,)`` teacher probabilities. ``x_square``: the same faces
        cut square (``teacher_square``), what members trained on square crops see instead of ``x``."""
        total = torch.zeros(len(x))
        for m in self.members:
            xm = x if x_square is None or m["align"] else x_square
            if "external" in m:  # it reads RGB pixels and does its own resizing
                total += m["external"](xm * self.student_std + self.student_mean)
                continue
            xm = xm * m["scale"] + m["shift"]
            if xm.shape[-1] != m["size"]:  # the member's own input size (its training crops were resized likewise)
                xm = nn.functional.interpolate(xm, size=(m["size"], m["size"]), mode="bilinear", align_corners=False)
            total += _probabilities(m["net"], xm, m["flip"])
        return total / len(self.members)


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out): ``fraction`` of each outcome held out, chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    held = []
    for outcome in np.unique(labels):
        idx = np.flatnonzero(labels == outcome)
        held.append(rng.permutation(idx)[: round(len(idx) * fraction)])
    held_out = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


def _score(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    return float(((probs >= 0.5) == (labels == 1)).mean()), roc_auc(probs, labels)


#: the cheap stand-in for faces unlike GENKI-4K's (docs/attributes.md): grayscale, and 32 px enlarged back.
STAND_IN = Degradations(grayscale=1.0, low_resolution=1.0, resolution_px=(32, 32))


def degraded_copy(crops_uint8: np.ndarray) -> np.ndarray:
    """``(N, S, S, 3)`` uint8 crops as :data:`STAND_IN` makes them (deterministic)."""
    x = _normalise(crops_uint8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    x = degrade_batch(x, torch.Generator().manual_seed(0), STAND_IN, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    return x.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()


def best_threshold(probs: np.ndarray, labels: np.ndarray) -> float:
    """The decision threshold of highest accuracy (midpoints between sorted probabilities; ties: nearest 0.5)."""
    p = np.sort(np.unique(probs))
    candidates = np.concatenate(([0.5], (p[1:] + p[:-1]) / 2)) if len(p) > 1 else np.array([0.5])
    accuracy = np.array([((probs >= t) == (labels == 1)).mean() for t in candidates])
    best = np.flatnonzero(accuracy >= accuracy.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def aligned_scale(config: AttributeConfig) -> float:
    """The template scale ``singleshot attribute align`` recorded beside ``config``'s crops (``aligned.json`` in
    the train and test folders or a folder above them, the same for both).

    Raises:
        AttributeError_: a folder's crops were not aligned, or train and test were aligned differently.
    """
    import json

    scales = []
    for folder in (config.train, config.test):
        found = next((p / ALIGN_FILE for p in (Path(folder), *Path(folder).parents) if (p / ALIGN_FILE).is_file()),
                     None)
        if found is None:
            raise AttributeError_(f"{folder}: align is set but these crops were not aligned (no {ALIGN_FILE} in "
                                  "it or above it; run singleshot attribute align)")
        scales.append(float(json.loads(found.read_text())["scale"]))
    if scales[0] != scales[1]:
        raise AttributeError_(f"train and test crops were aligned at different scales ({scales[0]}, {scales[1]})")
    return scales[0]


def _below_folder(name: str) -> str:
    """A crop's name below its folder's own name (``<folder>/<outcome>/<file>`` -> ``<outcome>/<file>``; for
    unlabelled crops ``<index>/<path>`` -> ``<path>``): the face, whatever folder holds another cut of it."""
    return name.split("/", 1)[1]


def _matching(crops: np.ndarray, names: Sequence[str], row_of: dict[str, int]) -> tuple[np.ndarray, list[int]]:
    """The crops whose name is a key of ``row_of``, and the row each maps to."""
    keep = [k for k, name in enumerate(names) if name in row_of]
    return crops[keep], [row_of[names[k]] for k in keep]


def _square_views(config: AttributeConfig, exclude: set[str], train_names: Sequence[str],
                  extra_names: Sequence[str]) -> np.ndarray:
    """The square crops (``config.teacher_square``) of the faces named ``train_names`` then ``extra_names``, row for
    row: uint8 ``(N, S, S, 3)``.

    Raises:
        AttributeError_: a face has no square crop of its name.
    """
    size = config.input_size
    square_x, _, square_names = load_crop_folder(config.teacher_square[0], exclude, size)
    parts = [(config.teacher_square[0], square_x, [_below_folder(n) for n in square_names],
              [_below_folder(n) for n in train_names])]
    if config.unlabeled:
        extra_x, names = load_unlabeled_crops(config.teacher_square[1:], size)
        parts.append((", ".join(config.teacher_square[1:]), extra_x, names, extra_names))
    return np.concatenate([_square_crops_of(*part, "teacher_square") for part in parts])


def _square_crops_of(where: str, crops: np.ndarray, names: Sequence[str], wanted: Sequence[str],
                     option: str) -> np.ndarray:
    """The crops of ``crops`` (named ``names``) of the faces named ``wanted``, row for row.

    Raises:
        AttributeError_: a wanted face has no crop of its name (``where`` and ``option`` name the folder and the
        setting in the message).
    """
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in wanted if name not in index]
    if missing:
        raise AttributeError_(f"{where}: no square crop for {len(missing)} of {len(wanted)} crops, e.g. "
                              f"{missing[0]} ({option} must hold the same faces under the same names)")
    return crops[[index[name] for name in wanted]]


def _extra_square(config: AttributeConfig, exclude: set[str],
                  extra: Sequence[tuple[np.ndarray, np.ndarray, list[str]]]) -> np.ndarray:
    """The square crops (``config.extra_square``) of the ``extra_train`` faces, row for row with their crops
    (``extra``: each folder's crops, labels and names, as loaded): uint8 ``(N, S, S, 3)``."""
    out = []
    for folder, (_, _, wanted) in zip(config.extra_square, extra):
        square_x, _, names = load_crop_folder(folder, exclude, config.input_size)
        out.append(_square_crops_of(folder, square_x, [_below_folder(n) for n in names],
                                    [_below_folder(n) for n in wanted], "extra_square"))
    return np.concatenate(out)


def _train_views(config: AttributeConfig, exclude: set[str], train_names: Sequence[str],
                 held_names: Sequence[str] = ()) -> tuple[tuple[np.ndarray, Tensor], tuple[np.ndarray, Tensor]]:
    """The crops of ``config.train_views`` that show the faces named in ``train_names``, then those that show the
    held-out faces ``held_names``: for each, uint8 ``(M, S, S, 3)`` and the row of each view's face in its list
    ``(M,)`` (a face is its outcome subfolder and file name).

    Raises:
        AttributeError_: a view folder is missing, or shows none of the training faces; two training faces
        share a name.
    """
    train_index = {_below_folder(name): i for i, name in enumerate(train_names)}
    if len(train_index) < len(train_names):
        twice = next(n for n, c in Counter(_below_folder(name) for name in train_names).items() if c > 1)
        raise AttributeError_(f"two training faces are both named {twice} below their folders: their views "
                              "cannot tell them apart (rename one set's files)")
    held_index = {_below_folder(name): i for i, name in enumerate(held_names)}
    train_crops, train_rows, held_crops, held_rows = [], [], [], []
    for folder in config.train_views:
        x, _labels, names = load_crop_folder(folder, exclude, config.input_size)
        faces = [_below_folder(name) for name in names]
        picked, rows = _matching(x, faces, train_index)
        if not rows:
            raise AttributeError_(f"{folder}: none of its {len(names)} crops shows a training face (train_views "
                                  "must hold the training crops' faces under the same names)")
        train_crops.append(picked)
        train_rows.extend(rows)
        picked, rows = _matching(x, faces, held_index)
        held_crops.append(picked)
        held_rows.extend(rows)
    return ((np.concatenate(train_crops), torch.tensor(train_rows, dtype=torch.long)),
            (np.concatenate(held_crops), torch.tensor(held_rows, dtype=torch.long)))


def _unlabeled_views(config: AttributeConfig, extra_names: Sequence[str]) -> tuple[np.ndarray, Tensor]:
    """The crops of ``config.unlabeled_views`` and, for each, the row of its face in ``extra_names`` (the unlabelled
    crops' names, ``<folder index>/<path inside>``): uint8 ``(M, S, S, 3)``, ``(M,)``.

    Raises:
        AttributeError_: a view folder is missing, or shows none of its unlabelled folder's faces.
    """
    row_of = {name: i for i, name in enumerate(extra_names)}
    crops, rows = [], []
    for k, folder in enumerate(config.unlabeled_views):
        if not folder:
            continue
        x, names = load_unlabeled_crops([folder], config.input_size)
        picked, picked_rows = _matching(x, [f"{k}/{_below_folder(name)}" for name in names], row_of)
        if not picked_rows:
            raise AttributeError_(f"{folder}: none of its {len(names)} crops shows a face of {config.unlabeled[k]} "
                                  "(unlabeled_views must hold the same faces under the same names)")
        crops.append(picked)
        rows.extend(picked_rows)
    return np.concatenate(crops), torch.tensor(rows, dtype=torch.long)


def _teacher_targets(teacher: _Teacher, x: Tensor, x_square: Tensor | None, batch: int = 256) -> Tensor:
    """``(N, 3, S, S)`` student-normalised crops (and their square crops, or None) -> ``(N,)`` teacher
    probabilities, in batches."""
    return torch.cat([teacher(x[i : i + batch], None if x_square is None else x_square[i : i + batch])
                      for i in range(0, len(x), batch)])


def _join_views(x_all: Tensor, y_all: Tensor, label_w: Tensor, fixed_targets: Tensor | None, views: Tensor,
                rows: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """The training rows with ``views`` ``(M, 3, S, S)`` appended, each taking the label, label weight and teacher
    target of its face's row ``rows`` ``(M,)``."""
    return (torch.cat((x_all, views)), torch.cat((y_all, y_all[rows])), torch.cat((label_w, label_w[rows])),
            None if fixed_targets is None else torch.cat((fixed_targets, fixed_targets[rows])))


def train_attribute(config: AttributeConfig, progress: bool = True,
                    log: Callable[[str], object] = print) -> AttributeResult:
    """Train, evaluate on the test split, save the checkpoint to ``config.out``; see :class:`AttributeConfig`.

    Raises:
        AttributeError_: missing or empty crop folders; CheckpointError: a missing or wrong teacher checkpoint.
    """
    from tqdm import tqdm

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    # networks first: a missing detector or teacher checkpoint stops the run before the crops are read
    net, meta = build_attribute_net(config)
    mean, std = meta["mean_rgb"], meta["std_rgb"]
    teacher = _Teacher(config.teacher, mean, std) if config.teacher else None
    exclude = read_exclude_list(config.exclude)
    crop_scale = aligned_scale(config) if config.align else config.crop_scale
    train_x, train_y, train_names = load_crop_folder(config.train, exclude, config.input_size)
    test_x, test_y, _ = load_crop_folder(config.test, exclude, config.input_size)
    val_x = val_y = val_degraded = None
    held_names: list[str] = []
    if config.val_fraction > 0:
        kept, held = _stratified_split(train_y, config.val_fraction, config.seed)
        val_x, val_y = train_x[held], train_y[held]
        val_degraded = degraded_copy(val_x)
        train_x, train_y = train_x[kept], train_y[kept]
        held_names = [train_names[i] for i in held]
        train_names = [train_names[i] for i in kept]
    val_views = val_views_y = None
    degradations = Degradations(grayscale=config.augment_grayscale, low_resolution=config.augment_low_resolution,
                                blur=config.augment_blur, jpeg=config.augment_jpeg, paste=config.augment_paste)
    if teacher is not None:
        log(f"teacher: {teacher.describe()}; distill_weight {config.distill_weight}")
    beta = torch.distributions.Beta(config.mixup, config.mixup) if config.mixup > 0 else None
    x_all = _normalise(train_x, mean, std)
    y_all = torch.from_numpy(train_y).float()
    # per-crop weight of the label in the target: labelled crops (1 - distill_weight), unlabelled ones 0 (teacher)
    label_w = torch.full((len(x_all),), 1.0 - (config.distill_weight if teacher is not None else 0.0))
    extra_names: list[str] = []
    if config.unlabeled:
        extra, extra_names = load_unlabeled_crops(config.unlabeled, config.input_size)
        log(f"{len(extra)} unlabelled crops from {', '.join(config.unlabeled)} (teacher targets only)")
        x_all = torch.cat((x_all, _normalise(extra, mean, std)))
        y_all = torch.cat((y_all, torch.zeros(len(extra))))
        label_w = torch.cat((label_w, torch.zeros(len(extra))))
    fixed_targets = None
    if teacher is not None and not config.distill_online:
        x_square = None
        if config.teacher_square:
            x_square = _normalise(_square_views(config, exclude, train_names, extra_names), mean, std)
            log(f"square crops of the same faces for the teachers trained on them: {', '.join(config.teacher_square)}")
        fixed_targets = _teacher_targets(teacher, x_all, x_square)
    first_unlabeled = len(train_x)  # rows: training crops, unlabelled crops, extra labelled crops, then views
    val_extra = val_extra_y = None
    more_names: list[str] = []
    first_more = len(x_all)  # the extra labelled crops' first row
    if config.extra_train:
        more = [load_crop_folder(folder, exclude, config.input_size) for folder in config.extra_train]
        more_x, more_y = np.concatenate([m[0] for m in more]), np.concatenate([m[1] for m in more])
        more_names = [name for m in more for name in m[2]]
        more_square = _extra_square(config, exclude, more) if config.extra_square else None
        if config.val_fraction > 0:
            kept, held = _stratified_split(more_y, config.val_fraction, config.seed)
            val_extra, val_extra_y = more_x[held], more_y[held]
            more_x, more_y, more_names = more_x[kept], more_y[kept], [more_names[i] for i in kept]
            more_square = None if more_square is None else more_square[kept]
        share = config.extra_distill_weight
        log(f"{len(more_x)} labelled crops from {', '.join(config.extra_train)} "
            + (f"(labels, teachers' share of the target {share})" if share > 0 else "(labels only)")
            + (f", {len(val_extra)} held out" if val_extra is not None else ""))
        more_t = _normalise(more_x, mean, std)
        x_all = torch.cat((x_all, more_t))
        y_all = torch.cat((y_all, torch.from_numpy(more_y).float()))
        label_w = torch.cat((label_w, torch.full((len(more_x),), 1.0 - share)))
        if fixed_targets is not None:
            more_targets = torch.zeros(len(more_x))
            if share > 0:
                more_targets = _teacher_targets(
                    teacher, more_t, None if more_square is None else _normalise(more_square, mean, std))
            fixed_targets = torch.cat((fixed_targets, more_targets))
    if config.train_views:
        (view_x, view_rows), (val_views, held_rows) = _train_views(config, exclude, train_names + more_names,
                                                                   held_names)
        # a view of an extra labelled face: that face's row after the unlabelled crops
        view_rows = torch.where(view_rows < len(train_names), view_rows, view_rows - len(train_names) + first_more)
        log(f"{len(view_x)} other views of the training faces from {', '.join(config.train_views)}"
            + (f" ({len(val_views)} of held-out faces scored apart)" if len(val_views) else ""))
        if len(val_views):
            val_views_y = val_y[held_rows.numpy()]
        else:
            val_views = None
        x_all, y_all, label_w, fixed_targets = _join_views(x_all, y_all, label_w, fixed_targets,
                                                           _normalise(view_x, mean, std), view_rows)
    if any(config.unlabeled_views):
        view_x, view_rows = _unlabeled_views(config, extra_names)
        log(f"{len(view_x)} other views of the unlabelled faces from "
            f"{', '.join(folder for folder in config.unlabeled_views if folder)}")
        x_all, y_all, label_w, fixed_targets = _join_views(x_all, y_all, label_w, fixed_targets,
                                                           _normalise(view_x, mean, std), view_rows + first_unlabeled)
    if config.freeze_backbone:
        for p in net.backbone.parameters():
            p.requires_grad_(False)
    groups = [{"params": list(net.head.parameters()), "lr": config.lr}]
    if not config.freeze_backbone:
        groups.append({"params": list(net.backbone.parameters()), "lr": config.lr * config.backbone_lr_factor})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(x_all) / config.batch_size)
    total = config.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * i / total)))
    generator = torch.Generator().manual_seed(config.seed)
    loss_fn = nn.BCEWithLogitsLoss()
    history = []
    start = time.perf_counter()
    bar = tqdm(range(config.epochs), desc=f"training {config.name}", unit="epoch", disable=not progress)
    for epoch in bar:
        net.train()
        if config.freeze_backbone:
            net.backbone.eval()  # frozen means frozen BatchNorm statistics too
        order = torch.randperm(len(x_all), generator=generator)
        total_loss = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            x = degrade_batch(x_all[idx], generator, degradations, mean, std)
            x = augment_batch(x, generator, config.augment_rotate_deg)
            w = label_w[idx]
            y = y_all[idx] * w  # the label's share of the target
            if beta is not None:
                lam = float(beta.sample())
                pair = torch.randperm(len(idx), generator=generator)
                x = lam * x + (1 - lam) * x[pair]
                y, w = lam * y + (1 - lam) * y[pair], lam * w + (1 - lam) * w[pair]
            if fixed_targets is not None:
                y = y + (1 - w) * fixed_targets[idx]
            elif teacher is not None:
                # BCE is linear in its target: one loss on the blended target = the weighted sum of both losses
                y = y + (1 - w) * teacher(x)
            loss = loss_fn(net(x)[:, 0], y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(idx)
        row = {"epoch": epoch + 1, "loss": total_loss / len(x_all)}
        if val_x is not None and ((epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs):
            row["val_accuracy"], row["val_roc_auc"] = _score(
                predict_crops(net, val_x, mean, std, flip_tta=config.flip_tta), val_y)
            row["val_degraded_accuracy"], row["val_degraded_roc_auc"] = _score(
                predict_crops(net, val_degraded, mean, std, flip_tta=config.flip_tta), val_y)
            if val_views is not None:
                row["val_views_accuracy"], row["val_views_roc_auc"] = _score(
                    predict_crops(net, val_views, mean, std, flip_tta=config.flip_tta), val_views_y)
            if val_extra is not None:
                row["val_extra_accuracy"], row["val_extra_roc_auc"] = _score(
                    predict_crops(net, val_extra, mean, std, flip_tta=config.flip_tta), val_extra_y)
        history.append(row)
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k != "epoch"})
    seconds = time.perf_counter() - start
    net.eval()
    threshold = 0.5
    if config.calibrate:
        pool = [val_x, val_degraded] + [v for v in (val_views, val_extra) if v is not None]
        pool_y = [val_y, val_y] + [v for v in (val_views_y, val_extra_y) if v is not None]
        threshold = best_threshold(predict_crops(net, np.concatenate(pool), mean, std, flip_tta=config.flip_tta),
                                   np.concatenate(pool_y))
        with torch.no_grad():  # p >= threshold  <=>  sigmoid(logit - logit(threshold)) >= 0.5
            net.head[-1].bias -= math.log(threshold / (1 - threshold))
    probs = predict_crops(net, test_x, mean, std, flip_tta=config.flip_tta)
    accuracy, auc = _score(probs, test_y)
    degraded_accuracy, degraded_auc = _score(
        predict_crops(net, degraded_copy(test_x), mean, std, flip_tta=config.flip_tta), test_y)
    metrics = {"accuracy": accuracy, "roc_auc": auc, "test_crops": len(test_x),
               "degraded_accuracy": degraded_accuracy, "degraded_roc_auc": degraded_auc,
               "calibrated_threshold": threshold}
    if val_x is not None:
        metrics.update(val_accuracy=history[-1]["val_accuracy"], val_roc_auc=history[-1]["val_roc_auc"],
                       val_degraded_accuracy=history[-1]["val_degraded_accuracy"],
                       val_degraded_roc_auc=history[-1]["val_degraded_roc_auc"], val_crops=len(val_x))
        if val_views is not None:
            metrics.update(val_views_accuracy=history[-1]["val_views_accuracy"],
                           val_views_roc_auc=history[-1]["val_views_roc_auc"], val_views_crops=len(val_views))
        if val_extra is not None:
            metrics.update(val_extra_accuracy=history[-1]["val_extra_accuracy"],
                           val_extra_roc_auc=history[-1]["val_extra_roc_auc"], val_extra_crops=len(val_extra))
    out = Path(config.out)
    save_checkpoint(out, {
        "format": FORMAT, "version": VERSION, "kind": "attribute", "name": config.name, "labels": list(config.labels),
        "input_size": config.input_size, "crop_scale": crop_scale, "levels": net.levels,
        "flip_tta": config.flip_tta, "align": config.align,
        "backbone": meta, "model": net.state_dict(), "config": asdict(config),
        "metrics": metrics,
    })
    result = AttributeResult(config.name, config.backbone_init, config.freeze_backbone, len(train_x), len(test_x),
                             accuracy, auc, seconds, str(out), history)
    held_text = (f"held-out {metrics['val_accuracy']:.4f} / AUC {metrics['val_roc_auc']:.4f} on {len(val_x)} "
                 "training crops; " if val_x is not None else "")
    if val_views is not None:
        held_text += (f"their other views {metrics['val_views_accuracy']:.4f} / AUC {metrics['val_views_roc_auc']:.4f}"
                      f" on {len(val_views)}; ")
    if val_extra is not None:
        held_text += (f"held-out extra_train crops {metrics['val_extra_accuracy']:.4f} / AUC "
                      f"{metrics['val_extra_roc_auc']:.4f} on {len(val_extra)}; ")
    log(f"{config.name}: accuracy {accuracy:.4f}, ROC AUC {auc:.4f} on {len(test_x)} test crops (grayscale 32 px: "
        f"{degraded_accuracy:.4f} / {degraded_auc:.4f}"
        f"{f', threshold {threshold:.3f} chosen on the held-out crops' if config.calibrate else ''}); {held_text}"
        f"(backbone {config.backbone_init}, {'frozen' if config.freeze_backbone else 'fine-tuned'}"
        f"{', distilled' if teacher is not None else ''}; {len(train_x)} training crops, {seconds:.0f} s); "
        f"saved {out}")
    return result
