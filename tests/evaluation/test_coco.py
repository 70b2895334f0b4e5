"""The COCO protocol through pycocotools: perfect predictions, a loose box, crowd regions, the missing-package error."""

import sys
from pathlib import Path

import numpy as np
import pytest

from singleshot.data.formats.base import make_sample
from singleshot.evaluation import evaluate
from singleshot.evaluation.coco import STAT_NAMES, evaluate_coco, to_coco
from singleshot.structures import AnnotationReport, AnnotationSet


def make_set(images: dict[str, list], class_names=("background", "cat", "dog")) -> AnnotationSet:
    """``{key: [(x1, y1, x2, y2, label[, ignore]), ...]}``."""
    report = AnnotationReport()
    samples = [
        make_sample(Path(k), k, [o[:4] for o in objs], [o[4] for o in objs],
                    [bool(o[5]) if len(o) > 5 else False for o in objs], report, k, width=640, height=480)
        for k, objs in images.items()
    ]
    return AnnotationSet(Path("."), samples, list(class_names), "coco")


DATA = {
    "a.jpg": [(10, 10, 110, 110, 1), (200, 100, 300, 260, 2)],
    "b.jpg": [(50, 60, 90, 120, 1)],
}


def perfect() -> dict[str, np.ndarray]:
    return {k: np.array([[*o[:4], 0.9, o[4]] for o in objs], dtype=np.float64) for k, objs in DATA.items()}


def test_perfect_predictions(capsys):
    pytest.importorskip("pycocotools")
    result = evaluate(make_set(DATA), perfect())  # coco data -> coco protocol
    assert result.protocol == "coco" and list(result.metrics) == list(STAT_NAMES)
    for name in ["AP", "AP50", "AP75", "APm", "APl", "AR1", "AR10", "AR100", "ARm", "ARl"]:
        assert result.metrics[name] == pytest.approx(1.0), name
    assert result.metrics["APs"] == -1.0 and result.metrics["ARs"] == -1.0  # no object under 32 x 32: undefined
    assert capsys.readouterr().out == ""  # pycocotools' prints are swallowed
    assert result.details["summary"][0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95")
    (curve,) = result.curves
    assert len(curve.x) == 101 and curve.x[0] == 0.0 and curve.x[-1] == 1.0
    np.testing.assert_allclose(curve.y, 1.0)
    assert result.details["objects"] == 3 and result.details["detections"] == 3


def test_loose_box_ap50_one_ap_lower():
    pytest.importorskip("pycocotools")
    data = make_set({"a.jpg": [(0, 0, 100, 100, 1)]})
    # 100 x 52 inside 100 x 100: IoU 0.52, a match at IoU 0.50 only, of the ten thresholds .50:.05:.95.
    result = evaluate_coco(data, {"a.jpg": np.array([[0, 0, 100, 52, 0.9, 1]])})
    assert result.metrics["AP50"] == pytest.approx(1.0)
    assert result.metrics["AP75"] == 0.0
    assert result.metrics["AP"] == pytest.approx(0.1)
    assert result.metrics["AR100"] == pytest.approx(0.1)


def test_crowd_regions_are_ignored_and_bad_inputs_counted():
    pytest.importorskip("pycocotools")
    data = make_set({"a.jpg": [(0, 0, 100, 100, 1), (300, 300, 400, 400, 1, True)]})
    gt, results, _ = to_coco(data, {"a.jpg": np.array([[300, 300, 400, 400, 0.95, 1]])})
    assert [a["iscrowd"] for a in gt["annotations"]] == [0, 1] and [a["id"] for a in gt["annotations"]] == [1, 2]
    assert gt["annotations"][0]["bbox"] == [0, 0, 100, 100] and gt["annotations"][0]["area"] == 10000
    assert gt["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    assert results == [{"image_id": 1, "category_id": 1, "bbox": [300, 300, 100, 100], "score": 0.95}]
    predictions = {
        "a.jpg": np.array([[300, 300, 400, 400, 0.95, 1], [0, 0, 100, 100, 0.9, 1], [0, 0, 10, 10, 0.9, 5]]),
        "z.jpg": np.array([[0, 0, 10, 10, 0.9, 1]]),
    }
    result = evaluate_coco(data, predictions)
    # The detection on the crowd region is neither TP nor FP: the higher-scored one does not cost precision.
    assert result.metrics["AP"] == pytest.approx(1.0)
    assert result.details["crowd_or_ignored"] == 1 and result.details["objects"] == 1
    assert result.details["detections_with_unknown_label"] == 1
    assert result.details["predictions_for_unknown_images"] == 1


def test_no_predictions():
    pytest.importorskip("pycocotools")
    result = evaluate_coco(make_set(DATA), {})
    assert result.metrics["AP"] == 0.0 and result.metrics["AR100"] == 0.0 and result.details["detections"] == 0


def test_missing_pycocotools_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    monkeypatch.setitem(sys.modules, "pycocotools.cocoeval", None)
    with pytest.raises(RuntimeError, match=r"pip install 'singleshot\[coco\]'"):
        evaluate_coco(make_set(DATA), perfect())
