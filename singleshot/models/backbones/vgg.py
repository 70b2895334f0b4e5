"""VGG16 base of SSD300 (SSD paper, section 3; the PyTorch SSD tutorial's ``VGGBase``).

Module names follow torchvision's ``vgg16`` (``features.N``) so an ImageNet VGG16 state dict maps onto it one to
one; ``conv6`` / ``conv7`` replace the fully connected fc6 / fc7.
"""

from __future__ import annotations

from torch import Tensor, nn

from singleshot.models.backbones.base import Backbone
from singleshot.models.layers import L2Norm
from singleshot.registry import BACKBONES

#: Index in ``features`` of the ReLU after conv4_3: the 38x38 map SSD300 predicts from (torchvision layout).
_CONV4_3_RELU = 22


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for stage, (out_ch, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        for _ in range(convs):
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True)]
            in_ch = out_ch
        if stage == 2:
            # ceil mode so a 75x75 map pools to 38x38 and conv4_3 is 38x38 at 300 px (SSD tutorial).
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        elif stage == 4:
            # pool5 becomes 3x3 stride 1 so conv6/conv7 keep conv5's 19x19 resolution (SSD paper, section 3).
            layers.append(nn.MaxPool2d(3, 1, padding=1))
        else:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class VGG16Base(Backbone):
    """VGG16 up to conv7, returning conv4_3 (L2-normalised, stride 8) and conv7 (stride 16).

    Shapes at 300 px: ``(N, 3, 300, 300) -> [(N, 512, 38, 38), (N, 1024, 19, 19)]``.

    Args:
        l2norm_scale: initial scale of the L2Norm on conv4_3 (20 in SSD); None disables it.
    """

    name = "vgg16"
    out_channels = (512, 1024)
    strides = (8, 16)

    def __init__(self, l2norm_scale: float | None = 20.0) -> None:
        super().__init__()
        self.features = _vgg16_features()
        # fc6 -> atrous conv6 (3x3, dilation 6) and fc7 -> 1x1 conv7 (SSD paper, section 3, "atrous algorithm").
        self.conv6 = nn.Conv2d(512, 1024, 3, padding=6, dilation=6)
        self.conv7 = nn.Conv2d(1024, 1024, 1)
        self.relu = nn.ReLU(inplace=True)
        self.l2norm = L2Norm(512, l2norm_scale) if l2norm_scale is not None else nn.Identity()

    @staticmethod
    def adapt_classifier_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
        """torchvision VGG16 keys -> these modules: ``features.*`` as is, fc6/fc7 decimated into conv6/conv7."""
        from singleshot.models.pretrained import vgg16_fc_to_ssd

        return vgg16_fc_to_ssd(state)

    def forward(self, x: Tensor) -> list[Tensor]:
        conv4_3 = self.features[: _CONV4_3_RELU + 1](x)  # (N, 512, 38, 38)
        x = self.features[_CONV4_3_RELU + 1 :](conv4_3)  # (N, 512, 19, 19) after pool5
        x = self.relu(self.conv6(x))  # (N, 1024, 19, 19)
        conv7 = self.relu(self.conv7(x))  # (N, 1024, 19, 19)
        return [self.l2norm(conv4_3), conv7]


@BACKBONES.register("vgg16")
def vgg16(l2norm_scale: float | None = 20.0) -> VGG16Base:
    """SSD's VGG16 base (conv4_3 and conv7)."""
    return VGG16Base(l2norm_scale=l2norm_scale)


#: Indices in ``features`` (torchvision layout) of the ReLUs after conv3_3, conv4_3 and conv5_3.
_CONV3_3_RELU, _CONV5_3_RELU = 15, 29


class VGG16DSFDBase(Backbone):
    """VGG16 as S3FD / DSFD use it: conv3_3, conv4_3, conv5_3 (each L2-normalised: scales 10, 8, 5) and fc7.

    pool5 stays 2x2 stride 2 (so fc7 has stride 32), fc6 becomes a 3x3 conv with dilation 3 and fc7 a 1x1 conv,
    both 1024 wide. Shapes at 640 px: ``[(N, 256, 160, 160), (N, 512, 80, 80), (N, 512, 40, 40), (N, 1024, 20, 20)]``.
    ``features.*`` follows torchvision's layout (ImageNet VGG16 files load into it; fc6/fc7 are not decimated
    here because the dilation differs from SSD's).
    """

    name = "vgg16_dsfd"
    out_channels = (256, 512, 512, 1024)
    strides = (4, 8, 16, 32)

    def __init__(self, l2norm_scales: tuple[float, float, float] = (10.0, 8.0, 5.0)) -> None:
        super().__init__()
        features = _vgg16_features()
        features[30] = nn.MaxPool2d(2, 2)  # pool5 back to 2x2/2 (SSD's 3x3/1 keeps stride 16)
        self.features = features
        self.fc6 = nn.Conv2d(512, 1024, 3, padding=3, dilation=3)
        self.fc7 = nn.Conv2d(1024, 1024, 1)
        self.relu = nn.ReLU(inplace=True)
        self.l2norms = nn.ModuleList(L2Norm(c, s) for c, s in zip((256, 512, 512), l2norm_scales))

    def forward(self, x: Tensor) -> list[Tensor]:
        conv3_3 = self.features[: _CONV3_3_RELU + 1](x)
        conv4_3 = self.features[_CONV3_3_RELU + 1 : _CONV4_3_RELU + 1](conv3_3)
        conv5_3 = self.features[_CONV4_3_RELU + 1 : _CONV5_3_RELU + 1](conv4_3)
        x = self.features[_CONV5_3_RELU + 1 :](conv5_3)  # pool5
        fc7 = self.relu(self.fc7(self.relu(self.fc6(x))))
        return [self.l2norms[0](conv3_3), self.l2norms[1](conv4_3), self.l2norms[2](conv5_3), fc7]


@BACKBONES.register("vgg16_dsfd")
def vgg16_dsfd(l2norm_scales: tuple[float, float, float] = (10.0, 8.0, 5.0)) -> VGG16DSFDBase:
    """DSFD's VGG16 (conv3_3, conv4_3, conv5_3, fc7)."""
    return VGG16DSFDBase(l2norm_scales)
