"""Point-network checkpoints: :func:`load_point_net` and :func:`point_checkpoint` (what a file holds), and
:func:`predict_points`, the network's crop coordinates for a batch of crops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from singleshot.checkpoint import CheckpointError, load_checkpoint
from singleshot.models.points import FacePointNet

#: Normalisation of the crops (ImageNet's mean and standard deviation of RGB in 0-255).
MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)


def build_point_net(options: dict[str, Any]) -> FacePointNet:
    """The network a checkpoint's ``network`` options describe."""
    return FacePointNet(width=float(options.get("width", 1.0)), input_size=int(options.get("input_size", 64)),
                        num_points=int(options.get("num_points", 5)))


def load_point_net(weights: str | Path) -> tuple[FacePointNet, dict[str, Any]]:
    """A point checkpoint -> its network (eval mode) and the checkpoint dict.

    Raises:
        CheckpointError: missing, unreadable, or not a point checkpoint.
    """
    checkpoint = load_checkpoint(Path(weights))
    if checkpoint.get("kind") != "points":
        raise CheckpointError(f"{weights}: not a face point checkpoint (train one with: singleshot points train)")
    net = build_point_net(checkpoint["network"])
    net.load_state_dict(checkpoint["model"])
    return net.eval(), checkpoint


def normalise_crops(crops: np.ndarray) -> np.ndarray:
    """``(K, S, S, 3)`` crops in 0-255 -> ``(K, 3, S, S)`` float32 network input."""
    mean = np.asarray(MEAN_RGB, np.float32)
    inv_std = 1.0 / np.asarray(STD_RGB, np.float32)
    x = (np.asarray(crops, np.float32) - mean) * inv_std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


@torch.no_grad()
def predict_points(net: FacePointNet, crops: np.ndarray) -> np.ndarray:
    """``(K, S, S, 3)`` crops in 0-255 -> ``(K, P, 2)`` float32 points in crop pixels."""
    if not len(crops):
        return np.zeros((0, net.num_points, 2), np.float32)
    out = net(torch.from_numpy(normalise_crops(crops))).numpy()
    return (out * net.input_size).reshape(len(crops), net.num_points, 2).astype(np.float32)
