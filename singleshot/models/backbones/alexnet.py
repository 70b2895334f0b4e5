"""AlexNet backbone: the face-detector author's first SSD ("Smiling Bot") put SSD heads on AlexNet features.

Module names follow torchvision's ``alexnet`` (``features.N``) so ImageNet AlexNet weights load one to one. The
last max-pool is dropped (the SSD extras take over from conv5) and the pools use ceil mode so no border row is
lost. Two maps are returned: conv2 (stride 8, L2-normalised like SSD's conv4_3, because shallow activations are
much larger than deep ones) and conv5 (stride 16).
"""

from __future__ import annotations

from torch import Tensor, nn

from singleshot.models.backbones.base import Backbone
from singleshot.models.layers import L2Norm
from singleshot.registry import BACKBONES

#: Index in ``features`` of the ReLU after conv2 (torchvision layout).
_CONV2_RELU = 4


class AlexNetBase(Backbone):
    """AlexNet conv1-conv5. Shapes at 300 px: ``(N, 3, 300, 300) -> [(N, 192, 37, 37), (N, 256, 18, 18)]``."""

    name = "alexnet"
    out_channels = (192, 256)
    strides = (8, 16)

    def __init__(self, l2norm_scale: float | None = 20.0) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),  # conv1, stride 4
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),  # stride 8
            nn.Conv2d(64, 192, 5, padding=2),  # conv2
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),  # stride 16
            nn.Conv2d(192, 384, 3, padding=1),  # conv3
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),  # conv4
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),  # conv5
            nn.ReLU(inplace=True),
        )
        self.l2norm = L2Norm(192, l2norm_scale) if l2norm_scale is not None else nn.Identity()

    def forward(self, x: Tensor) -> list[Tensor]:
        conv2 = self.features[: _CONV2_RELU + 1](x)  # (N, 192, H/8, W/8)
        conv5 = self.features[_CONV2_RELU + 1 :](conv2)  # (N, 256, H/16, W/16)
        return [self.l2norm(conv2), conv5]


@BACKBONES.register("alexnet")
def alexnet(l2norm_scale: float | None = 20.0) -> AlexNetBase:
    """AlexNet conv2 and conv5 features."""
    return AlexNetBase(l2norm_scale=l2norm_scale)
