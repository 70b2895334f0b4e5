"""benchmarks/face_errors.py: the per-band misses and confident false positives it reports."""

import importlib.util
from pathlib import Path

import numpy as np

from singleshot.structures import AnnotationSet, Sample

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "face_errors.py"


def load_script():
    spec = importlib.util.spec_from_file_location("face_errors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counts_misses_by_band_and_confident_boxes_on_no_face():
    face_errors = load_script()
    boxes = np.array([[10, 10, 29, 29], [100, 100, 199, 199]], np.float32)  # heights 20 and 100 (devkit +1)
    sample = Sample(Path("a.jpg"), "a.jpg", boxes, np.ones(2, np.int64), np.zeros(2, bool))
    data = AnnotationSet(Path("."), [sample], ["background", "face"], "csv")
    predictions = {"a.jpg": np.array([
        [101, 101, 199, 199, 0.95, 1],  # the large face
        [300, 300, 340, 340, 0.8, 1],  # on nothing
        [140, 100, 250, 199, 0.6, 1],  # the large face boxed badly: IoU between 0.3 and 0.5
    ])}
    result = face_errors.analyse(data, predictions, min_size=16)
    assert result["bands"]["16-32 px"] == {"ap": 0.0, "faces": 1, "missed": 1}
    assert result["bands"]["64-128 px"]["faces"] == 1 and result["bands"]["64-128 px"]["missed"] == 0
    assert result["bands"][">= 128 px"]["faces"] == 0
    assert result["false_positives"]["0.5"] == {"no_face_iou_0.5": 2, "no_face_iou_0.3": 1}
    assert result["false_positives"]["0.7"] == {"no_face_iou_0.5": 1, "no_face_iou_0.3": 1}
    assert result["false_positives"]["0.9"] == {"no_face_iou_0.5": 0, "no_face_iou_0.3": 0}
    assert result["max_recall"] == 0.5 and result["recall_at_p90"] == 0.5
    assert 0.0 < result["ap"] < 1.0


def test_recall_at_precision_is_zero_when_never_reached():
    face_errors = load_script()
    assert face_errors.recall_at_precision(np.array([0.2, 0.4]), np.array([0.5, 0.4]), 0.9) == 0.0
    assert face_errors.recall_at_precision(np.array([0.2, 0.4]), np.array([1.0, 0.95]), 0.9) == 0.4
