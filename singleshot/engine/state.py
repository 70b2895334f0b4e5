"""What a training checkpoint needs besides the weights: the progress and the random generators' states; reading
such a checkpoint back to resume (checked whole before any data is read) and the config a resume runs with."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from singleshot.checkpoint import CheckpointError, check_detector, load_checkpoint
from singleshot.config import Config, ConfigError, apply_override, config_from_dict, load_config


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


# ------------------------------------------------------------------------------------------------------- resuming
#: Keys a training checkpoint holds besides the model's, with their types: checked before any data is read, so a
#: damaged or weights-only file is refused in a second, not after minutes of caching images.
_TRAINING_KEYS = {"optimizer": dict, "scheduler": dict, "train_state": dict, "rng": dict, "config": dict}

#: Settings of the data and model sections that may change on resume: where images are cached and how many
#: processes load them change no sample and no weight.
_FREE_ON_RESUME = {"data.cache_dir", "data.workers"}


def read_training_checkpoint(path: str | Path, config: Config | None = None) -> dict[str, Any]:
    """A checkpoint to resume from, checked whole (a detector's description and every training state), and, with
    ``config``, checked to train the same model on the same data (:func:`check_resume_config`).

    Raises:
        CheckpointError: unreadable, weights only, or a part missing.
        ConfigError: ``config`` changes the data or model section.
    """
    checkpoint = check_detector(load_checkpoint(path), str(path))
    if "optimizer" not in checkpoint:
        raise CheckpointError(f"{path}: holds model weights only, not a training state to resume (use last.pt)")
    for key, kind in _TRAINING_KEYS.items():
        if not isinstance(checkpoint.get(key), kind):
            raise CheckpointError(f"{path}: the training checkpoint lacks {key!r}; damaged, cannot resume")
    try:
        TrainState(**checkpoint["train_state"])
    except TypeError:
        raise CheckpointError(f"{path}: the training progress is not readable; damaged, cannot resume") from None
    if config is not None:
        check_resume_config(config, checkpoint["config"], str(path))
    return checkpoint


def check_resume_config(config: Config, saved: dict[str, Any], source: str) -> None:
    """Refuse a resume whose ``data`` or ``model`` section differs from the run's own (``saved``, the checkpoint's
    config): the weights and optimiser state belong to that model and data. The message lists the differences."""
    new = config.to_dict()
    try:
        old = config_from_dict(saved).to_dict()  # the saved config with defaults filled in, as ``new`` has them
    except ConfigError as err:
        raise CheckpointError(f"{source}: the run's config is not valid here ({err})") from None
    changed = [f"{key}: {a!r:.60} -> {b!r:.60}" for key, a, b in _differences(old, new)
               if key.split(".")[0] in ("data", "model") and ".".join(key.split(".")[:2]) not in _FREE_ON_RESUME]
    if changed:
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise ConfigError(f"{source}: resuming with another data or model section is refused ({shown}); "
                          f"start a new run, or resume without a config to continue with the run's own")


def resume_config(checkpoint_path: str | Path, config_path: str | Path | None = None,
                  overrides: Sequence[str] = ()) -> Config:
    """The config of ``train --resume CKPT [CONFIG] [--set K=V]``: the run's own (the checkpoint's, in its own
    folder) with the overrides applied, or ``CONFIG`` checked against it. The checkpoint is read and checked here,
    before any data."""
    checkpoint = read_training_checkpoint(checkpoint_path)
    if config_path is not None:
        config = load_config(config_path, overrides)
    else:
        values = copy.deepcopy(checkpoint["config"])
        values.setdefault("train", {})["out_dir"] = str(Path(checkpoint_path).parent)  # the run continues there
        for override in overrides:
            apply_override(values, override)
        config = config_from_dict(values)
    check_resume_config(config, checkpoint["config"], str(checkpoint_path))
    return config


def _differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old, new)`` for each leaf that differs between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new), key=str)
                for d in _differences(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))]
    return [] if _plain(old) == _plain(new) else [(prefix, old, new)]


def _plain(value: Any) -> Any:
    """Tuples and lists compare alike (YAML gives lists where the dataclasses hold tuples)."""
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value
