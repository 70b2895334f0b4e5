"""The FDDB protocol: hand-made ROC cases, the matching, and the pixel overlap against the official drawing."""

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from singleshot.data.formats.base import make_sample
from singleshot.data.formats.fddb import EXTRA_COLUMNS, ellipse_to_box, read_fddb
from singleshot.evaluation import evaluate
from singleshot.evaluation.fddb import ellipse_mask, evaluate_fddb, rectangle_pixels, region_overlaps, sweep_image
from singleshot.structures import AnnotationReport, AnnotationSet

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
REAL_FDDB = SHARED / "annotations_only" / "fddb"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fddb"


def box_set(images: dict[str, list], ignore: dict[str, list] | None = None, size=None) -> AnnotationSet:
    """Ground truth given as boxes (a non-FDDB format): scored as rectangles."""
    report = AnnotationReport()
    samples = [
        make_sample(Path(k), k, boxes, [1] * len(boxes), (ignore or {}).get(k), report, k,
                    width=size and size[0], height=size and size[1])
        for k, boxes in images.items()
    ]
    return AnnotationSet(Path("."), samples, ["background", "face"], "csv")


def ellipse_set(images: dict[str, list], size=None) -> AnnotationSet:
    """FDDB ground truth: rows ``[major, minor, angle, cx, cy]``."""
    report = AnnotationReport()
    samples = []
    for key, rows in images.items():
        p = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        samples.append(
            make_sample(Path(key), key, ellipse_to_box(*p.T), [1] * len(p), None, report, key,
                        width=size and size[0], height=size and size[1],
                        extra={c: p[:, i] for i, c in enumerate(EXTRA_COLUMNS)})
        )
    return AnnotationSet(Path("."), samples, ["background", "face"], "fddb")


def dets(*rows) -> np.ndarray:
    return np.array([[*r, 1] if len(r) == 5 else r for r in rows], dtype=np.float64).reshape(-1, 6)


FACE = [0, 0, 99, 99]  # pixels 0..99 both ways: 10,000 pixels


def test_perfect_detection():
    result = evaluate_fddb(box_set({"a.jpg": [FACE]}), {"a.jpg": dets([*FACE, 0.9])})
    assert result.metrics == {"discrete_tpr@1000fp": 1.0, "continuous_tpr@1000fp": 1.0}
    assert result.curves[0].x.tolist() == [0, 0] and result.curves[0].y.tolist() == [0, 1]
    assert result.curves[0].x_label == "false positives" and result.curves[0].y_label == "true positive rate"
    assert "rectangles" in result.details["ground_truth"]


def test_perfect_detection_of_an_ellipse():
    # An ellipse's own bounding box: a true positive; the continuous score is the pixel IoU, about pi/4.
    face = [40.0, 30.0, math.pi / 2, 100.0, 100.0]
    box = ellipse_to_box(*face)[0]
    result = evaluate(ellipse_set({"a.jpg": [face]}), {"a.jpg": dets([*box, 0.9])})  # fddb data -> fddb protocol
    assert result.protocol == "fddb" and result.details["ground_truth"] == "ellipses (FDDB)"
    assert result.metrics["discrete_tpr@1000fp"] == 1.0
    _, _, mask = ellipse_mask(*face)
    px = rectangle_pixels(box[None])[0]
    rect_area = (px[2] - px[0] + 1) * (px[3] - px[1] + 1)
    assert mask.sum() <= rect_area
    assert result.metrics["continuous_tpr@1000fp"] == pytest.approx(mask.sum() / rect_area)
    assert 0.75 < result.metrics["continuous_tpr@1000fp"] < 0.82


def test_overlap_0_4_is_a_false_positive_but_counts_0_4_continuously():
    # Pixels 0..99 x 0..39: 4,000 of the face's 10,000 pixels, inside it: overlap 0.4.
    result = evaluate_fddb(box_set({"a.jpg": [FACE]}), {"a.jpg": dets([0, 0, 99, 39, 0.8])})
    assert result.metrics["discrete_tpr@1000fp"] == 0.0
    assert result.metrics["continuous_tpr@1000fp"] == pytest.approx(0.4)
    discrete, continuous = result.curves
    assert discrete.x.tolist() == [0, 1] and discrete.y.tolist() == [0, 0]
    assert continuous.x.tolist() == [0, 1] and continuous.y == pytest.approx([0, 0.4])


def test_two_detections_on_one_face():
    # The exact box (0.9) matches; the second (0.8, overlap 0.64) finds no free face: a false positive.
    result = evaluate_fddb(box_set({"a.jpg": [FACE]}), {"a.jpg": dets([*FACE, 0.9], [0, 0, 79, 79, 0.8])})
    discrete, continuous = result.curves
    assert discrete.x.tolist() == [0, 0, 1] and discrete.y.tolist() == [0, 1, 1]
    assert continuous.y.tolist() == [0, 1, 1]
    # Lower-scored exact box: at 0.9 only the 0.64 box is there (a TP, continuous 0.64); at 0.8 the matching
    # takes the exact box (1.0 > 0.64) and the other becomes the false positive.
    result = evaluate_fddb(box_set({"a.jpg": [FACE]}), {"a.jpg": dets([0, 0, 79, 79, 0.9], [*FACE, 0.8])})
    discrete, continuous = result.curves
    assert discrete.x.tolist() == [0, 0, 1] and discrete.y.tolist() == [0, 1, 1]
    assert continuous.y == pytest.approx([0, 0.64, 1.0])


