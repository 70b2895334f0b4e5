"""Hostile weights: every corrupt or foreign .pt and .onnx file gets one line naming the file and what was expected.

Each case runs ``singleshot detect --weights FILE`` as a user would; the same checks serve ``eval``, ``export``,
``train --resume`` and ``serve``, which load weights through the same two functions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from singleshot.checkpoint import CheckpointError, bundled_weights, load_checkpoint, model_metadata, save_checkpoint
from singleshot.cli import main
from singleshot.models import create_model

IMAGE = Path(__file__).resolve().parent / "fixtures" / "csv" / "images" / "a.jpg"


def _classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Every hostile file, by case name."""
    from singleshot.deploy.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    model = create_model("face_slim", width=0.25)
    meta = model_metadata(model, "face_slim", {"width": 0.25}, ["background", "face"], (120, 115, 100), (60, 60, 60))
    good = save_checkpoint(root / "good.pt", {**meta, "model": model.state_dict()})
    graph = export_onnx(model, root / "good.onnx", meta["class_names"], meta["mean_rgb"], meta["std_rgb"],
                        input_size=(64, 64), dynamic=True)
    out: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        out[name] = root / name
        out[name].write_bytes(data)

    write("truncated.pt", good.read_bytes()[: good.stat().st_size // 2])
    write("random.pt", bytes(range(256)) * 40)
    write("empty.pt", b"")
    write("onnx_renamed.pt", graph.read_bytes())
    wider = create_model("face_slim", width=0.5)
    save_checkpoint(root / "other_shapes.pt", {**meta, "model": wider.state_dict()})
    save_checkpoint(root / "no_weights.pt", {**meta})
    torch.save(_classifier().state_dict(), root / "bare_state_dict.pt")
    torch.save({"epoch": 3, "state_dict": _classifier().state_dict(), "optimizer": {}}, root / "other_project.pt")
    torch.save(_classifier(), root / "pickled_module.pt")
    for name in ("other_shapes.pt", "no_weights.pt", "bare_state_dict.pt", "other_project.pt", "pickled_module.pt"):
        out[name] = root / name
    out["attribute.pt"] = bundled_weights("smile.pt")

    write("truncated.onnx", graph.read_bytes()[: graph.stat().st_size // 2])
    write("random.onnx", bytes(range(256)) * 40)
    write("empty.onnx", b"")
    write("checkpoint_renamed.onnx", good.read_bytes())
    torch.onnx.export(_classifier(), (torch.zeros(1, 3, 32, 32),), str(root / "classifier.onnx"),
                      input_names=["input"], output_names=["logits"], dynamo=False)
    out["classifier.onnx"] = root / "classifier.onnx"
    return out


CASES = {  # name -> what the line must say besides the file name
    "truncated.pt": "expected a singleshot .pt checkpoint",
    "random.pt": "expected a singleshot .pt checkpoint",
    "empty.pt": "expected a singleshot .pt checkpoint",
    "onnx_renamed.pt": "expected a singleshot .pt checkpoint",
    "other_shapes.pt": "weights do not fit model 'face_slim' (size mismatch",
    "no_weights.pt": "lacks 'model'",
    "bare_state_dict.pt": "a bare weights dictionary of 4 tensors",
    "other_project.pt": "keys 'epoch', 'state_dict', 'optimizer'",
    "pickled_module.pt": "pickled Python objects",
    "attribute.pt": "an attribute checkpoint (smile), not a detector",
    "truncated.onnx": "expected a singleshot detector export",
    "random.onnx": "expected a singleshot detector export",
    "empty.onnx": "expected a singleshot detector export",
    "checkpoint_renamed.onnx": "expected a singleshot detector export",
    "classifier.onnx": "inputs ['input'] and outputs ['logits']; expected a singleshot detector export",
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_weights_get_one_line(files, name, capsys):
    assert main(["detect", str(IMAGE), "--weights", str(files[name])]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert str(files[name]) in err and CASES[name] in err, err


def test_a_good_checkpoint_still_loads(files):
    assert load_checkpoint(files["truncated.pt"].with_name("good.pt"))["model_name"] == "face_slim"
    with pytest.raises(CheckpointError, match="truncated.pt: not a readable checkpoint"):
        load_checkpoint(files["truncated.pt"])
