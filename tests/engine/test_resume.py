"""Resume as users expect: the run's own config, overrides allowed, other data or model refused, the checkpoint
checked before any data is read."""

from __future__ import annotations

import pytest
import torch

from singleshot.checkpoint import CheckpointError, load_checkpoint
from singleshot.cli import main
from singleshot.config import ConfigError, dump_config
from singleshot.engine.state import resume_config
from singleshot.engine.trainer import Trainer
from tests.engine.test_trainer import tiny_config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A full run of 6 iterations and one stopped after 3 (its own config says max_iters=3)."""
    tmp = tmp_path_factory.mktemp("runs")
    Trainer(tiny_config(tmp, "full"), progress=False).fit()
    Trainer(tiny_config(tmp, "half", max_iters=3), progress=False).fit()
    return tmp


def test_resume_alone_continues_with_the_runs_config(runs, capsys):
    # no CONFIG: the run's own, out_dir the checkpoint's folder; an override lifts the run's stop at 3 iterations
    assert main(["train", "--resume", str(runs / "half" / "last.pt"), "--set", "train.max_iters=null",
                 "--no-progress"]) == 0
    assert "iteration 6" in capsys.readouterr().out
    a, b = (load_checkpoint(runs / run / "last.pt") for run in ("full", "half"))
    assert a["train_state"] == b["train_state"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_another_data_or_model_section_is_refused_with_the_difference(runs, tmp_path):
    changed = tiny_config(runs, "half")
    changed.model.options = {"width": 0.5}
    changed.data.input_size = (96, 96)
    dump_config(changed, tmp_path / "changed.yaml")
    with pytest.raises(ConfigError) as err:
        resume_config(runs / "half" / "last.pt", tmp_path / "changed.yaml")
    message = str(err.value)
    assert "data.input_size: [64, 64] -> [96, 96]" in message and "model.options.width: 0.25 -> 0.5" in message
    with pytest.raises(ConfigError, match="model.name: 'face_slim' -> 'ssd300_vgg16'"):
        resume_config(runs / "half" / "last.pt", None, ["model.name=ssd300_vgg16"])
    # where images are cached and how many processes load them may change: no sample changes
    assert resume_config(runs / "half" / "last.pt", None, ["data.workers=1"]).data.workers == 1


def test_a_bad_checkpoint_is_refused_before_any_data_is_read(runs, tmp_path):
    config = tiny_config(tmp_path, "new")
    config.data.train[0].spec = f"csv:{tmp_path / 'no_such_data'}"  # reading data would fail with a DataError
    config.data.cache_dir = str(tmp_path / "cache")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((runs / "half" / "last.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated.pt: not a readable checkpoint"):
        Trainer(config, progress=False).fit(resume=truncated)
    weights_only = tmp_path / "weights.pt"
    assert main(["export", "--weights", str(runs / "half" / "last.pt"), "--out", str(weights_only)]) == 0
    with pytest.raises(CheckpointError, match="weights.pt: holds model weights only"):
        Trainer(config, progress=False).fit(resume=weights_only)
    assert not (tmp_path / "cache").exists()  # nothing was cached
