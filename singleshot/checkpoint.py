"""Checkpoints: one file holding the model and everything needed to rebuild it, resume training or run it.

A checkpoint is a dict saved with ``torch.save``, loadable with ``weights_only=True`` (tensors and plain Python
values only, no pickled classes): the model's registered name, options, class names, normalisation and input
size; its weights; and, for training checkpoints, optimiser, scheduler, progress and RNG states plus the config.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import torch

from singleshot.atomic import atomic_write
from singleshot.errors import SingleshotError
from singleshot.models import SingleShotDetector, create_model

FORMAT = "singleshot-checkpoint"
VERSION = 1


class CheckpointError(SingleshotError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def bundled_weights(name: str = "face_slim.pt") -> Path:
    """Path of a weights file shipped inside the package (``singleshot/weights/``): the face model by default,
    ``smile.pt`` the smile attribute."""
    return Path(str(resources.files("singleshot") / "weights" / name))


def model_metadata(
    model: SingleShotDetector,
    model_name: str,
    model_options: dict[str, Any],
    class_names: list[str],
    mean_rgb: tuple[float, float, float],
    std_rgb: tuple[float, float, float],
) -> dict[str, Any]:
    """The part of a checkpoint that describes the model (enough to rebuild and run it)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "model_name": model_name,
        "model_options": dict(model_options),
        "num_classes": model.num_classes,
        "class_names": list(class_names),
        "mean_rgb": [float(v) for v in mean_rgb],
        "std_rgb": [float(v) for v in std_rgb],
        "input_size": list(model.input_size),
    }


def checkpoint_vote_iou(checkpoint: dict[str, Any]) -> float | None:
    """The box-voting IoU a checkpoint recommends (``postprocess.vote_iou``; None: plain NMS)."""
    value = (checkpoint.get("postprocess") or {}).get("vote_iou")
    return float(value) if value is not None else None


def override_vote_iou(current: float | None, option: float | str | None) -> float | None:
    """The box voting an export recommends: ``current`` (the checkpoint's) unless ``option`` says otherwise.

    ``option``: None keeps ``current``, ``"off"`` is plain NMS, a number in (0, 1) that IoU.

    Raises:
        CheckpointError: ``option`` is a number outside (0, 1).
    """
    if option is None:
        return current
    if option == "off":
        return None
    if not 0.0 < float(option) < 1.0:
        raise CheckpointError(f"vote_iou must be between 0 and 1 or 'off', got {option!r}")
    return float(option)


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """Write ``checkpoint`` atomically: a kill mid-write leaves the previous file under ``path`` whole, and a full
    disk raises a one-line :class:`~singleshot.atomic.WriteError` with the previous file kept
    (:func:`singleshot.atomic.atomic_write`)."""
    path = Path(path)
    with atomic_write(path) as f:
        torch.save(checkpoint, f)
    return path


#: What every message about a file that is not a checkpoint says was expected.
EXPECTED = "expected a singleshot .pt checkpoint (written by singleshot train or export)"

