from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from singleshot.attributes.config import AttributeError_
from singleshot.attributes.data import augment_batch, cut_face_crops, square_crops
from singleshot.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_square_crops_centre_and_fill():
    image = np.zeros((40, 40, 3), np.uint8)
    image[10:20, 10:20] = 255
    crop = square_crops(image, np.array([[10, 10, 20, 20]]), 16, fill_rgb=(1, 2, 3))[0]
    assert crop[4:12, 4:12].min() > 200  # the box fills the crop
    edge = square_crops(image, np.array([[-10, -10, 10, 10]]), 16, fill_rgb=(1, 2, 3))[0]
    assert tuple(edge[0, 0]) == (1, 2, 3)  # outside the image: the fill colour


def test_augment_batch_shape_and_determinism():
    x = torch.randn(4, 3, 32, 32)
    a = augment_batch(x, torch.Generator().manual_seed(1))
    b = augment_batch(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)


def test_cut_face_crops_from_a_dataset_and_refuse_to_mix(tmp_path, capsys):
    spec = f"csv:{ROOT / 'tests' / 'fixtures' / 'csv'}"
    report = cut_face_crops(spec, tmp_path / "crops", size=16, min_size=12, progress=False)
    assert (report.images, report.crops, report.skipped_small) == (3, 2, 1)  # b.jpg's 10 px face is too small
    files = sorted(p.name for p in (tmp_path / "crops").iterdir())
    assert files == ["images__a_0.jpg", "images__a_1.jpg"] and cv2.imread(str(tmp_path / "crops" / files[0])).shape == (16, 16, 3)
    with pytest.raises(AttributeError_, match="--force"):
        cut_face_crops(spec, tmp_path / "crops", size=16, min_size=12, progress=False)
    assert main(["attribute", "crops", "--data", spec, "--out", str(tmp_path / "crops"), "--size", "16",
                 "--min-size", "12", "--force", "--no-progress"]) == 0
    assert "2 crops of 3 images" in capsys.readouterr().out
    from singleshot.data.formats import DataError

    with pytest.raises(DataError):
        cut_face_crops(f"csv:{tmp_path / 'missing'}", tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()  # a bad dataset leaves no folder behind