def test_matching_maximises_total_overlap():
    # Face 0 overlaps det 0 (0.6) and det 1 (0.7); face 1 overlaps det 0 (0.55). A greedy match by score would
    # give det 0 -> face 0 only; the maximum-weight matching pairs det 0 -> face 1 and det 1 -> face 0.
    overlaps = np.array([[0.6, 0.7], [0.55, 0.0]])
    thr, tp_d, tp_c, fp = sweep_image(overlaps, np.array([True, True]), np.array([0.9, 0.8]))
    assert thr.tolist() == [0.9, 0.8]
    assert tp_d.tolist() == [1, 2] and fp.tolist() == [0, 0]
    assert tp_c == pytest.approx([0.6, 1.25])
    # Equal scores form one threshold; a zero-overlap detection is a false positive and matches nothing.
    thr, tp_d, tp_c, fp = sweep_image(np.array([[0.8, 0.0, 0.3]]), np.array([True]), np.array([0.5, 0.5, 0.2]))
    assert thr.tolist() == [0.5, 0.2] and tp_d.tolist() == [1, 1] and fp.tolist() == [1, 2]


def test_threshold_sweep_over_images():
    data = box_set({"a.jpg": [FACE], "b.jpg": [FACE], "c.jpg": [FACE]})  # c.jpg has no detections: a miss
    far = [300, 300, 340, 340]
    predictions = {
        "a.jpg": dets([*FACE, 0.9], [*far, 0.3]),
        "b.jpg": dets([*far, 0.7], [*FACE, 0.5], [*far, 0.3]),
        "z.jpg": dets([*FACE, 0.99]),  # not in the data: ignored, counted
    }
    result = evaluate_fddb(data, predictions, max_false_positives=1)
    discrete, continuous = result.curves
    # thresholds: inf, 0.9 (1 TP), 0.7 (+1 FP), 0.5 (+1 TP), 0.3 (+2 FP, one per image, merged into one point)
    assert discrete.x.tolist() == [0, 0, 1, 1, 3]
    assert discrete.y == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert continuous.y == pytest.approx(discrete.y)
    # At most 1 false positive: the lowest such threshold is 0.5.
    assert result.metrics == pytest.approx({"discrete_tpr@1fp": 2 / 3, "continuous_tpr@1fp": 2 / 3})
    assert result.details["threshold_at_operating_point"] == 0.5
    assert result.details["false_positives_at_operating_point"] == 1
    assert result.details["faces"] == 3 and result.details["detections"] == 5
    assert result.details["predictions_for_unknown_images"] == 1 and "note" not in result.details
    at0 = evaluate_fddb(data, predictions, max_false_positives=0)
    assert at0.metrics["discrete_tpr@0fp"] == pytest.approx(1 / 3)
    # Fewer false positives than asked for: the last point, and the details say so.
    default = evaluate_fddb(data, predictions)
    assert default.metrics["discrete_tpr@1000fp"] == pytest.approx(2 / 3)
    assert "only 3 false positives" in default.details["note"]


def test_ignored_ground_truth_and_label_filter():
    data = box_set({"a.jpg": [FACE, [200, 200, 299, 299]]}, ignore={"a.jpg": [False, True]})
    predictions = {"a.jpg": dets([200, 200, 299, 299, 0.9], [*FACE, 0.8], [*FACE, 0.7, 2])}
    result = evaluate_fddb(data, predictions, label=1)
    # The detection on the ignored face is neither TP nor FP; the ignored face is not counted.
    assert result.details["faces"] == 1 and result.details["detections"] == 2
    assert result.curves[0].x.tolist() == [0, 0, 0] and result.curves[0].y.tolist() == [0, 0, 1]
    # Without the label filter, the label-2 duplicate is a false positive.
    assert evaluate_fddb(data, predictions).curves[0].x.tolist() == [0, 0, 0, 1]


def test_no_faces_and_no_detections():
    empty = evaluate_fddb(box_set({"a.jpg": []}), {"a.jpg": dets([*FACE, 0.5])})
    assert empty.metrics["discrete_tpr@1000fp"] == 0.0 and "no ground-truth faces" in empty.details["note_faces"]
    none = evaluate_fddb(box_set({"a.jpg": [FACE]}), {})
    assert none.metrics["discrete_tpr@1000fp"] == 0.0 and none.curves[0].x.tolist() == [0]


