"""The trainer: SSD training with exact resume, validation by AP and a best checkpoint.

One :class:`Trainer` runs a :class:`~singleshot.config.Config`: it builds the model, reads and caches the data,
and loops over epochs of batches: augment (:class:`~singleshot.data.transforms.SSDAugmentation`), match priors
(:func:`~singleshot.matching.match_priors` on the model's prior grid), MultiBox loss, SGD or AdamW step. A
checkpoint holds everything needed to continue exactly where it stopped: model, optimiser, scheduler, epoch and
iteration, config and RNG states; the order of samples and every augmentation draw are functions of
``(seed, epoch, index)``, so N steps equal N/2 steps + resume + N/2 steps.

Around the loop: the sample order in :mod:`singleshot.data.samplers`, the optimiser and learning-rate schedule in
:mod:`singleshot.engine.optim`, the CSV/TensorBoard logs and progress text in :mod:`singleshot.engine.logging`,
the progress and RNG states a checkpoint holds in :mod:`singleshot.engine.state`, data-parallel training under
torchrun in :mod:`singleshot.engine.distributed`.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from singleshot.boxes import encode_landmarks
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
from singleshot.data.samplers import EpochDraws, EpochSampler, RunSampler
from singleshot.data.transforms import SSDAugmentation, normalize_batch
from singleshot.engine.distributed import (
    DistContext,
    all_sum,
    barrier,
    broadcast_value,
    convert_global_batchnorm,
    gather_values,
    init_distributed,
    launched_world_size,
    shutdown_distributed,
)
from singleshot.engine.ema import ModelEMA
from singleshot.engine.logging import TrainLogger
from singleshot.engine.optim import build_optimizer, build_scheduler, freeze_parameters, hold_statistics
from singleshot.engine.state import TrainState, read_training_checkpoint, rng_states, set_rng_states
from singleshot.evaluation import evaluate
from singleshot.inference import ModelPredictor, predict_dataset
from singleshot.losses import LossOutput, MultiBoxLoss, distillation_loss, landmark_loss
from singleshot.matching import match_priors, pad_targets
from singleshot.models import SingleShotDetector, create_model
from singleshot.structures import AnnotationSet


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
            grayscale_prob=a.grayscale_p,
            rotate90_prob=a.rotate90_p,
            canvas_fill_prob=a.canvas_fill_p,
            blank_prob=a.blank_p,
            lowres_prob=a.lowres_p,
            lowres_scale=tuple(a.lowres_scale),
            face_crop_prob=a.face_crop_p,
            face_crop_scale=tuple(a.face_crop_scale),
            face_crop_canvas=a.face_crop_canvas,
            face_crop_negative=a.face_crop_negative,
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
        """Train until ``train.epochs`` (or ``train.max_iters``) and return the final progress.

        Started by torchrun (``WORLD_SIZE`` > 1), each process trains its share of every global batch of
        ``train.batch_size`` x processes images with DistributedDataParallel, and rank 0 writes the run folder.
        """
        cfg = self.config
        checkpoint = read_training_checkpoint(resume, cfg) if resume is not None else None  # before any data
        world_size = launched_world_size()
        if checkpoint is not None and int(checkpoint.get("world_size", 1)) != world_size:
            saved = int(checkpoint.get("world_size", 1))
            raise CheckpointError(
                f"{resume}: written by {saved} training process(es) and this run has {world_size}; the sample "
                f"order and the schedule follow the global batch, so resume with {saved} "
                + ("(torchrun --nproc_per_node ...)" if saved > 1 else "(without torchrun)")
            )
        context, device = init_distributed(resolve_device(cfg.train.device))
        try:
            return self._fit(resume, checkpoint, context, device)
        finally:
            shutdown_distributed(context)

    def _fit(self, resume: str | Path | None, checkpoint: dict | None, context: DistContext,
             device: torch.device) -> TrainState:
        cfg = self.config
        main = context.is_main  # rank 0 writes the run folder, validates and shows progress
        progress = self.progress and main
        say = tqdm.write if main else (lambda message: None)
        torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        np.random.seed(cfg.train.seed)
        random.seed(cfg.train.seed)

        d_mean, d_std = cfg.data.mean_rgb, cfg.data.std_rgb
        train_sets, val_set = self._load_sets()
        model = self._build_model()
        size = tuple(cfg.data.input_size)
        teacher = self._build_teacher(model, size)  # before the image cache: a wrong teacher fails in seconds
        cache_dir = Path(cfg.data.cache_dir)
        transform = self._transform(model.prior_spec)
        num_landmarks = getattr(model.head, "num_landmarks", 0)  # a landmark head: its points ride with the boxes
        if context.local_rank != 0:  # the first process of each machine fills its image cache, then the others read it
            barrier(context)
        datasets = [
            DetectionDataset.with_cache(s, transform, cache_dir, cfg.data.cache_max_side, seed=cfg.train.seed,
                                        progress=progress, landmarks=num_landmarks)
            for s in train_sets
        ]
        if context.local_rank == 0:
            barrier(context)
        for d, s in zip(datasets, cfg.data.train):
            if d.report.skipped_images:
                say(f"{s.spec}: {d.report.summary()} (first: {d.report.messages[0]})")
        sampler = EpochSampler([len(d) for d in datasets], [s.weight for s in cfg.data.train], cfg.train.seed)
        batch_size = cfg.train.batch_size  # per process
        world = context.world_size
        global_batch = batch_size * world
        iters_per_epoch = (len(sampler)) // global_batch
        if iters_per_epoch == 0:
            raise ConfigError(f"train.batch_size {batch_size}" + (f" x {world} processes" if world > 1 else "")
                              + f" is larger than an epoch ({len(sampler)} images)")
        total_iters = iters_per_epoch * cfg.train.epochs
        if context.enabled:
            say(f"data-parallel: {world} processes ({context.backend}), train.batch_size {batch_size} per process, "
                f"global batch {global_batch}; {iters_per_epoch} iterations per epoch of {len(sampler)} draws"
                + ("; BatchNorm over the global batch" if cfg.train.sync_bn else ""))

        memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        model = model.to(device=device, memory_format=memory_format)
        if context.enabled and cfg.train.sync_bn:
            model = convert_global_batchnorm(model, device)
        frozen_norms = freeze_parameters(model, list(cfg.train.freeze))
        optimizer = build_optimizer(model, cfg)
        scheduler = build_scheduler(optimizer, total_iters, cfg)
        criterion = MultiBoxLoss(
            neg_pos_ratio=cfg.train.neg_pos_ratio,
            min_negatives_per_image=cfg.train.min_negatives_per_image,
            alpha=cfg.train.alpha,
            alpha_extra=cfg.train.alpha_extra,
            boost_threshold=cfg.train.boost_threshold,
        )
        state = TrainState()
        # With an EMA, a checkpoint's "model" is the average (what validation scored and what is shipped) and
        # "raw_model" the optimiser's own weights, which training continues from.
        averaged = None
        if checkpoint is not None:
            if "raw_model" in checkpoint:
                averaged = checkpoint["model"]
            model.load_state_dict(checkpoint.get("raw_model", checkpoint["model"]))
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            state = TrainState(**checkpoint["train_state"])
            set_rng_states(checkpoint["rng_by_rank"][context.rank] if context.enabled else checkpoint["rng"])
            say(f"resumed from {resume}: epoch {state.epoch + 1}, iteration {state.iteration}")
        ema = None
        if cfg.train.ema_decay:
            ema = ModelEMA(model, cfg.train.ema_decay, updates=state.iteration)
            if averaged is not None:
                ema.load_state_dict(averaged)
                ema.updates = int(checkpoint.get("ema_updates", state.iteration))

        if main:
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
        logger = TrainLogger(self.out_dir, resume is not None, shots=2 if dual else 1, distill=teacher is not None,
                             landmarks=bool(num_landmarks)) if main else None
        # DistributedDataParallel averages gradients of what runs through forward(): both shots go through it
        net = _Shots(model, dual)
        if context.enabled:
            net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        prior_grids = [_grid_to(g, device) for g in (model.shot_prior_grids(size) if dual else [model.prior_grid(size)])]
        val_cache = (
            ImageCache.build(val_set.samples, cache_dir, cfg.data.cache_max_side, progress=progress)
            if val_set is not None and main else None
        )

        def checkpoint_now(name: str) -> Path:  # every process calls it (their RNG states), rank 0 writes
            states = gather_values(context, rng_states())
            path = self.out_dir / name
            if not main:
                return path
            weights = {"model": ema.state_dict(), "raw_model": model.state_dict(), "ema_updates": ema.updates} \
                if ema is not None else {"model": model.state_dict()}
            return save_checkpoint(path, {
                **meta,
                **weights,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "train_state": state.__dict__.copy(),
                "rng": states[0],
                **({"rng_by_rank": states, "world_size": world} if context.enabled else {}),
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
            hold_statistics(frozen_norms)
            # One loader for the rest of the run (RunSampler): its workers start once, not every epoch.
            loader = DataLoader(
                EpochDraws(datasets), batch_size=batch_size,
                sampler=RunSampler(sampler, batch_size, state.epoch, cfg.train.epochs,
                                   skip=state.epoch_iteration * global_batch, rank=context.rank, world_size=world),
                collate_fn=collate_detections, num_workers=cfg.data.workers,
                worker_init_fn=worker_init if cfg.data.workers else None, pin_memory=device.type == "cuda",
            )
            batches = iter(loader)
            stop = False
            while state.epoch < cfg.train.epochs:
                bar = tqdm(total=iters_per_epoch, initial=state.epoch_iteration, disable=not progress,
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
                    outputs = net(images)
                    matches = [match_priors(grid, boxes, labels, valid, ignore, iou_threshold=cfg.train.match_iou)
                               for grid in prior_grids]
                    shot_losses = [criterion(out[0], out[1], m) for out, m in zip(outputs, matches)]
                    loss = shot_losses[-1]
                    landm = None
                    if num_landmarks:  # the last shot's landmark head on the positives whose points are known
                        landm_target = landmark_targets(batch.landmarks, matches[-1], prior_grids[-1].cxcywh,
                                                        device)
                        landm = landmark_loss(outputs[-1][2], landm_target, matches[-1].labels)
                        loss = LossOutput(loss.total + cfg.train.landmark_weight * landm, loss.loc, loss.conf,
                                          loss.num_positives)
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
                    scale, stop = 1.0, self._stop_requested
                    if context.enabled:
                        # Each process's loss is normalised by its own positives; rescaled to the global batch's
                        # count, the averaged gradients are one process's with the global batch. One collective
                        # also agrees on stopping (Ctrl-C) and on a non-finite loss, so all processes act alike.
                        own = float(loss.num_positives)
                        agreed = all_sum(context, torch.tensor(
                            [own, float(stop), float(not torch.isfinite(loss.total))], dtype=torch.float64))
                        scale = world * max(own, 1.0) / max(float(agreed[0]), 1.0)
                        stop, finite = bool(agreed[1]), not bool(agreed[2])
                    else:
                        finite = bool(torch.isfinite(loss.total))
                    if not finite:
                        raise FloatingPointError(
                            f"loss is {loss.total.item()} at iteration {state.iteration} (lower train.lr?)"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    (loss.total * scale).backward()
                    if cfg.train.grad_clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    if ema is not None:
                        ema.update(model)
                    state.iteration += 1
                    state.epoch_iteration += 1
                    window_images += len(batch) * world  # every process's: the speed is the run's
                    terms = (loss, shot_losses if dual else None, distill, landm)
                    if context.enabled:  # the log shows the global batch's loss, as one process would
                        terms = _global_terms(context, scale, *terms)
                    if logger is not None:
                        logger.add(*terms)
                    if logger is not None and (state.iteration % cfg.train.log_every == 0
                                               or state.epoch_iteration == iters_per_epoch):
                        elapsed = time.perf_counter() - window_start
                        speed = window_images / max(elapsed, 1e-9)
                        row = logger.flush(state, optimizer.param_groups[0]["lr"], speed)
                        remaining = (total_iters - state.iteration) * global_batch / max(speed, 1e-9)
                        bar.set_postfix_str(logger.progress(row, speed, remaining))
                        window_start, window_images = time.perf_counter(), 0
                    bar.update(1)
                    if state.iteration % cfg.train.checkpoint_every == 0:
                        checkpoint_now("last.pt")
                    if not context.enabled:  # a Ctrl-C during this step stops after it (processes agree above)
                        stop = self._stop_requested
                    if stop or (max_iters is not None and state.iteration >= max_iters):
                        break
                bar.close()
                if stop or (max_iters is not None and state.iteration >= max_iters):
                    path = checkpoint_now("last.pt")
                    say(f"saved {path} (epoch {state.epoch + 1}, iteration {state.iteration})")
                    return state
                state.epoch += 1
                state.epoch_iteration = 0
                due = state.epoch % cfg.eval.every_epochs == 0 or state.epoch == cfg.train.epochs
                if val_set is not None and due:
                    # rank 0 validates; every process takes its AP, so all save best.pt (a collective) alike
                    ap = self.validate(ema.module if ema is not None else model, val_set, val_cache, meta) \
                        if main else None
                    ap = broadcast_value(context, ap)
                    model.train()
                    hold_statistics(frozen_norms)
                    if logger is not None:
                        logger.val(state, ap)
                    if cfg.train.keep_validated:
                        checkpoint_now(f"epoch_{state.epoch}.pt")
                    if ap > state.best_ap:
                        state.best_ap, state.best_epoch = ap, state.epoch
                        checkpoint_now("best.pt")
                    say(f"epoch {state.epoch}: val AP {ap:.4f} (best {state.best_ap:.4f}, epoch {state.best_epoch})")
                checkpoint_now("last.pt")
        finally:
            signal.signal(signal.SIGINT, previous_handler)
            if logger is not None:
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


class _Shots(nn.Module):
    """The model's raw outputs of every shot, ``[(loc, conf[, landm]), ...]``, from ``forward``: what
    DistributedDataParallel wraps (it synchronises the gradients of what runs through ``forward``)."""

    def __init__(self, model: SingleShotDetector, dual: bool) -> None:
        super().__init__()
        self.model, self.dual = model, dual

    def forward(self, images: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        return self.model.forward_shots(images) if self.dual else [self.model(images)]


def _global_terms(context: DistContext, scale: float, loss: LossOutput, shot_losses: list[LossOutput] | None,
                  distill: torch.Tensor | None, landm: torch.Tensor | None) -> tuple:
    """The step's logged terms for the global batch: each process's terms rescaled to the global positives
    (``scale``) and averaged over the processes, positives summed (what one process with the whole batch logs)."""
    parts = [loss.total, loss.loc, loss.conf] + [t for s in (shot_losses or []) for t in (s.total, s.loc, s.conf)] \
        + [t for t in (distill, landm) if t is not None]
    values = all_sum(context, torch.stack([p.detach().float().cpu() for p in parts]) * scale) / context.world_size
    positives = all_sum(context, torch.tensor([float(loss.num_positives)]))[0]
    it = iter(values)

    def output() -> LossOutput:
        return LossOutput(next(it), next(it), next(it), positives)

    total = output()
    shots = [output() for _ in shot_losses] if shot_losses else None
    return total, shots, next(it) if distill is not None else None, next(it) if landm is not None else None


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


def landmark_targets(landmarks: list[torch.Tensor], match, priors_cxcywh: torch.Tensor,
                     device: torch.device) -> torch.Tensor:
    """``(B, P, 2L)`` encoded landmark targets: each prior's matched object's points (NaN for background priors and
    for objects without points), as offsets from the prior (:func:`singleshot.boxes.encode_landmarks`).

    Args:
        landmarks: ``B`` tensors ``(K_i, L, 2)`` normalised points, in the order of the batch's boxes.
        match: the :class:`~singleshot.matching.MatchResult` of the batch (its ``matched_index`` picks the object).
    """
    num_points = landmarks[0].shape[1]
    width = max(1, max(len(p) for p in landmarks))
    padded = torch.full((len(landmarks), width + 1, num_points, 2), float("nan"), device=device)
    for i, points in enumerate(landmarks):
        padded[i, : len(points)] = points.to(device)
    index = match.matched_index.clamp(min=-1) % (width + 1)  # -1 (background) -> the last, all-NaN row
    picked = torch.gather(padded, 1, index[..., None, None].expand(-1, -1, num_points, 2))  # (B, P, L, 2)
    return encode_landmarks(picked, priors_cxcywh)


def _grid_to(grid, device: torch.device):
    """``grid`` (a :class:`~singleshot.priors.PriorGrid`) with every tensor on ``device``."""
    return dataclasses.replace(grid, **{f.name: getattr(grid, f.name).to(device) for f in dataclasses.fields(grid)})
