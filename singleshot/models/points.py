"""``FacePointNet``: five face points regressed from a square crop around a detected face (a second stage).

A detector's per-prior landmark outputs must place the points from features shared with the box and class
heads, at one of a few strides; a face's points then follow the prior more than the face (a mean face in the box).
A crop network sees the face alone at a fixed size, whatever its size in the photo, and spends all of its
capacity on the points, as the cascades of MTCNN (Zhang et al. 2016, O-Net) and of Sun et al. 2013 do. It is small
enough to cost little beside the detector: about 0.2 M parameters and 7 MFLOPs per face at 64 px.
"""

from __future__ import annotations

from torch import Tensor, nn

from singleshot.models.backbones.slim import dw_separable


class FacePointNet(nn.Module):
    """Crop ``(N, 3, S, S)`` (normalised RGB) -> ``(N, 2P)`` point coordinates ``x1, y1, ..., xP, yP`` in crop pixels
    divided by ``S`` (raw outputs: mapping back to the photo is the caller's).

    A stride-2 stem and six MobileNet units (strides 2, 1, 2, 1, 2 after the stem: ``S / 16`` at the end), then one
    linear layer over the whole ``S/16 x S/16`` map, so each output sees where features are, not only what
    (a global pooling would discard the positions the points are).

    Args:
        width: channel multiplier of the 16-32-64-128-256 base widths.
        input_size: crop side ``S``, a multiple of 16.
        num_points: ``P``.
    """

    def __init__(self, width: float = 1.0, input_size: int = 64, num_points: int = 5) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        c = [max(8, round(base * width)) for base in (16, 32, 64, 128, 256)]
        self.input_size = input_size
        self.num_points = num_points
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 3, 2, 1, bias=False), nn.BatchNorm2d(c[0]), nn.ReLU(inplace=True),  # S/2
            dw_separable(c[0], c[1]), dw_separable(c[1], c[2], 2),  # S/4
            dw_separable(c[2], c[2]), dw_separable(c[2], c[3], 2),  # S/8
            dw_separable(c[3], c[3]), dw_separable(c[3], c[4], 2),  # S/16
        )
        self.points = nn.Linear(c[4] * (input_size // 16) ** 2, 2 * num_points)

    def forward(self, crops: Tensor) -> Tensor:
        """``(N, 3, S, S)`` -> ``(N, 2P)``."""
        return self.points(self.features(crops).flatten(1))
