"""Training a point network: :func:`train_points` (AdamW, one-cycle schedule, wing loss, resumable by epoch) and
its :class:`PointResult`."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from singleshot.checkpoint import FORMAT, VERSION, load_checkpoint, save_checkpoint
from singleshot.evaluation.landmarks import normalised_mean_error
from singleshot.landmarks import box_crop_matrix, map_points, warp_crop
from singleshot.losses import wing_loss
from singleshot.points.config import PointConfig, PointError
from singleshot.points.data import FaceSet, augment_face, extract_faces
from singleshot.points.model import MEAN_RGB, STD_RGB, build_point_net, normalise_crops, predict_points


@dataclass
class PointResult:
    """What ``singleshot points train`` measured on its held-out faces."""

    train_faces: int
    val_faces: int
    faces_per_set: dict[str, int]
    val_nme: float
    val_failure_rate: float
    val_eye_scale: float
    val_eye_error: float
    train_seconds: float
    checkpoint: str
    history: list[dict[str, float]] = field(default_factory=list)


def _plain_crops(faces: FaceSet, idx: np.ndarray, size: int, crop_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The network's crops around the stored boxes, no augmentation, and their points in crop pixels."""
    crops, points = [], []
    for i in idx:
        m = box_crop_matrix(faces.boxes_xyxy[i], size, crop_scale)
        crops.append(warp_crop(faces.crops[i], m, size))
        points.append(map_points(faces.points_xy[i], m))
    return np.stack(crops), np.stack(points)


def evaluate_faces(net, faces: FaceSet, idx: np.ndarray, size: int, crop_scale: float) -> dict[str, float]:
    """Errors of ``net`` on the faces ``idx`` (two known eyes needed): NME (mean point error over the inter-ocular
    distance), its failure rate (NME > 0.1) and eye scale (:func:`~singleshot.evaluation.landmarks.
    normalised_mean_error`), and ``eye_error``, the eyes' mean error over the face size (the square root of the box
    area, as Caltech's figure; steadier than NME, which a turned face's short eye distance inflates)."""
    idx = idx[np.isfinite(faces.points_xy[idx, :2]).all((1, 2))]
    if not len(idx):
        return {"nme": float("nan"), "failure_rate": float("nan"), "eye_scale": float("nan"), "eye_error": float("nan")}
    net.eval()
    preds, truth = [], []
    for start in range(0, len(idx), 256):
        crops, points = _plain_crops(faces, idx[start : start + 256], size, crop_scale)
        preds.append(predict_points(net, crops))
        truth.append(points)
    pred, true = np.concatenate(preds), np.concatenate(truth)
    figures = dict(normalised_mean_error(pred, true).figures)
    boxes = faces.boxes_xyxy[idx].astype(np.float64)
    # the box's side in crop pixels: the crop is crop_scale box long sides at size px
    scale = size / (crop_scale * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]))
    face = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])) * scale
    figures["eye_error"] = float(np.mean(np.linalg.norm(pred[:, :2] - true[:, :2], axis=2).mean(1) / face))
    return figures


def _draw_probabilities(config: PointConfig, faces: FaceSet, train_idx: np.ndarray) -> np.ndarray | None:
    """Each training face's chance to be drawn, in proportion to its set's ``weight`` (None: all weights equal).

    A set of twice the weight is seen twice as often per face, whatever its size: how a smaller set whose points
    are human (Caltech's, MTFL's) is made to count beside larger sets labelled by a teacher."""
    weights = np.asarray([float(s.weight) for s in config.train], np.float64)
    if len(weights) == 0 or np.allclose(weights, weights[0]):
        return None
    per_face = weights[faces.source[train_idx]]
    return per_face / per_face.sum()


