"""The trainer's optimiser (SGD or AdamW over three parameter groups) and learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from singleshot.config import Config, ConfigError


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


def build_scheduler(optimizer: torch.optim.Optimizer, total: int, config: Config) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration scheduler applying :func:`lr_factor` over a run of ``total`` iterations."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, total, config))


def freeze_parameters(model: nn.Module, prefixes: list[str]) -> list[nn.Module]:
    """Keep the parameters whose names start with one of ``prefixes`` fixed (``requires_grad`` off).

    Returns the normalisation modules whose parameters are all frozen: :func:`hold_statistics` keeps them in eval
    mode after every ``model.train()``, so that their running statistics stay as trained too (a frozen part of the
    network then computes exactly what it computed before, e.g. a detector's boxes while a new head learns).

    Raises:
        ConfigError: a prefix that names no parameter (a typo would otherwise freeze nothing silently).
    """
    if not prefixes:
        return []
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            roots = sorted({name.split(".")[0] for name in names})
            raise ConfigError(f"train.freeze: {prefix!r} names no parameter (the model's parts: {roots})")
    for name, param in model.named_parameters():
        if any(name.startswith(prefix) for prefix in prefixes):
            param.requires_grad_(False)
    norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    return [m for m in model.modules() if isinstance(m, norms) and any(True for _ in m.parameters())
            and not any(p.requires_grad for p in m.parameters())]


def hold_statistics(modules: list[nn.Module]) -> None:
    """Put the frozen normalisation modules of :func:`freeze_parameters` back in eval mode."""
    for module in modules:
        module.eval()
