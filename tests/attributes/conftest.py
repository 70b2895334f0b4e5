"""Fixtures of the attribute tests: a toy attribute (bright crops are '1', dark ones '0') and a network
trained on it once for the whole package."""

import cv2
import numpy as np
import pytest

from singleshot.attributes.config import AttributeConfig
from singleshot.attributes.training import train_attribute


@pytest.fixture(scope="package")
def crops(tmp_path_factory):
    """A toy attribute: bright crops are '1', dark ones '0' (learnable in one epoch)."""
    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("test", 10)):
        for outcome in (0, 1):
            folder = root / split / str(outcome)
            folder.mkdir(parents=True)
            for i in range(n):
                base = 200 if outcome else 40
                cv2.imwrite(str(folder / f"f{i}.jpg"), (base + rng.integers(-30, 30, (32, 32, 3))).astype(np.uint8))
    (root / "exclude.txt").write_text("train/0/f0.jpg\tsame bytes as ...\n")
    return root


@pytest.fixture(scope="package")
def trained(crops, tmp_path_factory):
    out = tmp_path_factory.mktemp("attr") / "bright.pt"
    config = AttributeConfig(name="bright", labels=("dark", "bright"), train=str(crops / "train"),
                             test=str(crops / "test"), exclude=str(crops / "exclude.txt"), input_size=32,
                             epochs=3, batch_size=16, lr=0.01, backbone_lr_factor=1.0, out=str(out))
    return train_attribute(config, progress=False, log=lambda s: None)