#: The keys a detector checkpoint must hold, with their types (what :func:`build_model_from_checkpoint` reads).
_DETECTOR_KEYS = {"model_name": str, "num_classes": int, "class_names": list, "mean_rgb": list, "std_rgb": list,
                  "model": dict}


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; a one-line :class:`CheckpointError` otherwise.

    The error says what the file is when that can be told (truncated, not a torch file, a bare weights dictionary
    from another project, a pickled model) and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.suffix.lower() == ".onnx":
        raise CheckpointError(f"{path}: an ONNX file, not a checkpoint; {EXPECTED}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file; all mean "unusable"
        detail = f"{type(err).__name__}: {err}".splitlines()[0]
        if "Weights only load failed" in detail:  # a pickled object (a whole nn.Module), never run as code
            detail = "it holds pickled Python objects, e.g. a whole model saved with torch.save(model)"
        raise CheckpointError(f"{path}: not a readable checkpoint ({detail}); {EXPECTED}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a singleshot checkpoint ({_describe(checkpoint)}); {EXPECTED}")
    if not isinstance(checkpoint.get("version", 0), int) or checkpoint.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {checkpoint['version']!r} is newer than this singleshot")
    return checkpoint


def _describe(content: object) -> str:
    """What a foreign checkpoint holds, in a few words, so the user recognises it."""
    if not isinstance(content, dict):
        return f"it holds a {type(content).__name__}"
    if content and all(isinstance(v, torch.Tensor) for v in content.values()):
        return f"a bare weights dictionary of {len(content)} tensors, e.g. {next(iter(content))!r}"
    keys = ", ".join(repr(k) for k in list(content)[:4])
    return f"a dictionary with keys {keys}{', ...' if len(content) > 4 else ''} and no '{FORMAT}' marker"


def check_detector(checkpoint: dict[str, Any], source: str = "checkpoint") -> dict[str, Any]:
    """``checkpoint`` if it describes a detector (every key :func:`build_model_from_checkpoint` reads, of the right
    type); a one-line :class:`CheckpointError` naming what is missing otherwise. Cheap: no model is built."""
    kind = checkpoint.get("kind")
    if kind is not None and "model_name" not in checkpoint:
        raise CheckpointError(f"{source}: a{'n' if str(kind)[:1] in 'aeiou' else ''} {kind} checkpoint "
                              f"({checkpoint.get('name', '?')}), not a detector; expected a detector checkpoint")
    for key, kind_ in _DETECTOR_KEYS.items():
        if not isinstance(checkpoint.get(key), kind_):
            raise CheckpointError(f"{source}: the checkpoint lacks {key!r} (a {kind_.__name__}); damaged, or not a "
                                  f"detector checkpoint")
    if not all(isinstance(v, torch.Tensor) for v in checkpoint["model"].values()):
        raise CheckpointError(f"{source}: the checkpoint's 'model' holds values that are not tensors; damaged")
    return checkpoint


def build_model_from_checkpoint(checkpoint: dict[str, Any], source: str = "checkpoint") -> SingleShotDetector:
    """Rebuild the model a checkpoint describes and load its weights."""
    check_detector(checkpoint, source)
    try:
        model = create_model(
            checkpoint["model_name"], num_classes=checkpoint["num_classes"], **checkpoint.get("model_options", {})
        )
    except KeyError as err:
        raise CheckpointError(f"{source}: {err.args[0]}") from None
    except (TypeError, ValueError) as err:  # options the recipe does not take
        raise CheckpointError(f"{source}: model {checkpoint['model_name']!r} cannot be built ({err})") from None
    try:
        missing, unexpected = model.load_state_dict(checkpoint["model"], strict=False)
    except RuntimeError as err:  # tensors of the right names but other shapes
        first = next((ln.strip() for ln in str(err).splitlines() if "size mismatch" in ln), str(err).splitlines()[0])
        raise CheckpointError(f"{source}: weights do not fit model {checkpoint['model_name']!r} ({first})") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: weights do not fit model {checkpoint['model_name']!r} "
            f"(missing {len(missing)} keys, e.g. {missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})"
        )
    return model


def export_weights(source: str | Path, target: str | Path, vote_iou: float | str | None = None) -> Path:
    """Write a weights-only copy of a checkpoint (model, its description, config and progress; no optimiser).

    What ships inside the package and what :class:`singleshot.Detector` needs; a few times smaller than a
    training checkpoint. With a weight average (``train.ema_decay``) the copy holds the average (``model``, what
    the checkpoint was validated with) and drops the optimiser's own weights (``raw_model``), which only a resume
    needs. ``vote_iou``: the box voting the copy recommends (``postprocess.vote_iou``): None keeps the
    checkpoint's, ``"off"`` plain NMS, a number that IoU.
    """
    checkpoint = load_checkpoint(source)
    drop = ("optimizer", "scheduler", "rng", "raw_model", "ema_updates")
    keep = {k: v for k, v in checkpoint.items() if k not in drop}
    keep["model"] = {k: v.clone() for k, v in checkpoint["model"].items()}
    if vote_iou is not None:
        postprocess = dict(keep.get("postprocess") or {})
        postprocess.pop("vote_iou", None)
        value = override_vote_iou(checkpoint_vote_iou(checkpoint), vote_iou)
        if value is not None:
            postprocess["vote_iou"] = value
        keep["postprocess"] = postprocess
    return save_checkpoint(target, keep)
