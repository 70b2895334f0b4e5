"""The ``widerface`` protocol: hand-made cases with their AP worked out, a plain port of the official MATLAB code
to compare with on random cases, the submission reader, and the real ground-truth files when present.

Notation in the comments: ``t_i = 1 - i/1000`` (i = 1..1000) are the thresholds; a point of the curve is
``(recall, precision)``; AP is VOCap (precision envelope from the right, summed over recall steps).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from singleshot.data.formats import DataError
from singleshot.evaluation import evaluate, list_protocols
from singleshot.evaluation.widerface import (
    SETTINGS,
    box_overlap,
    evaluate_widerface,
    find_ground_truth,
    load_ground_truth,
    read_wider_submission,
    voc_ap,
)
from singleshot.structures import AnnotationSet, Sample

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "annotations_only" / "widerface"
SHARED_GT = SHARED / "eval_tools_ground_truth"
#: Four small .mat files in the official structure (checked against the real ones when ../shared is present, see
#: test_fixture_mat_structure_matches_real) for the images and faces of wider_face_split/wider_face_val_bbx_gt.txt
#: beside them; written once with write_ground_truth and FIXTURE_EVENTS.
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "widerface"
FIXTURE_GT = FIXTURE / "eval_tools_ground_truth"
#: What FIXTURE_GT holds (write_ground_truth's argument): the boxes of wider_face_val_bbx_gt.txt as the official
#: files give them (an all-zero box for an image without faces, the zero-width box kept); the tiny face is hard
#: only and the invalid ones in no setting, as in the real files.
FIXTURE_EVENTS = [
    ("0--Parade", [
        ("0_Parade_marchingband_1_465", [[345, 211, 4, 4], [331, 126, 3, 3]], {"hard": [1]}),
        ("0_Parade_Parade_0_275", [[0, 0, 0, 0]], {}),
    ]),
    ("1--Handshaking", [
        ("1_Handshaking_Handshaking_1_35", [[10, 20, 30, 40], [50, 60, 0, 10], [70, 80, 5, 6]],
         {"easy": [1], "medium": [1], "hard": [1, 2]}),
        ("1_Handshaking_Handshaking_1_94", [[0, 0, 0, 0]], {}),
    ]),
]
EVENT = "0--Parade"


# ------------------------------------------------------------------------------------------------------ fixtures
def write_ground_truth(folder: Path, events: list) -> Path:
    """Write the four official .mat files into ``folder``, structured as the real ones (checked below).

    ``events``: ``[(event, [(name, boxes x y w h, {setting: 1-based indices}), ...]), ...]``. As in the official
    files: cell arrays ``(E, 1)`` of ``(n, 1)`` cells, names as char arrays, boxes int32 ``(G, 4)``, ``gt_list``
    entries uint8 ``(k, 1)`` or an empty ``(0, 0)`` uint8; each setting file repeats the three lists.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n_events = len(events)
    event_list = np.empty((n_events, 1), dtype=object)
    file_list = np.empty((n_events, 1), dtype=object)
    face_bbx_list = np.empty((n_events, 1), dtype=object)
    gt_lists = {s: np.empty((n_events, 1), dtype=object) for s in SETTINGS}
    for e, (event, images) in enumerate(events):
        event_list[e, 0] = np.array([event])
        files = np.empty((len(images), 1), dtype=object)
        boxes = np.empty((len(images), 1), dtype=object)
        keeps = {s: np.empty((len(images), 1), dtype=object) for s in SETTINGS}
        for j, (name, xywh, keep) in enumerate(images):
            files[j, 0] = np.array([name])
            boxes[j, 0] = np.array(xywh, dtype=np.int32).reshape(-1, 4)
            for s in SETTINGS:
                idx = keep.get(s, [])
                keeps[s][j, 0] = np.array(idx, dtype=np.uint8).reshape(-1, 1) if idx else np.zeros((0, 0), np.uint8)
        file_list[e, 0], face_bbx_list[e, 0] = files, boxes
        for s in SETTINGS:
            gt_lists[s][e, 0] = keeps[s]
    common = {"event_list": event_list, "file_list": file_list, "face_bbx_list": face_bbx_list}
    sio.savemat(folder / "wider_face_val.mat", common)
    for s in SETTINGS:
        sio.savemat(folder / f"wider_{s}_val.mat", {**common, "gt_list": gt_lists[s]})
    return folder


def all_settings(*idx: int) -> dict:
    return {s: list(idx) for s in SETTINGS}


def data_at(root: Path, samples: list | None = None) -> AnnotationSet:
    return AnnotationSet(root=root, samples=samples or [], class_names=["background", "face"], format="widerface")


def key(name: str, event: str = EVENT) -> str:
    return f"WIDER_val/images/{event}/{name}.jpg"


def rows(*boxes) -> np.ndarray:
    """``(K, 6)`` predictions from ``(x, y, w, h, score)`` tuples (label 1)."""
    return np.array([[x, y, x + w, y + h, s, 1] for x, y, w, h, s in boxes], dtype=np.float64).reshape(-1, 6)


def run(tmp_path: Path, images: list, predictions: dict, **options):
    gt = write_ground_truth(tmp_path / "gt", [(EVENT, images)])
    return evaluate_widerface(data_at(tmp_path), predictions, gt_dir=gt, **options)


FACE_A, FACE_B, FACE_C = (10, 10, 20, 20), (100, 100, 20, 20), (200, 10, 30, 30)
FAR = (400, 400, 20, 20)  # overlaps no face


# ------------------------------------------------------------------------------------------------ hand-made cases
def test_registered_and_default():
    assert "widerface" in list_protocols()


