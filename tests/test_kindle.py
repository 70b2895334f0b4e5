import json

import cv2
import numpy as np
import pytest

from singleshot.cli import main
from singleshot.data.formats import load_annotations
from singleshot.kindle import KindleError, create_teacher, kindle, split_by_score


class FakeTeacher:
    """Three boxes per image, scores 0.9 (face), 0.4 (unsure: ignore), 0.1 (dropped); counts its calls."""

    name = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image_rgb):
        self.calls += 1
        h, w = image_rgb.shape[:2]
        boxes = np.array([[1, 1, w / 2, h / 2], [w / 2, h / 2, w - 1, h - 1], [0, 0, 5, 5]], np.float32)
        return boxes, np.array([0.9, 0.4, 0.1], np.float32)


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.png", "sub/c.jpg"):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def test_split_by_score_rule():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 5, 5], [1, 1, 2, 2], [3, 3, 3, 9]], np.float32)
    b, s, ign = split_by_score(boxes, np.array([0.5, 0.95, 0.2, 0.99]), min_score=0.6, ignore_score=0.3)
    # sorted by score; the 0.2 box dropped, the empty box dropped, the 0.5 box an ignore region
    assert s.tolist() == pytest.approx([0.95, 0.5]) and ign.tolist() == [False, True]
    assert b.tolist() == [[0, 0, 5, 5], [0, 0, 10, 10]]
    with pytest.raises(ValueError):
        split_by_score(boxes, np.ones(4), min_score=0.2, ignore_score=0.3)


def test_kindle_writes_a_loadable_csv_dataset_with_ignore_regions(photos, tmp_path):
    out = tmp_path / "kindled"
    report = kindle(FakeTeacher(), photos, out, min_score=0.6, ignore_score=0.3, progress=False)
    assert report.images == 3 and report.boxes == 3 and report.ignore_regions == 3
    assert len(report.unreadable) == 1 and "broken.jpg" in report.unreadable[0]
    assert report.faces_per_image["1"] == 3 and report.images_without_faces == 0
    data = load_annotations(f"csv:{out}")  # reads the photos through the images/ link, nothing copied
    assert sorted(s.key for s in data.samples) == ["images/a.jpg", "images/b.png", "images/sub/c.jpg"]
    for sample in data.samples:
        assert sample.image_path.is_file() and sample.ignore.tolist() == [False, True]
    assert (out / "images").is_symlink()
    assert json.loads((out / "kindle_report.json").read_text())["boxes"] == 3


def test_kindle_coco_format(photos, tmp_path):
    out = tmp_path / "kindled"
    kindle(FakeTeacher(), photos, out, fmt="coco", progress=False)
    data = load_annotations(f"coco:{out / 'annotations.json'}")
    assert len(data.samples) == 3 and all(s.ignore.tolist() == [False, True] for s in data.samples)


def test_kindle_resumes_and_refuses_to_overwrite(photos, tmp_path):
    out = tmp_path / "kindled"
    first = FakeTeacher()
    # a run stopped after one image: its state file holds that image
    with pytest.raises(RuntimeError):
        def stop(record):
            raise RuntimeError("stopped")
        kindle(first, photos, out, progress=False, on_image=stop)
    assert first.calls == 1 and not (out / "boxes.csv").exists()
    second = FakeTeacher()
    report = kindle(second, photos, out, progress=False)
    assert second.calls == 2 and report.images == 3  # only the two images not yet labelled
    with pytest.raises(KindleError, match="--force"):
        kindle(FakeTeacher(), photos, out, progress=False)
    third = FakeTeacher()
    kindle(third, photos, out, progress=False, force=True)
    assert third.calls == 3


def test_kindle_refuses_other_settings_for_an_unfinished_run(photos, tmp_path):
    out = tmp_path / "kindled"
    with pytest.raises(RuntimeError):
        kindle(FakeTeacher(), photos, out, progress=False, on_image=lambda r: (_ for _ in ()).throw(RuntimeError()))
    with pytest.raises(KindleError, match="other settings"):
        kindle(FakeTeacher(), photos, out, min_score=0.8, progress=False)


