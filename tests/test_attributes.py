import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from singleshot.attributes import (
    ATTRIBUTES,
    AttributeClassifier,
    AttributeConfig,
    AttributeNet,
    augment_batch,
    roc_auc,
    square_crops,
    train_attribute,
)
from singleshot.cli import main
from singleshot.config import ConfigError, load_dataclass
from singleshot.predictor import Detector

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def trained(crops, tmp_path_factory):
    out = tmp_path_factory.mktemp("attr") / "bright.pt"
    config = AttributeConfig(name="bright", labels=("dark", "bright"), train=str(crops / "train"),
                             test=str(crops / "test"), exclude=str(crops / "exclude.txt"), input_size=32,
                             epochs=3, batch_size=16, lr=0.01, backbone_lr_factor=1.0, out=str(out))
    return train_attribute(config, progress=False, log=lambda s: None)


def test_training_learns_a_toy_attribute_and_excludes_listed_crops(trained):
    assert trained.train_crops == 47 and trained.test_crops == 20  # one excluded crop
    assert trained.accuracy >= 0.9 and trained.roc_auc >= 0.9
    assert Path(trained.checkpoint).is_file()


def test_classifier_predicts_on_boxes_of_a_photo(trained):
    clf = AttributeClassifier(trained.checkpoint)
    image = np.zeros((60, 120, 3), np.uint8)
    image[:, 60:] = 220
    probs = clf.predict(image, np.array([[5, 5, 45, 45], [70, 10, 110, 50]], np.float32))
    assert probs.shape == (2,) and probs[0] < 0.5 < probs[1]
    assert clf.predict(image, np.zeros((0, 4))).shape == (0,)


def test_detector_scores_attributes_and_draws_them(trained, tmp_path):
    detector = Detector()
    det = detector.detect(str(ROOT / "assets" / "demo.jpg"), attributes=[trained.checkpoint])
    assert det.attributes["bright"].shape == (len(det),) and detector.timing.attributes_ms > 0
    out = tmp_path / "out"
    assert main(["detect", str(ROOT / "assets" / "demo.jpg"), "--attributes", trained.checkpoint,
                 "--out", str(out)]) == 0
    values = json.loads((out / "attributes.json").read_text())["demo.jpg"]["bright"]
    assert len(values) == len(json.loads((out / "detections.json").read_text())["demo.jpg"])


def test_unknown_attribute_is_a_clean_error(tmp_path, capsys):
    assert main(["detect", str(ROOT / "assets" / "demo.jpg"), "--attributes", "smiel", "--out", str(tmp_path)]) == 2
    assert "smiel" in capsys.readouterr().err
    assert "smile" in ATTRIBUTES.names()


def test_square_crops_centre_and_fill():
    image = np.zeros((40, 40, 3), np.uint8)
    image[10:20, 10:20] = 255
    crop = square_crops(image, np.array([[10, 10, 20, 20]]), 16, fill_rgb=(1, 2, 3))[0]
    assert crop[4:12, 4:12].min() > 200  # the box fills the crop
    edge = square_crops(image, np.array([[-10, -10, 10, 10]]), 16, fill_rgb=(1, 2, 3))[0]
    assert tuple(edge[0, 0]) == (1, 2, 3)  # outside the image: the fill colour


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(200), 1)  # many ties
    labels = rng.integers(0, 2, 200)
    pos, neg = scores[labels == 1], scores[labels == 0]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert roc_auc(scores, labels) == pytest.approx(brute)


def test_augment_batch_shape_and_determinism():
    x = torch.randn(4, 3, 32, 32)
    a = augment_batch(x, torch.Generator().manual_seed(1))
    b = augment_batch(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)


def test_attribute_net_on_face_slim_backbone():
    from singleshot.models import create_model

    net = AttributeNet(create_model("face_slim", width=0.25).backbone)
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 1)


def test_attribute_config_validation(tmp_path):
    config = load_dataclass(AttributeConfig, ROOT / "configs" / "attributes" / "smile.yaml", ["epochs=2"])
    assert config.epochs == 2 and config.name == "smile"
    with pytest.raises(ConfigError, match="did you mean epochs"):
        load_dataclass(AttributeConfig, None, ["epoch=2"])
    with pytest.raises(ConfigError):
        load_dataclass(AttributeConfig, None, ["backbone_init=imagenet"])


def test_classifier_on_onnx_runtime_matches_torch(trained):
    pytest.importorskip("onnxruntime")
    image = (np.random.default_rng(0).random((60, 120, 3)) * 255).astype(np.uint8)
    boxes = np.array([[5, 5, 45, 45], [70, 10, 110, 50], [60, 0, 119, 59]], np.float32)
    a = AttributeClassifier(trained.checkpoint).predict(image, boxes)
    b = AttributeClassifier(trained.checkpoint, runtime="ort").predict(image, boxes)
    assert np.allclose(a, b, atol=1e-5)
    det = Detector(runtime="ort").detect(str(ROOT / "assets" / "demo.jpg"), attributes=[trained.checkpoint])
    assert det.attributes["bright"].shape == (len(det),)


