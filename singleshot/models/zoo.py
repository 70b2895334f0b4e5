"""Named model recipes. Each builds its parts and passes them to :class:`SingleShotDetector`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from singleshot.models.backbones import alexnet, slim, vgg
from singleshot.models.detector import SingleShotDetector
from singleshot.models.heads import SSDHead
from singleshot.models.necks import SSD300_EXTRAS, ExtraBlock, SSDExtras
from singleshot.priors import PriorLevel, PriorSpec, ssd300_prior_spec
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


#: Face priors in pixels per level (strides 8, 16, 32, 64): 10 to 384 px, square, as the fast face detectors
#: (Ultra-Light's [10, 16, 24] [32, 48] [64, 96] [128, 192, 256], plus 384 for close-up selfies).
FACE_PRIOR_SIZES: tuple[tuple[float, ...], ...] = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256, 384))


@MODELS.register("face_slim")
def face_slim(num_classes: int = 2, width: float = 1.0) -> SingleShotDetector:
    """The default face detector: slim depthwise-separable backbone, SSD heads on strides 8-64, faces 10-400 px.

    Input any size (priors are in pixels, so a 20 px face meets a 20 px prior at every resolution); trained on
    320x320 crops, run at a long side of 640.
    """
    backbone = slim.slim(width=width)
    top = backbone.out_channels[-1]
    neck = SSDExtras(backbone.out_channels, (ExtraBlock(top // 4, top, 2, 1, depthwise=True),))
    spec = PriorSpec(
        levels=tuple(PriorLevel(sizes=tuple(map(float, s)), stride=st) for s, st in zip(FACE_PRIOR_SIZES, (8, 16, 32, 64))),
        unit="pixels",
        clip=True,
    )
    head = SSDHead(neck.out_channels, spec.priors_per_cell, num_classes, depthwise=True)
    return SingleShotDetector(backbone, neck, head, spec, num_classes, input_size=(320, 320))


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
        description=doc[0] if doc else "",
    )
