"""What a training checkpoint needs besides the weights: the progress and the random generators' states."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class TrainState:
    """Progress: ``epoch`` (0-based, the one in progress), batches done in it, global iteration, best AP."""

    epoch: int = 0
    epoch_iteration: int = 0
    iteration: int = 0
    best_ap: float = -1.0
    best_epoch: int = -1


def rng_states() -> dict[str, Any]:
    """The torch, numpy and Python global generators' states, as tensors and lists a checkpoint can hold."""
    state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [state[0], torch.from_numpy(state[1].astype(np.int64)), int(state[2]), int(state[3]), float(state[4])],
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore the generators from :func:`rng_states`'s output."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