def test_distillation_from_a_teacher_with_held_out_split(crops, trained, tmp_path):
    """A student taught only by the teacher's soft targets (distill_weight 1) learns the teacher's rule; the
    held-out part of the training crops is scored and left out of training."""
    config = AttributeConfig(name="bright", labels=("dark", "bright"), train=str(crops / "train"),
                             test=str(crops / "test"), exclude=str(crops / "exclude.txt"), input_size=24,
                             epochs=3, batch_size=16, lr=0.01, backbone_lr_factor=1.0, teacher=trained.checkpoint,
                             distill_weight=1.0, mixup=0.2, val_fraction=0.25, val_every=1, seed=1,
                             out=str(tmp_path / "student.pt"))
    logs = []
    result = train_attribute(config, progress=False, log=logs.append)
    assert result.train_crops == 47 - 12  # 25% of each outcome (23 + 24 crops) held out
    assert all("val_accuracy" in row for row in result.history)
    assert result.roc_auc >= 0.9  # the toy teacher's soft probabilities: ranking learned within 3 epochs
    assert "distilled" in logs[-1] and "held-out" in logs[-1] and "teacher" in logs[0]
    assert AttributeClassifier(result.checkpoint).metrics["val_crops"] == 12


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


def test_teacher_scores_student_crops_like_the_classifier(trained):
    """The teacher maps the student's normalisation (and size) to its own: same probabilities as scoring the
    crops directly."""
    from singleshot.attributes import _normalise, _Teacher, load_attribute_net, predict_crops

    crops = (np.random.default_rng(0).random((5, 32, 32, 3)) * 255).astype(np.uint8)
    net, ck = load_attribute_net(trained.checkpoint)
    expected = predict_crops(net, crops, ck["backbone"]["mean_rgb"], ck["backbone"]["std_rgb"])
    student_mean, student_std = (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)
    teacher = _Teacher(trained.checkpoint, student_mean, student_std)
    got = teacher(_normalise(crops, student_mean, student_std)).numpy()
    assert np.allclose(got, expected, atol=1e-5)
    assert teacher(torch.zeros(2, 3, 48, 48)).shape == (2,)  # resized to the teacher's input


def test_cut_face_crops_from_a_dataset_and_refuse_to_mix(tmp_path, capsys):
    from singleshot.attributes import AttributeError_, cut_face_crops

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


def test_unlabeled_crops_are_trained_on_teacher_targets(crops, trained, tmp_path):
    config = AttributeConfig(name="bright", labels=("dark", "bright"), train=str(crops / "train"),
                             test=str(crops / "test"), exclude=None, input_size=24, epochs=2, batch_size=16,
                             lr=0.01, backbone_lr_factor=1.0, teacher=trained.checkpoint, distill_weight=0.5,
                             distill_online=False, unlabeled=[str(crops / "test" / "1")],
                             out=str(tmp_path / "student.pt"))
    logs = []
    result = train_attribute(config, progress=False, log=logs.append)
    assert any("10 unlabelled crops" in line for line in logs) and result.train_crops == 48
    with pytest.raises(ConfigError, match="need a teacher"):
        load_dataclass(AttributeConfig, None, ["unlabeled=[crops]"])
    with pytest.raises(ConfigError, match="distill_online"):
        load_dataclass(AttributeConfig, None, ["teacher=t.pt", "distill_weight=0.5", "mixup=0.2",
                                               "distill_online=false"])


def test_teacher_ensemble_averages_its_members(trained, tmp_path):
    from singleshot.attributes import _Teacher

    x = torch.randn(4, 3, 32, 32)
    one = _Teacher(trained.checkpoint, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    two = _Teacher([trained.checkpoint, trained.checkpoint], (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert torch.allclose(one(x), two(x), atol=1e-6) and "input 32" in two.describe()
    config = load_dataclass(AttributeConfig, None, ["teacher=[a.pt, b.pt]", "distill_weight=0.5"])
    assert config.teacher == ["a.pt", "b.pt"]


def test_attribute_head_runs_on_onnx_runtime_beside_a_pytorch_detector(trained):
    """Torch's per-call overhead dominates a few small crops: the head uses ONNX Runtime whenever it is installed."""
    pytest.importorskip("onnxruntime")
    detector = Detector(runtime="torch")
    assert detector.attribute(trained.checkpoint).runtime == "ort"
