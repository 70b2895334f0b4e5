import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from singleshot.checkpoint import bundled_weights
from singleshot.cli import main
from singleshot.deploy.numpy_ops import nms_numpy, postprocess_numpy
from singleshot.models import create_model
from singleshot.ops import nms
from singleshot.postprocess import postprocess
from singleshot.predictor import Detector

ROOT = Path(__file__).resolve().parents[2]

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from singleshot.deploy.onnx_export import (
    DecodedDetector,
    compare_with_torch,
    export_onnx,
    read_metadata,
    same_detections,
)

MEAN, STD = (120.0, 115.0, 100.0), (60.0, 60.0, 60.0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = create_model("face_slim", width=0.25).eval()
    # Freshly initialised heads predict boxes almost exactly on the priors, whose pairwise IoUs sit on a few
    # values, some at the NMS threshold: a 1e-7 difference then flips NMS. Perturbed weights spread the boxes.
    with torch.no_grad():
        for p in m.head.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


@pytest.fixture(scope="module")
def checkpoint():
    # The runtime comparisons use the trained bundled model on a real photo: an untrained model on a synthetic
    # image predicts near-identical boxes on every cell, a lattice whose pairwise IoUs sit exactly at the NMS
    # threshold, where a 1e-7 difference between runtimes flips NMS (a property of that input, not of the export).
    return bundled_weights()


@pytest.fixture(scope="module")
def photo():
    image = cv2.imread(str(ROOT / "assets" / "demo.jpg"))
    return np.ascontiguousarray(cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA)[:, :, ::-1])


@pytest.mark.parametrize("size", [(96, 128), (128, 96), (64, 64), (480, 640), (352, 224)])
def test_in_graph_priors_equal_generated_priors(model, size):
    wrapper = DecodedDetector(model, MEAN, STD)
    maps = model.features(torch.zeros(1, 3, *size))
    assert torch.allclose(wrapper.priors(maps, *size), model.priors(size), atol=1e-6)


def test_decoded_outputs_match_postprocess_before_nms(model):
    image = torch.rand(1, 3, 96, 128) * 255
    boxes, scores = DecodedDetector(model, MEAN, STD)(image)
    x = (image - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    loc, conf = model(x)
    ref = postprocess(loc, conf, model.priors((96, 128)), (96, 128), min_score=0.5, max_overlap=1.0, top_k=100_000,
                      pre_nms_top_k=100_000)[0]
    # with NMS off (IoU threshold 1) the reference keeps every box scoring >= 0.5: the same set, compared as rows
    # (boxes with equal scores may come in either order)
    keep = scores[0, :, 0] >= 0.5
    assert 0 < len(ref) == int(keep.sum())
    rows = lambda b, s: sorted(torch.cat((b, s[:, None]), 1).tolist())
    assert np.allclose(rows(ref.boxes_xyxy, ref.scores), rows(boxes[0, keep].detach(), scores[0, keep, 0]), atol=1e-3)


@pytest.mark.parametrize("dynamic", [False, True])
def test_export_matches_torch(tmp_path, model, dynamic):
    path = export_onnx(model, tmp_path / "m.onnx", ["background", "face"], MEAN, STD, input_size=(96, 128),
                       dynamic=dynamic)
    meta = read_metadata(path)
    assert meta["singleshot_class_names"] == "background,face" and meta["singleshot_dynamic"] == str(dynamic).lower()
    size = (128, 96) if dynamic else (96, 128)  # a dynamic graph is checked on a second size
    box_diff, score_diff, same = compare_with_torch(model, path, MEAN, STD, size)
    assert box_diff < 1e-3 and score_diff < 1e-5 and same


def test_export_rounds_size_up_to_multiple_of_32(tmp_path, model):
    path = export_onnx(model, tmp_path / "m.onnx", ["background", "face"], MEAN, STD, input_size=(240, 320))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 256, 320]


def test_nms_numpy_matches_torch_nms():
    rng = np.random.default_rng(0)
    for _ in range(20):
        xy = rng.uniform(0, 100, (60, 2))
        wh = rng.uniform(5, 40, (60, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        scores = rng.random(60).astype(np.float32)
        ref = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.45).numpy()
        assert np.array_equal(nms_numpy(boxes, scores, 0.45), ref)


def test_postprocess_numpy_empty_and_top_k():
    boxes = np.zeros((1, 5, 4), np.float32)
    scores = np.zeros((1, 5, 1), np.float32)
    (b, s, lab), = postprocess_numpy(boxes, scores, min_score=0.5)
    assert b.shape == (0, 4) and s.shape == (0,) and lab.shape == (0,)
    boxes = np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]], np.float32)
    scores = np.array([[[0.9], [0.8], [0.7]]], np.float32)
    (b, s, lab), = postprocess_numpy(boxes, scores, min_score=0.5, top_k=2)
    assert np.allclose(s, [0.9, 0.8]) and lab.tolist() == [1, 1]


