"""Prediction heads: per-level localisation and confidence convolutions, flattened in prior order."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from singleshot.models.backbones.slim import dw_separable


def _flatten(x: Tensor, values_per_prior: int) -> Tensor:
    """``(N, A * V, H, W) -> (N, H * W * A, V)``: cells row-major, then the A priors of a cell (prior order)."""
    n = x.shape[0]
    return x.permute(0, 2, 3, 1).reshape(n, -1, values_per_prior)


class SSDHead(nn.Module):
    """SSD prediction convolutions (SSD paper, section 2.1: "3x3 x p small kernel" per feature map).

    Args:
        in_channels: channels of each feature map.
        priors_per_cell: priors on each cell of each map (from the prior spec).
        num_classes: classes including background (index 0).
        kernel_size: 3 as in SSD.
        depthwise: predict with a 3x3 depthwise conv + ReLU + 1x1 conv per output (the separable heads of fast
            face detectors) instead of a full 3x3 conv.
        num_landmarks: points regressed per prior (5 for faces, as RetinaFace's landmark head; 0: none).
        landmark_layers: separable blocks (3x3 depthwise, 1x1, each with BatchNorm and ReLU) of the landmark
            branch's own before its predictor, per map: a landmark head learnt on a trained detector's frozen maps
            gets features of its own for the points while the boxes stay exactly as they were.

    Shapes: ``[(N, C_k, H_k, W_k)] -> loc (N, P, 4), conf (N, P, num_classes)`` with ``P = sum H_k W_k A_k``, and
    ``landm (N, P, 2 * num_landmarks)`` third when ``num_landmarks`` > 0 (offsets as
    :func:`singleshot.boxes.encode_landmarks`).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        priors_per_cell: Sequence[int],
        num_classes: int,
        kernel_size: int = 3,
        depthwise: bool = False,
        num_landmarks: int = 0,
        landmark_layers: int = 0,
    ) -> None:
        super().__init__()
        if len(in_channels) != len(priors_per_cell):
            raise ValueError(f"{len(in_channels)} feature maps but {len(priors_per_cell)} prior levels")
        pad = kernel_size // 2
        self.num_classes = num_classes

        def predictor(c: int, out: int) -> nn.Module:
            if not depthwise:
                return nn.Conv2d(c, out, kernel_size, padding=pad)
            return nn.Sequential(
                nn.Conv2d(c, c, kernel_size, padding=pad, groups=c), nn.ReLU(inplace=True), nn.Conv2d(c, out, 1)
            )

        self.loc = nn.ModuleList(predictor(c, a * 4) for c, a in zip(in_channels, priors_per_cell))
        self.conf = nn.ModuleList(predictor(c, a * num_classes) for c, a in zip(in_channels, priors_per_cell))
        self.num_landmarks = int(num_landmarks)
        if landmark_layers < 0 or (landmark_layers and not num_landmarks):
            raise ValueError(f"landmark_layers {landmark_layers} needs num_landmarks > 0 and a count >= 0")

        def landmark_branch(c: int, a: int) -> nn.Module:
            out = predictor(c, a * 2 * num_landmarks)
            if not landmark_layers:
                return out  # the plain predictor (checkpoints from before the option load unchanged)
            return nn.Sequential(*(dw_separable(c, c, kernel=kernel_size) for _ in range(landmark_layers)), out)

        self.landm = (
            nn.ModuleList(landmark_branch(c, a) for c, a in zip(in_channels, priors_per_cell))
            if num_landmarks else None
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, features: Sequence[Tensor]) -> tuple[Tensor, ...]:
        loc = torch.cat([_flatten(layer(f), 4) for layer, f in zip(self.loc, features)], dim=1)
        conf = torch.cat([_flatten(layer(f), self.num_classes) for layer, f in zip(self.conf, features)], dim=1)
        if self.landm is None:
            return loc, conf
        width = 2 * self.num_landmarks
        landm = torch.cat([_flatten(layer(f), width) for layer, f in zip(self.landm, features)], dim=1)
        return loc, conf, landm
