"""Optimiser parameter groups and the learning-rate schedule."""

import pytest

from singleshot.config import config_from_dict
from singleshot.engine.optim import build_optimizer, lr_factor
from singleshot.models import create_model


def test_optimizer_groups_and_schedule():
    config = config_from_dict({"train": {"lr": 0.1, "bias_lr_factor": 2.0, "weight_decay": 1e-4,
                                         "warmup_iters": 10, "warmup_factor": 0.1, "schedule": "multistep",
                                         "milestones": [0.5, 0.75], "gamma": 0.1}})
    opt = build_optimizer(create_model("face_slim", width=0.25), config)
    weights, biases, norms = opt.param_groups
    assert biases["lr"] == pytest.approx(0.2) and norms["weight_decay"] == 0.0 and weights["weight_decay"] == 1e-4
    assert all(p.ndim > 1 for p in weights["params"]) and all(p.ndim == 1 for p in norms["params"])
    assert lr_factor(0, 100, config) == pytest.approx(0.1)
    assert lr_factor(10, 100, config) == pytest.approx(1.0)
    assert lr_factor(50, 100, config) == pytest.approx(0.1)
    assert lr_factor(80, 100, config) == pytest.approx(0.01)
    config.train.schedule = "cosine"
    assert lr_factor(100, 100, config) == pytest.approx(0.01)


def test_frozen_parts_keep_weights_and_batchnorm_statistics():
    import torch
    from torch import nn

    from singleshot.config import ConfigError
    from singleshot.engine.optim import freeze_parameters, hold_statistics

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms = freeze_parameters(model, ["0.", "1."])
    assert norms == [model[1]]
    optimizer = build_optimizer(model, config_from_dict({"train": {"lr": 0.1}}))
    for _ in range(3):
        model.train()
        hold_statistics(norms)
        loss = model(torch.randn(2, 3, 8, 8)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.running_mean", "1.running_var"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["3.weight"], after["3.weight"])  # the free part learnt
    with pytest.raises(ConfigError, match="names no parameter"):
        freeze_parameters(model, ["backbone"])