def test_perfect_predictions(tmp_path):
    # Every face predicted exactly: precision 1 at every threshold with a proposal, recall reaches 1 -> AP 1.
    images = [("a", [FACE_A, FACE_B, FACE_C], all_settings(1, 2, 3))]
    result = run(tmp_path, images, {key("a"): rows((*FACE_A, 0.9), (*FACE_B, 0.8), (*FACE_C, 0.7))})
    assert result.metrics == {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    assert list(result.metrics) == ["easy", "medium", "hard"]
    assert [c.name for c in result.curves] == ["easy", "medium", "hard"]
    assert result.details["faces_easy"] == 3 and result.details["images"] == 1
    # the default protocol of a widerface AnnotationSet is this one
    assert evaluate(data_at(tmp_path), {key("a"): rows((*FACE_A, 0.9))}, gt_dir=tmp_path / "gt").protocol == "widerface"


def test_predictions_on_ignored_faces_do_not_lower_precision(tmp_path):
    # Face B is in "hard" only. Its prediction ranks first. In easy and medium B is ignored: the prediction matches
    # B (IoU 1 >= 0.5) and is removed from the proposals -> thresholds t_1..t_999 have no proposal (precision 0/0,
    # no area), t_1000: 1 proposal, 1 recalled -> AP 1. In hard it is a true positive -> AP 1 too.
    images = [("a", [FACE_A, FACE_B], {"easy": [1], "medium": [1], "hard": [1, 2]})]
    preds = {key("a"): rows((*FACE_B, 1.0), (*FACE_A, 0.0))}
    result = run(tmp_path, images, preds)
    assert result.metrics == {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    assert result.details["faces_easy"] == 1 and result.details["faces_hard"] == 2
    # the same prediction far from any face is a false positive ranked first: t_1..t_999 give (0, 0), t_1000 gives
    # recall 1 with precision 1/2 -> AP = 1 * 0.5
    result = run(tmp_path, images, {key("a"): rows((*FAR, 1.0), (*FACE_A, 0.0))})
    assert result.metrics["easy"] == pytest.approx(0.5, abs=1e-12)


def test_false_positive_ranked_first(tmp_path):
    # Faces A, B. Scores 1, 0.5, 0 normalise to themselves (min 0, max 1).
    images = [("a", [FACE_A, FACE_B], all_settings(1, 2))]
    # Ranking TP_A 1.0, FP 0.5, TP_B 0.0:
    #   t_1..t_499  (t > 0.5):  1 proposal, 1 recalled -> (0.5, 1)
    #   t_500..t_999 (0.5 >= t > 0): 2 proposals, 1 recalled -> (0.5, 0.5)
    #   t_1000 (t = 0): 3 proposals, 2 recalled -> (1, 2/3)
    #   AP = 0.5 * max(1, 0.5, 2/3) + 0.5 * 2/3 = 5/6
    tp_first = run(tmp_path, images, {key("a"): rows((*FACE_A, 1.0), (*FAR, 0.5), (*FACE_B, 0.0))})
    assert tp_first.metrics["easy"] == pytest.approx(5 / 6, abs=1e-12)
    # Ranking FP 1.0, TP_A 0.5, TP_B 0.0:
    #   t_1..t_499: 1 proposal, 0 recalled -> (0, 0); t_500..t_999: (0.5, 1/2); t_1000: (1, 2/3)
    #   AP = 0.5 * max(0.5, 2/3) + 0.5 * 2/3 = 2/3: the false positive ranked first costs 1/3 against AP 1.
    fp_first = run(tmp_path, images, {key("a"): rows((*FAR, 1.0), (*FACE_A, 0.5), (*FACE_B, 0.0))})
    assert fp_first.metrics["easy"] == pytest.approx(2 / 3, abs=1e-12)
    curve = fp_first.curves[0]
    assert curve.x[0] == 0 and curve.y[0] == 0
    assert curve.x[-1] == 1 and curve.y[-1] == pytest.approx(2 / 3)


def test_duplicates_count_once(tmp_path):
    # TP_A 1.0, a shifted duplicate of A 0.5 (IoU 0.68 with A, so it matches A again), TP_B 0.0:
    #   t_1..t_499: (0.5, 1); t_500..t_999: 2 proposals but still 1 face recalled -> (0.5, 0.5); t_1000: (1, 2/3)
    #   AP = 5/6, as with a false positive in second place.
    images = [("a", [FACE_A, FACE_B], all_settings(1, 2))]
    dup = (12, 12, 20, 20)
    result = run(tmp_path, images, {key("a"): rows((*FACE_A, 1.0), (*dup, 0.5), (*FACE_B, 0.0))})
    assert result.metrics["easy"] == pytest.approx(5 / 6, abs=1e-12)
    curve = result.curves[0]
    np.testing.assert_allclose(curve.x[499:999], 0.5)  # recall stays 1/2: the duplicate recalls nothing new
    np.testing.assert_allclose(curve.y[499:999], 0.5)
    # A duplicate ranked last only adds a lower-precision point at the same recall: AP 1.
    result = run(tmp_path, images, {key("a"): rows((*FACE_A, 1.0), (*FACE_B, 0.5), (*dup, 0.0))})
    assert result.metrics["easy"] == 1.0


def test_scores_normalised_then_binned(tmp_path):
    images = [("a", [FACE_A, FACE_B], all_settings(1, 2))]
    # Raw scores 20, 19.995, 10: min-max normalised to 1, 0.9995, 0 over the whole set. 0.9995 >= t_1 = 0.999, so
    # TP_A and the false positive enter at the same (first) threshold: the point (0.5, 1) never appears.
    #   t_1..t_999: 2 proposals, 1 recalled -> (0.5, 0.5); t_1000: (1, 2/3); AP = 0.5 * 2/3 + 0.5 * 2/3 = 2/3
    # (5/6 with a finer grid, where TP_A is alone above the first threshold: 1 - 1/10000 > 0.9995).
    preds = {key("a"): rows((*FACE_A, 20.0), (*FAR, 19.995), (*FACE_B, 10.0))}
    result = run(tmp_path, images, preds)
    assert result.metrics["easy"] == pytest.approx(2 / 3, abs=1e-12)
    assert result.details["score_min"] == 10.0 and result.details["score_max"] == 20.0
    assert run(tmp_path, images, preds, thresh_num=10000).metrics["easy"] == pytest.approx(5 / 6, abs=1e-12)
    # Normalisation makes AP invariant to an increasing affine map of all scores.
    scaled = {k: np.c_[v[:, :4], 3 * v[:, 4] - 7, v[:, 5:]] for k, v in preds.items()}
    assert run(tmp_path, images, scaled).metrics["easy"] == pytest.approx(2 / 3, abs=1e-12)


def test_normalisation_is_single_precision(tmp_path):
    # As norm_score.m, normalised scores are float32: 0.3 -> 0.30000001192..., which passes t_700 = 1 - 0.7 =
    # 0.30000000000000004 (a float64 0.3 would not). So the false positive enters at t_700: 699 points (0.5, 1).
    images = [("a", [FACE_A, FACE_B], all_settings(1, 2))]
    result = run(tmp_path, images, {key("a"): rows((*FACE_A, 1.0), (*FAR, 0.3), (*FACE_B, 0.0))})
    assert int((result.curves[0].y == 1).sum()) == 699
    assert result.metrics["easy"] == pytest.approx(5 / 6, abs=1e-12)


def test_equal_scores(tmp_path):
    # All scores equal: MATLAB divides 0 by 0 (NaN scores, AP 0); we set every normalised score to 1, so all
    # predictions count at every threshold: TP then FP (stable order) -> one point (1, 1/2) -> AP 1/2.
    images = [("a", [FACE_A], all_settings(1))]
    result = run(tmp_path, images, {key("a"): rows((*FACE_A, 0.7), (*FAR, 0.7))})
    assert result.metrics["easy"] == pytest.approx(0.5, abs=1e-12)
    assert result.details["score_min"] == result.details["score_max"] == pytest.approx(0.7)
    # a single prediction is the same case
    assert run(tmp_path, images, {key("a"): rows((*FACE_A, 0.2))}).metrics["easy"] == 1.0


def test_predictions_sorted_by_score(tmp_path):
    # read_pred.m sorts each image's predictions by score: file order does not matter.
    images = [("a", [FACE_A, FACE_B], all_settings(1, 2))]
    ordered = rows((*FAR, 1.0), (*FACE_A, 0.5), (*FACE_B, 0.0))
    shuffled = ordered[[2, 0, 1]]
    assert run(tmp_path, images, {key("a"): shuffled}).metrics == run(tmp_path, images, {key("a"): ordered}).metrics


def test_plus_one_overlap_convention():
    # Face x y w h = 0 0 9 9 -> corners (0, 0, 9, 9) -> 10 x 10 pixels with boxoverlap's +1. A prediction of
    # corners (0, 0, 6.2, 6.2) covers 7.2 x 7.2: IoU 51.84 / 100 = 0.5184 (without the +1: 38.44 / 81 = 0.4746).
    iou = box_overlap(np.array([[0, 0, 9, 9]]), np.array([[0, 0, 6.2, 6.2]]))
    assert iou.shape == (1, 1)
    assert iou[0, 0] == pytest.approx(51.84 / 100)
    # disjoint boxes, and boxes touching in one pixel column (x2 = 9, x1 = 9: width 1 with the +1)
    np.testing.assert_allclose(
        box_overlap(np.array([[0, 0, 9, 9]]), np.array([[20, 0, 29, 9], [9, 0, 18, 9]])), [[0.0], [10 / 190]]
    )


def test_plus_one_decides_the_match(tmp_path):
    images = [("a", [(0, 0, 9, 9)], all_settings(1))]
    result = run(tmp_path, images, {key("a"): rows((0, 0, 6.2, 6.2, 0.9))})
    assert result.metrics["easy"] == 1.0  # matched only thanks to the +1 (0.5184 >= 0.5 > 0.4746)
    assert run(tmp_path, images, {key("a"): rows((0, 0, 6.2, 6.2, 0.9))}, iou_threshold=0.52).metrics["easy"] == 0.0


def test_images_without_predictions_and_empty_ground_truth(tmp_path):
    images = [
        ("a", [FACE_A], all_settings(1)),
        ("b", [FACE_B], all_settings(1)),  # no predictions: its face is a miss
        ("c", [], {}),  # no ground-truth box: skipped, its prediction is not a false positive
        ("d", [(0, 0, 0, 0)], {}),  # an official "no face" image: a [0 0 0 0] box outside every setting
    ]
    preds = {key("a"): rows((*FACE_A, 1.0)), key("c"): rows((*FAR, 0.5))}
    result = run(tmp_path, images, preds)
    # faces: 2 (b counted although skipped); recall 1/2 at precision 1 -> AP 0.5
    assert result.metrics["easy"] == pytest.approx(0.5, abs=1e-12)
    assert result.details["faces_easy"] == 2
    assert result.details["images"] == 4 and result.details["images_without_predictions"] == 2
    # the same false positive on image d is counted: t_1..t_499: (0.5, 1), then (0.5, 1/2) -> AP 0.5 * 1
    # unchanged in area terms, but the last point's precision drops to 1/2
    preds = {key("a"): rows((*FACE_A, 1.0)), key("d"): rows((*FAR, 0.5))}
    result = run(tmp_path, images, preds)
    assert result.curves[0].y[-1] == pytest.approx(0.5)
    # ...and a prediction on d's [0 0 0 0] box matches that ignored box and is removed
    preds = {key("a"): rows((*FACE_A, 1.0)), key("d"): rows((0, 0, 0, 0, 0.5))}
    assert run(tmp_path, images, preds).curves[0].y[-1] == 1.0


def test_setting_without_faces_is_nan(tmp_path):
    images = [("a", [FACE_A], {"hard": [1]})]
    result = run(tmp_path, images, {key("a"): rows((*FACE_A, 1.0))})
    assert np.isnan(result.metrics["easy"]) and np.isnan(result.metrics["medium"])
    assert result.metrics["hard"] == 1.0


def test_key_forms(tmp_path):
    images = [("a_1", [FACE_A], all_settings(1)), ("b_2", [FACE_B], all_settings(1))]
    expected = run(tmp_path, images, {key("a_1"): rows((*FACE_A, 1.0)), key("b_2"): rows((*FACE_B, 0.5))})
    assert expected.metrics["easy"] == 1.0
    for ka, kb in [(f"{EVENT}/a_1.jpg", "b_2.jpg"), ("a_1", f"/abs/{EVENT}/b_2.jpg"), ("x/a_1.jpg", "b_2.JPG")]:
        result = run(tmp_path, images, {ka: rows((*FACE_A, 1.0)), kb: rows((*FACE_B, 0.5))})
        assert result.metrics == expected.metrics, (ka, kb)
    result = run(tmp_path, images, {key("a_1"): rows((*FACE_A, 1.0)), "nothing.jpg": rows((*FAR, 1.0))})
    assert result.details["predictions_for_unknown_images"] == 1
    assert result.details["predictions_for_unknown_images_examples"] == ["nothing.jpg"]
    assert result.metrics["easy"] == pytest.approx(0.5)  # b has no prediction
    with pytest.raises(DataError, match="both name image"):
        run(tmp_path, images, {key("a_1"): rows((*FACE_A, 1.0)), "a_1.jpg": rows((*FACE_A, 1.0))})
    with pytest.raises(DataError, match="none of the 1 keys"):
        run(tmp_path, images, {"WIDER_val/images/9--X/zzz.jpg": rows((*FACE_A, 1.0))})


def test_labels_and_bad_rows(tmp_path):
    images = [("a", [FACE_A], all_settings(1))]
    preds = {key("a"): np.vstack([rows((*FACE_A, 0.5)), np.array([[*FAR[:2], 420, 420, 1.0, 2]])])}
    result = run(tmp_path, images, preds)
    assert result.metrics["easy"] == 1.0  # the label-2 row is not a face prediction
    assert result.details["predictions_other_labels_dropped"] == 1
    five = {key("a"): rows((*FACE_A, 0.5))[:, :5]}
    assert run(tmp_path, images, five).metrics["easy"] == 1.0
    with pytest.raises(DataError, match="non-finite"):
        run(tmp_path, images, {key("a"): rows((*FACE_A, float("nan")))})
    with pytest.raises(DataError, match=r"\(K, 6\)"):
        run(tmp_path, images, {key("a"): np.zeros((2, 3))})


def test_present_only(tmp_path):
    images = [("a", [FACE_A], all_settings(1)), ("b", [FACE_B, FACE_C], all_settings(1, 2))]
    preds = {key("a"): rows((*FACE_A, 1.0))}
    assert run(tmp_path, images, preds).metrics["easy"] == pytest.approx(1 / 3)  # b's 2 faces are misses
    image = tmp_path / "WIDER_val" / "images" / EVENT / "a.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"")
    result = run(tmp_path, images, preds, present_only=True)
    assert result.metrics["easy"] == 1.0
    assert result.details["images"] == 1 and result.details["faces_easy"] == 1 and result.details["present_only"]
    assert result.details["predictions_for_absent_images"] == 0
    with_b = {**preds, key("b"): rows((*FACE_B, 0.5))}
    result = run(tmp_path, images, with_b, present_only=True)
    assert result.metrics["easy"] == 1.0 and result.details["predictions_for_absent_images"] == 1
    # an image found through a sample's image_path, elsewhere than ROOT/WIDER_val/images
    elsewhere = tmp_path / "elsewhere" / "b.jpg"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"")
    sample = Sample(elsewhere, key("b"), np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))
    data = data_at(tmp_path, [sample])
    result = evaluate_widerface(data, preds, present_only=True, gt_dir=tmp_path / "gt")
    assert result.details["images"] == 2 and result.details["faces_easy"] == 3
    image.unlink()
    elsewhere.unlink()
    with pytest.raises(DataError, match="no val image found"):
        run(tmp_path, images, preds, present_only=True)


