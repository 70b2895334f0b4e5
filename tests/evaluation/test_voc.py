"""The VOC protocol: hand-computed APs, difficult objects, duplicates, min_size, mAP, and a voc_eval.py port."""

from pathlib import Path

import numpy as np
import pytest

from singleshot.data.formats.base import make_sample
from singleshot.evaluation import evaluate
from singleshot.evaluation.voc import box_iou_voc, evaluate_voc, voc_ap
from singleshot.structures import AnnotationReport, AnnotationSet


def make_set(images: dict[str, list], class_names=("background", "cat", "dog")) -> AnnotationSet:
    """``{key: [(x1, y1, x2, y2, label[, difficult]), ...]}``."""
    report = AnnotationReport()
    samples = []
    for key, objects in images.items():
        boxes = [o[:4] for o in objects]
        labels = [o[4] for o in objects]
        difficult = [bool(o[5]) if len(o) > 5 else False for o in objects]
        samples.append(make_sample(Path(key), key, boxes, labels, difficult, report, key))
    return AnnotationSet(Path("."), samples, list(class_names), "voc")


def dets(*rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


A = [0, 0, 99, 99]
FAR = [300, 300, 349, 349]


def test_voc_ap_by_hand():
    recall, precision = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    # all-point: envelope 1 up to recall 0.5, 2/3 up to 1 -> 0.5 * 1 + 0.5 * 2/3
    assert voc_ap(recall, precision) == pytest.approx(0.5 + 1 / 3)
    # 11-point: t = 0 .. 0.5 (6 points) -> 1; t = 0.6 .. 1.0 (5 points) -> 2/3
    assert voc_ap(recall, precision, use_07_metric=True) == pytest.approx((6 + 5 * 2 / 3) / 11)
    # The devkit's np.arange(0, 1.1, 0.1) has 0.30000000000000004 as 4th point: recall 3/10 misses it.
    assert voc_ap(np.array([3 / 10]), np.array([1.0]), use_07_metric=True) == pytest.approx(3 / 11)
    assert voc_ap(np.zeros(0), np.zeros(0)) == 0.0 and voc_ap(np.zeros(0), np.zeros(0), True) == 0.0


def test_small_case_both_metrics():
    data = make_set({"a.jpg": [(*A, 1)], "b.jpg": [(*A, 1)]})
    predictions = {"a.jpg": dets([*A, 0.9, 1], [*FAR, 0.8, 1]), "b.jpg": dets([*A, 0.7, 1])}
    result = evaluate_voc(data, predictions)  # TP, FP, TP: recall .5 .5 1, precision 1 .5 2/3
    assert result.metrics["AP/cat"] == pytest.approx(0.5 + 1 / 3)
    assert result.metrics["mAP"] == pytest.approx(0.5 + 1 / 3)  # dog has no positives: not in the mean
    assert "AP/dog" not in result.metrics and result.details["classes_without_positives"] == ["dog"]
    np.testing.assert_allclose(result.curves[0].x, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(result.curves[0].y, [1.0, 0.5, 2 / 3])
    assert result.curves[0].name == "AP/cat" and result.curves[0].x_label == "recall"
    voc07 = evaluate_voc(data, predictions, use_07_metric=True)
    assert voc07.metrics["AP/cat"] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert voc07.details["metric"] == "11-point (VOC2007)"
    assert result.details["positives"] == {"cat": 2, "dog": 0} and result.details["detections"] == {"cat": 3, "dog": 0}


def test_difficult_objects():
    data = make_set({"a.jpg": [(*A, 1), (*FAR, 1, True)]})
    # The detection on the difficult object is neither TP nor FP, and the difficult object is not a positive.
    result = evaluate_voc(data, {"a.jpg": dets([*FAR, 0.9, 1], [*A, 0.8, 1])})
    assert result.details["positives"]["cat"] == 1 and result.details["ignored_ground_truth"] == 1
    np.testing.assert_allclose(result.curves[0].x, [0, 1])
    np.testing.assert_allclose(result.curves[0].y, [0, 1])  # tp / max(tp + fp, eps) with tp = fp = 0 -> 0
    assert result.metrics["AP/cat"] == 1.0
    assert evaluate_voc(data, {"a.jpg": dets([*FAR, 0.9, 1], [*A, 0.8, 1])}, use_07_metric=True).metrics["mAP"] == 1
    # Overlapping the difficult object best, even if also the normal one: still neither.
    data = make_set({"a.jpg": [(*A, 1), (0, 0, 99, 89, 1, True)]})
    result = evaluate_voc(data, {"a.jpg": dets([0, 0, 99, 88, 0.9, 1])})
    assert result.curves[0].x.tolist() == [0.0] and result.metrics["AP/cat"] == 0.0


def test_duplicates_and_best_object_already_taken():
    data = make_set({"a.jpg": [(*A, 1)]})
    twice = evaluate_voc(data, {"a.jpg": dets([*A, 0.9, 1], [*A, 0.8, 1])})
    np.testing.assert_allclose(twice.curves[0].y, [1.0, 0.5])  # the second detection is a false positive
    assert twice.metrics["AP/cat"] == 1.0
    late = evaluate_voc(data, {"a.jpg": dets([*FAR, 0.9, 1], [*A, 0.8, 1])})
    assert late.metrics["AP/cat"] == pytest.approx(0.5) and late.metrics["mAP"] == pytest.approx(0.5)
    # Objects A and B (B shifted right by 10). The second detection's best object is A (IoU .923), already
    # taken: a false positive, although B (IoU .887) is free. voc_eval.py looks no further.
    data = make_set({"a.jpg": [(*A, 1), (10, 0, 109, 99, 1)]})
    result = evaluate_voc(data, {"a.jpg": dets([*A, 0.9, 1], [4, 0, 103, 99, 0.8, 1])})
    np.testing.assert_allclose(result.curves[0].x, [0.5, 0.5])
    assert result.metrics["AP/cat"] == pytest.approx(0.5)


def test_strict_threshold_and_pixel_convention():
    # IoU exactly 0.5 is not a match (voc_eval.py: ovmax > ovthresh).
    half_plus_one = make_set({"a.jpg": [(0, 0, 9, 9, 1)]})  # 10 x 10 pixels
    assert evaluate_voc(half_plus_one, {"a.jpg": dets([0, 0, 9, 4, 0.9, 1])}).metrics["mAP"] == 0.0
    assert evaluate_voc(half_plus_one, {"a.jpg": dets([0, 0, 9, 4, 0.9, 1])}, iou_threshold=0.49).metrics["mAP"] == 1
    half = make_set({"a.jpg": [(0, 0, 10, 10, 1)]})
    assert evaluate_voc(half, {"a.jpg": dets([0, 0, 10, 5, 0.9, 1])}, plus_one=False).metrics["mAP"] == 0.0
    # Boxes sharing one pixel column intersect with +1 (10 / 190 > 0.05), not without.
    touching = {"a.jpg": dets([9, 0, 18, 9, 0.9, 1])}
    assert evaluate_voc(half_plus_one, touching, iou_threshold=0.05).metrics["mAP"] == 1.0
    assert evaluate_voc(half_plus_one, touching, iou_threshold=0.05, plus_one=False).metrics["mAP"] == 0.0
    np.testing.assert_allclose(box_iou_voc([[9, 0, 18, 9]], [[0, 0, 9, 9]]), [[10 / 190]])


def test_min_size_ignores_short_objects():
    # Heights with +1: 16 rows (kept at min_size 16) and 15 rows (ignored).
    data = make_set({"a.jpg": [(0, 0, 20, 15, 1), (100, 100, 120, 114, 1)]})
    predictions = {"a.jpg": dets([100, 100, 120, 114, 0.9, 1], [0, 0, 20, 15, 0.8, 1], [*FAR, 0.7, 1])}
    plain = evaluate_voc(data, predictions)
    assert plain.details["positives"]["cat"] == 2 and plain.metrics["mAP"] == 1.0
    small = evaluate_voc(data, predictions, min_size=16)
    assert small.details["positives"]["cat"] == 1 and small.details["min_size"] == 16
    np.testing.assert_allclose(small.curves[0].x, [0, 1, 1])  # the small face's detection counts for nothing
    np.testing.assert_allclose(small.curves[0].y, [0, 1, 0.5])
    assert small.metrics["mAP"] == 1.0
    # Without +1 the 15-row box (y 0..15) is 15 tall: ignored too.
    assert evaluate_voc(data, predictions, min_size=16, plus_one=False).details["positives"]["cat"] == 0


def test_multi_class_map_and_bookkeeping():
    data = make_set({"a.jpg": [(*A, 1), (*FAR, 2)], "b.jpg": [(*A, 2)], "c.jpg": []})
    predictions = {
        "a.jpg": dets([*A, 0.9, 1], [*FAR, 0.6, 2], [*A, 0.95, 2], [*A, 0.5, 7]),  # the 0.95 dog box is on a cat
        "c.jpg": dets([*A, 0.3, 1]),
        "z.jpg": dets([*A, 0.9, 1]),
    }
    result = evaluate(data, predictions, protocol="voc")
    # cat: TP then FP (c.jpg has no cat) -> AP 1. dog: FP (0.95), TP (0.6); b.jpg's dog missed -> AP 0.5 * 0.5.
    assert result.metrics["AP/cat"] == 1.0
    assert result.metrics["AP/dog"] == pytest.approx(0.25)
    assert result.metrics["mAP"] == pytest.approx(0.625)
    assert list(result.metrics) == ["mAP", "AP/cat", "AP/dog"] and len(result.curves) == 2
    assert result.details["detections_with_unknown_label"] == 1
    assert result.details["predictions_for_unknown_images"] == 1 and result.details["images"] == 3
    assert evaluate_voc(make_set({"a.jpg": []}), {}).metrics == {"mAP": 0.0}


# --- A plain-loop port of voc_eval.py (py-faster-rcnn), to cross-check the vectorised implementation. ----------


def port_voc_ap(rec, prec, use_07_metric):
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def port_voc_eval(gt, detections, classname, ovthresh, use_07_metric, plus_one, min_size):
    """``gt``: {image: [(box, cls, difficult)]}; ``detections``: [(image, score, box, cls)]."""
    one = 1.0 if plus_one else 0.0
    class_recs, npos = {}, 0
    for image, objects in gt.items():
        R = [o for o in objects if o[1] == classname]
        bbox = np.array([o[0] for o in R], dtype=float).reshape(-1, 4)
        difficult = np.array([o[2] or (o[0][3] - o[0][1] + one < min_size) for o in R], dtype=bool)
        npos = npos + sum(~difficult)
        class_recs[image] = {"bbox": bbox, "difficult": difficult, "det": [False] * len(R)}
    mine = [d for d in detections if d[3] == classname]
    image_ids = [d[0] for d in mine]
    confidence = np.array([d[1] for d in mine])
    BB = np.array([d[2] for d in mine], dtype=float).reshape(-1, 4)
    sorted_ind = np.argsort(-confidence)
    BB = BB[sorted_ind, :]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[d]]
        bb = BB[d, :]
        ovmax = -np.inf
        BBGT = R["bbox"]
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + one, 0.0)
            ih = np.maximum(iymax - iymin + one, 0.0)
            inters = iw * ih
            uni = (bb[2] - bb[0] + one) * (bb[3] - bb[1] + one) + (BBGT[:, 2] - BBGT[:, 0] + one) * (
                BBGT[:, 3] - BBGT[:, 1] + one
            ) - inters
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax > ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    if npos == 0:  # voc_eval.py would divide by zero; such classes get no AP
        return None, 0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return port_voc_ap(rec, prec, use_07_metric), npos


