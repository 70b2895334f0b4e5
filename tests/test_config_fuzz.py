"""The config loader, fed mutated copies of a real config: a Config or one SingleshotError, nothing else."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given

from singleshot.config import load_config
from singleshot.errors import SingleshotError
from tests.fuzzing import FUZZ_SETTINGS, assert_one_line, mutated

CONFIG = (Path(__file__).parents[1] / "configs" / "face_slim.yaml").read_bytes()  # a real config, comments too


def test_the_seed_config_is_valid(tmp_path):
    (tmp_path / "c.yaml").write_bytes(CONFIG)
    assert load_config(tmp_path / "c.yaml").train.epochs == 60


@FUZZ_SETTINGS
@given(mutated(CONFIG))
def test_config_gives_a_config_or_one_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_bytes(data)
        try:
            load_config(path)
        except SingleshotError as err:
            assert_one_line(err)
