from pathlib import Path

import numpy as np
import pytest

from singleshot.data.formats import DataError, load_annotations
from singleshot.evaluation.landmarks import best_points_per_crop, normalised_mean_error, point_labelled_recall

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_nme_hand_computed():
    truth = np.array([[[0.0, 0], [10, 0], [5, 5], [2, 8], [8, 8]]])  # inter-ocular distance 10
    predicted = truth + [[1.0, 0]]  # every point 1 px off: error 0.1
    result = normalised_mean_error(predicted, truth)
    assert result.figures["nme"] == pytest.approx(0.1)
    assert result.figures["failure_rate"] == 0.0  # 0.1 is not above the threshold
    worse = normalised_mean_error(np.concatenate((predicted + [[1, 0]], np.full_like(truth, np.nan))),
                                  np.concatenate((truth, truth)))
    assert worse.figures["nme"] == pytest.approx(0.2) and worse.figures["failure_rate"] == 1.0
    assert worse.details == {"faces": 2, "missing": 1}
    with pytest.raises(DataError, match="shapes"):
        normalised_mean_error(truth[:, :4], truth)


def test_eye_scale_is_the_median_ratio_of_eye_distances():
    truth = np.array([[[0.0, 0], [10, 0], [5, 5], [2, 8], [8, 8]]] * 3)
    centre = truth.mean(axis=1, keepdims=True)
    predicted = centre + (truth - centre) * np.array([1.2, 1.5, 0.9])[:, None, None]  # faces 1.2x, 1.5x, 0.9x
    assert normalised_mean_error(predicted, truth).figures["eye_scale"] == pytest.approx(1.2)


def test_best_points_per_crop_takes_the_top_detection():
    rows = np.zeros((2, 16))
    rows[:, 4] = [0.3, 0.9]
    rows[1, 6:] = np.arange(10)
    points = best_points_per_crop({"a": rows, "b": np.zeros((0, 6))}, ["a", "b", "c"])
    np.testing.assert_allclose(points[0], np.arange(10).reshape(5, 2))
    assert np.isnan(points[1:]).all()


def test_point_labelled_recall_on_caltech_layout():
    data = load_annotations(f"caltech:{FIXTURES / 'caltech'}")  # pic00001: faces near (30, 40) and (110, 110)
    eyes_off = [20 + 1, 30, 40 + 1, 30]  # the first face's eyes 1 px right
    first = [0, 0, 60, 70, 0.9, 1, *eyes_off, 0, 0, 0, 0, 0, 0]
    missed_by_score = [90, 90, 130, 130, 0.2, 1] + [0] * 10  # covers the second face, below min_score
    result = point_labelled_recall(data, {"pic00001.jpg": np.array([first, missed_by_score])})
    assert result.details == {"faces": 3, "found_faces": 1}
    assert result.figures["found"] == pytest.approx(1 / 3)
    box = data.samples[0].boxes_xyxy[0]
    size = np.sqrt((box[2] - box[0]) * (box[3] - box[1]))
    assert result.figures["eye_error"] == pytest.approx(1 / size, rel=1e-5)
