"""An exponential moving average of a model's weights, the copy that is validated, kept and shipped.

Small detectors trained with SGD move a lot from one epoch to the next (the face model's validation AP swung by
+-0.007 between epochs 10, 15 and 20 of one run); an average of the recent weights is smoother and usually at
least as good as the best single step (Polyak averaging; used by YOLOv5 and EfficientDet, and by
``tf.train.ExponentialMovingAverage``). Every floating-point tensor of the state dict is averaged, BatchNorm's
running statistics included; integer buffers (``num_batches_tracked``) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """``ema = d * ema + (1 - d) * model`` after every optimiser step.

    The decay ramps up as ``d = min(decay, (1 + n) / (10 + n))`` over the first updates ``n`` (as
    ``tf.train.ExponentialMovingAverage`` with ``num_updates``), so the average is not dominated by the first,
    often random or pre-trained, weights in a short run.

    Args:
        model: the model being trained (its current weights start the average).
        decay: the long-run decay, e.g. 0.999 (an average over about the last 1,000 steps).
        updates: updates already made (to resume).
    """

    def __init__(self, model: nn.Module, decay: float, updates: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = updates

    def current_decay(self) -> float:
        """The decay the next update uses."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average."""
        d = self.current_decay()
        self.updates += 1
        own = self.module.state_dict()
        for name, value in model.state_dict().items():
            target = own[name]
            if target.dtype.is_floating_point:
                target.mul_(d).add_(value.detach(), alpha=1.0 - d)
            else:
                target.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights (a model state dict)."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore averaged weights (resume)."""
        self.module.load_state_dict(state)
