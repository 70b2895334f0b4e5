"""The weight average: its formula, its warm-up, integer buffers, and exact resume of a run that keeps one."""

from pathlib import Path

import pytest
import torch
from torch import nn

from singleshot.checkpoint import load_checkpoint
from singleshot.config import ConfigError
from singleshot.engine.ema import ModelEMA
from singleshot.engine.trainer import Trainer
from tests.engine.test_trainer import tiny_config


def test_average_follows_the_formula_and_copies_integer_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.9)
    start = {k: v.clone() for k, v in ema.state_dict().items()}
    assert ema.current_decay() == pytest.approx(1 / 10)  # warm-up: (1 + n) / (10 + n) at n = 0
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model[1].num_batches_tracked += 5
    ema.update(model)
    d = 0.1
    for key, value in model.state_dict().items():
        if value.dtype.is_floating_point:
            torch.testing.assert_close(ema.state_dict()[key], d * start[key] + (1 - d) * value)
        else:
            assert torch.equal(ema.state_dict()[key], value), key
    for _ in range(1000):
        ema.update(model)
    assert ema.current_decay() == 0.9  # the ramp ends at the configured decay
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_decay_out_of_range_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="ema_decay"):
        tiny_config(tmp_path, "bad", ema_decay=1.5)
    with pytest.raises(ValueError):
        ModelEMA(nn.Linear(1, 1), decay=0.0)


def test_resume_with_ema_continues_exactly(tmp_path: Path):
    full = Trainer(tiny_config(tmp_path, "full", ema_decay=0.9), progress=False).fit()
    half = Trainer(tiny_config(tmp_path, "half", ema_decay=0.9, max_iters=3), progress=False).fit()
    assert half.iteration == 3
    Trainer(tiny_config(tmp_path, "half", ema_decay=0.9), progress=False).fit(resume=tmp_path / "half" / "last.pt")
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "half" / "last.pt")
    assert full.iteration == 6 and a["ema_updates"] == b["ema_updates"] == 6
    for key in ("model", "raw_model"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), (key, name)
    # the shipped weights are the average, not the last step
    assert any(not torch.equal(a["model"][k], a["raw_model"][k]) for k in a["model"])


def test_weights_only_copy_keeps_the_average_and_drops_the_optimiser_weights(tmp_path: Path):
    from singleshot.checkpoint import export_weights

    Trainer(tiny_config(tmp_path, "run", ema_decay=0.9), progress=False).fit()
    source = load_checkpoint(tmp_path / "run" / "last.pt")
    copy = load_checkpoint(export_weights(tmp_path / "run" / "last.pt", tmp_path / "weights.pt"))
    assert not {"raw_model", "ema_updates", "optimizer", "scheduler", "rng"} & set(copy)
    for name, value in source["model"].items():
        assert torch.equal(copy["model"][name], value), name
