"""Batch detection: the local engine and Ray's actor pool write the detections ``singleshot detect`` writes; Parquet
shards hold the same rows; an unreadable image is reported, not fatal; without Ray, the engine says how to get it."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from singleshot.batch import BatchError, detect_batch
from singleshot.checkpoint import bundled_weights
from singleshot.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Four photos with faces (in a sub-folder too) and one file that is not an image."""
    folder = tmp_path_factory.mktemp("photos")
    for path in sorted((FIXTURES / "face_mask" / "images").glob("*.jpg")):
        shutil.copy(path, folder / path.name)
    shutil.copy(ROOT / "assets" / "demo.jpg", folder / "demo.jpg")
    (folder / "more").mkdir()
    shutil.copy(ROOT / "assets" / "demo.jpg", folder / "more" / "demo_again.jpg")
    (folder / "more" / "broken.jpg").write_bytes((ROOT / "assets" / "demo.jpg").read_bytes()[:300])
    return folder


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The bundled face model as a dynamic ONNX file (what the Ray engine runs by default)."""
    from singleshot.deploy.export import export_model

    out = tmp_path_factory.mktemp("model") / "face.onnx"
    export_model(bundled_weights(), out, dynamic=True)
    return out


@pytest.fixture(scope="module")
def reference(photos, model, tmp_path_factory) -> Path:
    """``singleshot detect`` with the local engine, as a user runs it."""
    out = tmp_path_factory.mktemp("local")
    assert main(["detect", str(photos), "--weights", str(model), "--runtime", "ort", "--input-size", "320",
                 "--batch-size", "2", "--out", str(out)]) == 0
    return out / "detections.json"


def _options(model: Path) -> dict:
    return {"weights": model, "runtime": "ort", "input_size": 320, "batch_size": 2, "progress": False}


def test_local_engine_and_parquet_shards_hold_the_detections_of_detect(photos, model, reference, tmp_path):
    warnings = []
    report = detect_batch([photos], tmp_path / "json", **_options(model), warn=warnings.append)
    assert (tmp_path / "json" / "detections.json").read_text() == reference.read_text()
    assert report.images == 4 and report.detections > 0 and len(report.unreadable) == 1
    assert len(warnings) == 1 and "broken.jpg" in warnings[0] and warnings[0].endswith("; skipped")

    import pyarrow.parquet as pq

    shards = detect_batch([photos], tmp_path / "pq", fmt="parquet", shard_images=2, **_options(model)).files
    assert [p.name for p in shards] == [f"detections-0000{i}.parquet" for i in range(2)]
    rows = {k: d for s in shards for k, d in zip(*pq.read_table(s).to_pydict().values())}
    expected = json.loads(reference.read_text())
    assert expected.pop("@classes") == ["background", "face"]  # the model's class names travel with the labels
    assert pq.read_schema(shards[0]).metadata[b"singleshot_class_names"] == b"background,face"
    assert rows.keys() == expected.keys()
    for key, dets in expected.items():
        # rows of 16: box, score, label and the point network's five points
        np.testing.assert_allclose(np.asarray(rows[key]).reshape(-1, 16), np.asarray(dets).reshape(-1, 16),
                                   atol=1e-3, rtol=0)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install '.[ray]')")
def test_ray_engine_on_a_local_instance_writes_what_the_local_engine_writes(photos, model, reference, tmp_path,
                                                                             capsys):
    assert main(["detect", str(photos), "--engine", "ray", "--workers", "2", "--weights", str(model), "--runtime",
                 "ort", "--input-size", "320", "--batch-size", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "detections.json").read_text() == reference.read_text()
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and "4 image(s)" in captured.out and "2 Ray worker(s)" in captured.out
    assert "images/s" in captured.out


def test_without_ray_the_engine_says_how_to_install_it(photos, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(BatchError, match=r"pip install 'singleshot\[ray\]'"):
        detect_batch([photos], engine="ray")
    assert main(["detect", str(photos), "--engine", "ray"]) == 2
    assert "singleshot[ray]" in capsys.readouterr().err
    assert main(["detect", str(photos), "--engine", "ray", "--crops", "x"]) == 2
    assert "drop --crops" in capsys.readouterr().err
