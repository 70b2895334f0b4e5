from pathlib import Path

import pytest

from singleshot.attributes.config import AttributeConfig
from singleshot.attributes.training import train_attribute
from singleshot.config import ConfigError, load_dataclass

ROOT = Path(__file__).resolve().parents[2]


def test_attribute_config_validation(tmp_path):
    config = load_dataclass(AttributeConfig, ROOT / "configs" / "attributes" / "smile.yaml", ["epochs=2"])
    assert config.epochs == 2 and config.name == "smile"
    with pytest.raises(ConfigError, match="did you mean epochs"):
        load_dataclass(AttributeConfig, None, ["epoch=2"])
    with pytest.raises(ConfigError):
        load_dataclass(AttributeConfig, None, ["backbone_init=imagenet"])


def test_distillation_settings_are_validated(crops, tmp_path):
    with pytest.raises(ConfigError, match="needs a teacher"):
        load_dataclass(AttributeConfig, None, ["distill_weight=0.5"])
    with pytest.raises(ConfigError, match="val_fraction"):
        load_dataclass(AttributeConfig, None, ["val_fraction=1.5"])
    config = AttributeConfig(train=str(crops / "train"), test=str(crops / "test"), exclude=None, input_size=24,
                             teacher=str(tmp_path / "missing.pt"), distill_weight=0.5, epochs=1,
                             out=str(tmp_path / "s.pt"))
    from singleshot.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="missing.pt"):
        train_attribute(config, progress=False, log=lambda s: None)
