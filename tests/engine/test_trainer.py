"""Trainer: exact resume, checkpoints, logs, validation, devices, distillation."""

from pathlib import Path

import numpy as np
import pytest
import torch

from singleshot.checkpoint import CheckpointError, load_checkpoint
from singleshot.config import ConfigError, config_from_dict
from singleshot.engine.trainer import Trainer, resolve_device
from singleshot.models import create_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def tiny_config(tmp_path: Path, out: str, **train) -> object:
    return config_from_dict(
        {
            "model": {"name": "face_slim", "num_classes": 2, "options": {"width": 0.25}},
            "data": {
                "train": [{"spec": f"csv:{FIXTURES / 'csv'}", "weight": 2.0}],
                "input_size": [64, 64],
                "cache_dir": str(tmp_path / "cache"),
                "cache_max_side": 64,
            },
            "train": {
                "epochs": 2, "batch_size": 2, "lr": 0.01, "warmup_iters": 2, "out_dir": str(tmp_path / out),
                "checkpoint_every": 100, "log_every": 1, "threads": 1, **train,
            },
        }
    )


def test_resume_continues_exactly(tmp_path):
    full = Trainer(tiny_config(tmp_path, "full"), progress=False).fit()
    assert full.iteration == 6  # 3 images drawn twice per epoch, batches of 2, 2 epochs
    half = Trainer(tiny_config(tmp_path, "half", max_iters=3), progress=False).fit()
    assert half.iteration == 3
    resumed = Trainer(tiny_config(tmp_path, "half"), progress=False).fit(resume=tmp_path / "half" / "last.pt")
    assert resumed.iteration == 6
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "half" / "last.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["train_state"] == b["train_state"]
    log = (tmp_path / "half" / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,iteration,lr,loss,conf,loc") and len(log) == 1 + 6


def test_checkpoint_contents_and_errors(tmp_path):
    Trainer(tiny_config(tmp_path, "run", max_iters=1), progress=False).fit()
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    for key in ("model", "optimizer", "scheduler", "train_state", "rng", "config", "class_names", "model_name"):
        assert key in ckpt
    assert ckpt["class_names"] == ["background", "face"] and ckpt["config"]["train"]["max_iters"] == 1
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_validation_keeps_best(tmp_path):
    config = tiny_config(tmp_path, "val", epochs=1)
    config.data.val = config.data.train[0]
    config.eval.long_side = 64
    config.eval.min_size = 0
    state = Trainer(config, progress=False).fit()
    assert state.best_epoch == 1 and 0.0 <= state.best_ap <= 1.0
    assert (tmp_path / "val" / "best.pt").is_file()
    assert len((tmp_path / "val" / "val_log.csv").read_text().splitlines()) == 2


def test_config_mismatch_is_clear(tmp_path):
    config = tiny_config(tmp_path, "bad")
    config.model.num_classes = 3
    with pytest.raises(ConfigError, match="num_classes is 3 but the data has 2"):
        Trainer(config, progress=False).fit()


def test_load_matching_adds_a_module_to_a_trained_model():
    # model.weights_partial: a trained face_slim warm-starts the same model with the FEM added; the backbone and
    # neck come from the checkpoint, the FEM stays new, and the summary says so.
    from singleshot.engine.trainer import load_matching
    from singleshot.models.zoo import create_model

    torch.manual_seed(0)
    trained = create_model("face_slim")
    torch.manual_seed(1)
    grown = create_model("face_slim", fem=True)
    before = {k: v.clone() for k, v in grown.enhance.state_dict().items()}
    summary = load_matching(grown, trained.state_dict())
    for key, value in trained.backbone.state_dict().items():
        assert torch.equal(grown.backbone.state_dict()[key], value), key
    for key, value in trained.neck.state_dict().items():
        assert torch.equal(grown.neck.state_dict()[key], value), key
    for key, value in grown.enhance.state_dict().items():
        assert torch.equal(before[key], value), key
    new_modules = summary.split("new (in ")[1].split(")")[0].split(", ")
    assert "enhance" in new_modules and "backbone" not in new_modules and "neck" not in new_modules


def test_eval_vote_iou_is_written_into_checkpoints(tmp_path):
    from singleshot.checkpoint import checkpoint_vote_iou

    config = tiny_config(tmp_path, "vote", max_iters=1)
    config.eval.vote_iou = 0.6
    Trainer(config, progress=False).fit()
    assert checkpoint_vote_iou(load_checkpoint(tmp_path / "vote" / "last.pt")) == 0.6
    Trainer(tiny_config(tmp_path, "plain", max_iters=1), progress=False).fit()
    assert checkpoint_vote_iou(load_checkpoint(tmp_path / "plain" / "last.pt")) is None


def test_device_setting_is_validated_and_resolved(tmp_path):
    with pytest.raises(ConfigError, match="device"):
        tiny_config(tmp_path, "x", device="gpu")
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_resumes_and_validates_like_the_cpu_path(tmp_path):
    config = tiny_config(tmp_path, "gpu", epochs=1, device="cuda", ema_decay=0.9)
    config.data.val = config.data.train[0]
    config.eval.long_side = 64
    config.eval.min_size = 0
    state = Trainer(config, progress=False).fit()
    assert state.iteration == 3 and 0.0 <= state.best_ap <= 1.0
    ckpt = load_checkpoint(tmp_path / "gpu" / "last.pt")  # loads onto the CPU
    assert all(v.device.type == "cpu" for v in ckpt["model"].values())
    resumed = Trainer(tiny_config(tmp_path, "gpu", epochs=2, device="cuda", ema_decay=0.9), progress=False)
    assert resumed.fit(resume=tmp_path / "gpu" / "last.pt").iteration == 6


def test_worker_processes_train_exactly_as_the_main_process(tmp_path):
    # one loader for the whole run: workers outlive epochs, yet each draw is augmented by its own epoch's seed
    a = Trainer(tiny_config(tmp_path, "w0"), progress=False).fit()
    config = tiny_config(tmp_path, "w2")
    config.data.workers = 2
    b = Trainer(config, progress=False).fit()
    assert a.iteration == b.iteration == 6
    wa, wb = (load_checkpoint(tmp_path / run / "last.pt")["model"] for run in ("w0", "w2"))
    for key, value in wa.items():
        assert torch.equal(value, wb[key]), key


def test_resume_mid_epoch_with_a_worker_continues_exactly(tmp_path):
    def config(out, **train):
        c = tiny_config(tmp_path, out, **train)
        c.data.workers = 1
        return c

    Trainer(config("full"), progress=False).fit()
    assert Trainer(config("half", max_iters=4), progress=False).fit().iteration == 4  # mid-way through epoch 2
    assert Trainer(config("half"), progress=False).fit(resume=tmp_path / "half" / "last.pt").iteration == 6
    a, b = (load_checkpoint(tmp_path / run / "last.pt") for run in ("full", "half"))
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_distillation_from_a_teacher_with_the_same_priors(tmp_path):
    # a wider face_slim trained a little is the teacher; the student logs and optimises the extra term
    teacher_config = tiny_config(tmp_path, "teacher")
    teacher_config.model.options = {"width": 0.5}
    Trainer(teacher_config, progress=False).fit()
    config = tiny_config(tmp_path, "student", distill_from=str(tmp_path / "teacher" / "last.pt"),
                         distill_weight=2.0, distill_temperature=2.0)
    assert Trainer(config, progress=False).fit().iteration == 6
    header, *rows = (tmp_path / "student" / "train_log.csv").read_text().splitlines()
    column = header.split(",").index("distill")
    values = [float(r.split(",")[column]) for r in rows]
    assert len(values) == 6 and all(v > 0 for v in values)


def test_distillation_refuses_a_teacher_with_other_priors(tmp_path):
    from singleshot.checkpoint import model_metadata, save_checkpoint

    other = create_model("ssd_mobilenet_v2", num_classes=2, width=0.25)
    meta = model_metadata(other, "ssd_mobilenet_v2", {"width": 0.25}, ["face"], (0, 0, 0), (1, 1, 1))
    save_checkpoint(tmp_path / "other.pt", {**meta, "model": other.state_dict()})
    config = tiny_config(tmp_path, "student", distill_from=str(tmp_path / "other.pt"))
    with pytest.raises(ConfigError, match="teacher's priors at 64x64"):
        Trainer(config, progress=False).fit()
    config = tiny_config(tmp_path, "student", distill_from=str(tmp_path / "missing.pt"))
    with pytest.raises(CheckpointError, match="missing.pt"):
        Trainer(config, progress=False).fit()


def test_training_crops_of_a_size_no_stride_divides(tmp_path):
    # 72 x 100 px: 1.1 x 1.6 stride-64 cells, 9 x 12.5 stride-8 cells; the priors follow the stride grid there too
    config = tiny_config(tmp_path, "odd", max_iters=3)
    config.data.input_size = (72, 100)
    state = Trainer(config, progress=False).fit()
    assert state.iteration == 3
    rows = (tmp_path / "odd" / "train_log.csv").read_text().splitlines()[1:]
    assert len(rows) == 3 and all(float(r.split(",")[3]) < 1e3 for r in rows)  # finite losses


def test_a_landmark_model_trains_on_points_and_predicts_them(tmp_path):
    # five-point crops (MTFL layout) and box-only photos in one run: the landmark loss sees only the points known
    config = tiny_config(tmp_path, "landm", max_iters=4)
    config.model.options = {"width": 0.25, "landmarks": True}
    config.data.train = config.data.train + [type(config.data.train[0])(spec=f"mtfl:{FIXTURES / 'mtfl'}",
                                                                         options={"split": "test"})]
    state = Trainer(config, progress=False).fit()
    assert state.iteration == 4
    log = (tmp_path / "landm" / "train_log.csv").read_text().splitlines()
    column = log[0].split(",").index("landm")
    values = [float(row.split(",")[column]) for row in log[1:]]
    assert min(values) >= 0 and max(values) > 0  # the landmark term on its own (0 for a batch without points)
    from singleshot.predictor import Detector

    detector = Detector(tmp_path / "landm" / "last.pt", input_size=96)
    det = detector.detect(np.zeros((80, 80, 3), np.uint8), min_score=0.0, top_k=3)
    assert det.landmarks is not None and det.landmarks.shape == (3, 5, 2)


def test_landmark_targets_pick_the_matched_objects_points():
    from singleshot.engine.trainer import landmark_targets
    from singleshot.matching import MatchResult

    priors = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1]])
    points = [torch.stack([torch.full((5, 2), 0.5), torch.full((5, 2), float("nan"))])]  # object 1: no points
    match = MatchResult(labels=torch.tensor([[1, 0, 1]]), offsets=torch.zeros(1, 3, 4),
                        matched_index=torch.tensor([[0, -1, 1]]), matched_iou=torch.zeros(1, 3))
    target = landmark_targets(points, match, priors, torch.device("cpu"))
    assert target.shape == (1, 3, 10)
    torch.testing.assert_close(target[0, 0], torch.zeros(10))  # the points sit on the prior's centre
    assert torch.isnan(target[0, 1]).all() and torch.isnan(target[0, 2]).all()


def test_augment_config_reaches_the_training_transform(tmp_path):
    config = tiny_config(tmp_path, "run")
    config.data.augment.canvas_fill_p, config.data.augment.lowres_p = 0.5, 0.2
    config.data.augment.lowres_scale, config.data.augment.blank_p = (0.25, 0.5), 0.05
    config.data.augment.face_crop_p, config.data.augment.face_crop_scale = 0.1, (0.9, 1.2)
    config.data.augment.face_crop_canvas = 2.5
    transform = Trainer(config, progress=False)._transform(create_model("face_slim", num_classes=2).prior_spec)
    assert (transform.canvas_fill_prob, transform.lowres_prob, transform.lowres_scale) == (0.5, 0.2, (0.25, 0.5))
    assert transform.blank_prob == 0.05
    assert (transform.face_crop_prob, transform.face_crop_scale, transform.face_crop_canvas) == (0.1, (0.9, 1.2), 2.5)
    default = Trainer(tiny_config(tmp_path, "off"), progress=False)._transform(
        create_model("face_slim", num_classes=2).prior_spec)
    assert default.canvas_fill_prob == 0.0 and default.lowres_prob == 0.0  # off unless a recipe asks
    assert default.face_crop_prob == 0.0