@pytest.mark.parametrize("runtime", ["ort", "opencv"])
@pytest.mark.parametrize("input_size", [320, 640, 800])  # 320x256, 640x480 and 800x608: 4, 7.5, 9.5 stride-64 rows
def test_detector_runtimes_give_the_same_detections(checkpoint, photo, runtime, input_size):
    # min_score 0.1: the photo's faces. Below it (0.063) lie boxes of the mean-filled padding, whose scores tie
    # exactly, and NMS keeps whichever of a tie each runtime ranks first.
    ref = Detector(checkpoint, input_size=input_size).detect(photo, min_score=0.1)
    other = Detector(checkpoint, input_size=input_size, runtime=runtime)
    det = other.detect(photo, min_score=0.1)
    assert other.runtime == runtime and len(ref) > 0
    assert len(det) == len(ref)
    # compared as sets: the order of near-equal scores is free
    as_tuple = lambda d: (d.boxes_xyxy.numpy(), d.scores.numpy(), d.labels.numpy())
    assert same_detections(as_tuple(det), as_tuple(ref), tol_px=1e-3)
    assert np.abs(np.sort(det.scores.numpy()) - np.sort(ref.scores.numpy())).max() < 1e-5
    assert other.timing.network_ms > 0


def test_detector_batch_on_ort(checkpoint, photo):
    detector = Detector(checkpoint, input_size=128, runtime="ort")
    one = detector.detect(photo, min_score=0.05)
    two = detector.detect([photo, photo], min_score=0.05)
    assert len(two) == 2 and len(two[1]) == len(one)


def test_onnx_file_refuses_torch_runtime(tmp_path, model):
    path = export_onnx(model, tmp_path / "m.onnx", ["background", "face"], MEAN, STD, input_size=(64, 64))
    with pytest.raises(ValueError, match="ort"):
        Detector(path, runtime="torch")
    with pytest.raises(FileNotFoundError):
        Detector(tmp_path / "missing.onnx")


