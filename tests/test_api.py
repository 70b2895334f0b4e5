"""The Python twins of the CLI verbs give what the verbs print."""

import json
from pathlib import Path

import pytest

import singleshot
from singleshot.checkpoint import bundled_weights
from singleshot.cli import main
from singleshot.errors import SingleshotError

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_evaluate_matches_the_eval_verb(capsys):
    result = singleshot.evaluate(f"csv:{FIXTURES / 'csv'}", weights=bundled_weights(), progress=False, min_size=0)
    assert main(["eval", "--data", f"csv:{FIXTURES / 'csv'}", "--weights", str(bundled_weights()),
                 "--eval-option", "min_size=0", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["metrics"]["mAP"] == pytest.approx(result.metrics["mAP"], abs=1e-9)
    with pytest.raises(SingleshotError, match="either"):
        singleshot.evaluate(f"csv:{FIXTURES / 'csv'}")


def test_export_returns_the_check(tmp_path):
    pytest.importorskip("onnxruntime")
    report = singleshot.export(bundled_weights(), tmp_path / "face.onnx", frame_hw=(96, 128))
    assert report.ok and report.input_hw == (96, 128) and report.path.is_file()
    assert singleshot.export(bundled_weights(), tmp_path / "w.pt").path.is_file()
    with pytest.raises(SingleshotError, match=".pt .*or .onnx"):
        singleshot.export(bundled_weights(), tmp_path / "face.tflite")


def test_train_runs_a_config(tmp_path):
    state = singleshot.train(None, [
        "model.options={width: 0.25}", f"data.train=[{{spec: 'csv:{FIXTURES / 'csv'}'}}]", "data.input_size=[64, 64]",
        f"data.cache_dir={tmp_path / 'cache'}", "train.epochs=1", "train.batch_size=2", "train.threads=1",
    ], out=tmp_path / "run", progress=False)
    assert state.iteration > 0 and (tmp_path / "run" / "last.pt").is_file()
