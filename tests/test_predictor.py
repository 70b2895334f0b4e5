import json
from pathlib import Path

import numpy as np
import pytest
import torch

from singleshot.checkpoint import model_metadata, save_checkpoint
from singleshot.cli import main
from singleshot.models import create_model
from singleshot.predictor import Detector, DetectorError, ImageError

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("face_slim", width=0.25)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    meta = model_metadata(model, "face_slim", {"width": 0.25}, ["background", "face"], (120, 115, 100), (60, 60, 60))
    save_checkpoint(path, {**meta, "model": model.state_dict()})
    return path


def test_detect_single_and_batch(checkpoint):
    detector = Detector(checkpoint, input_size=96)
    image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    one = detector.detect(image, min_score=0.0, top_k=5)
    assert one.boxes_xyxy.shape == (5, 4)
    assert (one.boxes_xyxy[:, 2] <= 64).all() and (one.boxes_xyxy[:, 3] <= 48).all()  # original pixels
    two = detector.detect([image, np.ascontiguousarray(image[:30])], min_score=0.0, top_k=3)
    assert len(two) == 2 and all(len(d) == 3 for d in two)
    assert detector.timing.network_ms > 0


def test_fused_detector_matches_unfused(checkpoint):
    image = (np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)
    a = Detector(checkpoint, input_size=64, fuse=True).detect(image, min_score=0.0, top_k=10)
    b = Detector(checkpoint, input_size=64, fuse=False).detect(image, min_score=0.0, top_k=10)
    torch.testing.assert_close(a.scores, b.scores, rtol=1e-4, atol=1e-5)


def test_bad_inputs(checkpoint, tmp_path):
    detector = Detector(checkpoint, input_size=64)
    with pytest.raises(ImageError, match="missing.jpg"):
        detector.detect(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="uint8 RGB"):
        detector.detect(np.zeros((4, 4), np.uint8))


