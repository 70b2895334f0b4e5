"""Small layers shared by backbones, necks and heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learnable per-channel scale.

    ParseNet (Liu et al., 2015), used by SSD on conv4_3 "since it has a different feature scale compared to the
    other layers" (SSD paper, section 3.1); the scale starts at 20 and is learnt.

    Shape: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, channels: int, initial_scale: float = 20.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(initial_scale)))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, p=2.0, dim=1, eps=1e-10) * self.weight[None, :, None, None]
