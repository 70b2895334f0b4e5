"""Feature enhance module (FEM) of the dual-shot face detector (DSFD, Li et al., CVPR 2019, section 3.2).

For each original map ``of_i`` (shallow to deep), top-down:

1. 1x1 "normalisation" conv of the current map, ``n_i = relu(conv1x1(of_i))``;
2. the upper map, already combined, upsampled to ``of_i``'s size and multiplied element-wise:
   ``p_i = n_i * up(p_{i+1})`` (the deepest map is its own ``p``);
   (here followed by BatchNorm, to keep the chained products at unit scale; from scratch the module still stalls,
   because the products send large gradients into the backbone's first stage, docs/dsfd.md);
3. three branches of dilated 3x3 convs on ``p_i`` (one, two and three convs deep, as in the authors' code:
   ``cpm1``; ``cpm2 -> cpm3``; ``cpm2 -> cpm4 -> cpm5``), concatenated to the enhanced map ``ef_i``.

The second shot predicts from the enhanced maps; the first shot from the original ones (PAL, section 3.3).
``depthwise=True`` makes every 3x3 a depthwise + pointwise pair so the module fits a small CPU face model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _conv3x3(cin: int, cout: int, dilation: int, depthwise: bool) -> nn.Module:
    if not depthwise:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=dilation, dilation=dilation, groups=cin),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class FEMBranches(nn.Module):
    """The three dilated branches on one map: ``(N, C, H, W) -> (N, C, H, W)`` (channels C/2 + C/4 + C/4).

    Dilations 1 and 2 as in the authors' code (``cpm1``-``cpm5``): the branches see 3x3, 7x7 and 11x11 windows,
    so one enhanced cell mixes context at three scales (the paper's "different numbers of dilated convolutions").
    """

    def __init__(self, channels: int, depthwise: bool = False) -> None:
        super().__init__()
        half, quarter = channels // 2, channels // 4
        rest = channels - half - quarter
        self.branch1 = _conv3x3(channels, half, 1, depthwise)  # cpm1
        self.trunk = _conv3x3(channels, half, 2, depthwise)  # cpm2
        self.branch2 = _conv3x3(half, quarter, 1, depthwise)  # cpm3
        self.branch3 = nn.Sequential(_conv3x3(half, half, 2, depthwise), _conv3x3(half, rest, 1, depthwise))  # cpm4, cpm5
        self.out_channels = half + quarter + rest

    def forward(self, x: Tensor) -> Tensor:
        t = self.trunk(x)
        return torch.cat((self.branch1(x), self.branch2(t), self.branch3(t)), dim=1)


class FEMNeck(nn.Module):
    """The FEM over every original map (see the module docstring).

    Args:
        in_channels: channels of each original map, shallow to deep.
        channels: width of the normalised and enhanced maps (DSFD-VGG16: 256 in, 512 out after the branches;
            here in = out = ``channels``).
        depthwise: separable 3x3 convolutions.

    Shapes: ``[(N, C_k, H_k, W_k)] -> [(N, channels, H_k, W_k)]`` (same sizes, one enhanced map per original map).
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 256, depthwise: bool = False) -> None:
        super().__init__()
        self.normalise = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
            for c in in_channels
        )
        # BatchNorm after each product: the top-down chain multiplies up to len(maps) ReLU maps, whose scale
        # would otherwise drift with depth. It does not make the module train from scratch (AP ~0 with or without
        # it; the cause is the products' gradient into the backbone, measured in docs/dsfd.md)
        self.product_norm = nn.ModuleList(nn.BatchNorm2d(channels) for _ in in_channels)
        self.branches = nn.ModuleList(FEMBranches(channels, depthwise) for _ in in_channels)
        self.out_channels = tuple(b.out_channels for b in self.branches)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, maps: Sequence[Tensor]) -> list[Tensor]:
        combined: list[Tensor] = [None] * len(maps)  # type: ignore[list-item]
        upper = None
        for i in range(len(maps) - 1, -1, -1):  # top-down: the deepest map first
            n = self.normalise[i](maps[i])
            if upper is not None:
                n = self.product_norm[i](n * F.interpolate(upper, size=n.shape[-2:], mode="bilinear", align_corners=False))
            combined[i] = upper = n
        return [branch(p) for branch, p in zip(self.branches, combined)]