def test_ground_truth_discovery(tmp_path):
    images = [("a", [FACE_A], all_settings(1))]
    for n, sub in enumerate(("eval_tools/ground_truth", "ground_truth", "eval_tools_ground_truth", "x/y/gt")):
        root = tmp_path / f"root{n}"
        write_ground_truth(root / sub, [(EVENT, images)])
        assert find_ground_truth(root) == root / sub
        result = evaluate_widerface(data_at(root), {key("a"): rows((*FACE_A, 1.0))})
        assert result.metrics["easy"] == 1.0 and result.details["gt_dir"] == str(root / sub)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="wider_face_val.mat not found"):
        evaluate_widerface(data_at(tmp_path / "empty"), {})
    gt = write_ground_truth(tmp_path / "partial", [(EVENT, images)])
    (gt / "wider_hard_val.mat").unlink()
    with pytest.raises(DataError, match="wider_hard_val.mat: WIDER FACE ground-truth file not found"):
        load_ground_truth(gt)
    (gt / "wider_face_val.mat").write_text("not a mat file")
    with pytest.raises(DataError, match="cannot read"):
        load_ground_truth(gt)


def test_data_of_another_split(tmp_path):
    write_ground_truth(tmp_path / "gt", [(EVENT, [("a", [FACE_A], all_settings(1))])])
    sample = Sample(
        tmp_path / "x.jpg",
        "WIDER_train/images/1--H/zz.jpg",
        np.zeros((0, 4), np.float32),
        np.zeros(0, np.int64),
        np.zeros(0, bool),
    )
    with pytest.raises(DataError, match="covers the val split"):
        evaluate_widerface(data_at(tmp_path, [sample]), {}, gt_dir=tmp_path / "gt")