def official_overlap(ellipse, box, size):
    """The official program's computation, literally: image-sized masks drawn by OpenCV, pixel counts.

    ``EllipsesSingleImage::read`` stores ``t = (pi - angle) * 180 / pi`` and ``EllipseR::display`` draws
    ``cvEllipse(center, cvSize(int(ra), int(rb)), 180 - t)``; ``RectangleR::display`` draws ``cvRectangle`` from
    ``cvPointFrom32f(x, y)`` to ``cvPointFrom32f(x + w, y + h)``.
    """
    a, b, angle, cx, cy = ellipse
    x, y, w, h = box[0], box[1], box[2] - box[0], box[3] - box[1]
    mask_a = np.zeros((size[1], size[0]), np.uint8)
    t = (math.pi - angle) * 180 / math.pi
    cv2.ellipse(mask_a, (round(cx), round(cy)), (int(a), int(b)), 180 - t, 0, 360, 1, -1)
    mask_d = np.zeros_like(mask_a)
    cv2.rectangle(mask_d, (round(x), round(y)), (round(x + w), round(y + h)), 1, -1)
    union = np.count_nonzero(mask_a | mask_d)
    return np.count_nonzero(mask_a & mask_d) / union if union else 0.0


def test_overlap_matches_the_official_image_sized_masks():
    rng = np.random.default_rng(0)
    size = (160, 120)
    for _ in range(40):
        a = rng.uniform(3, 60)
        ellipse = [a, a * rng.uniform(0.4, 1.0), rng.uniform(-math.pi, math.pi), *rng.uniform(-20, 180, 2)]
        x0, y0 = rng.uniform(-30, 170, 2)
        boxes = [[x0, y0, x0 + rng.uniform(1, 90), y0 + rng.uniform(1, 90)], ellipse_to_box(*ellipse)[0]]
        ours = region_overlaps([ellipse_mask(*ellipse, size=size)], rectangle_pixels(np.array(boxes), size))[0]
        expected = [official_overlap(ellipse, box, size) for box in boxes]
        np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_regions_are_clipped_to_known_image_sizes():
    # A face cut by the top edge: the official masks are image-sized, so only the visible part counts.
    face = [40.0, 30.0, math.pi / 2, 50.0, 20.0]
    box = [20.0, 0.0, 80.0, 60.0]
    clipped = evaluate_fddb(ellipse_set({"a.jpg": [face]}, size=(100, 100)), {"a.jpg": dets([*box, 0.9])})
    unclipped = evaluate_fddb(ellipse_set({"a.jpg": [face]}), {"a.jpg": dets([*box, 0.9])}, read_image_sizes=False)
    assert clipped.metrics["continuous_tpr@1000fp"] == pytest.approx(official_overlap(face, box, (100, 100)))
    assert unclipped.metrics["continuous_tpr@1000fp"] < clipped.metrics["continuous_tpr@1000fp"]
    assert unclipped.details["images_not_clipped"] == 1 and "not clipped" in unclipped.details["note_sizes"]


@pytest.mark.skipif(not REAL_FDDB.is_dir(), reason="shared FDDB annotations not present")
def test_real_fold_01_with_its_own_boxes():
    data = read_fddb(REAL_FDDB, folds=[1])
    predictions = {
        s.key: np.column_stack([s.boxes_xyxy, np.linspace(0.9, 0.1, len(s)), np.ones(len(s))]) for s in data.samples
    }
    result = evaluate_fddb(data, predictions)
    # Every ellipse's bounding box overlaps its ellipse by about pi/4 > 0.5: all 512 faces found, no false positive.
    assert result.details["faces"] == 512 and result.details["false_positives_at_lowest_threshold"] == 0
    assert result.metrics["discrete_tpr@1000fp"] == 1.0
    assert 0.74 < result.metrics["continuous_tpr@1000fp"] < 0.82


def test_fixture_fold_01_with_its_own_boxes():
    """:func:`test_real_fold_01_with_its_own_boxes` on the fixture's fold 01 (2 images, 3 ellipses), so the same
    path runs without ../shared. Each face's own bounding box overlaps its ellipse by the ellipse's share of the box:
    pi/4 for the two axis-aligned ones, pi * 20 * 10 / 1000 for the one at pi/4 (radii 20 and 10, box side
    2 sqrt(250)); measured on the pixel grid: 0.729 against 0.733."""
    data = read_fddb(FIXTURE, folds=[1])
    predictions = {
        s.key: np.column_stack([s.boxes_xyxy, np.linspace(0.9, 0.1, len(s)), np.ones(len(s))]) for s in data.samples
    }
    result = evaluate_fddb(data, predictions)
    assert result.details["faces"] == 3 and result.details["false_positives_at_lowest_threshold"] == 0
    assert result.metrics["discrete_tpr@1000fp"] == 1.0
    expected = (math.pi / 4 + math.pi / 4 + math.pi * 20 * 10 / 1000) / 3
    assert result.metrics["continuous_tpr@1000fp"] == pytest.approx(expected, abs=0.01)
