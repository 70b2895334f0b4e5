"""The attribute network: :class:`AttributeNet` (a detector backbone and a pooled-feature head), built from a face
detector checkpoint for training or from an attribute checkpoint for inference, and its probabilities on crops."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from singleshot.attributes.config import AttributeConfig
from singleshot.attributes.data import _normalise
from singleshot.checkpoint import CheckpointError, build_model_from_checkpoint, bundled_weights, load_checkpoint
from singleshot.config import DataConfig
from singleshot.models import create_model
from singleshot.models.pretrained import (
    PRETRAINED_FILES,
    WeightsError,
    load_backbone_weights,
    pretrained_weights_path,
)
from singleshot.registry import UnknownNameError


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


def build_attribute_net(config: AttributeConfig) -> tuple[AttributeNet, dict[str, Any]]:
    """A new network for ``config``: the backbone of its detector (``detector_weights``, or the bundled face model;
    its weights with ``backbone_init: detector``, untrained with ``random``; with ``imagenet`` the backbone of
    ``backbone_model`` with its packaged ImageNet weights) and an untrained head, and the detector's description
    that an attribute checkpoint keeps (``backbone``: model, options, normalisation).

    Raises:
        CheckpointError: a missing or unusable detector checkpoint, an unknown ``backbone_model``, or its ImageNet
            weights not installed.
    """
    if config.backbone_init == "imagenet":
        return _imagenet_attribute_net(config)
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


def _imagenet_attribute_net(config: AttributeConfig) -> tuple[AttributeNet, dict[str, Any]]:
    """The backbone of the registered model ``config.backbone_model`` with its packaged ImageNet weights, the
    normalisation those weights were trained with (DataConfig's default, ImageNet's), and an untrained head."""
    try:
        model = create_model(config.backbone_model)
    except UnknownNameError as err:
        raise CheckpointError(f"backbone_model: {err}") from None
    if model.backbone.name not in PRETRAINED_FILES:
        raise CheckpointError(f"backbone_model {config.backbone_model}: its backbone ({model.backbone.name}) has no "
                              f"packaged ImageNet weights (backbones that have: {', '.join(PRETRAINED_FILES)})")
    try:
        load_backbone_weights(model.backbone, pretrained_weights_path(model.backbone.name))
    except WeightsError as err:
        raise CheckpointError(f"backbone_model {config.backbone_model}: {err}") from None
    data = DataConfig()
    meta = {"model_name": config.backbone_model, "model_options": {}, "num_classes": model.num_classes,
            "mean_rgb": list(data.mean_rgb), "std_rgb": list(data.std_rgb),
            "detector_weights": f"imagenet:{model.backbone.name}"}
    return AttributeNet(model.backbone, levels=config.levels), meta


def load_attribute_net(weights: str | Path) -> tuple[AttributeNet, dict[str, Any]]:
    """An attribute checkpoint -> its network (eval mode, not fused) and the checkpoint dict.

    Raises:
        CheckpointError: missing, unreadable, or not an attribute checkpoint.
    """
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


@torch.no_grad()
def predict_crops(net: AttributeNet, crops_uint8: np.ndarray, mean_rgb: Sequence[float], std_rgb: Sequence[float],
                  batch: int = 256, flip_tta: bool = False) -> np.ndarray:
    """Probabilities of outcome 1 for ``(N, S, S, 3)`` uint8 RGB crops (with ``flip_tta``: averaged with the
    mirrored crops, run in the same batch)."""
    net.eval()
    out = []
    for i in range(0, len(crops_uint8), batch):
        out.append(_probabilities(net, _normalise(crops_uint8[i : i + batch], mean_rgb, std_rgb), flip_tta))
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)