def test_voc_ap():
    # one step to recall 1 at precision 1; NaN precisions (no proposal) add nothing, as MATLAB's max skips NaN
    assert voc_ap(np.array([0.0, 1.0]), np.array([np.nan, 1.0])) == 1.0
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)
    assert voc_ap(np.array([0.0]), np.array([0.0])) == 0.0


# ------------------------------------------------------------------------------------------------ submission files
def _write_submission(folder: Path, files: dict) -> Path:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def test_read_submission(tmp_path):
    folder = _write_submission(
        tmp_path / "sub",
        {
            f"{EVENT}/a.txt": f"{EVENT}/a.jpg\n2\n10 10 20 20 0.9\n400 400 20 20 0.4 7\n",
            f"{EVENT}/b.txt": "b\n0\n",
            "1--Handshaking/c.txt": "c.jpg\n1\n\n1.5 2.5 3 4 0.1\n9 9 9 9 9\n",  # blank line skipped, extra ignored
        },
    )
    preds = read_wider_submission(folder)
    assert sorted(preds) == [f"{EVENT}/a.jpg", f"{EVENT}/b.jpg", "1--Handshaking/c.jpg"]
    np.testing.assert_allclose(preds[f"{EVENT}/a.jpg"], [[10, 10, 30, 30, 0.9, 1], [400, 400, 420, 420, 0.4, 1]])
    assert preds[f"{EVENT}/b.jpg"].shape == (0, 6)
    np.testing.assert_allclose(preds["1--Handshaking/c.jpg"], [[1.5, 2.5, 4.5, 6.5, 0.1, 1]])
    # evaluated straight away: a's face found first, then a false positive -> AP 1 (FP ranked last)
    images = [("a", [FACE_A], all_settings(1)), ("b", [], {})]
    gt = write_ground_truth(tmp_path / "gt", [(EVENT, images)])
    result = evaluate_widerface(data_at(tmp_path), preds, gt_dir=gt)
    assert result.metrics["easy"] == 1.0
    assert result.details["predictions_for_unknown_images"] == 1  # c is not in this ground truth


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("", "a.txt:", "empty file"),
        ("a.jpg\n", "a.txt:1:", "no line 2"),
        ("a.jpg\ntwo\n", "a.txt:2:", "number of boxes"),
        ("a.jpg\n-3\n", "a.txt:2:", "negative"),
        ("a.jpg\n2\n1 2 3 4 0.5\n", "a.txt:2:", "holds 1 box line"),
        ("a.jpg\n1\n1 2 3 4\n", "a.txt:3:", "5 numbers"),
        ("a.jpg\n2\n1 2 3 4 0.5\n1 2 x 4 0.5\n", "a.txt:4:", "expected x y w h score"),
    ],
)
def test_read_submission_malformed(tmp_path, text, where, words):
    folder = _write_submission(tmp_path / "sub", {f"{EVENT}/a.txt": text})
    with pytest.raises(DataError) as err:
        read_wider_submission(folder)
    message = str(err.value)
    assert message.startswith(str(folder / EVENT / where)), message
    assert words in message and "\n" not in message


