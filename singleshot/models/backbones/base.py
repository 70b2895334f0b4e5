"""What every backbone declares: its output channels and strides (as timm's ``feature_info``)."""

from __future__ import annotations

from torch import Tensor, nn


class Backbone(nn.Module):
    """A feature extractor returning several feature maps, shallow to deep.

    Subclasses set ``name`` (the family, e.g. ``"vgg16"``), ``out_channels`` and ``strides`` (one entry per returned map) and implement ``forward``:
    ``(N, 3, H, W) -> [(N, out_channels[k], ~H / strides[k], ~W / strides[k]) for each k]``.
    """

    name: str
    out_channels: tuple[int, ...]
    strides: tuple[int, ...]

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError
