"""Small layers shared by backbones, necks and heads."""

from __future__ import annotations

import itertools

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


class Uint8Input(nn.Module):
    """A network behind its own input normalisation, for export: ``(K, S, S, 3)`` uint8 RGB crops, as cut from a
    photo, -> ``net((x - mean) / std)`` on ``(K, 3, S, S)`` float32.

    Inside an ONNX graph the cast, layout change and normalisation run as a few fused passes; the same in numpy
    on a handful of small crops costs as much as the network itself (5 crops of 96 px: about 0.5 ms, against
    0.4 ms for the 96 px smile network on one thread).
    """

    def __init__(self, net: nn.Module, mean_rgb, std_rgb) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("inv_std", 1.0 / torch.tensor(std_rgb, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, crops: Tensor) -> Tensor:
        x = crops.permute(0, 3, 1, 2).float()
        return self.net((x - self.mean) * self.inv_std)


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution (inside an ``nn.Sequential``) into that convolution.

    For inference only (uses the running statistics): the BatchNorm becomes ``nn.Identity`` and the convolution
    gets ``w * gamma / sqrt(var + eps)`` and a matching bias, which gives the same outputs (up to float
    rounding) and removes a third of the time of a small depthwise network on a CPU. Modifies ``model`` in place
    and returns it; call on a copy if the original must keep training.
    """
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in itertools.pairwise(names):
            conv, bn = module._modules[first], module._modules[second]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)) or not bn.track_running_stats:
                continue
            with torch.no_grad():
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                fused = nn.Conv2d(
                    conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                )
                fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
            module._modules[first] = fused
            module._modules[second] = nn.Identity()
    return model