def test_kindle_errors(tmp_path):
    with pytest.raises(KindleError, match="not found"):
        kindle(FakeTeacher(), tmp_path / "none", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(KindleError, match="no images"):
        kindle(FakeTeacher(), tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(KindleError, match="format"):
        kindle(FakeTeacher(), tmp_path / "empty", tmp_path / "out", fmt="xml", progress=False)
    with pytest.raises(KindleError, match="no such checkpoint"):
        create_teacher(str(tmp_path / "missing.pt"))


def test_checkpoint_teacher_labels_the_demo_photo(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "demo.jpg").write_bytes((root / "assets" / "demo.jpg").read_bytes())
    teacher = create_teacher("bundled", threads=2)
    report = kindle(teacher, folder, tmp_path / "out", progress=False)
    assert report.boxes >= 4  # the demo photo has five faces
    # a face model's teacher runs the large-face pass on small photos unless asked not to (--no-large-face-pass)
    assert teacher.detector.large_face_pass is True
    assert create_teacher("bundled", large_face_pass=False).detector.large_face_pass is False


def test_cli_kindle_with_haar_teacher(photos, tmp_path, capsys):
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip("this OpenCV has no Haar cascades")
    out = tmp_path / "kindled"
    assert main(["kindle", "--teacher", "haar", "--images", str(photos), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "images labelled: 3" in text and (out / "boxes.csv").exists()
    assert main(["kindle", "--teacher", "haar", "--images", str(photos), "--out", str(out), "--no-progress"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["kindle", "--teacher", "retinafcae", "--images", str(photos), "--out", str(out)]) == 2
    assert "retinaface" in capsys.readouterr().err  # the near-miss suggestion


def test_a_missing_peer_teacher_is_a_one_line_error(tmp_path, capsys):
    import importlib.util

    from singleshot.cli import main

    if importlib.util.find_spec("retinaface") is not None:
        pytest.skip("the retinaface peer is installed here")
    assert main(["kindle", "--teacher", "retinaface", "--images", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install" in err[0] and "Traceback" not in err[0]


class PointTeacher(FakeTeacher):
    """FakeTeacher with five points after each box (as RetinaFace gives them)."""

    def detect(self, image_rgb):
        boxes, scores = super().detect(image_rgb)
        points = boxes[:, None, :2] + np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]],
                                               np.float32) * (boxes[:, None, 2:] - boxes[:, None, :2])
        return np.concatenate((boxes, points.reshape(3, 10)), 1), scores


def test_kindle_writes_the_teachers_landmarks_and_they_read_back(photos, tmp_path):
    out = tmp_path / "kindled"
    kindle(PointTeacher(), photos, out, min_score=0.6, ignore_score=0.3, progress=False)
    header = (out / "boxes.csv").read_text().splitlines()[0].split(",")
    assert header[9:] == ["lx1", "ly1", "lx2", "ly2", "lx3", "ly3", "lx4", "ly4", "lx5", "ly5"]
    data = load_annotations(f"csv:{out}")
    sample = data.samples[0]
    points = sample.extra["landmarks"]
    assert points.shape == (2, 5, 2)
    box = sample.boxes_xyxy[0]
    np.testing.assert_allclose(points[0, 0], [box[0] + 0.3 * (box[2] - box[0]), box[1] + 0.4 * (box[3] - box[1])],
                               atol=0.1)  # written to 0.1 px
    # a teacher without points writes no landmark columns
    kindle(FakeTeacher(), photos, tmp_path / "plain", progress=False)
    assert "landmarks" not in load_annotations(f"csv:{tmp_path / 'plain'}").samples[0].extra


def test_data_points_gives_human_boxes_the_teachers_points(tmp_path, capsys):
    from pathlib import Path

    fixtures = Path(__file__).resolve().parent / "fixtures" / "csv"
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    # the teacher found a.jpg's first face (IoU 0.9 with it) with points, and one more face with points
    (teacher / "boxes.csv").write_text(
        "image,width,height,x1,y1,x2,y2,label,ignore,lx1,ly1,lx2,ly2,lx3,ly3,lx4,ly4,lx5,ly5\n"
        "a.jpg,64,48,10,8,31,20,face,0,14,11,25,11,20,14,15,17,25,17\n"
        "a.jpg,64,48,0,30,8,40,face,0,1,31,6,31,4,34,2,37,6,37\n"
        "b.jpg,64,48,30,30,40,40,face,1,31,31,39,31,35,35,32,38,38,38\n"
    )
    assert main(["data", "points", "--boxes", f"csv:{fixtures}", "--points", f"csv:{teacher}",
                 "--out", str(tmp_path / "merged")]) == 0
    assert "1 of 3 faces got the teacher's points" in capsys.readouterr().out
    merged = load_annotations(f"csv:{tmp_path / 'merged'}")
    a = next(s for s in merged.samples if s.key.endswith("a.jpg"))
    np.testing.assert_allclose(a.boxes_xyxy, [[10, 8, 30, 20], [40, 10, 64, 30]])  # the human boxes (clipped)
    np.testing.assert_allclose(a.extra["landmarks"][0], [[14, 11], [25, 11], [20, 14], [15, 17], [25, 17]])
    assert np.isnan(a.extra["landmarks"][1]).all()  # no teacher box over it
    assert all(s.image_path.is_file() for s in merged.samples)  # the images reached through the link


def test_data_combine_gives_teacher_boxes_human_points_and_adds_missed_faces(tmp_path, capsys):
    from pathlib import Path

    human = Path(__file__).resolve().parent / "fixtures" / "caltech"
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    # pic00001: the teacher boxed the first human face (its four points inside) and one face Caltech does not label;
    # it missed the second human face. pic00002: its one face is in a teacher ignore region. pic00003: no human labels.
    (teacher / "boxes.csv").write_text(
        "image,width,height,x1,y1,x2,y2,label,ignore,lx1,ly1,lx2,ly2,lx3,ly3,lx4,ly4,lx5,ly5\n"
        "pic00001.jpg,300,300,14,20,46,58,face,0,21,31,39,31,31,41,24,50,36,50\n"
        "pic00001.jpg,300,300,200,200,230,235,face,0,,,,,,,,,,\n"
        "pic00002.jpg,300,300,0,0,20,20,face,1,,,,,,,,,,\n"
        "pic00003.jpg,300,300,50,50,80,80,face,0,,,,,,,,,,\n"
    )
    assert main(["data", "combine", "--teacher", f"csv:{teacher}", "--human", f"caltech:{human}",
                 "--out", str(tmp_path / "combined")]) == 0
    out = capsys.readouterr().out
    assert "2 images, 3 human-labelled faces: 1 in a teacher box" in out
    assert "1 in a teacher ignore region (made faces), 1 missed by the teacher (box from points)" in out
    assert "1 teacher faces without human points" in out
    combined = {Path(s.key).name: s for s in load_annotations(f"csv:{tmp_path / 'combined'}").samples}
    assert sorted(combined) == ["pic00001.jpg", "pic00002.jpg"]  # only the photos with human points
    first = combined["pic00001.jpg"]
    np.testing.assert_allclose(first.boxes_xyxy[:2], [[14, 20, 46, 58], [200, 200, 230, 235]])  # teacher's
    # human eyes and nose win; the teacher's mouth corners fill in (Caltech has the mouth centre only)
    np.testing.assert_allclose(first.extra["landmarks"][0], [[20, 30], [40, 30], [30, 40], [24, 50], [36, 50]])
    # the missed face: a box from its points, fitted to the teacher's size and shift, holding its points
    added = first.boxes_xyxy[2]
    assert not first.ignore[2]
    assert added[0] < 100 and added[1] < 100 and added[2] > 120 and added[3] > 120
    np.testing.assert_allclose(first.extra["landmarks"][2, :3], [[100, 100], [120, 100], [110, 110]])
    assert not combined["pic00002.jpg"].ignore.any()  # the ignore region became a face

    assert main(["data", "combine", "--teacher", f"csv:{teacher}", "--human", f"caltech:{human}", "--missed",
                 "ignore", "--out", str(tmp_path / "ignored")]) == 0
    first = next(s for s in load_annotations(f"csv:{tmp_path / 'ignored'}").samples if s.key.endswith("00001.jpg"))
    assert first.ignore.tolist() == [False, False, True]