def test_cli_export_and_detect_with_ort(tmp_path, checkpoint, photo):
    image_path = tmp_path / "in" / "a.jpg"
    image_path.parent.mkdir()
    cv2.imwrite(str(image_path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", "--weights", str(checkpoint), "-o", str(onnx_path), "--dynamic"]) == 0
    args = [str(image_path.parent), "--min-score", "0.1", "--input-size", "320"]
    assert main(["detect", *args, "--weights", str(checkpoint), "--out", str(tmp_path / "t")]) == 0
    assert main(["detect", *args, "--weights", str(onnx_path), "--out", str(tmp_path / "o")]) == 0
    a = json.loads((tmp_path / "t" / "detections.json").read_text())
    b = json.loads((tmp_path / "o" / "detections.json").read_text())
    assert a.pop("@classes") == b.pop("@classes") == ["background", "face"]  # read from the ONNX metadata too
    assert a.keys() == b.keys() == {"a.jpg"}
    rows_a, rows_b = (np.array(sorted(r["a.jpg"])) for r in (a, b))  # as sets: ties may swap places
    assert rows_a.shape == rows_b.shape and rows_a.shape[1] == 16  # box, score, class, the point network's points
    assert np.allclose(rows_a[:, :6], rows_b[:, :6], atol=2e-3)
    # points come from a crop of each box: box differences of 1e-3 px move them by a few hundredths of a pixel
    assert np.allclose(rows_a[:, 6:], rows_b[:, 6:], atol=0.05)


def test_cli_export_int8(tmp_path, checkpoint, photo):
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(3):
        cv2.imwrite(str(calib / f"{i}.jpg"), np.roll(photo, 10 * i, axis=1))
    out = tmp_path / "m_int8.onnx"
    code = main(["export", "--weights", str(checkpoint), "-o", str(out), "--int8", "--calib", str(calib),
                 "--input-size", "128x96"])
    assert code == 0 and out.exists() and (tmp_path / "m_int8.fp32.onnx").exists()
    assert read_metadata(out)["singleshot_class_names"] == "background,face"
    det = Detector(out, input_size=128).detect(photo, min_score=0.0, top_k=5)
    assert len(det) == 5


def test_cli_export_errors(tmp_path, checkpoint, capsys):
    assert main(["export", "--weights", str(checkpoint), "-o", str(tmp_path / "m.onnx"), "--int8"]) == 2
    assert "--calib" in capsys.readouterr().err
    assert main(["export", "--weights", str(checkpoint), "-o", str(tmp_path / "m.bin")]) == 2
    assert main(["export", "--weights", str(tmp_path / "none.pt"), "-o", str(tmp_path / "m.onnx")]) == 2


def test_detect_video_file(tmp_path, checkpoint, photo):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write mp4")
    for i in range(6):
        writer.write(np.roll(photo, i, axis=1)[:, :, ::-1].copy())
    writer.release()
    out = tmp_path / "out"
    assert main(["detect", str(video), "--weights", str(checkpoint), "--runtime", "ort", "--input-size", "128",
                 "--min-score", "0.05", "--out", str(out), "--max-frames", "4"]) == 0
    assert (out / "clip.mp4").stat().st_size > 0
    keys = json.loads((out / "detections.json").read_text()).keys() - {"@classes"}
    assert sorted(keys) == [f"clip/{i:06d}" for i in range(1, 5)]


def test_detect_missing_camera_is_a_clean_error(checkpoint, tmp_path, capsys):
    assert main(["detect", "--source", "7", "--weights", str(checkpoint), "--out", str(tmp_path)]) == 2
    assert "camera 7" in capsys.readouterr().err


def test_dual_shot_model_exports_its_second_shot(tmp_path):
    torch.manual_seed(0)
    m = create_model("face_slim", width=0.25, fem=True, pal=True).eval()
    path = export_onnx(m, tmp_path / "dual.onnx", ["background", "face"], MEAN, STD, input_size=(96, 128))
    box_diff, score_diff, same = compare_with_torch(m, path, MEAN, STD, (96, 128))
    assert score_diff < 1e-5
    assert box_diff < 1e-3 and same
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    boxes, _ = session.run(None, {"image": np.zeros((1, 3, 96, 128), np.float32)})
    assert boxes.shape[1] == m.priors((96, 128)).shape[0]  # one shot's priors, not two


def test_fold_input_scale_is_exact_and_only_where_the_image_meets_one_conv(model):
    from singleshot.deploy.onnx_export import fold_input_scale

    folded = fold_input_scale(model, STD)
    assert folded is not None and folded is not model
    image = torch.rand(1, 3, 96, 128) * 255
    with torch.no_grad():
        ref_boxes, ref_scores = DecodedDetector(model, MEAN, STD)(image)
        boxes, scores = DecodedDetector(folded, MEAN, (1.0, 1.0, 1.0))(image)
    assert torch.allclose(boxes, ref_boxes, atol=1e-3) and torch.allclose(scores, ref_scores, atol=1e-5)
    # the original is untouched
    assert not torch.equal(folded.backbone.stage1[0][0].weight, model.backbone.stage1[0][0].weight)

    class TwoReaders(torch.nn.Module):  # the image feeds a conv and a skip: the scale cannot move into the conv
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.pool = torch.nn.AvgPool2d(1)

        def features(self, x):
            return [self.conv(x) + self.pool(x)]

    assert fold_input_scale(TwoReaders(), STD) is None


def test_same_detections_pairs_boxes_that_sort_differently():
    boxes = np.array([[10.0, 10, 20, 20], [10.0004, 30, 40, 50], [5, 5, 6, 6]], np.float32)
    other = boxes.copy()
    other[0, 0], other[1, 0] = 10.0006, 10.0002  # within 1e-3 px, but the two first boxes now sort the other way
    labels, scores = np.ones(3, np.int64), np.ones(3, np.float32)
    assert same_detections((boxes, scores, labels), (other, scores, labels), tol_px=1e-3)
    other[2, 3] = 6.01
    assert not same_detections((boxes, scores, labels), (other, scores, labels), tol_px=1e-3)


@pytest.mark.parametrize(("dynamic", "layers"), [(False, 0), (True, 0), (False, 2)])
def test_landmark_model_exports_its_points_decoded(tmp_path, dynamic, layers):
    torch.manual_seed(0)
    m = create_model("face_slim", width=0.25, landmarks=True, landmark_layers=layers).eval()
    with torch.no_grad():
        for p in m.head.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = export_onnx(m, tmp_path / "lm.onnx", ["background", "face"], MEAN, STD, input_size=(96, 128),
                       dynamic=dynamic)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["boxes", "scores", "landmarks"]
    box_diff, score_diff, same = compare_with_torch(m, path, MEAN, STD, (128, 96) if dynamic else (96, 128))
    assert box_diff < 1e-3 and score_diff < 1e-5 and same  # boxes and points together
    # the graph's points are postprocess's points before NMS
    image = torch.rand(1, 3, 96, 128) * 255
    boxes, scores, points = DecodedDetector(m, MEAN, STD)(image)
    x = (image - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    loc, conf, landm = m(x)
    ref = postprocess(loc, conf, m.priors((96, 128)), (96, 128), min_score=0.0, max_overlap=1.0, top_k=5,
                      pre_nms_top_k=100_000, landm=landm)[0]
    # each kept detection's points are those of a prior with its box and score (random weights tie scores between
    # priors, and the order of ties is arbitrary)
    for box, score, ref_points in zip(ref.boxes_xyxy, ref.scores, ref.landmarks):
        same = ((boxes[0] - box).abs().amax(dim=1) < 1e-3) & ((scores[0, :, 0] - score).abs() < 1e-6)
        assert same.any()
        gap = (points[0, same].view(-1, 5, 2) - ref_points).abs().amax(dim=(1, 2)).min()
        assert gap < 1e-3


@pytest.mark.parametrize("runtime", ["ort", "opencv"])
def test_landmarks_agree_across_runtimes(tmp_path, photo, runtime):
    ckpt = _landmark_checkpoint(tmp_path, 1, perturb=True)
    ref = Detector(ckpt, input_size=160).detect(photo, min_score=0.3, top_k=10)
    other = Detector(ckpt, input_size=160, runtime=runtime).detect(photo, min_score=0.3, top_k=10)
    assert len(ref) > 0 and ref.landmarks.shape == (len(ref), 5, 2)
    order_r, order_o = ref.scores.argsort(descending=True), other.scores.argsort(descending=True)
    torch.testing.assert_close(other.landmarks[order_o], ref.landmarks[order_r], atol=1e-2, rtol=0)  # pixels


def test_detect_writes_landmarks_into_detections_json(tmp_path, photo):
    ckpt = _landmark_checkpoint(tmp_path, 2)
    cv2.imwrite(str(tmp_path / "p.jpg"), np.ascontiguousarray(photo[:, :, ::-1]))
    assert main(["detect", str(tmp_path / "p.jpg"), "--weights", str(ckpt), "--min-score", "0",
                 "--top-k", "3", "--input-size", "160", "--out", str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "detections.json").read_text())["p.jpg"]
    assert len(rows) == 3 and all(len(r) == 16 for r in rows)  # box, score, label, five (x, y) points
    assert (tmp_path / "out" / "p.jpg").is_file()


def test_detect_writes_aligned_crops_and_anonymised_copies(tmp_path, photo, checkpoint):
    ckpt = _landmark_checkpoint(tmp_path, 3)
    cv2.imwrite(str(tmp_path / "p.jpg"), np.ascontiguousarray(photo[:, :, ::-1]))
    assert main(["detect", str(tmp_path / "p.jpg"), "--weights", str(ckpt), "--min-score", "0", "--top-k", "2",
                 "--input-size", "160", "--out", str(tmp_path / "out"), "--crops", str(tmp_path / "crops"),
                 "--blur", "pixelate"]) == 0
    crops = sorted((tmp_path / "crops").glob("p_*.jpg"))
    assert len(crops) == 2 and cv2.imread(str(crops[0])).shape == (112, 112, 3)
    assert (tmp_path / "out" / "p.jpg").is_file()
    # a model without landmarks and with the point network off cannot align: a one-line error before any image
    # is read; with the point network (the default for a face model) it can
    assert main(["detect", str(tmp_path / "p.jpg"), "--weights", str(checkpoint), "--crops", str(tmp_path / "c2"),
                 "--out", str(tmp_path / "o2"), "--points", "off"]) == 2
    assert main(["detect", str(tmp_path / "p.jpg"), "--weights", str(checkpoint), "--crops", str(tmp_path / "c3"),
                 "--out", str(tmp_path / "o3")]) == 0
    assert len(list((tmp_path / "c3").glob("p_*.jpg"))) == len(
        json.loads((tmp_path / "o3" / "detections.json").read_text())["p.jpg"])


def _landmark_checkpoint(tmp_path, seed: int, perturb: bool = False):
    """A small face_slim with the five-point head saved as a checkpoint (heads perturbed: spread-out boxes)."""
    from singleshot.checkpoint import model_metadata, save_checkpoint

    torch.manual_seed(seed)
    m = create_model("face_slim", width=0.25, landmarks=True)
    if perturb:
        with torch.no_grad():
            for p in m.head.parameters():
                p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / "lm.pt"
    save_checkpoint(path, {**model_metadata(m, "face_slim", {"width": 0.25, "landmarks": True},
                                            ["background", "face"], MEAN, STD), "model": m.state_dict()})
    return path
