"""SSD auxiliary convolutions (conv8_2 ... conv11_2): extra, coarser feature maps after the backbone's last one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class ExtraBlock:
    """One auxiliary block: 1x1 conv to ``mid_channels``, then 3x3 conv to ``out_channels``.

    ``stride=2, padding=1`` halves the map (conv8_2, conv9_2); ``stride=1, padding=0`` trims 2 cells (conv10_2,
    conv11_2: 5 -> 3 -> 1 at 300 px). ``depthwise=True`` makes the 3x3 a depthwise + pointwise pair (the
    separable extras of fast face detectors such as Ultra-Light's), about 9x cheaper.
    """

    mid_channels: int
    out_channels: int
    stride: int = 2
    padding: int = 1
    depthwise: bool = False


#: SSD300's auxiliary convolutions (the tutorial's ``AuxiliaryConvolutions``).
SSD300_EXTRAS: tuple[ExtraBlock, ...] = (
    ExtraBlock(256, 512, 2, 1),  # conv8_2: 19 -> 10
    ExtraBlock(128, 256, 2, 1),  # conv9_2: 10 -> 5
    ExtraBlock(128, 256, 1, 0),  # conv10_2: 5 -> 3
    ExtraBlock(128, 256, 1, 0),  # conv11_2: 3 -> 1
)


class SSDExtras(nn.Module):
    """Neck that passes the backbone's maps through and appends the auxiliary maps computed from the last one.

    Args:
        in_channels: channels of each backbone map.
        blocks: the auxiliary blocks, in order.

    Shapes: ``[maps from the backbone] -> [same maps] + [one (N, block.out_channels, h, w) map per block]``.
    """

    def __init__(self, in_channels: Sequence[int], blocks: Sequence[ExtraBlock]) -> None:
        super().__init__()
        layers = []
        ch = in_channels[-1]
        for block in blocks:
            mid, out = block.mid_channels, block.out_channels
            if block.depthwise:
                spatial = [
                    nn.Conv2d(mid, mid, 3, stride=block.stride, padding=block.padding, groups=mid),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(mid, out, 1),
                ]
            else:
                spatial = [nn.Conv2d(mid, out, 3, stride=block.stride, padding=block.padding)]
            layers.append(nn.Sequential(nn.Conv2d(ch, mid, 1), nn.ReLU(inplace=True), *spatial, nn.ReLU(inplace=True)))
            ch = out
        self.blocks = nn.ModuleList(layers)
        self.out_channels = tuple(in_channels) + tuple(b.out_channels for b in blocks)
        for m in self.modules():  # Xavier init with zero bias, as the SSD tutorial
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        out = list(features)
        x = features[-1]
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out