@pytest.mark.parametrize("seed", range(12))
def test_matches_a_plain_port_of_voc_eval(seed):
    rng = np.random.default_rng(seed)
    use_07, plus_one = bool(seed % 2), seed % 3 != 0
    min_size = [0.0, 20.0][seed % 4 == 1]
    gt, detections, images = {}, [], {}
    for i in range(int(rng.integers(3, 9))):
        key = f"img{i}.jpg"
        objects = []
        for _ in range(int(rng.integers(0, 6))):
            x, y = rng.integers(0, 200, 2)
            w, h = rng.integers(8, 80, 2)
            objects.append(((x, y, x + w, y + h), int(rng.integers(1, 3)), bool(rng.random() < 0.15)))
        gt[key] = objects
        images[key] = [(*o[0], o[1], o[2]) for o in objects]
        for _ in range(int(rng.integers(0, 10))):
            if objects and rng.random() < 0.7:  # near an object: jittered copy, sometimes the other class
                (x1, y1, x2, y2), cls, _ = objects[int(rng.integers(len(objects)))]
                box = np.array([x1, y1, x2, y2]) + rng.integers(-6, 7, 4)
                cls = cls if rng.random() < 0.85 else 3 - cls
            else:
                x, y = rng.integers(0, 200, 2)
                box, cls = np.array([x, y, x + rng.integers(8, 80), y + rng.integers(8, 80)]), int(rng.integers(1, 3))
            detections.append((key, float(rng.random()), box.tolist(), cls))
    predictions = {}
    for key, score, box, cls in detections:
        predictions.setdefault(key, []).append([*box, score, cls])
    predictions = {k: np.array(v, dtype=np.float64) for k, v in predictions.items()}
    result = evaluate_voc(
        make_set(images), predictions, use_07_metric=use_07, plus_one=plus_one, min_size=min_size
    )
    expected = []
    for c, name in [(1, "cat"), (2, "dog")]:
        ap, npos = port_voc_eval(gt, detections, c, 0.5, use_07, plus_one, min_size)
        assert result.details["positives"][name] == npos
        if npos:
            assert result.metrics[f"AP/{name}"] == pytest.approx(ap, abs=1e-12)
            expected.append(ap)
    assert result.metrics["mAP"] == pytest.approx(np.mean(expected) if expected else 0.0, abs=1e-12)


def test_size_band_ignores_ground_truth_outside_it():
    # a 20 px face found, a 60 px face found, a 60 px face missed
    data = make_set({"a": [(0, 0, 19, 19, 1), (100, 100, 159, 159, 1), (200, 200, 259, 259, 1)]}, ("bg", "face"))
    preds = {"a": dets([0, 0, 19, 19, 0.9, 1], [100, 100, 159, 159, 0.8, 1])}
    assert evaluate_voc(data, preds).metrics["mAP"] == pytest.approx(2 / 3)
    small = evaluate_voc(data, preds, min_size=16, max_size=32)
    # only the 20 px face counts; the detection of a 60 px face matches an ignored face: neither TP nor FP
    assert small.metrics["mAP"] == pytest.approx(1.0) and small.details["ignored_ground_truth"] == 2
    large = evaluate_voc(data, preds, min_size=32)
    assert large.metrics["mAP"] == pytest.approx(0.5)
