"""DSFD parts: FEM, two shots, PAL training, the anchor rule, data-anchor sampling."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from singleshot.config import config_from_dict
from singleshot.data.transforms import SSDAugmentation, data_anchor_sample
from singleshot.engine.trainer import Trainer
from singleshot.models import create_model
from singleshot.models.detector import DualShotDetector
from singleshot.models.necks import FEMBranches, FEMNeck
from singleshot.priors import dsfd_prior_spec, face_prior_spec, scaled_prior_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("depthwise", [False, True])
def test_fem_keeps_sizes_and_sets_channels(depthwise):
    maps = [torch.randn(2, 16, 20, 24), torch.randn(2, 32, 10, 12), torch.randn(2, 64, 5, 6)]
    fem = FEMNeck([16, 32, 64], channels=24, depthwise=depthwise)
    out = fem(maps)
    assert [o.shape for o in out] == [(2, 24, 20, 24), (2, 24, 10, 12), (2, 24, 5, 6)]
    assert fem.out_channels == (24, 24, 24)
    assert FEMBranches(64).out_channels == 64


def test_fem_is_top_down():
    # the deepest map reaches the shallow enhanced maps (upsample-and-multiply), a shallow one never the deep ones
    torch.manual_seed(0)
    fem = FEMNeck([8, 8], channels=8).eval()
    with torch.no_grad():
        for m in fem.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.bias.fill_(0.1)  # keep the ReLUs open so the product carries signal
        a = [torch.rand(1, 8, 8, 8), torch.rand(1, 8, 4, 4)]
        b = [a[0], a[1] + 1.0]
        c = [a[0] + 1.0, a[1]]
        out_a, out_b, out_c = fem(a), fem(b), fem(c)
    assert not torch.allclose(out_a[0], out_b[0])  # deep change -> shallow output changes
    assert torch.allclose(out_a[1], out_c[1])  # shallow change -> deep output unchanged


def test_dual_shot_face_slim_shapes_and_half_size_first_shot():
    m = create_model("face_slim", width=0.25, fem=True, pal=True).eval()
    assert isinstance(m, DualShotDetector) and m.num_shots == 2
    x = torch.zeros(1, 3, 96, 128)
    with torch.no_grad():
        (loc1, conf1), (loc2, conf2) = m.forward_shots(x)
        loc, conf = m(x)
    assert loc1.shape == loc2.shape == loc.shape and conf1.shape == conf2.shape == conf.shape
    assert torch.equal(loc, loc2)  # inference is the second shot
    first, second = m.shot_prior_grids((96, 128))
    # unclipped sizes: the first shot's are exactly half
    assert torch.allclose(first.width, second.width / 2) and torch.allclose(first.height, second.height / 2)


def test_scaled_prior_spec_and_dsfd_anchor_rule():
    spec = face_prior_spec((8, 16, 32, 64))
    half = scaled_prior_spec(spec, 0.5)
    assert [lv.sizes for lv in half.levels] == [tuple(s / 2 for s in lv.sizes) for lv in spec.levels]
    dsfd = dsfd_prior_spec((4, 8, 16, 32, 64, 128))
    assert [lv.sizes for lv in dsfd.levels] == [(16.0,), (32.0,), (64.0,), (128.0,), (256.0,), (512.0,)]
    w, h = dsfd.levels[0].cell_shapes()[0]
    assert h / w == pytest.approx(1.5)


def test_pal_training_logs_both_shots(tmp_path):
    config = config_from_dict({
        "model": {"name": "face_slim", "num_classes": 2, "options": {"width": 0.25, "fem": True, "pal": True}},
        "data": {"train": [{"spec": f"csv:{FIXTURES / 'csv'}"}], "input_size": [64, 64],
                 "cache_dir": str(tmp_path / "cache"), "cache_max_side": 64, "augment": {"data_anchor_p": 0.6}},
        "train": {"epochs": 1, "batch_size": 2, "lr": 0.01, "warmup_iters": 1, "out_dir": str(tmp_path / "run"),
                  "log_every": 1, "threads": 1, "pal_weight": 0.5},
    })
    state = Trainer(config, progress=False).fit()
    assert state.iteration >= 1
    header, row = (tmp_path / "run" / "train_log.csv").read_text().splitlines()[:2]
    assert "pal1_conf,pal1_loc" in header
    values = dict(zip(header.split(","), row.split(",")))
    assert float(values["pal1_conf"]) > 0 and float(values["conf"]) > 0


ANCHORS = (10.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0, 192.0, 256.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    face=st.floats(8, 300),
    aspect=st.floats(0.8, 1.25),
    image_hw=st.tuples(st.integers(200, 700), st.integers(200, 700)),
)
def test_property_data_anchor_sampling_lands_the_face_on_the_chosen_anchor(data, face, aspect, image_hw):
    h, w = image_hw
    fw, fh = face * aspect**0.5, face / aspect**0.5
    fw, fh = min(fw, w - 2), min(fh, h - 2)
    x1 = data.draw(st.floats(0, w - fw - 1))
    y1 = data.draw(st.floats(0, h - fh - 1))
    boxes = np.array([[x1, y1, x1 + fw, y1 + fh]], np.float32)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    image = np.zeros((h, w, 3), np.uint8)
    result = data_anchor_sample(image, boxes, np.array([1]), np.array([False]), rng, ANCHORS, (320, 320))
    (out, out_boxes, _labels, _ignore), info = result
    assert out.shape == (320, 320, 3)
    anchor, target = info["anchor"], info["target"]
    assert anchor / 2 <= target <= min(2 * anchor, 320)
    b = out_boxes[info["face"]]
    side = float(np.sqrt((b[2] - b[0]) * (b[3] - b[1])))
    # the face keeps its whole extent unless it is larger than the window: then it is clipped, never larger
    if max(fw, fh) * target / np.sqrt(fw * fh) < 320:
        assert side == pytest.approx(target, rel=1e-3)
        assert anchor / 2 - 1e-3 <= side <= 2 * anchor + 1e-3
    else:
        assert side <= target + 1e-3


def test_data_anchor_sampling_prefers_small_anchors_and_skips_ignored():
    rng = np.random.default_rng(0)
    boxes = np.array([[100, 100, 164, 164], [10, 10, 20, 20]], np.float32)  # a 64 px face and an ignored one
    anchors = []
    for _ in range(400):
        _, info = data_anchor_sample(np.zeros((400, 400, 3), np.uint8), boxes, np.array([1, 1]),
                                                  np.array([False, True]), rng, ANCHORS, (320, 320))
        anchors.append(info["anchor"])
    # nearest anchor to 64 px is index 5; targets are drawn from indices 0..6 uniformly
    assert set(anchors) == set(ANCHORS[:7])
    assert data_anchor_sample(np.zeros((50, 50, 3), np.uint8), boxes[1:], np.array([1]), np.array([True]), rng,
                              ANCHORS, (64, 64)) is None


def test_augmentation_with_data_anchor_sampling_validates():
    with pytest.raises(ValueError, match="anchor_sizes"):
        SSDAugmentation((64, 64), data_anchor_prob=0.5)
    aug = SSDAugmentation((64, 64), data_anchor_prob=1.0, anchor_sizes=(16, 32))
    out = aug(np.zeros((100, 120, 3), np.uint8), np.array([[10, 10, 40, 40]], np.float32), np.array([1]),
              np.array([False]), np.random.default_rng(0))
    assert out.image.shape == (3, 64, 64) and len(out.boxes_xyxy) == 1
