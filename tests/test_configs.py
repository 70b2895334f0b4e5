"""Every shipped config loads and validates (a typo in a key or a value fails here, not hours into a run)."""

from pathlib import Path

import pytest

from singleshot.attributes import AttributeConfig
from singleshot.config import load_config, load_dataclass
from singleshot.models import create_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted([*CONFIGS.glob("*.yaml"), *CONFIGS.glob("experiments/*.yaml")]),
                         ids=lambda p: str(p.relative_to(CONFIGS)))
def test_training_config_loads_and_builds_its_model(path):
    config = load_config(path)
    assert config.data.train, f"{path.name}: no training data"
    create_model(config.model.name, num_classes=config.model.num_classes, **config.model.options)


@pytest.mark.parametrize("path", sorted((CONFIGS / "attributes").glob("*.yaml")), ids=lambda p: p.name)
def test_attribute_config_loads(path):
    config = load_dataclass(AttributeConfig, path)
    assert config.name and len(config.labels) == 2 and config.input_size > 0


@pytest.mark.parametrize("path", sorted((CONFIGS / "points").rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_point_config_loads(path):
    from singleshot.points import PointConfig

    config = load_dataclass(PointConfig, path)
    assert config.train, f"{path.name}: no training data"
    assert config.input_size > 0 and config.epochs > 0