def train_points(config: PointConfig, progress: bool = True, resume: bool = False) -> PointResult:
    """Train a point network as ``config`` says; write ``<out>/last.pt`` (resumable) after every epoch and
    ``<out>/face_points.pt`` (the network only, what :class:`~singleshot.points.PointRefiner` loads) at the end.

    ``resume``: continue from ``<out>/last.pt`` (the same config), at the epoch after its last.
    """
    from tqdm import tqdm

    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    faces = extract_faces(config.train, config.cache, config.cache_size, config.cache_context, config.min_points,
                          config.min_face, config.val_fraction, progress=progress)
    train_idx, val_idx = np.flatnonzero(~faces.val), np.flatnonzero(faces.val)
    if len(train_idx) < 2:
        raise PointError(f"{len(train_idx)} training faces: too few to train on")
    torch.manual_seed(config.seed)
    options = {"width": config.width, "input_size": config.input_size, "num_points": 5}
    net = build_point_net(options)
    optimizer = torch.optim.AdamW(net.parameters(), config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(train_idx) // config.batch_size)
    # one cycle (Smith & Topin 2019): a short warm-up, then cosine annealing to almost zero
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.epochs * steps_per_epoch,
                                                   pct_start=0.05)
    rng = np.random.default_rng(config.seed)
    draw = _draw_probabilities(config, faces, train_idx)
    first_epoch, history, seconds = 0, [], 0.0
    last = out / "last.pt"
    if resume:
        if not last.is_file():
            raise PointError(f"{last}: nothing to resume (no checkpoint there)")
        state = load_checkpoint(last)
        if state.get("config") != asdict(config) | {"out": state["config"]["out"]}:
            raise PointError(f"{last}: written by a different config; resume needs the same one")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        first_epoch, history, seconds = state["epoch"], state["history"], state["seconds"]
    size, s = config.input_size, config.input_size
    bar = tqdm(range(first_epoch, config.epochs), desc="training points", unit="epoch", disable=not progress,
               initial=first_epoch, total=config.epochs)
    for epoch in bar:
        start = time.perf_counter()
        net.train()
        # equal weights: every face once an epoch; else an epoch's worth of faces drawn by their set's weight
        order = rng.permutation(train_idx) if draw is None else rng.choice(train_idx, len(train_idx), p=draw)
        total = 0.0
        for step in range(steps_per_epoch):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            pairs = [augment_face(faces.crops[i], faces.points_xy[i], faces.boxes_xyxy[i], size, config.crop_scale,
                                  rng, config.jitter_shift, config.jitter_scale, config.rotate_deg, config.rotate_p,
                                  config.flip, config.grayscale_p, photometric=True, cut_p=config.cut_p)
                     for i in batch]
            x = torch.from_numpy(normalise_crops(np.stack([p[0] for p in pairs])))
            y = torch.from_numpy(np.stack([p[1] for p in pairs]).reshape(len(batch), -1))
            loss = wing_loss(net(x) * s, y, config.wing_width, config.wing_curvature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        seconds += time.perf_counter() - start
        row = {"epoch": epoch + 1, "loss": total / steps_per_epoch}
        if len(val_idx):
            row.update({f"val_{k}": v for k, v in evaluate_faces(net, faces, val_idx, size, config.crop_scale).items()})
        history.append(row)
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k != "epoch"})
        if not progress:  # a line per epoch for logs of runs in the background
            print(f"epoch {epoch + 1}/{config.epochs} " + " ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "epoch")
                  + f" ({seconds:.0f} s)", flush=True)
        save_checkpoint(last, {
            "format": FORMAT, "version": VERSION, "kind": "points_training", "config": asdict(config),
            "model": net.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "epoch": epoch + 1,
            "history": history, "seconds": seconds,
        })
    final = history[-1] if history else {}
    weights = save_point_weights(out / "face_points.pt", net.state_dict(), options, config.crop_scale,
                                 {k: v for k, v in final.items() if k.startswith("val_")})
    return PointResult(
        train_faces=len(train_idx), val_faces=len(val_idx), faces_per_set=faces.counts,
        val_nme=final.get("val_nme", math.nan), val_failure_rate=final.get("val_failure_rate", math.nan),
        val_eye_scale=final.get("val_eye_scale", math.nan), val_eye_error=final.get("val_eye_error", math.nan),
        train_seconds=seconds, checkpoint=str(weights),
        history=history,
    )


def save_point_weights(path: str | Path, state_dict: dict, network: dict, crop_scale: float,
                       metrics: dict[str, float] | None = None) -> Path:
    """Write a point checkpoint (what :func:`~singleshot.points.model.load_point_net` reads): the weights, the
    network's options, its crop (``crop_scale`` box sides at ``input_size`` px) and normalisation."""
    return save_checkpoint(path, {
        "format": FORMAT, "version": VERSION, "kind": "points", "network": dict(network), "model": state_dict,
        "crop_scale": float(crop_scale), "mean_rgb": list(MEAN_RGB), "std_rgb": list(STD_RGB),
        "metrics": dict(metrics or {}),
    })