def test_detect_cli_writes_images_and_json(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["detect", str(FIXTURES / "csv" / "images"), str(FIXTURES / "dlib" / "images" / "d.jpg"),
            "--weights", str(checkpoint), "--out", str(out), "--min-score", "0.0", "--top-k", "2", "--input-size", "64"]
    assert main(argv) == 0
    detections = json.loads((out / "detections.json").read_text())
    assert detections.pop("@classes") == ["background", "face"]  # the model's class names, first
    assert set(detections) == {"a.jpg", "b.jpg", "c.jpg", "d.jpg"}
    assert all(len(v) == 2 and len(v[0]) == 16 for v in detections.values())  # a face model: + five points
    assert (out / "a.jpg").is_file() and (out / "d.jpg").is_file()
    assert "4 image(s)" in capsys.readouterr().out
    # at 256 the fixtures are small photos: one pass when asked (the same flag for eval)
    single = tmp_path / "single"
    assert main([*argv[:-1], "256", "--out", str(single), "--no-large-face-pass"]) == 0
    assert set(json.loads((single / "detections.json").read_text())) == {"@classes", "a.jpg", "b.jpg", "c.jpg", "d.jpg"}


def test_detect_cli_errors(checkpoint, tmp_path, capsys):
    assert main(["detect", str(tmp_path / "nothing.jpg"), "--weights", str(checkpoint)]) == 2
    assert main(["detect", str(FIXTURES / "csv" / "images"), "--weights", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert "nothing.jpg: no such file" in err and "nope.pt: checkpoint not found" in err and "Traceback" not in err


def test_eval_with_weights(tmp_path, capsys):
    """``eval --weights`` with the bundled face model on two photos with real faces (tests/fixtures/face_mask: the
    demo photo, 512x367, and a portrait crop of it, 300x367; 8 annotated faces): the predictions it saves and the
    mAP it reports are those of the same model run directly through ``Detector.detect`` and scored with
    ``evaluate``, and the mAP at IoU 0.7 is high, which boxes off by a few pixels, a wrong scale or axis, or
    scores out of order would miss. Measured: mAP 1.0 at IoU 0.5, 0.7 and 0.8, at input sizes 256, 320 and 640
    (the demo photo is in the model's training data: a check of the pipeline, not of the model's accuracy).
    """
    from singleshot.checkpoint import bundled_weights
    from singleshot.data.formats import load_annotations
    from singleshot.evaluation import evaluate
    from singleshot.evaluation.predictions import read_predictions

    spec = f"voc:{FIXTURES / 'face_mask'}"
    saved = tmp_path / "p.json"
    argv = ["eval", "--weights", str(bundled_weights()), "--data", spec, "--data-option", "single_class=face",
            "--input-size", "320", "--eval-option", "iou_threshold=0.7", "--json", "--save-predictions", str(saved)]
    assert main(argv) == 0
    reported = json.loads(capsys.readouterr().out)["metrics"]

    data = load_annotations(spec, single_class="face")
    assert (len(data), sum(len(s) for s in data.samples)) == (2, 8)
    detector = Detector(bundled_weights(), input_size=320, points=None)  # eval scores boxes: no point network
    direct = {s.key: detector.detect(s.image_path, min_score=0.02).to_rows() for s in data.samples}  # eval's default
    written = read_predictions(saved)
    assert set(written) == set(direct)
    for key, rows in direct.items():
        assert len(rows) > 0
        np.testing.assert_allclose(written[key], rows, rtol=0, atol=1e-3, err_msg=key)  # the file keeps 1/1000
    expected = evaluate(data, direct, iou_threshold=0.7).metrics
    assert reported["mAP"] == pytest.approx(expected["mAP"], abs=1e-9)
    assert reported["mAP"] >= 0.9, reported
    assert main(["eval", "--data", f"csv:{FIXTURES / 'csv'}"]) == 2  # neither --predictions nor --weights


def test_box_voting_follows_the_checkpoint_and_can_be_turned_off(tmp_path):
    from singleshot.checkpoint import bundled_weights, checkpoint_vote_iou, load_checkpoint
    from singleshot.config import ConfigError, config_from_dict

    # the bundled face model (v3.1) recommends box voting at IoU 0.5 (v2 and v3 recommended plain NMS); an export
    # sets or clears it (docs/deployment.md)
    assert checkpoint_vote_iou(load_checkpoint(bundled_weights())) == 0.5 and Detector().vote_iou == 0.5
    assert Detector(box_vote=False).vote_iou is None
    voting = tmp_path / "voting.pt"
    assert main(["export", "--weights", str(bundled_weights()), "-o", str(voting), "--box-vote", "0.5"]) == 0
    assert load_checkpoint(voting)["postprocess"] == {"vote_iou": 0.5}
    assert Detector(voting).vote_iou == 0.5
    assert Detector(voting, box_vote=False).vote_iou is None
    assert main(["export", "--weights", str(voting), "-o", str(tmp_path / "off.pt"), "--box-vote", "off"]) == 0
    assert Detector(tmp_path / "off.pt").vote_iou is None
    assert main(["export", "--weights", str(voting), "-o", str(tmp_path / "x.pt"), "--box-vote", "1.5"]) == 2
    photo = np.full((96, 128, 3), 128, np.uint8)
    photo[20:70, 40:80] = 220
    # one pass: the property is box voting's (this small photo would also run the large-face pass)
    plain = Detector(voting, box_vote=False, large_face_pass=False).detect(photo, 0.01)
    voted = Detector(voting, large_face_pass=False).detect(photo, 0.01)
    assert len(plain) == len(voted)  # voting moves boxes, never adds or drops them
    torch.testing.assert_close(plain.scores, voted.scores)
    with pytest.raises(ConfigError, match="vote_iou"):
        config_from_dict({"eval": {"vote_iou": 1.5}})


def test_exported_graph_carries_the_vote_iou(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from singleshot.checkpoint import bundled_weights

    voting = tmp_path / "voting.pt"
    assert main(["export", "--weights", str(bundled_weights()), "-o", str(voting), "--box-vote", "0.5"]) == 0
    assert main(["export", "--weights", str(voting), "-o", str(tmp_path / "f.onnx"), "--input-size", "128x96"]) == 0
    assert Detector(tmp_path / "f.onnx").vote_iou == 0.5
    assert Detector(tmp_path / "f.onnx", box_vote=False).vote_iou is None
    assert Detector(voting, runtime="ort").vote_iou == 0.5  # exported on the fly: the vote travels too
    assert main(["export", "--weights", str(voting), "-o", str(tmp_path / "g.onnx"), "--input-size", "128x96",
                 "--box-vote", "off"]) == 0
    assert Detector(tmp_path / "g.onnx").vote_iou is None


def test_detections_do_not_depend_on_padding():
    # One photo (three faces of 110-150 px, the stride-64 level's) on two canvases of mean colour, long side 768
    # and 800: 800 x 608 is an odd multiple of 32 both ways, 12.5 x 9.5 stride-64 cells. Priors on the stride grid
    # give the same boxes; priors spread over the map (the old (i + 0.5) / f_k) moved the largest face by 21 px.
    import cv2

    from singleshot.checkpoint import bundled_weights

    # plain NMS: box voting averages each box with its overlapping candidates, and the larger canvas adds
    # candidates at the edge of the photo; the network's own outputs are what must not depend on padding
    detector = Detector(bundled_weights(), box_vote=False)
    image = cv2.imread(str(FIXTURES.parents[1] / "assets" / "demo.jpg"))[20:260, 0:260, ::-1]
    photo = cv2.resize(np.ascontiguousarray(image), None, fx=2.0, fy=2.0, interpolation=cv2.INTER_LINEAR)
    h, w = photo.shape[:2]
    found = []
    for size in ((576, 768), (608, 800)):
        canvas = np.empty((*size, 3), np.uint8)
        canvas[:] = np.round(detector.mean_rgb).astype(np.uint8)  # zero after normalisation, as the padding
        canvas[:h, :w] = photo
        det = detector.detect(canvas, min_score=0.3, input_size=size[1])
        found.append(det.boxes_xyxy[det.boxes_xyxy[:, 0].argsort()])
    assert len(found[0]) == len(found[1]) == 3
    assert (found[0][:, 2:] - found[0][:, :2]).max() > 128  # a face the stride-64 level predicts
    assert (found[0] - found[1]).abs().max() < 1.0


@pytest.mark.parametrize("runtime", ["torch", "ort"])
def test_relative_priors_see_a_square_input_whatever_the_batch(tmp_path, runtime):
    """SSD's priors are fractions of the input's sides and it learns on square crops: a photo is padded to a square,
    so its detections do not depend on its shape or on the photos batched with it (a face model's pixel priors are
    padded only to the stride)."""
    if runtime == "ort":
        pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = create_model("ssd_mobilenet_v2", num_classes=3, width=0.25).eval()
    path = tmp_path / "ssd.pt"
    meta = model_metadata(model, "ssd_mobilenet_v2", {"width": 0.25}, ["background", "a", "b"],
                          (120, 115, 100), (60, 60, 60))
    save_checkpoint(path, {**meta, "model": model.state_dict()})
    detector = Detector(path, input_size=160, runtime=runtime)
    rng = np.random.default_rng(0)
    wide = (rng.random((90, 160, 3)) * 255).astype(np.uint8)
    tall = (rng.random((160, 90, 3)) * 255).astype(np.uint8)
    batch, _ = detector.preprocess([wide])
    assert tuple(batch.shape[-2:]) == (160, 160)  # not 96x160
    alone = detector.detect(wide, min_score=0.0, top_k=20)
    together = detector.detect([wide, tall], min_score=0.0, top_k=20)[0]
    torch.testing.assert_close(alone.boxes_xyxy, together.boxes_xyxy, atol=1e-3, rtol=0)
    torch.testing.assert_close(alone.scores, together.scores, atol=1e-4, rtol=0)
    assert detector.large_face_pass is False  # "auto": not a face model
    detector.large_face_pass = True
    assert detector.large_face_pass_size(160) is None  # relative priors: no large-face pass, even when asked


def test_bundled_detector_gives_five_points_per_face_from_the_point_network():
    demo = str(Path(__file__).resolve().parents[1] / "assets" / "demo.jpg")
    detector = Detector(threads=1)
    faces = detector.detect(demo, min_score=0.5)
    assert not detector.has_landmarks and detector.point_refiner is not None
    assert faces.landmarks.shape == (len(faces), 5, 2) and detector.timing.points_ms > 0
    boxes, points = faces.boxes_xyxy.numpy(), faces.landmarks.numpy()
    # every face's eyes lie in its box, above its mouth corners, left eye left of the right one
    assert (points[:, :2, 0] >= boxes[:, None, 0]).all() and (points[:, :2, 0] <= boxes[:, None, 2]).all()
    assert (points[:, :2, 1] < points[:, 3:, 1].min(axis=1, keepdims=True)).all()
    assert (points[:, 0, 0] < points[:, 1, 0]).all()
    assert Detector(threads=1, points=None).detect(demo).landmarks is None
    pytest.importorskip("onnxruntime")
    on_ort = Detector(threads=1, runtime="ort").detect(demo, min_score=0.5)
    assert np.abs(on_ort.landmarks.numpy() - points).max() < 1.0


def test_points_flag_off_and_a_bad_point_model(tmp_path, capsys):
    demo = str(Path(__file__).resolve().parents[1] / "assets" / "demo.jpg")
    assert main(["detect", demo, "--out", str(tmp_path / "a"), "--points", "off"]) == 0
    rows = json.loads((tmp_path / "a" / "detections.json").read_text())["demo.jpg"]
    assert rows and all(len(r) == 6 for r in rows)
    assert main(["detect", demo, "--out", str(tmp_path / "b"), "--crops", str(tmp_path / "c")]) == 0
    rows = json.loads((tmp_path / "b" / "detections.json").read_text())["demo.jpg"]
    assert all(len(r) == 16 for r in rows) and len(list((tmp_path / "c").glob("*.jpg"))) == len(rows)
    assert main(["detect", demo, "--out", str(tmp_path / "d"), "--points", "nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err


@pytest.mark.parametrize("grey", [0, 20, 128, 255])
def test_bundled_detector_finds_no_face_on_a_plain_frame(grey):
    """A covered camera or a black video frame holds no face (v3.1 found up to 8 on black and near-black frames)."""
    detector = Detector(threads=1)
    for height, width in [(480, 640), (256, 256), (720, 1280)]:
        faces = detector.detect(np.full((height, width, 3), grey, np.uint8), min_score=0.5)
        assert len(faces) == 0, (grey, height, width, faces.scores)
    demo = str(Path(__file__).resolve().parents[1] / "assets" / "demo.jpg")
    assert len(detector.detect(demo, min_score=0.5)) == 5  # and still the demo photo's five faces


def test_a_small_photo_runs_again_at_half_size_for_its_large_faces(checkpoint, monkeypatch):
    detector = Detector(checkpoint, input_size=256)
    assert detector.large_face_pass is True  # "auto": a face model (background, face)
    with pytest.raises(DetectorError, match="large_face_pass"):
        Detector(checkpoint, large_face_pass="sometimes")
    sizes = []
    run = detector._run_pass
    monkeypatch.setattr(detector, "_run_pass", lambda arrays, size, *a: sizes.append(size) or run(arrays, size, *a))
    small = (np.random.default_rng(0).random((100, 120, 3)) * 255).astype(np.uint8)  # enlarged 2.1 times at 256
    near = (np.random.default_rng(1).random((150, 200, 3)) * 255).astype(np.uint8)  # 1.3 times: one pass
    faces = detector.detect([small, near], min_score=0.0, top_k=7)
    assert sizes == [256, 128] and all(len(f) <= 7 for f in faces)
    sizes.clear()
    detector.large_face_pass = False
    detector.detect(small)
    assert sizes == [256]


def test_bundled_detector_boxes_a_face_that_fills_a_small_photo_as_at_its_own_size():
    """A face crop enlarged into a 256 px photo (as another dataset's 64 px crops are shown): the box comes from
    the half-size pass, where the face has the size of the training crops' faces."""
    import cv2

    demo = cv2.cvtColor(cv2.imread(str(Path(__file__).resolve().parents[1] / "assets" / "demo.jpg")),
                        cv2.COLOR_BGR2RGB)
    detector = Detector(threads=1)
    x1, y1, x2, y2 = detector.detect(demo, min_score=0.5).boxes_xyxy[0].round().int().tolist()
    side = max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    crop = demo[max(cy - side // 2, 0):cy + side // 2, max(cx - side // 2, 0):cx + side // 2]
    photo = np.full((256, 256, 3), 128, np.uint8)
    photo[64:192, 64:192] = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_CUBIC)
    both = detector.detect(photo, min_score=0.5)
    detector.large_face_pass = False
    main = detector.detect(photo, min_score=0.5)
    alone = Detector(threads=1, input_size=320, large_face_pass=False).detect(photo, min_score=0.5)
    assert len(both) == 1 and len(alone) == 1
    torch.testing.assert_close(both.boxes_xyxy, alone.boxes_xyxy)
    assert len(main) == 1
