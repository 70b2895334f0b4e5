"""Small data structures shared across the package."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Detections:
    """Detections of one image.

    Attributes:
        boxes_xyxy: ``(K, 4)`` float boxes in input-image pixels.
        scores: ``(K,)`` float confidence of each box, decreasing.
        labels: ``(K,)`` long class index of each box (>= 1; 0 is background and never reported).
    """

    boxes_xyxy: Tensor
    scores: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, device: torch.device | str = "cpu") -> Detections:
        """No detections."""
        return cls(
            boxes_xyxy=torch.zeros(0, 4, device=device),
            scores=torch.zeros(0, device=device),
            labels=torch.zeros(0, dtype=torch.long, device=device),
        )
