"""A slim depthwise-separable backbone for fast face detection on a CPU (the default face model's).

Shaped after the small face detectors that run in real time on a CPU (Ultra-Light-Fast-Generic-Face-Detector's
"slim", YuNet): a stride-2 stem, then 3x3 depthwise + 1x1 pointwise units (MobileNet, Howard et al. 2017), each
with BatchNorm and ReLU, widths 16-256. Three outputs at strides 8, 16 and 32: stride 8 is what reaches faces of
10-30 px (face-detectors.md: "a stride-8 level with 10-16 px anchors ... is what reaches them").
"""

from __future__ import annotations

from torch import Tensor, nn

from singleshot.models.backbones.base import Backbone
from singleshot.registry import BACKBONES


def conv_bn(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    """Full convolution + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def dw_separable(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    """3x3 (``kernel``) depthwise + BN + ReLU, then 1x1 pointwise + BN + ReLU (MobileNet v1 unit)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, kernel, stride, kernel // 2, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResidualSeparable(nn.Module):
    """``relu(x + BN(pw(relu(BN(dw(x))))))``: a depthwise-separable unit with an identity shortcut.

    Its last BatchNorm scale starts at zero, so a new unit is the identity on the non-negative (post-ReLU) maps it
    receives: added to a trained network, it leaves the network's function unchanged and fine-tuning grows it
    (the residual zero-init of Goyal et al. 2017, used here to add depth to a trained model).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*list(dw_separable(channels, channels))[:-1])
        nn.init.zeros_(self.body[-1].weight)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(x + self.body(x))


def _scaled(channels: int, width: float) -> int:
    return max(8, round(channels * width / 8) * 8)


class SlimBackbone(Backbone):
    """Depthwise-separable feature extractor with outputs at strides 8, 16 and 32.

    Args:
        width: channel multiplier (1.0: 64 / 128 / 256 output channels).
        extra_units: residual separable units appended to the stride-8, 16 and 32 stages (identity at
            initialisation: :class:`ResidualSeparable`), to deepen a trained model.

    Shapes: ``(N, 3, H, W) -> [(N, 64w, H/8, W/8), (N, 128w, H/16, W/16), (N, 256w, H/32, W/32)]``.
    """

    name = "slim"
    strides = (8, 16, 32)

    def __init__(self, width: float = 1.0, extra_units: tuple[int, int, int] = (0, 0, 0)) -> None:
        super().__init__()
        c = [_scaled(ch, width) for ch in (16, 32, 64, 128, 256)]
        self.out_channels = (c[2], c[3], c[4])
        # Reach stride 4 after two layers: a unit at stride 2 (as in Ultra-Light's slim) costs as much time as the
        # whole rest of the network at 640x480 on a CPU (measured: 18.7 vs 10.1 ms per image), for little gain.
        self.stage1 = nn.Sequential(  # stride 8
            conv_bn(3, c[0], 2),
            dw_separable(c[0], c[1], 2),
            dw_separable(c[1], c[1], 1),
            dw_separable(c[1], c[2], 2),
            dw_separable(c[2], c[2], 1),
            dw_separable(c[2], c[2], 1),
        )
        self.stage2 = nn.Sequential(  # stride 16
            dw_separable(c[2], c[3], 2),
            dw_separable(c[3], c[3], 1),
            dw_separable(c[3], c[3], 1),
        )
        self.stage3 = nn.Sequential(  # stride 32
            dw_separable(c[3], c[4], 2),
            dw_separable(c[4], c[4], 1),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if len(extra_units) != 3 or min(extra_units) < 0:
            raise ValueError(f"extra_units: three counts >= 0 (stride 8, 16, 32), got {extra_units}")
        # appended after the existing units, so a trained model's tensors keep their names
        for stage, channels, count in zip((self.stage1, self.stage2, self.stage3), self.out_channels, extra_units):
            for _ in range(count):
                stage.append(ResidualSeparable(channels))

    def forward(self, x: Tensor) -> list[Tensor]:
        s8 = self.stage1(x)
        s16 = self.stage2(s8)
        s32 = self.stage3(s16)
        return [s8, s16, s32]


@BACKBONES.register("slim")
def slim(width: float = 1.0, extra_units: tuple[int, int, int] = (0, 0, 0)) -> SlimBackbone:
    """The default face model's backbone."""
    return SlimBackbone(width=width, extra_units=tuple(extra_units))
