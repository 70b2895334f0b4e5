"""MobileNetV2 backbone (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks").

Module names follow torchvision's ``mobilenet_v2`` exactly, so a torchvision-layout ImageNet state dict (such as
``mobilenet_v2-b0353104.pth``, see docs/pretrained.md) maps onto it one to one once the ``classifier.*`` keys are
dropped::

    features.0            stem: Conv 3x3 s2 (features.0.0) + BN (features.0.1) + ReLU6       stride 2
    features.1            inverted residual, t=1 (no expansion): conv.0 dw, conv.1 pw, conv.2 BN
    features.2 ... 17     inverted residuals: conv.0 expansion (ConvBNReLU6), conv.1 depthwise (ConvBNReLU6),
                          conv.2 linear projection 1x1, conv.3 BN
    features.18           last 1x1 conv 320 -> 1280 + BN + ReLU6                               stride 32

Which map each stride gives (width 1.0; the paper's Table 2 with torchvision's indices):

    stride  last block (``tap="block"``)        expansion of the next stage's first block (``expansion_taps``)
    2       features.1   16 ch                 features.2.conv.0   96 ch
    4       features.3   24 ch                 features.4.conv.0  144 ch
    8       features.6   32 ch                 features.7.conv.0  192 ch
    16      features.13  96 ch                 features.14.conv.0 576 ch   <- SSDLite's first map (paper, 6.2)
    32      features.18 1280 ch (or features.17, 320 ch, with ``last_conv=False``; no expansion tap at stride 32)

Stride 32 includes ``features.18`` by default: SSDLite attaches its second and later layers "on top of the last
layer (with output stride of 32)" (MobileNetV2 paper, section 6.2), which is the 1280-channel 1x1 conv, and keeping
it lets the whole ImageNet feature extractor load. Modules deeper than the deepest requested map are not built.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from singleshot.models.backbones.base import Backbone
from singleshot.registry import BACKBONES

#: The paper's Table 2 body (after the 32-channel stem): expansion t, output channels c, repeats n, first stride s.
MOBILENET_V2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never more than 10% below ``value``.

    The TensorFlow MobileNet rule (torchvision's ``_make_divisible``), so width multipliers give the same channel
    counts as the reference models: ``make_divisible(32 * 0.35) == 16`` (8 would lose more than 10%).
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias) + BatchNorm + ReLU6, as torchvision's ``Conv2dNormActivation`` (keys ``.0``, ``.1``)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            # "ReLU6 ... because of its robustness when used with low-precision computation" (paper, section 4).
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Inverted residual with linear bottleneck (paper, section 3.3 and Table 1).

    1x1 expansion to ``t * cin`` (ReLU6) -> 3x3 depthwise with ``stride`` (ReLU6) -> 1x1 linear projection to
    ``cout`` (no activation: "linear bottlenecks", section 3.2), plus the identity shortcut when the shapes allow
    (stride 1 and ``cin == cout``). Shape: ``(N, cin, H, W) -> (N, cout, H / stride, W / stride)``.
    """

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual stride must be 1 or 2, got {stride}")
        hidden = round(cin * expand_ratio)
        self.stride = stride
        self.expand_ratio = expand_ratio
        self.hidden_channels = hidden
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def expand(self, x: Tensor) -> Tensor:
        """The expansion layer's output ``(N, t * cin, H, W)`` (ReLU6 applied), at the block's input resolution."""
        if self.expand_ratio == 1:
            raise ValueError("a block with expansion ratio 1 has no expansion layer")
        return self.conv[0](x)

    def forward_from_expansion(self, x: Tensor, expanded: Tensor) -> Tensor:
        """Finish the block from ``expanded = self.expand(x)``: same result as ``forward(x)``, one pass."""
        y = self.conv[1:](expanded)
        return x + y if self.use_residual else y

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return x + y if self.use_residual else y


