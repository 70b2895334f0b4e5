from pathlib import Path

import numpy as np
import pytest
import torch

from singleshot.attributes.classifier import AttributeClassifier
from singleshot.attributes.config import AttributeConfig
from singleshot.attributes.data import _normalise
from singleshot.attributes.model import load_attribute_net, predict_crops
from singleshot.attributes.training import _Teacher, best_threshold, roc_auc, train_attribute
from singleshot.config import ConfigError, load_dataclass


def test_training_learns_a_toy_attribute_and_excludes_listed_crops(trained):
    assert trained.train_crops == 47 and trained.test_crops == 20  # one excluded crop
    assert trained.accuracy >= 0.9 and trained.roc_auc >= 0.9
    assert Path(trained.checkpoint).is_file()


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(200), 1)  # many ties
    labels = rng.integers(0, 2, 200)
    pos, neg = scores[labels == 1], scores[labels == 0]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert roc_auc(scores, labels) == pytest.approx(brute)


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


def test_teacher_scores_student_crops_like_the_classifier(trained):
    """The teacher maps the student's normalisation (and size) to its own: same probabilities as scoring the
    crops directly."""
    crops = (np.random.default_rng(0).random((5, 32, 32, 3)) * 255).astype(np.uint8)
    net, ck = load_attribute_net(trained.checkpoint)
    expected = predict_crops(net, crops, ck["backbone"]["mean_rgb"], ck["backbone"]["std_rgb"])
    student_mean, student_std = (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)
    teacher = _Teacher(trained.checkpoint, student_mean, student_std)
    got = teacher(_normalise(crops, student_mean, student_std)).numpy()
    assert np.allclose(got, expected, atol=1e-5)
    assert teacher(torch.zeros(2, 3, 48, 48)).shape == (2,)  # resized to the teacher's input


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
    x = torch.randn(4, 3, 32, 32)
    one = _Teacher(trained.checkpoint, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    two = _Teacher([trained.checkpoint, trained.checkpoint], (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert torch.allclose(one(x), two(x), atol=1e-6) and "input 32" in two.describe()
    config = load_dataclass(AttributeConfig, None, ["teacher=[a.pt, b.pt]", "distill_weight=0.5"])
    assert config.teacher == ["a.pt", "b.pt"]


def test_best_threshold_by_hand():
    probs = np.array([0.1, 0.3, 0.35, 0.6, 0.8])
    labels = np.array([0, 0, 1, 1, 1])
    assert best_threshold(probs, labels) == pytest.approx(0.325)  # between the last negative and the first positive
    assert best_threshold(np.array([0.2, 0.9]), np.array([0, 1])) == 0.5  # 0.5 already separates: kept


def test_degradations_and_calibrated_threshold(crops, tmp_path):
    """Training with every degradation and roll; the threshold chosen on the held-out crops is folded into the
    last bias, so the saved network's 0.5 is that threshold."""
    config = AttributeConfig(name="bright", labels=("dark", "bright"), train=str(crops / "train"),
                             test=str(crops / "test"), exclude=None, input_size=24, epochs=2, batch_size=16,
                             lr=0.01, backbone_lr_factor=1.0, val_fraction=0.25, val_every=1, calibrate=True,
                             augment_grayscale=0.3, augment_low_resolution=0.3, augment_blur=0.3, augment_jpeg=0.3,
                             augment_rotate_deg=10.0, out=str(tmp_path / "robust.pt"))
    logs = []
    result = train_attribute(config, progress=False, log=logs.append)
    metrics = AttributeClassifier(result.checkpoint).metrics
    assert 0.0 < metrics["calibrated_threshold"] < 1.0 and "degraded_accuracy" in metrics
    assert all("val_degraded_accuracy" in row for row in result.history)
    assert "chosen on the held-out crops" in logs[-1]
    with pytest.raises(ConfigError, match="val_fraction"):
        load_dataclass(AttributeConfig, None, ["calibrate=true"])
    with pytest.raises(ConfigError, match="probability"):
        load_dataclass(AttributeConfig, None, ["augment_blur=2"])


def test_aligned_crops_train_an_attribute_that_aligns_detections(crops, tmp_path):
    import json
    import shutil

    from singleshot.attributes.config import AttributeError_
    from singleshot.landmarks import TEMPLATE_112

    config = AttributeConfig(name="bright", labels=("dark", "bright"), train=str(tmp_path / "c" / "train"),
                             test=str(tmp_path / "c" / "test"), exclude=None, input_size=24, epochs=3, lr=0.01,
                             batch_size=16, backbone_lr_factor=1.0, align=True, out=str(tmp_path / "aligned.pt"))
    shutil.copytree(crops, tmp_path / "c")
    with pytest.raises(AttributeError_, match="not aligned"):
        train_attribute(config, progress=False, log=lambda s: None)
    (tmp_path / "c" / "aligned.json").write_text(json.dumps({"size": 24, "scale": 1.3}))
    result = train_attribute(config, progress=False, log=lambda s: None)
    clf = AttributeClassifier(result.checkpoint)
    assert clf.align and clf.crop_scale == 1.3
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 220
    boxes = np.array([[110, 10, 190, 90], [110, 10, 190, 90]], np.float32)
    points = np.stack((TEMPLATE_112 / 112 * 60 + [120, 20], np.full((5, 2), np.nan)))
    points[0, :, 0] -= 95  # the first face's points on the dark half (its whole crop): it follows the points, not the box
    probs = clf.predict(image, boxes, points)
    assert probs[0] < 0.5 < probs[1]  # the second, without points, is cut around its box on the bright half
    np.testing.assert_allclose(clf.predict(image, boxes), [probs[1], probs[1]], atol=1e-6)


def test_square_teachers_score_the_square_crops_of_an_aligned_students_faces(crops, trained, tmp_path):
    """The aligned crops here are the square ones inverted (dark <-> bright) under the same names, so a teacher that
    scored them instead of their square copies would teach the opposite of their labels."""
    import json

    import cv2

    from singleshot.attributes.config import AttributeError_

    for path in crops.rglob("*.jpg"):
        out = tmp_path / "aligned" / path.relative_to(crops)
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), 255 - cv2.imread(str(path)))
    (tmp_path / "aligned" / "aligned.json").write_text(json.dumps({"size": 32, "scale": 1.0}))
    values = {"name": "bright", "labels": ("dark", "bright"), "train": str(tmp_path / "aligned" / "train"),
              "test": str(tmp_path / "aligned" / "test"), "exclude": None, "input_size": 32, "epochs": 3,
              "batch_size": 16, "lr": 0.01, "backbone_lr_factor": 1.0, "teacher": trained.checkpoint,
              "distill_weight": 1.0, "distill_online": False, "align": True,
              "unlabeled": [str(tmp_path / "aligned" / "test" / "1")], "out": str(tmp_path / "student.pt")}
    logs = []
    result = train_attribute(AttributeConfig(**values, teacher_square=[str(crops / "train"),
                                                                       str(crops / "test" / "1")]),
                             progress=False, log=logs.append)
    assert result.accuracy >= 0.9 and any("square crops" in line for line in logs)
    # the same teacher on the aligned crops themselves teaches the inverse
    wrong = train_attribute(AttributeConfig(**values | {"out": str(tmp_path / "wrong.pt")}), progress=False,
                            log=lambda s: None)
    assert wrong.accuracy <= 0.1
    other = tmp_path / "other"
    other.mkdir()
    for i in range(3):
        cv2.imwrite(str(other / f"g{i}.jpg"), np.full((32, 32, 3), 200, np.uint8))
    with pytest.raises(AttributeError_, match="no square crop for 10 of 10 crops, e.g. 0/f0.jpg"):
        train_attribute(AttributeConfig(**values, teacher_square=[str(crops / "train"), str(other)]),
                        progress=False, log=lambda s: None)
    with pytest.raises(ConfigError, match="teacher_square needs 2 folders"):
        load_dataclass(AttributeConfig, None, ["teacher=t.pt", "align=true", "unlabeled=[u]", "distill_online=false",
                                               "teacher_square=[s]"])


def test_train_views_join_their_faces_and_leave_held_out_faces_out(crops, trained, tmp_path):
    """Views match training faces by outcome and file name; a view filed under another outcome, or of a face not
    trained on, is not taken; with a held-out split, views of held-out faces stay out of training."""
    import shutil

    import cv2

    from singleshot.attributes.config import AttributeError_
    from singleshot.attributes.training import _train_views

    views = tmp_path / "views" / "train"
    for rel in ("0/f1.jpg", "1/f2.jpg", "0/f2.jpg", "1/f9.jpg"):
        (views / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(crops / "train" / rel, views / rel)
    config = AttributeConfig(input_size=32, train_views=[str(views)])
    names = ["train/1/f2.jpg", "train/0/f3.jpg", "train/0/f1.jpg"]
    (got, rows), (held, held_rows) = _train_views(config, set(), names, ["train/1/f9.jpg", "train/1/f4.jpg"])
    assert held_rows.tolist() == [0] and len(held) == 1  # the held-out face's view, apart
    assert rows.tolist() == [2, 0]  # 0/f1 is row 2, 1/f2 row 0; 0/f2 (another outcome) and 1/f9 are not faces here
    assert np.abs(got[0].astype(int) - cv2.imread(str(views / "0/f1.jpg"))[..., ::-1]).max() == 0
    with pytest.raises(AttributeError_, match="none of its 4 crops shows a training face"):
        _train_views(config, set(), ["train/0/f7.jpg"])
    with pytest.raises(AttributeError_, match="missing"):
        _train_views(AttributeConfig(input_size=32, train_views=[str(tmp_path / "nowhere")]), set(), names)

    # every training crop as a view: 47 faces (one excluded), 12 held out -> 35 views join training
    logs = []
    config = AttributeConfig(name="bright", labels=("dark", "bright"), train=str(crops / "train"),
                             test=str(crops / "test"), exclude=str(crops / "exclude.txt"), input_size=24, epochs=2,
                             batch_size=16, lr=0.01, backbone_lr_factor=1.0, teacher=trained.checkpoint,
                             distill_weight=0.5, distill_online=False, val_fraction=0.25, seed=1,
                             train_views=[str(crops / "train")], out=str(tmp_path / "views.pt"))
    result = train_attribute(config, progress=False, log=logs.append)
    assert any(line.startswith("35 other views of the training faces") and "(12 of held-out faces scored apart)"
               in line for line in logs)
    assert result.train_crops == 35 and result.accuracy >= 0.9
    metrics = AttributeClassifier(result.checkpoint).metrics
    assert metrics["val_views_crops"] == 12 and "val_views_accuracy" in result.history[-1]


def test_unlabeled_views_learn_their_faces_teacher_targets(crops, trained, tmp_path):
    """A view of an unlabelled face is matched by its name inside its folder, and trains on that face's target."""
    import shutil

    from singleshot.attributes.config import AttributeError_
    from singleshot.attributes.training import _unlabeled_views

    views = tmp_path / "views"
    views.mkdir()
    for name in ("f0.jpg", "f2.jpg", "stranger.jpg"):
        shutil.copy(crops / "test" / "1" / ("f1.jpg" if name == "stranger.jpg" else name), views / name)
    values = {"name": "bright", "labels": ("dark", "bright"), "train": str(crops / "train"),
              "test": str(crops / "test"), "exclude": None, "input_size": 24, "epochs": 2, "batch_size": 16,
              "lr": 0.01, "backbone_lr_factor": 1.0, "teacher": trained.checkpoint, "distill_weight": 0.5,
              "distill_online": False, "unlabeled": [str(crops / "test" / "1"), str(crops / "test" / "0")],
              "out": str(tmp_path / "student.pt")}
    config = AttributeConfig(**values, unlabeled_views=[str(views), ""])
    extra_names = [f"0/f{i}.jpg" for i in range(10)] + [f"1/f{i}.jpg" for i in range(10)]
    got, rows = _unlabeled_views(config, extra_names)
    assert rows.tolist() == [0, 2] and len(got) == 2  # f0, f2 of the first folder; "stranger" is no face of it
    logs = []
    result = train_attribute(config, progress=False, log=logs.append)
    assert any(line.startswith("2 other views of the unlabelled faces") for line in logs) and result.accuracy >= 0.9
    with pytest.raises(AttributeError_, match="shows a face of"):
        _unlabeled_views(AttributeConfig(**values, unlabeled_views=["", str(views)]), extra_names[:10])
    with pytest.raises(ConfigError, match="unlabeled_views needs 2 folders"):
        load_dataclass(AttributeConfig, None, ["teacher=t.pt", "unlabeled=[a, b]", "unlabeled_views=[v]",
                                               "distill_online=false"])
    with pytest.raises(ConfigError, match="distill_online: false"):
        load_dataclass(AttributeConfig, None, ["teacher=t.pt", "distill_weight=0.5", "train_views=[v]"])


def test_extra_labelled_folders_train_on_their_labels_with_a_held_out_part(crops, trained, tmp_path):
    """Crops of another labelled set join training; the same share of them is held out and scored apart, and
    joins the calibration."""
    from singleshot.attributes.config import AttributeError_

    logs = []
    config = AttributeConfig(name="bright", labels=("dark", "bright"), train=str(crops / "train"),
                             test=str(crops / "test"), exclude=str(crops / "exclude.txt"), input_size=24, epochs=2,
                             batch_size=16, lr=0.01, backbone_lr_factor=1.0, teacher=trained.checkpoint,
                             distill_weight=0.5, distill_online=False, val_fraction=0.2, val_every=1, seed=1,
                             calibrate=True, extra_train=[str(crops / "test")],
                             out=str(tmp_path / "extra.pt"))
    result = train_attribute(config, progress=False, log=logs.append)
    assert any(line.startswith("16 labelled crops from") and "4 held out" in line for line in logs)
    assert all("val_extra_accuracy" in row for row in result.history)
    metrics = AttributeClassifier(result.checkpoint).metrics
    assert metrics["val_extra_crops"] == 4 and result.accuracy >= 0.9
    assert "held-out extra_train crops" in logs[-1]
    # the same file names below two folders: a view could not tell which face it shows
    config.train_views = [str(crops / "train")]
    with pytest.raises(AttributeError_, match="both named 0/f1.jpg"):
        train_attribute(config, progress=False, log=logs.append)


def test_every_view_joins_the_row_of_its_own_face(crops, trained, tmp_path, monkeypatch):
    """Views of training, extra labelled and unlabelled faces together: each view (here a copy of its face's
    crop) takes the row that holds its own face, whatever came before it."""
    import shutil

    from singleshot.attributes import training

    for outcome in ("0", "1"):  # extra labelled faces under their own names
        (tmp_path / "more" / outcome).mkdir(parents=True)
        for i in range(4):
            shutil.copy(crops / "test" / outcome / f"f{i}.jpg", tmp_path / "more" / outcome / f"m{i}.jpg")
    views = tmp_path / "views"
    shutil.copytree(crops / "train", views)
    for outcome in ("0", "1"):
        for i in range(4):
            shutil.copy(tmp_path / "more" / outcome / f"m{i}.jpg", views / outcome / f"m{i}.jpg")
    joins = []
    original = training._join_views

    def recording(x_all, y_all, label_w, fixed_targets, views_x, rows):
        joins.append((x_all[rows], views_x))
        return original(x_all, y_all, label_w, fixed_targets, views_x, rows)

    monkeypatch.setattr(training, "_join_views", recording)
    config = AttributeConfig(name="bright", labels=("dark", "bright"), train=str(crops / "train"),
                             test=str(crops / "test"), exclude=None, input_size=24, epochs=1, batch_size=16,
                             lr=0.01, backbone_lr_factor=1.0, teacher=trained.checkpoint, distill_weight=0.5,
                             distill_online=False, unlabeled=[str(crops / "test" / "1")],
                             unlabeled_views=[str(crops / "test" / "1")], train_views=[str(views)],
                             extra_train=[str(tmp_path / "more")], out=str(tmp_path / "all.pt"))
    train_attribute(config, progress=False, log=lambda s: None)
    assert [len(v) for _, v in joins] == [48 + 8, 10]  # training and extra faces' views, then the unlabelled ones
    for faces, views_x in joins:
        assert torch.equal(faces, views_x)


def test_extra_labelled_crops_learn_the_square_teachers_share_of_their_target(crops, trained, tmp_path):
    """The extra labelled faces here are filed under the wrong outcome and outnumber the training faces, and their
    aligned crops are their square crops inverted: only the teacher's target on their square crops
    (extra_square) teaches the attribute. The same run with labels alone learns the opposite."""
    import json

    import cv2

    from singleshot.attributes.config import AttributeError_

    for path in crops.rglob("*.jpg"):
        image = cv2.imread(str(path))
        out = tmp_path / "aligned" / path.relative_to(crops)
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), 255 - image)
        split, outcome = path.parent.parent.name, int(path.parent.name)
        for kind, pixels in (("more_aligned", 255 - image), ("more_square", image)):
            wrong = tmp_path / kind / str(1 - outcome)
            wrong.mkdir(parents=True, exist_ok=True)
            for copy in range(2):
                cv2.imwrite(str(wrong / f"{split}_{copy}_{path.name}"), pixels)
    (tmp_path / "aligned" / "aligned.json").write_text(json.dumps({"size": 32, "scale": 1.0}))
    values = {"name": "bright", "labels": ("dark", "bright"), "train": str(tmp_path / "aligned" / "train"),
              "test": str(tmp_path / "aligned" / "test"), "exclude": None, "input_size": 32, "epochs": 3,
              "batch_size": 16, "lr": 0.01, "backbone_lr_factor": 1.0, "teacher": trained.checkpoint,
              "distill_weight": 1.0, "distill_online": False, "align": True,
              "teacher_square": [str(crops / "train")], "extra_train": [str(tmp_path / "more_aligned")]}
    logs = []
    taught = train_attribute(AttributeConfig(**values, extra_distill_weight=1.0,
                                             extra_square=[str(tmp_path / "more_square")],
                                             out=str(tmp_path / "taught.pt")), progress=False, log=logs.append)
    assert taught.accuracy >= 0.9
    assert any(line.startswith("136 labelled crops from") and "teachers' share of the target 1.0" in line for line in logs)
    labels_alone = train_attribute(AttributeConfig(**values, out=str(tmp_path / "labels.pt")), progress=False,
                                   log=lambda s: None)
    assert labels_alone.accuracy <= 0.5
    with pytest.raises(AttributeError_, match=r"test: no square crop for 136 of 136 crops, e.g. [01]/\w+\.jpg "
                                              r"\(extra_square must hold"):
        train_attribute(AttributeConfig(**values, extra_distill_weight=1.0, extra_square=[str(crops / "test")],
                                        out=str(tmp_path / "none.pt")), progress=False, log=lambda s: None)


def test_extra_distill_weight_is_validated():
    base = ["teacher=t.pt", "distill_online=false", "extra_train=[m]"]
    with pytest.raises(ConfigError, match=r"extra_distill_weight must be in \[0, 1\]"):
        load_dataclass(AttributeConfig, None, base + ["extra_distill_weight=1.5"])
    with pytest.raises(ConfigError, match="needs extra_train and a teacher, offline"):
        load_dataclass(AttributeConfig, None, ["teacher=t.pt", "extra_train=[m]", "extra_distill_weight=0.5"])
    with pytest.raises(ConfigError, match="needs extra_train and a teacher"):
        load_dataclass(AttributeConfig, None, ["extra_train=[m]", "extra_distill_weight=0.5"])
    with pytest.raises(ConfigError, match="extra_square is read only with teacher_square"):
        load_dataclass(AttributeConfig, None, base + ["extra_square=[s]"])
    with pytest.raises(ConfigError, match="extra_square needs 1 folders"):
        load_dataclass(AttributeConfig, None, base + ["align=true", "teacher_square=[s]",
                                                      "extra_distill_weight=0.5"])
