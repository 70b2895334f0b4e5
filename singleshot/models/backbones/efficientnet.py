"""EfficientNet B0-B7 and EfficientNet-Lite (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for CNNs").

B0 is a stack of MBConv blocks (MobileNetV2's inverted residual with squeeze-and-excitation and swish; paper,
section 4 and Table 1); B1-B7 scale it by the compound coefficient (section 3.3): channels by ``width``, repeats
by ``depth``, input by ``resolution``. Channels are rounded to multiples of 8 by :func:`round_filters` and repeats
rounded up by :func:`round_repeats`, the reference implementation's rules.

Module names follow the ``efficientnet_pytorch`` key layout (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``,
``_bn0``, ``_depthwise_conv``, ``_bn1``, ``_se_reduce``, ``_se_expand``, ``_project_conv``, ``_bn2``,
``_conv_head``, ``_bn1``, ``_fc``), the layout of the ImageNet EfficientNet-Lite0 file of docs/pretrained.md, so a
state dict in that layout maps onto these modules one to one.

Two deliberate differences from that code: padding is symmetric (``k // 2``, as torchvision's EfficientNet) rather
than TensorFlow's "SAME", which pads stride-2 layers on the bottom/right only; the maps have the same sizes
(``ceil(H / stride)``), but weights ported from TensorFlow see a one-pixel shift at each stride-2 layer, which
fine-tuning absorbs. And drop-connect defaults to off in the backbones (0.2 in the classifier, paper section 5.2).

EfficientNet-Lite (TensorFlow's ``efficientnet/lite``) is B-series without squeeze-and-excitation, with ReLU6 instead
of swish (both for integer quantization), and with the stem (32), the head (1280) and the repeats of the first and
last stages left unscaled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from singleshot.models.backbones.base import Backbone
from singleshot.registry import BACKBONES


@dataclass(frozen=True)
class ScalingParams:
    """Compound-scaling coefficients of one variant (paper, section 3.3 and 4)."""

    width: float  # channel multiplier
    depth: float  # repeat multiplier
    resolution: int  # ImageNet input side, pixels
    dropout: float  # dropout before the classifier's fully connected layer


#: The paper's B0-B7 (the reference implementation's ``efficientnet_params``).
EFFICIENTNET_SCALING: dict[str, ScalingParams] = {
    "b0": ScalingParams(1.0, 1.0, 224, 0.2),
    "b1": ScalingParams(1.0, 1.1, 240, 0.2),
    "b2": ScalingParams(1.1, 1.2, 260, 0.3),
    "b3": ScalingParams(1.2, 1.4, 300, 0.3),
    "b4": ScalingParams(1.4, 1.8, 380, 0.4),
    "b5": ScalingParams(1.6, 2.2, 456, 0.4),
    "b6": ScalingParams(1.8, 2.6, 528, 0.5),
    "b7": ScalingParams(2.0, 3.1, 600, 0.5),
    # EfficientNet-Lite (TensorFlow's efficientnet_lite_builder): smaller resolutions for lite3 and lite4.
    "lite0": ScalingParams(1.0, 1.0, 224, 0.2),
    "lite1": ScalingParams(1.0, 1.1, 240, 0.2),
    "lite2": ScalingParams(1.1, 1.2, 260, 0.3),
    "lite3": ScalingParams(1.2, 1.4, 280, 0.3),
    "lite4": ScalingParams(1.4, 1.8, 300, 0.3),
}


@dataclass(frozen=True)
class StageArgs:
    """One stage of the B0 base network (paper, Table 1): ``repeats`` MBConv blocks, the first with ``stride``."""

    repeats: int
    kernel: int
    stride: int
    expand_ratio: int
    in_channels: int
    out_channels: int


#: EfficientNet-B0's seven MBConv stages (paper, Table 1; the reference's block strings
#: ``r1_k3_s11_e1_i32_o16_se0.25`` ... ``r1_k3_s11_e6_i192_o320_se0.25``). Stem conv 3x3 s2 to 32 channels before;
#: head conv 1x1 to 1280, pooling and a fully connected layer after.
B0_STAGES: tuple[StageArgs, ...] = (
    StageArgs(1, 3, 1, 1, 32, 16),  # MBConv1 k3x3, 112x112 at 224 (stride 2)
    StageArgs(2, 3, 2, 6, 16, 24),  # MBConv6 k3x3, 56x56 (stride 4)
    StageArgs(2, 5, 2, 6, 24, 40),  # MBConv6 k5x5, 28x28 (stride 8)
    StageArgs(3, 3, 2, 6, 40, 80),  # MBConv6 k3x3, 14x14 (stride 16)
    StageArgs(3, 5, 1, 6, 80, 112),  # MBConv6 k5x5, 14x14 (stride 16)
    StageArgs(4, 5, 2, 6, 112, 192),  # MBConv6 k5x5, 7x7 (stride 32)
    StageArgs(1, 3, 1, 6, 192, 320),  # MBConv6 k3x3, 7x7 (stride 32)
)

#: Squeeze-and-excitation ratio of the B-series, relative to the block's input channels (reference code).
SE_RATIO = 0.25

# TensorFlow's batch-norm decay 0.99 and epsilon 1e-3 (reference code); the epsilon matters for ported weights.
_BN_MOMENTUM = 0.01
_BN_EPS = 1e-3


def round_filters(filters: float, width: float, divisor: int = 8) -> int:
    """Channels after width scaling: ``filters * width`` rounded to a multiple of ``divisor``, at least ``divisor``,
    and never more than 10% below the scaled value (the reference's ``round_filters``).

    E.g. ``round_filters(32, 1.2) == 40`` (38.4 rounds to 40), ``round_filters(17, 0.7) == 16`` (11.9 would round
    down to 8, more than 10% below, so one divisor is added).
    """
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Blocks in a stage after depth scaling: ``ceil(repeats * depth)`` (the reference's ``round_repeats``)."""
    return math.ceil(depth * repeats)


def drop_connect(x: Tensor, rate: float, training: bool) -> Tensor:
    """Drop the residual branch of whole samples with probability ``rate`` (stochastic depth, Huang et al. 2016;
    the reference calls it drop connect), scaling the kept ones by ``1 / (1 - rate)``. Shape unchanged."""
    if not training or rate <= 0.0:
        return x
    keep = 1.0 - rate
    mask = torch.floor(keep + torch.rand((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device))
    return x / keep * mask


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=_BN_MOMENTUM, eps=_BN_EPS)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck with optional squeeze-and-excitation (paper, section 4; MnasNet's MBConv).

    1x1 expansion to ``expand_ratio * cin`` (skipped when the ratio is 1) -> k x k depthwise with ``stride`` ->
    squeeze-and-excitation (global pool, 1x1 to ``max(1, int(cin * se_ratio))``, activation, 1x1 back, sigmoid gate)
    -> 1x1 linear projection to ``cout``; identity shortcut (with drop connect) when stride is 1 and ``cin == cout``.

    Shape: ``(N, cin, H, W) -> (N, cout, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        expand_ratio: int,
        se_ratio: float | None,
        activation: type[nn.Module],
        drop_connect_rate: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.has_expansion = expand_ratio != 1
        self.has_se = se_ratio is not None and 0.0 < se_ratio <= 1.0
        self.use_residual = stride == 1 and cin == cout
        self.drop_connect_rate = drop_connect_rate
        # Registration order = execution order, and each conv is directly followed by its BatchNorm.
        if self.has_expansion:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        if self.has_se:
            squeezed = max(1, int(cin * se_ratio))
            self._se_reduce = nn.Conv2d(hidden, squeezed, 1)
            self._se_expand = nn.Conv2d(squeezed, hidden, 1)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self._act = activation()

    def forward(self, inputs: Tensor) -> Tensor:
        x = inputs
        if self.has_expansion:
            x = self._act(self._bn0(self._expand_conv(x)))  # (N, t * cin, H, W)
        x = self._act(self._bn1(self._depthwise_conv(x)))  # (N, t * cin, H / s, W / s)
        if self.has_se:
            s = F.adaptive_avg_pool2d(x, 1)  # (N, t * cin, 1, 1)
            s = self._se_expand(self._act(self._se_reduce(s)))
            x = torch.sigmoid(s) * x
        x = self._bn2(self._project_conv(x))  # linear bottleneck: no activation (MobileNetV2, section 3.2)
        if self.use_residual:
            x = drop_connect(x, self.drop_connect_rate, self.training) + inputs
        return x


@dataclass(frozen=True)
class _BlockPlan:
    stage: int
    cin: int
    cout: int
    kernel: int
    stride: int
    expand_ratio: int
    out_stride: int  # cumulative stride after the block


@dataclass(frozen=True)
class EfficientNetPlan:
    """The resolved layout of one variant: stem and head channels and every block, in ``_blocks`` order."""

    variant: str
    scaling: ScalingParams
    lite: bool
    stem_channels: int
    head_channels: int
    blocks: tuple[_BlockPlan, ...]

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Output channels of each of the seven stages."""
        return tuple(max(b.cout for b in self.blocks if b.stage == k) for k in range(len(B0_STAGES)))

    @property
    def stage_strides(self) -> tuple[int, ...]:
        """Cumulative stride at the end of each of the seven stages (B0: 2, 4, 8, 16, 16, 32, 32)."""
        return tuple([b.out_stride for b in self.blocks if b.stage == k][-1] for k in range(len(B0_STAGES)))

    def last_block_of_stage(self, stage: int) -> int:
        """Index in ``_blocks`` of the last block of ``stage``."""
        return max(i for i, b in enumerate(self.blocks) if b.stage == stage)


def efficientnet_plan(variant: str) -> EfficientNetPlan:
    """Resolve ``variant`` (``"b0"`` ... ``"b7"``, ``"lite0"`` ... ``"lite4"``) into channels and blocks."""
    if variant not in EFFICIENTNET_SCALING:
        raise ValueError(f"unknown EfficientNet variant {variant!r}; known: {', '.join(EFFICIENTNET_SCALING)}")
    scaling = EFFICIENTNET_SCALING[variant]
    lite = variant.startswith("lite")
    # Lite keeps the stem and head fixed: they are large relative to the small models and scaling them costs
    # latency on mobile accelerators for little accuracy (TensorFlow's efficientnet/lite README).
    stem = 32 if lite else round_filters(32, scaling.width)
    head = 1280 if lite else round_filters(1280, scaling.width)
    blocks: list[_BlockPlan] = []
    stride = 2  # after the stem
    last = len(B0_STAGES) - 1
    for k, st in enumerate(B0_STAGES):
        cin = stem if k == 0 else round_filters(st.in_channels, scaling.width)
        cout = round_filters(st.out_channels, scaling.width)
        repeats = st.repeats if lite and k in (0, last) else round_repeats(st.repeats, scaling.depth)
        for r in range(repeats):
            s = st.stride if r == 0 else 1
            stride *= s
            blocks.append(_BlockPlan(k, cin if r == 0 else cout, cout, st.kernel, s, st.expand_ratio, stride))
    return EfficientNetPlan(variant, scaling, lite, stem, head, tuple(blocks))


def _build_blocks(plan: EfficientNetPlan, drop_connect_rate: float, count: int | None = None) -> nn.ModuleList:
    activation = nn.ReLU6 if plan.lite else nn.SiLU  # swish = SiLU = x * sigmoid(x) (paper, section 5.2)
    se_ratio = None if plan.lite else SE_RATIO
    total = len(plan.blocks)
    blocks = nn.ModuleList()
    for i, b in enumerate(plan.blocks[:count]):
        # Drop rate grows linearly with depth, as the reference (rate * index / number of blocks).
        blocks.append(
            MBConvBlock(
                b.cin, b.cout, b.kernel, b.stride, b.expand_ratio, se_ratio, activation, drop_connect_rate * i / total
            )
        )
    return blocks


def _init_weights(module: nn.Module) -> None:
    # torchvision's EfficientNet initialisation (Kaiming fan-out for convs, 1/sqrt(fan-out) uniform for the fc).
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


class EfficientNet(nn.Module):
    """The full EfficientNet classifier (stem, MBConv blocks, head conv, pooling, dropout, fully connected).

    Exists so parameter counts can be checked against the paper's Table 2 and so ImageNet checkpoints in the
    ``efficientnet_pytorch`` layout load with ``strict=True``; detectors use :class:`EfficientNetBackbone`.

    Args:
        variant: ``"b0"`` ... ``"b7"`` or ``"lite0"`` ... ``"lite4"``.
        num_classes: outputs of ``_fc``.
        drop_connect_rate: stochastic-depth rate of the deepest block (paper, section 5.2: 0.2).

    Shape: ``(N, 3, H, W) -> (N, num_classes)`` logits.
    """

    def __init__(self, variant: str = "b0", num_classes: int = 1000, drop_connect_rate: float = 0.2) -> None:
        super().__init__()
        plan = efficientnet_plan(variant)
        self.plan = plan
        self._conv_stem = nn.Conv2d(3, plan.stem_channels, 3, 2, 1, bias=False)
        self._bn0 = _bn(plan.stem_channels)
        self._blocks = _build_blocks(plan, drop_connect_rate)
        self._conv_head = nn.Conv2d(plan.blocks[-1].cout, plan.head_channels, 1, bias=False)
        self._bn1 = _bn(plan.head_channels)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(plan.scaling.dropout)
        self._fc = nn.Linear(plan.head_channels, num_classes)
        self._act = nn.ReLU6() if plan.lite else nn.SiLU()
        _init_weights(self)

    def extract_features(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W) -> (N, head_channels, H / 32, W / 32)``: the head conv's activations."""
        x = self._act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return self._act(self._bn1(self._conv_head(x)))

    def forward(self, x: Tensor) -> Tensor:
        x = self._avg_pooling(self.extract_features(x)).flatten(1)  # (N, head_channels)
        return self._fc(self._dropout(x))


class EfficientNetBackbone(Backbone):
    """EfficientNet (B-series or Lite) feature extractor with outputs chosen by stride or by stage.

    Args:
        variant: ``"b0"`` ... ``"b7"`` or ``"lite0"`` ... ``"lite4"``.
        out_strides: return the last block of each of these strides (from 2, 4, 8, 16, 32); B0 stages end at
            strides 2, 4, 8, 16, 16, 32, 32, so stride 16 is stage 4 (112 channels at B0) and stride 32 is stage 6.
        out_stages: return the last block of each of these stages (0-6; overrides ``out_strides``), e.g.
            ``(1, 2, 4)`` for strides 4, 8, 16: the dual-shot face work moved to higher-resolution stages so that
            small faces land on a fine grid.
        include_head: pass the last map through the head conv (1x1 to 1280 x width channels, BN, activation) as
            the classifier does; needs the last map to be stage 6. Off by default: like EfficientDet's backbone
            (Tan et al. 2020), the stride-32 map is the last block's, 4x narrower and cheaper for the heads.
        drop_connect_rate: stochastic depth of the deepest block (0 = off; the classifier uses 0.2).

    Shapes (B0, defaults): ``(N, 3, H, W) -> [(N, 40, H/8, W/8), (N, 112, H/16, W/16), (N, 320, H/32, W/32)]``
    with ``ceil`` sizes. Blocks deeper than the last requested stage are not built.
    """

    def __init__(
        self,
        variant: str = "b0",
        out_strides: Sequence[int] = (8, 16, 32),
        out_stages: Sequence[int] | None = None,
        include_head: bool = False,
        drop_connect_rate: float = 0.0,
    ) -> None:
        super().__init__()
        plan = efficientnet_plan(variant)
        self.plan = plan
        self.name = f"efficientnet_{variant}"
        stage_strides = plan.stage_strides
        if out_stages is None:
            out_strides = tuple(int(s) for s in out_strides)
            if not out_strides or any(s not in stage_strides for s in out_strides):
                raise ValueError(f"EfficientNet out_strides must be taken from {sorted(set(stage_strides))}")
            # The last stage at each stride: the deepest features that grid has.
            out_stages = tuple(max(k for k, st in enumerate(stage_strides) if st == s) for s in out_strides)
        out_stages = tuple(int(k) for k in out_stages)
        if not out_stages or any(not 0 <= k < len(B0_STAGES) for k in out_stages):
            raise ValueError(f"EfficientNet out_stages must be taken from 0-{len(B0_STAGES) - 1}, got {out_stages}")
        if list(out_stages) != sorted(set(out_stages)) or len({stage_strides[k] for k in out_stages}) < len(out_stages):
            raise ValueError(f"EfficientNet out_stages must be increasing with distinct strides, got {out_stages}")
        if include_head and out_stages[-1] != len(B0_STAGES) - 1:
            raise ValueError("include_head needs the last stage (6) as the last output")

        taps = [plan.last_block_of_stage(k) for k in out_stages]
        self._conv_stem = nn.Conv2d(3, plan.stem_channels, 3, 2, 1, bias=False)
        self._bn0 = _bn(plan.stem_channels)
        self._blocks = _build_blocks(plan, drop_connect_rate, count=taps[-1] + 1)
        self.include_head = include_head
        if include_head:
            self._conv_head = nn.Conv2d(plan.blocks[-1].cout, plan.head_channels, 1, bias=False)
            self._bn1 = _bn(plan.head_channels)
        self._act = nn.ReLU6() if plan.lite else nn.SiLU()
        self._taps = tuple(taps)
        self.out_stages = out_stages
        channels = [plan.stage_channels[k] for k in out_stages]
        if include_head:
            channels[-1] = plan.head_channels
        self.out_channels = tuple(channels)
        self.strides = tuple(stage_strides[k] for k in out_stages)
        _init_weights(self)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self._act(self._bn0(self._conv_stem(x)))  # (N, stem, H/2, W/2)
        outputs: list[Tensor] = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in self._taps:
                outputs.append(x)
        if self.include_head:
            outputs[-1] = self._act(self._bn1(self._conv_head(outputs[-1])))  # (N, 1280 w, H/32, W/32)
        return outputs


def efficientnet_backbone(variant: str = "b0", out_strides: Sequence[int] = (8, 16, 32),
                          out_stages: Sequence[int] | None = None, include_head: bool = False,
                          drop_connect_rate: float = 0.0) -> EfficientNetBackbone:
    """Any EfficientNet variant as a backbone: ``efficientnet_backbone("b4")`` for B2-B7 and Lite1-4.

    Only B0, B1 and Lite0 are registered (the detectors' backbones, and Lite0 the one with offline ImageNet
    weights): every registered backbone runs in the shared backbone test, and B2-B7 would add tens of seconds of
    CPU to it for entries no recipe uses. :class:`EfficientNetBackbone` documents the arguments.
    """
    return EfficientNetBackbone(variant, out_strides, out_stages, include_head, drop_connect_rate)


_DEFAULT_STRIDES = (8, 16, 32)


def _register_variant(variant: str, summary: str):
    """Register ``efficientnet_<variant>``: the backbone's builder with the detectors' default strides."""

    def build(out_strides: Sequence[int] = _DEFAULT_STRIDES, out_stages: Sequence[int] | None = None,
              include_head: bool = False, drop_connect_rate: float = 0.0) -> EfficientNetBackbone:
        return EfficientNetBackbone(variant, out_strides, out_stages, include_head, drop_connect_rate)

    build.__name__ = build.__qualname__ = f"efficientnet_{variant}"
    build.__doc__ = f"{summary}; stages at strides 8, 16, 32 by default (:class:`EfficientNetBackbone`)."
    return BACKBONES.register(build.__name__)(build)


efficientnet_b0 = _register_variant("b0", "EfficientNet-B0 (5.3 M parameters as a classifier)")
efficientnet_b1 = _register_variant("b1", "EfficientNet-B1 (7.8 M as a classifier): B0 with 1.1x depth (23 blocks "
                                          "instead of 16)")
efficientnet_lite0 = _register_variant("lite0", "EfficientNet-Lite0 (4.65 M as a classifier): B0 without "
                                                "squeeze-excitation, ReLU6; the PyPI file's layout")
