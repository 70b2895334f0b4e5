"""Face attributes by transfer learning: a small head on the face detector's backbone (the Smiling Bot's smile).

The face-detector author planned to "sneak in" a smile class and fine-tune. Here an attribute is a binary
classifier on face crops: the detector's backbone (its ImageNet-free, face-trained features; frozen, or
fine-tuned at a low rate) and a small head (global average pooling of the two deepest maps, a 64-unit layer,
one logit). At inference each detected face is cut out as a square around its box, resized, and classified in
one batch. Which attributes exist is data: :data:`ATTRIBUTES` maps a name to its weights (``smile`` ships in the
package); a new attribute is a YAML config (``configs/attributes/smile.yaml``) trained by
``singleshot attribute train``, not new code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from singleshot.checkpoint import bundled_weights
from singleshot.errors import SingleshotError
from singleshot.registry import Registry

#: name -> zero-argument function returning the path of that attribute's bundled weights.
ATTRIBUTES: Registry = Registry("attribute")


@ATTRIBUTES.register("smile")
def _smile_weights() -> Path:
    return bundled_weights("smile.pt")


class AttributeError_(SingleshotError):
    """An attribute that cannot be trained or loaded; the message says why."""


class AttributeNet(nn.Module):
    """Backbone + pooled-feature head: ``(N, 3, S, S)`` normalised crops -> ``(N, num_outputs)`` logits.

    Args:
        backbone: a detector backbone returning maps shallow to deep (its ``out_channels`` lists their depths).
        levels: which maps (indices) are pooled and concatenated (default: the two deepest).
        hidden: width of the hidden layer.
    """

    def __init__(self, backbone: nn.Module, num_outputs: int = 1, levels: Sequence[int] = (-2, -1),
                 hidden: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        self.backbone = backbone
        channels = list(backbone.out_channels)
        self.levels = [lv % len(channels) for lv in levels]
        width = sum(channels[lv] for lv in self.levels)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, num_outputs))

    def forward(self, x: Tensor) -> Tensor:
        maps = self.backbone(x)
        pooled = torch.cat([maps[lv].mean(dim=(2, 3)) for lv in self.levels], dim=1)
        return self.head(pooled)


@dataclass
class AttributeConfig:
    """How to train one binary face attribute (YAML: ``configs/attributes/*.yaml``).

    Attributes:
        name: the attribute's name (``smile``); ``labels``: names of outcome 0 and 1.
        train, test: folders with one subfolder per outcome, ``0/`` and ``1/``, of face crops.
        exclude: a text file listing crops to leave out (first column: path relative to the crops' parent,
            e.g. GENKI-4K's ``suspect_duplicates.txt``), or None.
        detector_weights: the face detector whose backbone is transferred (None: the bundled face model).
        backbone_init: ``detector`` (transfer) or ``random`` (the no-transfer baseline: same network, untrained).
        freeze_backbone: train the head only; otherwise the backbone is fine-tuned at ``backbone_lr_factor`` x lr.
        input_size: side of the square crops fed to the network.
        levels: which backbone maps (indices, shallow to deep; negative from the deepest) are pooled for the head.
        crop_scale: side of the crop cut around a detected box, in box sides (1.0: the box's long side).
        flip_tta: at test and inference time, average the probabilities of each crop and its mirror image.
        teacher: an attribute checkpoint, or a list of them (their probabilities averaged), to distil from
            (knowledge distillation, Hinton et al. 2015): the teacher scores the student's crops (resized to its
            input, with its mirror average if it has one) and the student also learns these soft probabilities
            (see ``distill_online``). None: labels only.
        distill_weight: weight of the teacher's soft targets in the loss; the labels get ``1 - distill_weight``.
        distill_online: the teacher scores every augmented batch, the very crops the student sees ("function
            matching", Beyer et al. 2022; needed with mixup); off: it scores each crop once before training and
            the student learns these fixed targets under its augmentation, at no cost per step (the augmentation
            is mild).
        mixup: Beta(mixup, mixup) mixing of crop pairs (Zhang et al. 2018) with the targets mixed alike; with a
            teacher this gives it in-between images to explain (0: off).
        unlabeled: folders of face crops without labels (searched recursively, e.g. cut from detection datasets by
            ``singleshot attribute crops``), trained on the teacher's soft targets only; needs a teacher.
        val_fraction: a part of the training crops (stratified, seeded) held out and scored every
            ``val_every`` epochs, so that settings can be chosen without the test split (0: none).
    """

    name: str = "smile"
    labels: tuple[str, str] = ("not smiling", "smiling")
    train: str = "../shared/data/smile/genki4k_faces64/train"
    test: str = "../shared/data/smile/genki4k_faces64/test"
    exclude: str | None = "../shared/data/smile/genki4k_faces64/suspect_duplicates.txt"
    detector_weights: str | None = None
    backbone_init: Literal["detector", "random"] = "detector"
    freeze_backbone: bool = False
    backbone_lr_factor: float = 0.1
    input_size: int = 64
    levels: list[int] = field(default_factory=lambda: [-2, -1])
    crop_scale: float = 1.0
    flip_tta: bool = False
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.002
    weight_decay: float = 0.01
    seed: int = 0
    threads: int | None = None
    teacher: str | list[str] | None = None
    distill_weight: float = 0.0
    distill_online: bool = True
    mixup: float = 0.0
    unlabeled: list[str] = field(default_factory=list)
    val_fraction: float = 0.0
    val_every: int = 10
    out: str = "runs/attributes/smile.pt"

    def __post_init__(self) -> None:
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        if self.distill_weight > 0 and not self.teacher:
            raise ValueError("distill_weight > 0 needs a teacher (an attribute checkpoint)")
        if self.unlabeled and not self.teacher:
            raise ValueError("unlabeled crops need a teacher (an attribute checkpoint) to label them")
        if self.mixup > 0 and self.teacher and not self.distill_online:
            raise ValueError("mixup with a teacher needs distill_online (the mixed crops are scored as they come)")
        if self.mixup < 0:
            raise ValueError(f"mixup must be >= 0, got {self.mixup}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


def _read_crop(path: Path, size: int) -> np.ndarray | None:
    """One crop file -> uint8 ``(size, size, 3)`` RGB; None (reported) when it cannot be read."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        print(f"{path}: cannot read the image; skipped")
        return None
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if image.shape[0] > size
                       else cv2.INTER_LINEAR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_crop_folder(folder: str | Path, exclude: set[str], size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``folder/{0,1}/*`` crops -> uint8 ``(N, size, size, 3)`` RGB, int labels ``(N,)``, their paths.

    Raises:
        AttributeError_: the folder or its ``0/`` and ``1/`` subfolders are missing or empty.
    """
    from singleshot.data.formats.folder import find_images

    folder = Path(folder)
    images, labels, names = [], [], []
    for outcome in (0, 1):
        sub = folder / str(outcome)
        if not sub.is_dir():
            raise AttributeError_(f"{sub}: missing (expected one subfolder per outcome, 0/ and 1/)")
        for path in find_images(sub):
            rel = f"{folder.name}/{outcome}/{path.name}"
            if rel in exclude:
                continue
            image = _read_crop(path, size)
            if image is None:
                continue
            images.append(image)
            labels.append(outcome)
            names.append(rel)
    if not images:
        raise AttributeError_(f"{folder}: no crops in 0/ and 1/")
    return np.stack(images), np.array(labels, np.int64), names


def load_unlabeled_crops(folders: Sequence[str | Path], size: int) -> np.ndarray:
    """Every image under ``folders`` (recursively), resized to ``size``: uint8 ``(N, size, size, 3)`` RGB.

    Raises:
        AttributeError_: a folder is missing or holds no images. Unreadable files are reported and skipped.
    """
    from singleshot.data.formats.folder import find_images

    images = []
    for folder in folders:
        paths = find_images(Path(folder)) if Path(folder).is_dir() else []
        if not paths:
            raise AttributeError_(f"{folder}: no crops found (a folder of images is expected)")
        images.extend(image for image in (_read_crop(path, size) for path in paths) if image is not None)
    return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)


def read_exclude_list(path: str | Path | None) -> set[str]:
    """Relative paths listed (first whitespace-separated column) in an exclusion file; empty for None."""
    if not path:
        return set()
    path = Path(path)
    if not path.is_file():
        raise AttributeError_(f"{path}: exclusion list not found")
    return {line.split()[0] for line in path.read_text().splitlines() if line.strip()}


def augment_batch(images: Tensor, generator: torch.Generator) -> Tensor:
    """Vectorised crop augmentation of a ``(B, 3, S, S)`` float batch: flip, shift/scale (+-8%), brightness/contrast.

    The crops at inference come from detector boxes, slightly off the training crops' framing: the small random
    similarity transform teaches the head to tolerate that.
    """
    b = images.shape[0]
    rand = lambda *shape: torch.rand(*shape, generator=generator)
    scale = 1.0 + (rand(b) - 0.5) * 0.16
    flip = torch.where(rand(b) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, :, 2] = (rand(b, 2) - 0.5) * 0.16
    grid = nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    out = nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = (1.0 + (rand(b, 1, 1, 1) - 0.5) * 0.4)
    brightness = (rand(b, 1, 1, 1) - 0.5) * 0.4
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return (out - mean) * contrast + mean + brightness


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


def _build_net(config: AttributeConfig) -> tuple[AttributeNet, dict[str, Any]]:
    from singleshot.checkpoint import build_model_from_checkpoint, load_checkpoint
    from singleshot.models import create_model

    source = Path(config.detector_weights) if config.detector_weights else bundled_weights()
    detector = load_checkpoint(source)
    if config.backbone_init == "detector":
        model = build_model_from_checkpoint(detector, str(source))
    else:
        model = create_model(detector["model_name"], num_classes=detector["num_classes"],
                             **detector.get("model_options", {}))
    meta = {k: detector[k] for k in ("model_name", "model_options", "num_classes", "mean_rgb", "std_rgb")}
    meta["detector_weights"] = str(source)
    return AttributeNet(model.backbone, levels=config.levels), meta


def _normalise(images_uint8: np.ndarray | Tensor, mean_rgb: Sequence[float], std_rgb: Sequence[float]) -> Tensor:
    x = torch.as_tensor(images_uint8).permute(0, 3, 1, 2).float()
    mean = torch.tensor(mean_rgb).view(1, 3, 1, 1)
    std = torch.tensor(std_rgb).view(1, 3, 1, 1)
    return (x - mean) / std


def load_attribute_net(weights: str | Path) -> tuple[AttributeNet, dict[str, Any]]:
    """An attribute checkpoint -> its network (eval mode, not fused) and the checkpoint dict.

    Raises:
        CheckpointError: missing, unreadable, or not an attribute checkpoint.
    """
    from singleshot.checkpoint import CheckpointError, load_checkpoint
    from singleshot.models import create_model

    checkpoint = load_checkpoint(Path(weights))
    if checkpoint.get("kind") != "attribute":
        raise CheckpointError(f"{weights}: not an attribute checkpoint (train one with: singleshot attribute train)")
    meta = checkpoint["backbone"]
    model = create_model(meta["model_name"], num_classes=meta["num_classes"], **meta.get("model_options", {}))
    net = AttributeNet(model.backbone, levels=checkpoint["levels"])
    net.load_state_dict(checkpoint["model"])
    return net.eval(), checkpoint


def _probabilities(net: AttributeNet, x: Tensor, flip_tta: bool) -> Tensor:
    """``(B, 3, S, S)`` normalised crops -> ``(B,)`` probabilities of outcome 1 (with ``flip_tta``: averaged with
    the mirrored crops, run in the same batch)."""
    if not flip_tta:
        return torch.sigmoid(net(x)[:, 0])
    probs = torch.sigmoid(net(torch.cat((x, x.flip(-1))))[:, 0])
    return (probs[: len(x)] + probs[len(x) :]) / 2


class _Teacher:
    """Soft targets for the student's normalised, augmented crops: the mean probability of one or more trained
    attribute networks (an ensemble is a better teacher than any of its members)."""

    def __init__(self, weights: str | Path | Sequence[str | Path], student_mean: Sequence[float],
                 student_std: Sequence[float]) -> None:
        paths = [weights] if isinstance(weights, (str, Path)) else list(weights)
        self.members = []
        s_mean, s_std = torch.tensor(student_mean).view(1, 3, 1, 1), torch.tensor(student_std).view(1, 3, 1, 1)
        for path in paths:
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
            })

    def describe(self) -> str:
        return "; ".join(f"{m['path']} (input {m['size']}, mirror average {m['flip']}, test accuracy "
                         f"{m['accuracy'] if m['accuracy'] is None else round(m['accuracy'], 4)})"
                         for m in self.members)

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        """``(B, 3, S, S)`` student-normalised crops -> ``(B,)`` teacher probabilities."""
        total = torch.zeros(len(x))
        for m in self.members:
            xm = x * m["scale"] + m["shift"]
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


def train_attribute(config: AttributeConfig, progress: bool = True, log=print) -> AttributeResult:
    """Train, evaluate on the test split, save the checkpoint to ``config.out``; see :class:`AttributeConfig`.

    Raises:
        AttributeError_: missing or empty crop folders; CheckpointError: a missing or wrong teacher checkpoint.
    """
    from tqdm import tqdm

    from singleshot.checkpoint import FORMAT, VERSION, save_checkpoint

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    # networks first: a missing detector or teacher checkpoint stops the run before the crops are read
    net, meta = _build_net(config)
    mean, std = meta["mean_rgb"], meta["std_rgb"]
    teacher = _Teacher(config.teacher, mean, std) if config.teacher else None
    exclude = read_exclude_list(config.exclude)
    train_x, train_y, _ = load_crop_folder(config.train, exclude, config.input_size)
    test_x, test_y, _ = load_crop_folder(config.test, exclude, config.input_size)
    val_x = val_y = None
    if config.val_fraction > 0:
        kept, held = _stratified_split(train_y, config.val_fraction, config.seed)
        val_x, val_y = train_x[held], train_y[held]
        train_x, train_y = train_x[kept], train_y[kept]
    if teacher is not None:
        log(f"teacher: {teacher.describe()}; distill_weight {config.distill_weight}")
    beta = torch.distributions.Beta(config.mixup, config.mixup) if config.mixup > 0 else None
    x_all = _normalise(train_x, mean, std)
    y_all = torch.from_numpy(train_y).float()
    # per-crop weight of the label in the target: labelled crops (1 - distill_weight), unlabelled ones 0 (teacher)
    label_w = torch.full((len(x_all),), 1.0 - (config.distill_weight if teacher is not None else 0.0))
    if config.unlabeled:
        extra = load_unlabeled_crops(config.unlabeled, config.input_size)
        log(f"{len(extra)} unlabelled crops from {', '.join(config.unlabeled)} (teacher targets only)")
        x_all = torch.cat((x_all, _normalise(extra, mean, std)))
        y_all = torch.cat((y_all, torch.zeros(len(extra))))
        label_w = torch.cat((label_w, torch.zeros(len(extra))))
    fixed_targets = None
    if teacher is not None and not config.distill_online:
        fixed_targets = torch.cat([teacher(x_all[i : i + 256]) for i in range(0, len(x_all), 256)])
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
            x = augment_batch(x_all[idx], generator)
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
        history.append(row)
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k != "epoch"})
    seconds = time.perf_counter() - start
    probs = predict_crops(net, test_x, mean, std, flip_tta=config.flip_tta)
    accuracy, auc = _score(probs, test_y)
    metrics = {"accuracy": accuracy, "roc_auc": auc, "test_crops": len(test_x)}
    if val_x is not None:
        metrics.update(val_accuracy=history[-1]["val_accuracy"], val_roc_auc=history[-1]["val_roc_auc"],
                       val_crops=len(val_x))
    out = Path(config.out)
    save_checkpoint(out, {
        "format": FORMAT, "version": VERSION, "kind": "attribute", "name": config.name, "labels": list(config.labels),
        "input_size": config.input_size, "crop_scale": config.crop_scale, "levels": net.levels,
        "flip_tta": config.flip_tta,
        "backbone": meta, "model": net.state_dict(), "config": asdict(config),
        "metrics": metrics,
    })
    result = AttributeResult(config.name, config.backbone_init, config.freeze_backbone, len(train_x), len(test_x),
                             accuracy, auc, seconds, str(out), history)
    held_text = (f"held-out {metrics['val_accuracy']:.4f} / AUC {metrics['val_roc_auc']:.4f} on {len(val_x)} "
                 "training crops; " if val_x is not None else "")
    log(f"{config.name}: accuracy {accuracy:.4f}, ROC AUC {auc:.4f} on {len(test_x)} test crops; {held_text}"
        f"(backbone {config.backbone_init}, {'frozen' if config.freeze_backbone else 'fine-tuned'}"
        f"{', distilled' if teacher is not None else ''}; {len(train_x)} training crops, {seconds:.0f} s); "
        f"saved {out}")
    return result


@torch.no_grad()
def predict_crops(net: AttributeNet, crops_uint8: np.ndarray, mean_rgb, std_rgb, batch: int = 256,
                  flip_tta: bool = False) -> np.ndarray:
    """Probabilities of outcome 1 for ``(N, S, S, 3)`` uint8 RGB crops (with ``flip_tta``: averaged with the
    mirrored crops, run in the same batch)."""
    net.eval()
    out = []
    for i in range(0, len(crops_uint8), batch):
        out.append(_probabilities(net, _normalise(crops_uint8[i : i + batch], mean_rgb, std_rgb), flip_tta))
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def square_crops(image_rgb: np.ndarray, boxes_xyxy: np.ndarray, size: int, scale: float = 1.0,
                 fill_rgb: Sequence[float] = (124, 116, 104)) -> np.ndarray:
    """Cut a ``size x size`` square around each box (side = ``scale`` x the box's long side, same centre).

    Args:
        image_rgb: ``(H, W, 3)`` uint8.
        boxes_xyxy: ``(K, 4)`` pixel boxes.

    Returns:
        ``(K, size, size, 3)`` uint8; parts outside the image are filled with ``fill_rgb``.
    """
    crops = np.empty((len(boxes_xyxy), size, size, 3), np.uint8)
    fill = tuple(round(v) for v in fill_rgb)
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes_xyxy, np.float64)):
        side = max(x2 - x1, y2 - y1, 1.0) * scale
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        s = size / side
        # one affine warp per face: the output is size x size whatever the face size (cost ~ size^2)
        matrix = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
        crops[k] = cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return crops


@dataclass
class CropReport:
    """What :func:`cut_face_crops` wrote."""

    images: int
    crops: int
    skipped_small: int
    skipped_ignore: int
    unreadable: list[str]
    out: str


def cut_face_crops(spec: str, out: str | Path, size: int = 64, crop_scale: float = 1.0, min_size: float = 40.0,
                   force: bool = False, progress: bool = True) -> CropReport:
    """Cut the faces of a detection dataset into square crops, as :class:`AttributeClassifier` cuts detections.

    Unlabelled crops for distillation (``AttributeConfig.unlabeled``) or for labelling a new attribute by hand.
    Faces marked ignore and faces whose long side is under ``min_size`` pixels (too blurred once enlarged) are
    skipped and counted. ``out`` gets one JPEG per face, ``<image key>_<face index>.jpg`` with ``/`` as ``__``.

    Raises:
        AttributeError_: ``out`` already holds images and ``force`` is off; DataError: an unreadable dataset.
    """
    from tqdm import tqdm

    from singleshot.data.formats import load_annotations
    from singleshot.data.formats.folder import find_images

    out = Path(out)
    if out.is_dir() and find_images(out) and not force:
        raise AttributeError_(f"{out} already holds crops; pass --force to add to it (same names are replaced)")
    dataset = load_annotations(spec)  # before creating the folder: a bad spec leaves nothing behind
    out.mkdir(parents=True, exist_ok=True)
    crops = small = ignored = 0
    unreadable = []
    for sample in tqdm(dataset.samples, desc="cutting crops", unit="image", disable=not progress):
        boxes = np.asarray(sample.boxes_xyxy, np.float64).reshape(-1, 4)
        keep = ~np.asarray(sample.ignore, bool)
        ignored += int((~keep).sum())
        long_side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        small += int((keep & (long_side < min_size)).sum())
        keep &= long_side >= min_size
        if not keep.any():
            continue
        image = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
        if image is None:
            unreadable.append(str(sample.image_path))
            print(f"{sample.image_path}: cannot read the image; skipped")
            continue
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        stem = Path(sample.key).with_suffix("").as_posix().replace("/", "__")
        for k, crop in zip(np.flatnonzero(keep), square_crops(rgb, boxes[keep], size, crop_scale)):
            cv2.imwrite(str(out / f"{stem}_{k}.jpg"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            crops += 1
    return CropReport(len(dataset.samples), crops, small, ignored, unreadable, str(out))


class AttributeClassifier:
    """A trained attribute ready to score detected faces.

    Args:
        weights: an attribute checkpoint, or a registered name (:data:`ATTRIBUTES`, e.g. ``smile``).
        threads: PyTorch threads (None: leave as is); the ONNX Runtime session always runs on one thread (see
            ``_ort_session``).
        runtime: ``torch``, or ``ort`` (the network exported on the fly to ONNX Runtime, several times faster for
            a handful of small crops; the :class:`~singleshot.predictor.Detector` picks it when it runs on ONNX).
    """

    def __init__(self, weights: str | Path, threads: int | None = None, runtime: str = "torch") -> None:
        from singleshot.models.layers import fuse_conv_bn

        path = Path(weights)
        if not path.suffix and str(weights) in ATTRIBUTES.names():
            path = ATTRIBUTES.get(str(weights))()
        elif not path.exists() and str(weights) not in ATTRIBUTES.names():
            raise KeyError(f"unknown attribute {str(weights)!r}: not a file and not one of {ATTRIBUTES.names()}")
        self.net, checkpoint = load_attribute_net(path)
        meta = checkpoint["backbone"]
        fuse_conv_bn(self.net)
        if threads is not None:
            torch.set_num_threads(threads)
        self.name = checkpoint["name"]
        self.labels = list(checkpoint["labels"])
        self.input_size = int(checkpoint["input_size"])
        self.crop_scale = float(checkpoint["crop_scale"])
        self.mean_rgb, self.std_rgb = meta["mean_rgb"], meta["std_rgb"]
        self.metrics = checkpoint.get("metrics", {})
        self.flip_tta = bool(checkpoint.get("flip_tta", False))
        self.runtime = runtime
        self._session = self._ort_session() if runtime == "ort" else None
        self.weights = path

    def predict(self, image_rgb: np.ndarray, boxes_xyxy: np.ndarray | Tensor) -> np.ndarray:
        """Probability of outcome 1 (e.g. smiling) for each box, ``(K,)`` float32."""
        boxes = boxes_xyxy.numpy() if isinstance(boxes_xyxy, Tensor) else np.asarray(boxes_xyxy)
        if not len(boxes):
            return np.zeros(0, np.float32)
        crops = square_crops(image_rgb, boxes, self.input_size, self.crop_scale, self.mean_rgb)
        if self._session is None:
            return predict_crops(self.net, crops, self.mean_rgb, self.std_rgb, flip_tta=self.flip_tta).astype(np.float32)
        # numpy, not torch: a torch op here wakes torch's OpenMP pool, whose threads then spin-wait (Intel OpenMP's
        # default block time is 200 ms) against ONNX Runtime's on the same cores
        mean = np.asarray(self.mean_rgb, np.float32).reshape(1, 3, 1, 1)
        inv_std = 1.0 / np.asarray(self.std_rgb, np.float32).reshape(1, 3, 1, 1)
        x = (crops.transpose(0, 3, 1, 2).astype(np.float32) - mean) * inv_std
        if self.flip_tta:
            x = np.concatenate((x, x[..., ::-1]))
        logits = self._session.run(None, {"crops": np.ascontiguousarray(x)})[0][:, 0]
        probs = 1.0 / (1.0 + np.exp(-logits))
        if self.flip_tta:
            probs = (probs[: len(boxes)] + probs[len(boxes) :]) / 2
        return probs.astype(np.float32)

    def _ort_session(self):
        import tempfile
        import warnings

        import onnxruntime as ort

        path = Path(tempfile.mkdtemp(prefix="singleshot-attr-")) / f"{self.name}.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                self.net, (torch.zeros(1, 3, self.input_size, self.input_size),), str(path), input_names=["crops"],
                output_names=["logits"], dynamic_axes={"crops": {0: "faces"}, "logits": {0: "faces"}},
                opset_version=17, dynamo=False,
            )
        options = ort.SessionOptions()
        # One thread, in the caller's, and no busy-waiting: the detector's session runs right before this one and
        # its pool threads keep spinning on the other cores for a while after each run. A second pool here fights
        # them for the cores (measured at 640x480, 2 threads, 5 faces: +109% per frame with 2 threads, +44% with 1);
        # a handful of small crops gains nothing from more threads anyway.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