def _build_features(width: float) -> tuple[list[nn.Module], list[int]]:
    """torchvision's ``features`` modules for ``width`` and the cumulative stride after each of them."""
    cin = make_divisible(32 * width)
    # Width multipliers below one spare "the very last convolutional layer" (paper, section 6.1), as torchvision.
    last = make_divisible(1280 * max(1.0, width))
    modules: list[nn.Module] = [ConvBNReLU6(3, cin, stride=2)]
    strides = [2]
    for t, c, n, s in MOBILENET_V2_SETTING:
        cout = make_divisible(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            modules.append(InvertedResidual(cin, cout, stride, t))
            strides.append(strides[-1] * stride)
            cin = cout
    modules.append(ConvBNReLU6(cin, last, kernel=1))
    strides.append(strides[-1])
    return modules, strides


def _out_channels(module: nn.Module) -> int:
    if isinstance(module, InvertedResidual):
        return module.conv[-1].num_features
    return module[1].num_features  # ConvBNReLU6: its BatchNorm


class MobileNetV2Backbone(Backbone):
    """MobileNetV2 feature extractor with outputs chosen by stride.

    Args:
        width: width multiplier (paper, section 4); channels rounded with :func:`make_divisible` as torchvision.
        out_strides: strides of the returned maps, increasing, each in ``(2, 4, 8, 16, 32)``.
        expansion_taps: take each map below stride 32 from the expansion layer of the first block of the next
            stage (ReLU6 applied, 6x wider than the bottleneck) instead of the last block's linear bottleneck, as
            SSDLite does for its stride-16 map ("the first layer of SSDLite is attached to the expansion of layer
            15", paper section 6.2). The bottlenecks are thin (16-96 channels) and linear: fine as a residual
            stream, poor as the only input of a prediction head.
        last_conv: end the stride-32 map with ``features.18`` (1x1 conv to 1280 channels, as SSDLite) rather than
            with ``features.17`` (320 channels).

    Shapes (width 1.0, defaults): ``(N, 3, H, W) -> [(N, 32, H/8, W/8), (N, 96, H/16, W/16), (N, 1280, H/32,
    W/32)]``; with ``out_strides=(16, 32), expansion_taps=True`` (SSDLite): ``[(N, 576, H/16, W/16), (N, 1280,
    H/32, W/32)]``. Map sizes are ``ceil`` of the input size over the stride (padded stride-2 convolutions).
    """

    name = "mobilenet_v2"

    def __init__(
        self,
        width: float = 1.0,
        out_strides: Sequence[int] = (8, 16, 32),
        expansion_taps: bool = False,
        last_conv: bool = True,
    ) -> None:
        super().__init__()
        out_strides = tuple(int(s) for s in out_strides)
        if not out_strides or any(s not in (2, 4, 8, 16, 32) for s in out_strides):
            raise ValueError(f"MobileNetV2 out_strides must be taken from (2, 4, 8, 16, 32), got {out_strides}")
        if list(out_strides) != sorted(set(out_strides)):
            raise ValueError(f"MobileNetV2 out_strides must be strictly increasing, got {out_strides}")
        modules, strides = _build_features(width)
        if not last_conv:
            modules, strides = modules[:-1], strides[:-1]

        block_taps: dict[int, int] = {}  # module index -> stride, output taken after the whole module
        expansion_tapped: dict[int, int] = {}  # module index -> stride, output taken after its expansion layer
        for s in out_strides:
            if expansion_taps and s < 32:
                # The first block that leaves stride s (it downsamples to 2s): its expansion runs at stride s.
                index = next(i for i, st in enumerate(strides) if st == 2 * s)
                expansion_tapped[index] = s
            else:
                block_taps[max(i for i, st in enumerate(strides) if st == s)] = s
        deepest = max([*block_taps, *expansion_tapped])
        # Build nothing past the deepest map: its parameters would never get a gradient. Truncating the tail keeps
        # torchvision's indices for every module that is built.
        self.features = nn.Sequential(*modules[: deepest + 1])
        self._block_taps = block_taps
        self._expansion_taps = expansion_tapped
        self._last_index = deepest
        taps = sorted(
            [(s, _out_channels(modules[i])) for i, s in block_taps.items()]
            + [(s, modules[i].hidden_channels) for i, s in expansion_tapped.items()]
        )
        self.strides = tuple(s for s, _ in taps)
        self.out_channels = tuple(c for _, c in taps)
        self.width = width

        # torchvision's initialisation, so training from scratch starts as the reference does.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs: list[Tensor] = []
        for index, module in enumerate(self.features):
            if index in self._expansion_taps:
                expanded = module.expand(x)  # (N, t * cin, H / s, W / s), before the block's stride-2 depthwise
                outputs.append(expanded)
                if index == self._last_index:
                    break  # the rest of this block only feeds maps that were not asked for
                x = module.forward_from_expansion(x, expanded)
            else:
                x = module(x)
            if index in self._block_taps:
                outputs.append(x)
        return outputs


@BACKBONES.register("mobilenet_v2")
def mobilenet_v2(
    width: float = 1.0,
    out_strides: Sequence[int] = (8, 16, 32),
    expansion_taps: bool = False,
    last_conv: bool = True,
) -> MobileNetV2Backbone:
    """MobileNetV2 (torchvision key layout); maps at strides 8, 16, 32 by default."""
    return MobileNetV2Backbone(width=width, out_strides=out_strides, expansion_taps=expansion_taps, last_conv=last_conv)
