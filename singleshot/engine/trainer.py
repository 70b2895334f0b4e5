"""The trainer: SSD training with exact resume, validation by AP and a best checkpoint.

One :class:`Trainer` runs a :class:`~singleshot.config.Config`: it builds the model, reads and caches the data,
and loops over epochs of batches: augment (:class:`~singleshot.data.transforms.SSDAugmentation`), match priors
(:func:`~singleshot.matching.match_priors` on the model's prior grid), MultiBox loss, SGD or AdamW step. A
checkpoint holds everything needed to continue exactly where it stopped: model, optimiser, scheduler, epoch and
iteration, config and RNG states; the order of samples and every augmentation draw are functions of
``(seed, epoch, index)``, so N steps equal N/2 steps + resume + N/2 steps.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import random
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Sampler
from tqdm import tqdm

from singleshot.checkpoint import (
    CheckpointError,
    build_model_from_checkpoint,
    load_checkpoint,
    model_metadata,
    save_checkpoint,
)
from singleshot.config import Config, ConfigError, dump_config
from singleshot.data.cache import ImageCache
from singleshot.data.dataset import DetectionDataset, collate_detections, worker_init
from singleshot.data.formats import load_annotations
from singleshot.data.transforms import SSDAugmentation, normalize_batch
from singleshot.engine.ema import ModelEMA
from singleshot.evaluation import evaluate
from singleshot.inference import ModelPredictor, predict_dataset
from singleshot.losses import LossOutput, MultiBoxLoss, distillation_loss
from singleshot.matching import match_priors, pad_targets
from singleshot.models import SingleShotDetector, create_model
from singleshot.structures import AnnotationSet


@dataclass
class TrainState:
    """Progress: ``epoch`` (0-based, the one in progress), batches done in it, global iteration, best AP."""

    epoch: int = 0
    epoch_iteration: int = 0
    iteration: int = 0
    best_ap: float = -1.0
    best_epoch: int = -1


class EpochSampler(Sampler[int]):
    """The sample order of one epoch over several concatenated training sets.

    Set ``k`` contributes ``round(weight_k * size_k)`` draws (a subset when the weight is below 1, repeats when
    above), all shuffled together by a generator seeded with ``(seed, epoch)``. Resuming an interrupted epoch
    (skipping the draws it already trained) is :class:`RunSampler`'s job.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], seed: int) -> None:
        self.sizes = list(sizes)
        self.weights = list(weights)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> np.ndarray:
        """Every index of the epoch, ``(len(self),)``."""
        rng = np.random.default_rng([self.seed, self.epoch])
        parts, offset = [], 0
        for size, weight in zip(self.sizes, self.weights):
            count = round(weight * size)
            repeats = -(-count // size) if size else 0
            draws = np.concatenate([rng.permutation(size) for _ in range(repeats)]) if repeats else np.zeros(0, int)
            parts.append(draws[:count] + offset)
            offset += size
        return rng.permutation(np.concatenate(parts)) if parts else np.zeros(0, int)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return sum(round(w * s) for s, w in zip(self.sizes, self.weights))


class RunSampler(Sampler[tuple[int, int]]):
    """The ``(epoch, index)`` draws of a whole run, from ``start_epoch`` (after ``skip`` draws) to ``end_epoch``.

    Each epoch is :class:`EpochSampler`'s order cut to whole batches (the partial batch an epoch-long DataLoader
    drops with ``drop_last``), so one DataLoader serves every epoch: its worker processes start once and keep
    preparing the next epoch's batches while the last ones train or validation runs, instead of being started and
    refilled every epoch (most of an epoch's time when a GPU makes the steps fast).
    """

    def __init__(self, epochs: EpochSampler, batch_size: int, start_epoch: int, end_epoch: int, skip: int = 0) -> None:
        self.epochs, self.batch_size = epochs, batch_size
        self.start_epoch, self.end_epoch, self.skip = start_epoch, end_epoch, skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for epoch in range(self.start_epoch, self.end_epoch):
            self.epochs.set_epoch(epoch)
            order = self.epochs.order()
            whole = len(order) // self.batch_size * self.batch_size
            first = self.skip if epoch == self.start_epoch else 0
            yield from ((epoch, int(i)) for i in order[first:whole])

    def __len__(self) -> int:
        per_epoch = len(self.epochs) // self.batch_size * self.batch_size
        return max(0, per_epoch * (self.end_epoch - self.start_epoch) - self.skip)


class EpochDraws(torch.utils.data.Dataset):
    """The concatenated training sets indexed by :class:`RunSampler`'s ``(epoch, index)`` draws.

    The epoch travels with each draw (it seeds the augmentation, ``(seed, epoch, index)``), so worker processes
    that outlive an epoch still augment each draw exactly as an epoch-long loader would.
    """

    def __init__(self, datasets: Sequence[DetectionDataset]) -> None:
        self.datasets = list(datasets)
        self.joined = ConcatDataset(self.datasets)

    def __len__(self) -> int:
        return len(self.joined)

    def __getitem__(self, draw: tuple[int, int]):
        epoch, index = draw
        for d in self.datasets:
            d.set_epoch(epoch)
        return self.joined[index]


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW over three parameter groups.

    Conv and linear weights get the weight decay; biases get ``bias_lr_factor`` times the learning rate (the SSD
    tutorial trains biases at twice the rate) and the decay; normalisation scales (BatchNorm, L2Norm) get no
    decay, which would otherwise pull them towards zero.
    """
    t = config.train
    weights, biases, norms = [], [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.endswith(".bias"):
            biases.append(param)
        elif param.ndim <= 1:
            norms.append(param)
        else:
            weights.append(param)
    groups = [
        {"params": weights, "lr": t.lr, "weight_decay": t.weight_decay},
        {"params": biases, "lr": t.lr * t.bias_lr_factor, "weight_decay": t.weight_decay},
        {"params": norms, "lr": t.lr, "weight_decay": 0.0},
    ]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum)
    return torch.optim.AdamW(groups, lr=t.lr)


def lr_factor(iteration: int, total: int, config: Config) -> float:
    """Learning-rate multiplier at ``iteration``: linear warm-up, then multi-step or cosine decay."""
    t = config.train
    warm = 1.0
    if iteration < t.warmup_iters:
        warm = t.warmup_factor + (1 - t.warmup_factor) * iteration / max(1, t.warmup_iters)
    if t.schedule == "multistep":
        return warm * t.gamma ** sum(iteration >= m * total for m in t.milestones)
    progress = min(1.0, iteration / max(1, total))
    return warm * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))  # cosine to 1% of the rate


def _rng_states() -> dict[str, Any]:
    state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [state[0], torch.from_numpy(state[1].astype(np.int64)), int(state[2]), int(state[3]), float(state[4])],
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> str:
    """Copy the tensors of ``state`` whose name and shape match ``model``'s; returns a one-line summary.

    The rest of ``model`` keeps its initialisation: used to add a module to a trained network
    (``model.weights_partial``).
    """
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False)
    new = [k for k in own if k not in fitting]
    unused = [k for k in state if k not in fitting]
    modules = sorted({k.split(".")[0] for k in new})
    return (f"loaded {len(fitting)} of {len(own)} tensors; {len(new)} new (in {', '.join(modules) or '-'}); "
            f"{len(unused)} of the checkpoint unused")


class Trainer:
    """Train a model as described by ``config``.

    Args:
        config: the run.
        progress: show progress bars.
    """

    def __init__(self, config: Config, progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        self.out_dir = Path(config.train.out_dir)
        self._stop_requested = False

    # ----------------------------------------------------------------------------------------------- set-up
    def _load_sets(self) -> tuple[list[AnnotationSet], AnnotationSet | None]:
        cfg = self.config.data
        if not cfg.train:
            raise ConfigError("data.train: no training set given (e.g. data.train=[{spec: csv:PATH}])")
        train_sets = [load_annotations(d.spec, **d.options) for d in cfg.train]
        names = train_sets[0].class_names
        for d, s in zip(cfg.train, train_sets):
            if s.class_names != names:
                raise ConfigError(
                    f"data.train: {d.spec} has classes {s.class_names[1:]} but {cfg.train[0].spec} has {names[1:]}"
                    " (map them with its options, e.g. single_class: face)"
                )
        if len(names) != self.config.model.num_classes:
            raise ConfigError(
                f"model.num_classes is {self.config.model.num_classes} but the data has {len(names)} classes "
                f"(background + {names[1:]})"
            )
        val = load_annotations(cfg.val.spec, **cfg.val.options) if cfg.val is not None and cfg.val.spec else None
        return train_sets, val

    def _transform(self, prior_spec) -> SSDAugmentation:
        d = self.config.data
        a = d.augment
        return SSDAugmentation(
            tuple(d.input_size),
            d.mean_rgb,
            d.std_rgb,
            photometric_prob=0.5 if a.photometric else 0.0,
            zoom_out_prob=a.zoom_out_p,
            max_zoom_out=a.max_zoom_out,
            crop=a.crop,
            crop_mode=a.crop_mode,
            square_crop_scale=tuple(a.square_crop_scale),
            data_anchor_prob=a.data_anchor_p,
            anchor_sizes=self._anchor_sizes(prior_spec) if a.data_anchor_p > 0 else (),
            flip_prob=a.flip_p,
            normalize=False,  # batches travel as uint8 and are normalised where the network runs (fit)
        )

    def _anchor_sizes(self, spec) -> tuple[float, ...]:
        """The model's ratio-1 prior sizes in pixels of the training input (for data-anchor sampling)."""
        side = min(self.config.data.input_size)
        scale = 1.0 if spec.unit == "pixels" else float(side)
        return tuple(sorted({float(s) * scale for level in spec.levels for s in level.sizes}))

    def _build_model(self) -> SingleShotDetector:
        m = self.config.model
        model = create_model(m.name, num_classes=m.num_classes, **m.options)
        if m.pretrained or m.backbone_weights:
            from singleshot.models.pretrained import WeightsError, load_backbone_weights, pretrained_weights_path

            try:
                source = m.backbone_weights or pretrained_weights_path(model.backbone.name)
                tqdm.write(load_backbone_weights(model.backbone, source).summary())
            except WeightsError as err:
                raise CheckpointError(str(err)) from None
        if m.weights:
            source = load_checkpoint(m.weights)
            if source["model_name"] != m.name:
                raise CheckpointError(f"{m.weights}: holds a {source['model_name']!r} model, not {m.name!r}")
            state = build_model_from_checkpoint(source, m.weights).state_dict()
            if m.weights_partial:
                tqdm.write(f"{m.weights}: {load_matching(model, state)}")
            else:
                model.load_state_dict(state)
        return model

    def _build_teacher(self, student: SingleShotDetector, size: tuple[int, int]) -> SingleShotDetector | None:
        """The frozen teacher of ``train.distill_from`` (eval mode), checked against the student's priors."""
        path = self.config.train.distill_from
        if not path:
            return None
        teacher = build_model_from_checkpoint(load_checkpoint(path), path)
        if teacher.num_classes != student.num_classes:
            raise ConfigError(f"train.distill_from {path}: the teacher has {teacher.num_classes} classes, the student "
                              f"{student.num_classes}")
        t_priors, s_priors = teacher.priors(size), student.priors(size)
        if t_priors.shape != s_priors.shape or not torch.allclose(t_priors, s_priors, atol=1e-6):
            raise ConfigError(f"train.distill_from {path}: the teacher's priors at {size[1]}x{size[0]} "
                              f"({t_priors.shape[0]}) are not the student's ({s_priors.shape[0]}); distillation "
                              f"compares them prior by prior")
        teacher.eval().requires_grad_(False)
        return teacher

    # ------------------------------------------------------------------------------------------- training
    def fit(self, resume: str | Path | None = None) -> TrainState:
        """Train until ``train.epochs`` (or ``train.max_iters``) and return the final progress."""
        cfg = self.config
        torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        np.random.seed(cfg.train.seed)
        random.seed(cfg.train.seed)

        device = resolve_device(cfg.train.device)
        d_mean, d_std = cfg.data.mean_rgb, cfg.data.std_rgb
        train_sets, val_set = self._load_sets()
        model = self._build_model()
        size = tuple(cfg.data.input_size)
        teacher = self._build_teacher(model, size)  # before the image cache: a wrong teacher fails in seconds
        cache_dir = Path(cfg.data.cache_dir)
        transform = self._transform(model.prior_spec)
        datasets = [
            DetectionDataset.with_cache(s, transform, cache_dir, cfg.data.cache_max_side, seed=cfg.train.seed,
                                        progress=self.progress)
            for s in train_sets
        ]
        for d, s in zip(datasets, cfg.data.train):
            if d.report.skipped_images:
                tqdm.write(f"{s.spec}: {d.report.summary()} (first: {d.report.messages[0]})")
        sampler = EpochSampler([len(d) for d in datasets], [s.weight for s in cfg.data.train], cfg.train.seed)
        batch_size = cfg.train.batch_size
        iters_per_epoch = (len(sampler)) // batch_size
        if iters_per_epoch == 0:
            raise ConfigError(f"train.batch_size {batch_size} is larger than an epoch ({len(sampler)} images)")
        total_iters = iters_per_epoch * cfg.train.epochs

        memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        model = model.to(device=device, memory_format=memory_format)
        optimizer = build_optimizer(model, cfg)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, total_iters, cfg))
        criterion = MultiBoxLoss(
            neg_pos_ratio=cfg.train.neg_pos_ratio,
            alpha=cfg.train.alpha,
            alpha_extra=cfg.train.alpha_extra,
            boost_threshold=cfg.train.boost_threshold,
        )
        state = TrainState()
        # With an EMA, a checkpoint's "model" is the average (what validation scored and what is shipped) and
        # "raw_model" the optimiser's own weights, which training continues from.
        averaged = None
        if resume is not None:
            checkpoint = load_checkpoint(resume)
            if "optimizer" not in checkpoint:
                raise CheckpointError(f"{resume}: holds model weights only, not a training state to resume")
            if "raw_model" in checkpoint:
                averaged = checkpoint["model"]
            model.load_state_dict(checkpoint.get("raw_model", checkpoint["model"]))
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            state = TrainState(**checkpoint["train_state"])
            _set_rng_states(checkpoint["rng"])
            tqdm.write(f"resumed from {resume}: epoch {state.epoch + 1}, iteration {state.iteration}")
        ema = None
        if cfg.train.ema_decay:
            ema = ModelEMA(model, cfg.train.ema_decay, updates=state.iteration)
            if averaged is not None:
                ema.load_state_dict(averaged)
                ema.updates = int(checkpoint.get("ema_updates", state.iteration))

        self.out_dir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, self.out_dir / "config.yaml")
        meta = model_metadata(model, cfg.model.name, cfg.model.options, train_sets[0].class_names,
                              cfg.data.mean_rgb, cfg.data.std_rgb)
        if cfg.eval.vote_iou is not None:  # the model's post-processing, applied by Detector by default
            meta["postprocess"] = {"vote_iou": float(cfg.eval.vote_iou)}
        # two-shot models (DSFD's PAL) train both shots, each matched against its own priors
        dual = getattr(model, "num_shots", 1) == 2
        if teacher is not None:
            teacher = teacher.to(device=device, memory_format=memory_format)
        logger = _Logger(self.out_dir, resume is not None, shots=2 if dual else 1, distill=teacher is not None)
        prior_grids = [_grid_to(g, device) for g in (model.shot_prior_grids(size) if dual else [model.prior_grid(size)])]
        val_cache = (
            ImageCache.build(val_set.samples, cache_dir, cfg.data.cache_max_side, progress=self.progress)
            if val_set is not None else None
        )

        def checkpoint_now(name: str) -> Path:
            weights = {"model": ema.state_dict(), "raw_model": model.state_dict(), "ema_updates": ema.updates} \
                if ema is not None else {"model": model.state_dict()}
            return save_checkpoint(self.out_dir / name, {
                **meta,
                **weights,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "train_state": state.__dict__.copy(),
                "rng": _rng_states(),
                "config": cfg.to_dict(),
            })

        previous_handler = signal.getsignal(signal.SIGINT)

        def request_stop(signum, frame):  # first Ctrl-C: finish the step, save, stop; second: stop at once
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            tqdm.write("stopping after this step (Ctrl-C again to abort without saving)")

        signal.signal(signal.SIGINT, request_stop)
        max_iters = cfg.train.max_iters
        try:
            model.train()
            # One loader for the rest of the run (RunSampler): its workers start once, not every epoch.
            loader = DataLoader(
                EpochDraws(datasets), batch_size=batch_size,
                sampler=RunSampler(sampler, batch_size, state.epoch, cfg.train.epochs,
                                   skip=state.epoch_iteration * batch_size),
                collate_fn=collate_detections, num_workers=cfg.data.workers,
                worker_init_fn=worker_init if cfg.data.workers else None, pin_memory=device.type == "cuda",
            )
            batches = iter(loader)
            while state.epoch < cfg.train.epochs:
                bar = tqdm(total=iters_per_epoch, initial=state.epoch_iteration, disable=not self.progress,
                           desc=f"epoch {state.epoch + 1}/{cfg.train.epochs}", dynamic_ncols=True, leave=True)
                window_start, window_images = time.perf_counter(), 0
                for _ in range(iters_per_epoch - state.epoch_iteration):
                    batch = next(batches)
                    images = normalize_batch(batch.images.to(device, non_blocking=True), d_mean, d_std)
                    images = images.contiguous(memory_format=memory_format)
                    ignores = batch.ignore
                    if cfg.train.ignore_below_px > 0:
                        ignores = [i | (_side_px(b, images.shape[-2:]) < cfg.train.ignore_below_px)
                                   for b, i in zip(batch.boxes_xyxy, ignores)]
                    boxes, labels, ignore, valid = (
                        t.to(device) for t in pad_targets(batch.boxes_xyxy, batch.labels, ignores)
                    )
                    outputs = model.forward_shots(images) if dual else [model(images)]
                    matches = [match_priors(grid, boxes, labels, valid, ignore, iou_threshold=cfg.train.match_iou)
                               for grid in prior_grids]
                    shot_losses = [criterion(loc, conf, m) for (loc, conf), m in zip(outputs, matches)]
                    loss = shot_losses[-1]
                    if dual:  # PAL: second shot + lambda * first shot (DSFD, section 3.3)
                        loss = LossOutput(loss.total + cfg.train.pal_weight * shot_losses[0].total, loss.loc,
                                          loss.conf, loss.num_positives)
                    distill = None
                    if teacher is not None:  # the teacher's scores on the same priors (the last shot's)
                        with torch.no_grad():
                            teacher_conf = teacher(images)[1]
                        negatives = matches[-1].labels == 0 if cfg.train.distill_priors == "negatives" else None
                        distill = distillation_loss(outputs[-1][1], teacher_conf, loss.num_positives,
                                                    cfg.train.distill_temperature, negatives)
                        loss = LossOutput(loss.total + cfg.train.distill_weight * distill, loss.loc, loss.conf,
                                          loss.num_positives)
                    if not torch.isfinite(loss.total):
                        raise FloatingPointError(
                            f"loss is {loss.total.item()} at iteration {state.iteration} (lower train.lr?)"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    loss.total.backward()
                    if cfg.train.grad_clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    if ema is not None:
                        ema.update(model)
                    state.iteration += 1
                    state.epoch_iteration += 1
                    window_images += len(batch)
                    logger.add(loss, shot_losses if dual else None, distill)
                    if state.iteration % cfg.train.log_every == 0 or state.epoch_iteration == iters_per_epoch:
                        elapsed = time.perf_counter() - window_start
                        speed = window_images / max(elapsed, 1e-9)
                        row = logger.flush(state, optimizer.param_groups[0]["lr"], speed)
                        remaining = (total_iters - state.iteration) * batch_size / max(speed, 1e-9)
                        terms = (
                            f"pal1 conf {row['pal1_conf']:.3f} pal1 loc {row['pal1_loc']:.3f} "
                            f"pal2 conf {row['conf']:.3f} pal2 loc {row['loc']:.3f}"
                            if dual else f"conf {row['conf']:.3f} loc {row['loc']:.3f}"
                        ) + (f" distill {row['distill']:.3f}" if teacher is not None else "")
                        bar.set_postfix_str(
                            f"loss {row['loss']:.3f} {terms} lr {row['lr']:.2g} {speed:.0f} img/s "
                            f"ETA {_hms(remaining)}"
                        )
                        window_start, window_images = time.perf_counter(), 0
                    bar.update(1)
                    if state.iteration % cfg.train.checkpoint_every == 0:
                        checkpoint_now("last.pt")
                    if self._stop_requested or (max_iters is not None and state.iteration >= max_iters):
                        break
                bar.close()
                if self._stop_requested or (max_iters is not None and state.iteration >= max_iters):
                    path = checkpoint_now("last.pt")
                    tqdm.write(f"saved {path} (epoch {state.epoch + 1}, iteration {state.iteration})")
                    return state
                state.epoch += 1
                state.epoch_iteration = 0
                due = state.epoch % cfg.eval.every_epochs == 0 or state.epoch == cfg.train.epochs
                if val_set is not None and due:
                    ap = self.validate(ema.module if ema is not None else model, val_set, val_cache, meta)
                    model.train()
                    logger.val(state, ap)
                    if ap > state.best_ap:
                        state.best_ap, state.best_epoch = ap, state.epoch
                        checkpoint_now("best.pt")
                    tqdm.write(f"epoch {state.epoch}: val AP {ap:.4f} (best {state.best_ap:.4f}, epoch {state.best_epoch})")
                checkpoint_now("last.pt")
        finally:
            signal.signal(signal.SIGINT, previous_handler)
            logger.close()
        return state

    # ----------------------------------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self, model: SingleShotDetector, data: AnnotationSet, cache: ImageCache, meta: dict) -> float:
        """AP of ``model`` on ``data`` with the eval config's protocol (the face target: VOC AP@0.5, >= 16 px)."""
        e = self.config.eval
        if next(model.parameters()).device.type != "cpu":  # the CPU path of singleshot eval, on a copy
            model = copy.deepcopy(model).cpu()
        predictor = ModelPredictor(model, meta["mean_rgb"], meta["std_rgb"], e.long_side, vote_iou=e.vote_iou)
        predictions, _ = predict_dataset(
            lambda images: predictor.detect(images, e.min_score, e.max_overlap, e.top_k), data, cache=cache,
            progress=self.progress, desc="validating",
        )
        options = {"min_size": e.min_size} if e.protocol == "voc" else {}
        result = evaluate(data, predictions, protocol=e.protocol, **options)
        return float(next(iter(result.metrics.values())))


def _side_px(boxes_xyxy: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``sqrt(w * h)`` in input pixels of ``(K, 4)`` boxes normalised to an input of ``size`` ``(H, W)``."""
    w = (boxes_xyxy[:, 2] - boxes_xyxy[:, 0]) * size[1]
    h = (boxes_xyxy[:, 3] - boxes_xyxy[:, 1]) * size[0]
    return torch.sqrt(w.clamp(min=0) * h.clamp(min=0))


def resolve_device(name: str) -> torch.device:
    """The torch device for ``train.device`` (``auto``: CUDA when present, else the CPU).

    Raises:
        ConfigError: CUDA was asked for but this torch build or machine has none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name}: this torch has no CUDA device (use train.device=cpu or auto)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"train.device={name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def _grid_to(grid, device: torch.device):
    """``grid`` (a :class:`~singleshot.priors.PriorGrid`) with every tensor on ``device``."""
    return dataclasses.replace(grid, **{f.name: getattr(grid, f.name).to(device) for f in dataclasses.fields(grid)})


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _Logger:
    """Averages loss terms over a window; writes ``train_log.csv``, ``val_log.csv`` and TensorBoard if installed."""

    def __init__(self, out_dir: Path, append: bool, shots: int = 1, distill: bool = False) -> None:
        mode = "a" if append else "w"
        self.shots, self.distill = shots, distill
        # Kept open for the whole run (rows are flushed as written) and closed by close().
        self._train_file = open(out_dir / "train_log.csv", mode, newline="")  # noqa: SIM115
        self._val_file = open(out_dir / "val_log.csv", mode, newline="")  # noqa: SIM115
        self._train = csv.writer(self._train_file)
        self._val = csv.writer(self._val_file)
        if not append:
            # two shots: conf/loc are the second shot's (pal2), as in the DSFD training logs, plus pal1 terms
            extra = (["pal1_conf", "pal1_loc"] if shots == 2 else []) + (["distill"] if distill else [])
            self._train.writerow(["epoch", "iteration", "lr", "loss", "conf", "loc", "positives", *extra,
                                  "img_per_s", "time"])
            self._val.writerow(["epoch", "iteration", "ap", "time"])
        self._sums = np.zeros(7)
        self._count = 0
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(out_dir / "tensorboard"))
        except Exception:  # noqa: BLE001 - TensorBoard is optional (not installed is the usual case)
            self._tb = None

    def add(self, loss, shot_losses=None, distill=None) -> None:
        first = [shot_losses[0].conf.item(), shot_losses[0].loc.item()] if shot_losses else [0.0, 0.0]
        self._sums += [loss.total.item(), loss.conf.item(), loss.loc.item(), float(loss.num_positives), *first,
                       0.0 if distill is None else distill.item()]
        self._count += 1

    def flush(self, state: TrainState, lr: float, speed: float) -> dict[str, float]:
        mean = self._sums / max(1, self._count)
        row = {"loss": mean[0], "conf": mean[1], "loc": mean[2], "positives": mean[3], "lr": lr,
               "pal1_conf": mean[4], "pal1_loc": mean[5], "distill": mean[6]}
        extra = ([f"{mean[4]:.5f}", f"{mean[5]:.5f}"] if self.shots == 2 else []) + \
            ([f"{mean[6]:.5f}"] if self.distill else [])
        self._train.writerow([state.epoch + 1, state.iteration, f"{lr:.6g}", f"{mean[0]:.5f}", f"{mean[1]:.5f}",
                              f"{mean[2]:.5f}", f"{mean[3]:.1f}", *extra, f"{speed:.1f}", f"{time.time():.0f}"])
        self._train_file.flush()
        if self._tb is not None:
            for key in ("loss", "conf", "loc", "lr"):
                self._tb.add_scalar(f"train/{key}", row[key], state.iteration)
        self._sums[:] = 0
        self._count = 0
        return row

    def val(self, state: TrainState, ap: float) -> None:
        self._val.writerow([state.epoch, state.iteration, f"{ap:.5f}", f"{time.time():.0f}"])
        self._val_file.flush()
        if self._tb is not None:
            self._tb.add_scalar("val/ap", ap, state.iteration)

    def close(self) -> None:
        self._train_file.close()
        self._val_file.close()
        if self._tb is not None:
            self._tb.close()
