import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from singleshot.attributes.classifier import ATTRIBUTES, AttributeClassifier
from singleshot.cli import main
from singleshot.predictor import Detector

ROOT = Path(__file__).resolve().parents[2]


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


def test_classifier_on_onnx_runtime_matches_torch(trained):
    pytest.importorskip("onnxruntime")
    image = (np.random.default_rng(0).random((60, 120, 3)) * 255).astype(np.uint8)
    boxes = np.array([[5, 5, 45, 45], [70, 10, 110, 50], [60, 0, 119, 59]], np.float32)
    a = AttributeClassifier(trained.checkpoint).predict(image, boxes)
    b = AttributeClassifier(trained.checkpoint, runtime="ort").predict(image, boxes)
    assert np.allclose(a, b, atol=1e-5)
    det = Detector(runtime="ort").detect(str(ROOT / "assets" / "demo.jpg"), attributes=[trained.checkpoint])
    assert det.attributes["bright"].shape == (len(det),)


def test_attribute_head_runs_on_onnx_runtime_beside_a_pytorch_detector(trained):
    """Torch's per-call overhead dominates a few small crops: the head uses ONNX Runtime whenever it is installed."""
    pytest.importorskip("onnxruntime")
    detector = Detector(runtime="torch")
    assert detector.attribute(trained.checkpoint).runtime == "ort"


@pytest.mark.parametrize("flip_tta", [False, True])
def test_bundled_aligned_head_on_onnx_runtime_matches_torch(tmp_path, flip_tta):
    """The session takes the uint8 crops and normalises them in its graph; with the mirror average too."""
    pytest.importorskip("onnxruntime")
    import torch

    checkpoint = torch.load(ATTRIBUTES.get("smile")(), map_location="cpu", weights_only=False)
    checkpoint["flip_tta"] = flip_tta
    torch.save(checkpoint, tmp_path / "smile.pt")
    image = np.ascontiguousarray(cv2.imread(str(ROOT / "assets" / "demo.jpg"))[..., ::-1])
    faces = Detector().detect(image)
    a = AttributeClassifier(tmp_path / "smile.pt").predict(image, faces.boxes_xyxy, faces.landmarks)
    b = AttributeClassifier(tmp_path / "smile.pt", runtime="ort").predict(image, faces.boxes_xyxy, faces.landmarks)
    assert faces.landmarks is not None and len(a) == len(faces) >= 5 and np.allclose(a, b, atol=1e-5)