def test_read_submission_missing(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_wider_submission(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no prediction files"):
        read_wider_submission(tmp_path / "empty")


# ------------------------------------------------------------------------------- the plain port of the MATLAB code
def plain_official_eval(
    gt_dir: Path, predictions: dict, iou_thresh: float = 0.5, thresh_num: int = 1000, only: set | None = None
) -> dict:
    """A deliberately literal port of wider_eval.m / read_pred.m / norm_score.m / evaluation.m / VOCap.m.

    ``predictions``: ``{"WIDER_val/images/<event>/<name>.jpg": (K, 6) xyxy rows}`` (the only interface difference:
    the MATLAB reads ``x y w h score`` files, so boxes are turned into that first with ``w = x2 - x1``). ``only``:
    the (event, name) pairs to evaluate (None: all). Equal normalisation bounds give scores 1 (our documented
    choice; MATLAB gets NaN). Returns ``{setting: (ap, propose, recall)}``.
    """
    gt = sio.loadmat(str(gt_dir / "wider_face_val.mat"))
    event_list, file_list = gt["event_list"], gt["file_list"]
    event_num = event_list.shape[0]

    # read_pred.m: per event, per image, the predictions sorted by score, descending (MATLAB's sort is stable)
    pred_list = []
    for i in range(event_num):
        event = str(event_list[i][0][0])
        img_list = file_list[i][0]
        bbx_list = []
        for j in range(img_list.shape[0]):
            name = str(img_list[j][0][0])
            table = predictions.get(f"WIDER_val/images/{event}/{name}.jpg")
            if (only is not None and (event, name) not in only) or table is None or len(table) == 0:
                bbx_list.append(None)
                continue
            bbx = []
            for r in table:
                if r[5] != 1:
                    continue
                bbx.append([r[0], r[1], r[2] - r[0], r[3] - r[1], r[4]])
            order = sorted(range(len(bbx)), key=lambda k: -bbx[k][4])
            bbx_list.append(np.array([bbx[k] for k in order], dtype=np.float64).reshape(-1, 5) if bbx else None)
        pred_list.append(bbx_list)

    # norm_score.m: bounds start at realmin/realmax('single'), so they (and the results) are single precision
    max_score = np.float32(np.finfo(np.float32).tiny)
    min_score = np.float32(np.finfo(np.float32).max)
    for i in range(event_num):
        for bbx in pred_list[i]:
            if bbx is None:
                continue
            max_score = np.float32(max(float(max_score), float(np.max(bbx[:, 4]))))
            min_score = np.float32(min(float(min_score), float(np.min(bbx[:, 4]))))
    for i in range(event_num):
        for bbx in pred_list[i]:
            if bbx is None:
                continue
            for k in range(bbx.shape[0]):
                if max_score - min_score == 0:
                    bbx[k, 4] = 1.0
                else:
                    bbx[k, 4] = float((np.float32(bbx[k, 4]) - min_score) / (max_score - min_score))

    def boxoverlap(a, b):
        x1 = np.maximum(a[:, 0], b[0])
        y1 = np.maximum(a[:, 1], b[1])
        x2 = np.minimum(a[:, 2], b[2])
        y2 = np.minimum(a[:, 3], b[3])
        w = x2 - x1 + 1
        h = y2 - y1 + 1
        inter = w * h
        aarea = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
        barea = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            o = inter / (aarea + barea - inter)
        o[w <= 0] = 0
        o[h <= 0] = 0
        return o

    def matlab_max(values):  # [m, idx] = max(v): NaN skipped, first index of the maximum
        best, idx = np.nan, 0
        for k, v in enumerate(values):
            if not np.isnan(v) and (np.isnan(best) or v > best):
                best, idx = v, k
        return best, idx

    def image_evaluation(pred_info, gt_bbx, ignore):
        pred_recall = np.zeros(pred_info.shape[0])
        recall_list = np.zeros(gt_bbx.shape[0])
        proposal_list = np.ones(pred_info.shape[0])
        pred_info = pred_info.copy()
        gt_bbx = gt_bbx.copy()
        pred_info[:, 2] = pred_info[:, 0] + pred_info[:, 2]
        pred_info[:, 3] = pred_info[:, 1] + pred_info[:, 3]
        gt_bbx[:, 2] = gt_bbx[:, 0] + gt_bbx[:, 2]
        gt_bbx[:, 3] = gt_bbx[:, 1] + gt_bbx[:, 3]
        for h in range(pred_info.shape[0]):
            overlap_list = boxoverlap(gt_bbx, pred_info[h, :4])
            max_overlap, idx = matlab_max(overlap_list)
            if max_overlap >= iou_thresh:
                if ignore[idx] == 0:
                    recall_list[idx] = -1
                    proposal_list[h] = -1
                elif recall_list[idx] == 0:
                    recall_list[idx] = 1
            pred_recall[h] = len(np.flatnonzero(recall_list == 1))
        return pred_recall, proposal_list

    def image_pr_info(pred_info, proposal_list, pred_recall):
        img_pr_info = np.zeros((thresh_num, 2))
        for t in range(1, thresh_num + 1):
            thresh = 1 - t / thresh_num
            found = np.flatnonzero(pred_info[:, 4] >= thresh)
            if len(found) == 0:
                img_pr_info[t - 1, 0] = 0
                img_pr_info[t - 1, 1] = 0
            else:
                r_index = found[-1]
                img_pr_info[t - 1, 0] = len(np.flatnonzero(proposal_list[: r_index + 1] == 1))
                img_pr_info[t - 1, 1] = pred_recall[r_index]
        return img_pr_info

    def voc_ap_plain(rec, prec):
        mrec = [0.0, *rec, 1.0]
        mpre = [0.0, *prec, 0.0]
        for i in range(len(mpre) - 2, -1, -1):
            a, b = mpre[i], mpre[i + 1]
            mpre[i] = b if np.isnan(a) else (a if np.isnan(b) else max(a, b))
        ap = 0.0
        for i in range(1, len(mrec)):
            if mrec[i] != mrec[i - 1]:
                ap += (mrec[i] - mrec[i - 1]) * mpre[i]
        return ap

    out = {}
    for setting in SETTINGS:
        st = sio.loadmat(str(gt_dir / f"wider_{setting}_val.mat"))
        face_bbx_list, gt_list = st["face_bbx_list"], st["gt_list"]  # evaluation.m load()s the setting file
        org_pr_cruve = np.zeros((thresh_num, 2))
        count_face = 0
        for i in range(event_num):
            event = str(event_list[i][0][0])
            img_list = file_list[i][0]
            for j in range(img_list.shape[0]):
                if only is not None and (event, str(img_list[j][0][0])) not in only:
                    continue
                gt_bbx = face_bbx_list[i][0][j][0].astype(np.float64)
                pred_info = pred_list[i][j]
                keep_index = gt_list[i][0][j][0]
                count_face += keep_index.size
                if gt_bbx.size == 0 or pred_info is None:
                    continue
                ignore = np.zeros(gt_bbx.shape[0])
                if keep_index.size:
                    ignore[keep_index.ravel().astype(int) - 1] = 1
                pred_recall, proposal_list = image_evaluation(pred_info, gt_bbx, ignore)
                org_pr_cruve += image_pr_info(pred_info, proposal_list, pred_recall)
        pr_cruve = np.zeros((thresh_num, 2))
        for i in range(thresh_num):
            with np.errstate(divide="ignore", invalid="ignore"):
                pr_cruve[i, 0] = np.float64(org_pr_cruve[i, 1]) / org_pr_cruve[i, 0]
                pr_cruve[i, 1] = np.float64(org_pr_cruve[i, 1]) / count_face
        propose, recall = pr_cruve[:, 0], pr_cruve[:, 1]  # wider_plot.m: VOCap(recall, precision)
        ap = voc_ap_plain(list(recall), list(propose)) if count_face else float("nan")
        out[setting] = (ap, propose, recall)
    return out


def _compare(result, plain, tol=1e-9):
    for s, curve in zip(SETTINGS, result.curves):
        ap, precision, recall = plain[s]
        if np.isnan(ap):
            assert np.isnan(result.metrics[s])
            continue
        assert result.metrics[s] == pytest.approx(ap, abs=tol), s
        valid = ~np.isnan(precision)
        np.testing.assert_allclose(curve.x, recall[valid], atol=tol)
        np.testing.assert_allclose(curve.y, precision[valid], atol=tol)


def _random_case(rng: np.random.Generator):
    events, predictions = [], {}
    discrete = rng.random() < 0.4  # scores from a few values: ties, equal bins, values on bin edges (0.3, 0.7)
    equal = rng.random() < 0.1  # every score equal
    for e in range(int(rng.integers(1, 4))):
        event = f"{e}--Event"
        images = []
        for j in range(int(rng.integers(1, 6))):
            name = f"{e}_Event_{j}"
            n_gt = int(rng.integers(0, 7))
            xy = rng.integers(0, 60, size=(n_gt, 2))
            wh = rng.integers(3, 40, size=(n_gt, 2))
            degenerate = rng.random(n_gt) < 0.1  # zero and negative sizes, as in the official files
            wh[degenerate] = rng.integers(-2, 1, size=(int(degenerate.sum()), 2))
            boxes = np.c_[xy, wh].tolist()
            hard = [k + 1 for k in range(n_gt) if rng.random() < 0.85]
            medium = [k for k in hard if rng.random() < 0.7]
            easy = [k for k in medium if rng.random() < 0.7]
            images.append((name, boxes, {"easy": easy, "medium": medium, "hard": hard}))
            if rng.random() < 0.15:
                continue  # no predictions for this image
            preds = []
            for b in boxes:
                if rng.random() < 0.7:  # a detection near the face
                    jitter = rng.normal(0, 1.5, size=4)
                    preds.append([b[0] + jitter[0], b[1] + jitter[1], b[2] + jitter[2], b[3] + jitter[3]])
                if rng.random() < 0.2:  # a duplicate
                    preds.append([b[0] + 1, b[1], b[2], b[3]])
            for _ in range(int(rng.integers(0, 4))):  # false positives
                preds.append([*rng.uniform(0, 80, size=2), *rng.uniform(1, 30, size=2)])
            if not preds and rng.random() < 0.5:
                predictions[key(name, event)] = np.zeros((0, 6))
                continue
            scores = rng.choice([0.0, 0.3, 0.7, 1.0], size=len(preds)) if discrete else rng.random(len(preds))
            if equal:
                scores[:] = 0.42
            predictions[key(name, event)] = np.array(
                [[x, y, x + w, y + h, s, 1] for (x, y, w, h), s in zip(preds, scores)]
            ).reshape(-1, 6)
        events.append((event, images))
    return events, predictions


@pytest.mark.parametrize("seed", range(24))
def test_against_plain_port(tmp_path, seed):
    rng = np.random.default_rng(seed)
    events, predictions = _random_case(rng)
    gt = write_ground_truth(tmp_path / "gt", events)
    thresh_num = 1000 if seed % 3 == 0 else int(rng.integers(5, 200))
    iou = 0.5 if seed % 2 == 0 else float(rng.choice([0.3, 0.7]))
    result = evaluate_widerface(data_at(tmp_path), predictions, gt_dir=gt, iou_threshold=iou, thresh_num=thresh_num)
    _compare(result, plain_official_eval(gt, predictions, iou, thresh_num))


# --------------------------------------------------------------------------------------------- the real .mat files
needs_shared = pytest.mark.skipif(not SHARED_GT.is_dir(), reason="shared WIDER FACE ground truth not present")


def _assert_mat_structure(reference_dir: Path, mine_dir: Path) -> None:
    """The .mat files of ``mine_dir`` have the variables, dtypes and cell nesting of those of ``reference_dir``
    (``mine_dir``: the hand-made case below or the fixture; in both, the first event's second image has an empty
    hard list)."""
    for name in ("wider_face_val.mat", "wider_hard_val.mat"):
        real = sio.loadmat(str(reference_dir / name))
        mine = sio.loadmat(str(mine_dir / name))
        for var in ("event_list", "file_list", "face_bbx_list", *(["gt_list"] if "hard" in name else [])):
            r, m = real[var], mine[var]
            assert (m.dtype, m.shape[1]) == (r.dtype, r.shape[1]), var
            if var == "event_list":
                assert (type(m[0, 0]), m[0, 0].dtype.kind, m[0, 0].shape) == (type(r[0, 0]), "U", r[0, 0].shape)
                continue
            r_cell, m_cell = r[0, 0], m[0, 0]
            assert (m_cell.dtype, m_cell.shape[1]) == (r_cell.dtype, r_cell.shape[1]), var
            r_item, m_item = r_cell[0, 0], m_cell[0, 0]
            if var == "file_list":  # char arrays: (1,) unicode
                assert (m_item.dtype.kind, m_item.shape) == (r_item.dtype.kind, r_item.shape)
            else:  # int32 (G, 4) boxes, uint8 (k, 1) indices
                assert (m_item.dtype, m_item.shape[1:]) == (r_item.dtype, r_item.shape[1:]), var
        if "hard" in name:  # an empty setting list, as the official (0, 0) uint8
            empties = [c for e in real["gt_list"][:, 0] for c in e[:, 0] if c.size == 0]
            assert any(c.shape == (0, 0) and c.dtype == np.uint8 for c in empties)
            assert mine["gt_list"][0, 0][1, 0].shape == (0, 0) and mine["gt_list"][0, 0][1, 0].dtype == np.uint8


def _fake_mat(folder: Path) -> Path:
    return write_ground_truth(folder, [(EVENT, [("a", [FACE_A, FACE_B], {"hard": [1, 2]}), ("b", [FACE_C], {})])])


@needs_shared
def test_fake_mat_structure_matches_real(tmp_path):
    _assert_mat_structure(SHARED_GT, _fake_mat(tmp_path))


@needs_shared
def test_fixture_mat_structure_matches_real():
    """What keeps the fixture twins below honest: the committed .mat files have the official structure."""
    _assert_mat_structure(SHARED_GT, FIXTURE_GT)


def test_fake_mat_structure_matches_fixture(tmp_path):
    """Twin of test_fake_mat_structure_matches_real without ../shared: the hand-made files against the committed
    fixture, whose structure that test checks against the real files."""
    _assert_mat_structure(FIXTURE_GT, _fake_mat(tmp_path))


@pytest.fixture(scope="module")
def real_images():
    return load_ground_truth(SHARED_GT)


@needs_shared
def test_real_ground_truth(real_images):
    assert len(real_images) == 3226
    assert sum(len(im.boxes_xywh) for im in real_images) == 39708
    assert [sum(len(im.keep[s]) for im in real_images) for s in SETTINGS] == [7211, 13319, 31958]
    assert find_ground_truth(SHARED) == SHARED / "eval_tools_ground_truth"


@needs_shared
def test_real_exact_predictions(real_images):
    """Every face of wider_face_val.mat predicted exactly, random scores.

    Measured: AP just below 1 in every setting, for two quirks of the official ground truth.
    39_Ice_Skating_iceskiing_39_583 has a hard face of width -2 (x2 = x - 2: it overlaps nothing under the +1
    convention, so it is never recalled and its exact prediction is a false positive, in every setting), and
    21_Festival_Festival_21_604 lists the hard face 219 454 9 15 twice (both exact predictions match the first
    copy: the second copy is a miss and its prediction an extra proposal). Without those two predictions easy and
    medium AP are exactly 1 and hard is 31956/31958 (precision 1 up to the reachable recall).
    """
    rng = np.random.default_rng(0)
    preds = {}
    for im in real_images:
        b = im.boxes_xywh
        preds[key(im.name, im.event)] = np.c_[b[:, :2], b[:, :2] + b[:, 2:], rng.random(len(b)), np.ones(len(b))]
    root = SHARED  # data.root: the ground truth is found in eval_tools_ground_truth
    result = evaluate_widerface(data_at(root), preds)
    assert result.details["images"] == 3226 and result.details["images_without_predictions"] == 0
    assert result.details["faces_hard"] == 31958
    # the negative-width face's prediction is a false positive at a random rank: AP just below 1
    assert 0.9995 < result.metrics["easy"] < 1 and 0.9995 < result.metrics["medium"] < 1
    degenerate = {key(im.name, im.event) for im in real_images if ((im.boxes_xywh[:, 2:] + 1) <= 0).any()}
    assert len(degenerate) == 1
    for k in degenerate:
        preds[k] = preds[k][(preds[k][:, 2:4] - preds[k][:, :2] + 1 > 0).all(axis=1)]
    duplicated = [k for k, p in preds.items() if len(np.unique(p[:, :4], axis=0)) < len(p)]
    assert duplicated == [key("21_Festival_Festival_21_604", "21--Festival")]
    for k in duplicated:
        preds[k] = preds[k][np.sort(np.unique(preds[k][:, :4], axis=0, return_index=True)[1])]
    result = evaluate_widerface(data_at(root), preds)
    assert result.metrics["easy"] == 1.0 and result.metrics["medium"] == 1.0
    assert result.metrics["hard"] == pytest.approx(1 - 2 / 31958, abs=1e-12)


@needs_shared
def test_real_degraded_predictions_match_plain_port(real_images, tmp_path):
    """Jittered boxes, dropped faces, false positives on a random subset of the real val images (present_only,
    so the slow plain port stays quick), compared with the plain port."""
    rng = np.random.default_rng(1)
    chosen = rng.choice(len(real_images), size=120, replace=False)
    preds = {}
    for i in chosen:
        im = real_images[i]
        path = tmp_path / "WIDER_val" / "images" / im.event / f"{im.name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        b = im.boxes_xywh[rng.random(len(im.boxes_xywh)) < 0.8]  # drop 20 % of the faces
        b = b + rng.normal(0, 0.15, size=b.shape) * np.maximum(b[:, 2:3], 1)  # jitter relative to the face size
        fp = np.c_[rng.uniform(0, 1000, size=(3, 2)), rng.uniform(5, 80, size=(3, 2))]
        b = np.vstack([b, fp])
        preds[key(im.name, im.event)] = np.c_[b[:, :2], b[:, :2] + b[:, 2:], rng.random(len(b)), np.ones(len(b))]
    # one image of the subset without predictions
    del preds[key(real_images[chosen[0]].name, real_images[chosen[0]].event)]
    result = evaluate_widerface(data_at(tmp_path), preds, present_only=True, gt_dir=SHARED_GT)
    assert result.details["images"] == 120 and result.details["images_without_predictions"] == 1
    only = {(real_images[i].event, real_images[i].name) for i in chosen}
    plain = plain_official_eval(SHARED_GT, preds, only=only)
    _compare(result, plain)
    assert all(0.1 < ap < 0.9 for ap in result.metrics.values())  # measured: 0.20, 0.27, 0.40


# ------------------------------------------------------------- twins of the real-file tests, on the committed fixture
def test_fixture_ground_truth():
    """Twin of test_real_ground_truth: the committed files read back as FIXTURE_EVENTS, found under the data root."""
    images = load_ground_truth(FIXTURE_GT)
    expected = [(event, name, boxes, keep) for event, items in FIXTURE_EVENTS for name, boxes, keep in items]
    assert [(im.event, im.name) for im in images] == [(event, name) for event, name, _, _ in expected]
    for im, (_, _, boxes, keep) in zip(images, expected):
        np.testing.assert_array_equal(im.boxes_xywh, boxes)
        assert {s: im.keep[s].tolist() for s in SETTINGS} == {s: keep.get(s, []) for s in SETTINGS}
    assert sum(len(im.boxes_xywh) for im in images) == 7
    assert [sum(len(im.keep[s]) for im in images) for s in SETTINGS] == [1, 1, 3]
    assert find_ground_truth(FIXTURE) == FIXTURE_GT


def test_fixture_exact_predictions():
    """Twin of test_real_exact_predictions: every face of the fixture predicted exactly, random scores -> AP 1 in
    every setting. The exact predictions of the faces in no setting (the invalid ones, the all-zero boxes of the
    images without faces) match them and are dropped from the proposals, not counted as false positives."""
    rng = np.random.default_rng(0)
    preds = {}
    for im in load_ground_truth(FIXTURE_GT):
        b = im.boxes_xywh
        preds[key(im.name, im.event)] = np.c_[b[:, :2], b[:, :2] + b[:, 2:], rng.random(len(b)), np.ones(len(b))]
    result = evaluate_widerface(data_at(FIXTURE), preds)  # the ground truth found from data.root
    assert result.details["images"] == 4 and result.details["images_without_predictions"] == 0
    assert result.details["faces_hard"] == 3 and result.details["gt_dir"] == str(FIXTURE_GT)
    assert result.metrics == {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    # the same predictions without the tiny hard face's: hard loses a third of its recall, easy and medium keep 1
    k = key("0_Parade_marchingband_1_465", "0--Parade")
    preds[k] = preds[k][1:]
    result = evaluate_widerface(data_at(FIXTURE), preds)
    assert result.metrics["easy"] == 1.0 and result.metrics["hard"] == pytest.approx(2 / 3, abs=1e-12)


def test_fixture_degraded_predictions_match_plain_port(tmp_path):
    """Twin of test_real_degraded_predictions_match_plain_port: jittered boxes and false positives on 3 of the 4
    fixture images (present_only), one of them without predictions and one prediction for the absent image,
    compared with the plain port over several seeds."""
    images = load_ground_truth(FIXTURE_GT)
    chosen = [0, 2, 3]  # not 0_Parade_Parade_0_275
    for i in chosen:
        path = tmp_path / "WIDER_val" / "images" / images[i].event / f"{images[i].name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    only = {(images[i].event, images[i].name) for i in chosen}
    aps = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        preds = {}
        for i in chosen:
            im = images[i]
            b = im.boxes_xywh + rng.normal(0, 0.15, size=im.boxes_xywh.shape) * np.maximum(im.boxes_xywh[:, 2:3], 1)
            b = np.vstack([b, np.c_[rng.uniform(0, 100, size=(2, 2)), rng.uniform(3, 30, size=(2, 2))]])
            preds[key(im.name, im.event)] = np.c_[b[:, :2], b[:, :2] + b[:, 2:], rng.random(len(b)), np.ones(len(b))]
        preds[key(images[1].name, images[1].event)] = np.array([[5.0, 5.0, 20.0, 20.0, 0.99, 1.0]])
        del preds[key(images[3].name, images[3].event)]
        result = evaluate_widerface(data_at(tmp_path), preds, present_only=True, gt_dir=FIXTURE_GT)
        assert result.details["images"] == 3 and result.details["images_without_predictions"] == 1
        assert result.details["predictions_for_absent_images"] == 1
        _compare(result, plain_official_eval(FIXTURE_GT, preds, only=only))
        aps += result.metrics.values()
    assert min(aps) < 0.5 and max(aps) == 1.0  # measured: from 1/3 to 1
