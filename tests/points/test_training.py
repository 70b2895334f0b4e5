import numpy as np
import pytest
import torch

from singleshot.cli import main
from singleshot.config import DatasetConfig
from singleshot.points import PointConfig, PointError, PointRefiner, train_points
from tests.points.conftest import write_point_set


def _config(point_set, tmp_path, **kw):
    values = {"train": [DatasetConfig(spec=f"csv:{point_set}")], "cache": str(tmp_path / "faces.npz"),
              "cache_size": 64, "input_size": 32, "width": 0.5, "epochs": 3, "batch_size": 4, "val_fraction": 0.25,
              "lr": 0.003, "out": str(tmp_path / "run"), "threads": 1}
    return PointConfig(**(values | kw))


def test_training_writes_a_refiner_checkpoint_and_resume_continues_it_exactly(point_set, tmp_path, monkeypatch):
    from singleshot.points import training

    full = train_points(_config(point_set, tmp_path), progress=False)
    assert [h["epoch"] for h in full.history] == [1, 2, 3] and np.isfinite(full.val_nme)
    assert full.train_faces + full.val_faces == 12 and np.isfinite(full.val_eye_error)
    reference = torch.load(full.checkpoint, weights_only=True)["model"]
    # the same run, stopped after two epochs (as by a kill after a checkpoint), then resumed
    part = _config(point_set, tmp_path, out=str(tmp_path / "run2"))
    original = training.save_checkpoint

    def stop_after_two(path, checkpoint):
        original(path, checkpoint)
        if checkpoint.get("epoch") == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        train_points(part, progress=False)
    monkeypatch.setattr(training, "save_checkpoint", original)
    resumed = train_points(part, progress=False, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    state = torch.load(resumed.checkpoint, weights_only=True)["model"]
    assert all(torch.equal(state[k], reference[k]) for k in reference)


def test_resume_refuses_a_missing_run_or_another_config(point_set, tmp_path):
    with pytest.raises(PointError, match="nothing to resume"):
        train_points(_config(point_set, tmp_path), progress=False, resume=True)
    train_points(_config(point_set, tmp_path, epochs=1), progress=False)
    with pytest.raises(PointError, match="different config"):
        train_points(_config(point_set, tmp_path, epochs=1, lr=0.01), progress=False, resume=True)


def test_a_trained_network_learns_the_points(tmp_path):
    """The dots are the points: a few epochs on 40 photos bring the held-out error well under the first epoch's."""
    point_set = write_point_set(tmp_path / "many", photos=40, seed=1)
    result = train_points(_config(point_set, tmp_path, epochs=20, batch_size=8, lr=0.005, rotate_p=0.0,
                                  jitter_shift=0.02, jitter_scale=0.02), progress=False)
    first, last = result.history[0]["val_nme"], result.history[-1]["val_nme"]
    assert last < 0.5 * first


def test_refiner_maps_points_back_to_the_photo_on_both_runtimes(point_set, tmp_path):
    result = train_points(_config(point_set, tmp_path, epochs=1), progress=False)
    image = np.full((120, 160, 3), 60, np.uint8)
    boxes = np.array([[10.0, 20.0, 50.0, 60.0], [80.0, 30.0, 140.0, 90.0]])
    on_torch = PointRefiner(result.checkpoint).predict(image, boxes)
    assert on_torch.shape == (2, 5, 2) and np.isfinite(on_torch).all()
    # the crop is 1.3 box sides around the box: every point of an untrained network lies within it
    for (x1, y1, x2, y2), points in zip(boxes, on_torch):
        cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, 0.65 * (x2 - x1) * 1.5
        assert (abs(points[:, 0] - cx) < half).all() and (abs(points[:, 1] - cy) < half).all()
    pytest.importorskip("onnxruntime")
    on_ort = PointRefiner(result.checkpoint, runtime="ort").predict(image, boxes)
    assert PointRefiner(result.checkpoint, runtime="auto").runtime == "ort"  # ONNX Runtime installed: it is taken
    assert np.abs(on_ort - on_torch).max() < 1.0  # the ONNX graph agrees with PyTorch within 1 px
    assert PointRefiner(result.checkpoint).predict(image, np.zeros((0, 4))).shape == (0, 5, 2)


def test_cli_trains_from_a_config_with_overrides(point_set, tmp_path, capsys):
    config = tmp_path / "points.yaml"
    config.write_text(f"train:\n  - spec: csv:{point_set}\ncache: {tmp_path / 'c.npz'}\ncache_size: 64\n"
                      f"input_size: 32\nwidth: 0.5\nbatch_size: 4\nval_fraction: 0.25\nthreads: 1\n")
    assert main(["points", "train", str(config), "--set", "epochs=1", "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0
    assert "held out: NME" in capsys.readouterr().out and (tmp_path / "o" / "face_points.pt").is_file()
    assert main(["points", "train", str(config), "--set", "epoks=1", "--no-progress"]) == 2
    assert "epochs" in capsys.readouterr().err  # the near miss is suggested


def test_cli_exports_the_bundled_point_network_as_onnx(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "points.onnx"
    assert main(["points", "export", "--out", str(out)]) == 0
    graph = onnx.load(str(out)).graph
    assert [i.name for i in graph.input] == ["crops"] and [o.name for o in graph.output] == ["points"]
    assert "1.3 box long sides" in capsys.readouterr().out
    assert main(["points", "export", "--weights", "nosuch", "--out", str(out)]) == 2


def test_set_weights_set_how_often_each_face_is_drawn(point_set, tmp_path):
    from singleshot.points.data import extract_faces
    from singleshot.points.training import _draw_probabilities

    sets = [DatasetConfig(spec=f"csv:{point_set}", weight=3.0), DatasetConfig(spec=f"csv:{point_set}", weight=1.0)]
    config = _config(point_set, tmp_path, train=sets, epochs=1)
    faces = extract_faces(sets, config.cache, config.cache_size, val_fraction=config.val_fraction, progress=False)
    train_idx = np.flatnonzero(~faces.val)
    p = _draw_probabilities(config, faces, train_idx)
    first, second = p[faces.source[train_idx] == 0], p[faces.source[train_idx] == 1]
    assert len(first) == len(second) > 0 and np.isclose(p.sum(), 1.0)
    assert np.allclose(first, 3 * second[0]) and np.allclose(second, second[0])
    equal = _config(point_set, tmp_path, train=[DatasetConfig(spec=s.spec, weight=2.0) for s in sets])
    assert _draw_probabilities(equal, faces, train_idx) is None  # equal weights: a plain permutation
    result = train_points(config, progress=False)
    assert result.train_faces == len(train_idx) and np.isfinite(result.val_nme)
    with pytest.raises(ValueError, match="weight must be > 0"):
        _config(point_set, tmp_path, train=[DatasetConfig(spec=f"csv:{point_set}", weight=0.0)])
