"""The ``widerface`` dataset format: the hand-made fixture, malformed files, and the real annotation files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from singleshot.data.formats import DataError, list_formats, load_annotations
from singleshot.data.formats.widerface import ATTRIBUTES, parse_bbx_gt, read_widerface

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "widerface"
GT_FILE = FIXTURE / "wider_face_split" / "wider_face_val_bbx_gt.txt"
SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "annotations_only" / "widerface"


def test_registered():
    assert "widerface" in list_formats()


def test_fixture_parse():
    data = read_widerface(FIXTURE)
    assert data.format == "widerface"
    assert data.class_names == ["background", "face"]
    assert data.root == FIXTURE
    assert [s.key for s in data.samples] == [
        "WIDER_val/images/0--Parade/0_Parade_marchingband_1_465.jpg",
        "WIDER_val/images/0--Parade/0_Parade_Parade_0_275.jpg",
        "WIDER_val/images/1--Handshaking/1_Handshaking_Handshaking_1_35.jpg",
        "WIDER_val/images/1--Handshaking/1_Handshaking_Handshaking_1_94.jpg",
    ]
    first, empty, mixed, zero_box = data.samples
    assert first.image_path == FIXTURE / "WIDER_val" / "images" / "0--Parade" / "0_Parade_marchingband_1_465.jpg"
    assert first.width is None and first.height is None  # images are not opened
    # x1 y1 w h -> x1 y1 x1+w y1+h
    np.testing.assert_array_equal(first.boxes_xyxy, [[345, 211, 349, 215], [331, 126, 334, 129]])
    assert first.boxes_xyxy.dtype == np.float32
    np.testing.assert_array_equal(first.labels, [1, 1])
    np.testing.assert_array_equal(first.ignore, [False, True])  # the second face is invalid
    assert set(first.extra) == set(ATTRIBUTES)
    np.testing.assert_array_equal(first.extra["blur"], [2, 0])
    np.testing.assert_array_equal(first.extra["invalid"], [0, 1])
    np.testing.assert_array_equal(first.extra["occlusion"], [2, 0])
    # count 0 + dummy line of zeros: no face, and the dummy line is not read as the next image's name
    assert len(empty) == 0 and empty.boxes_xyxy.shape == (0, 4)
    # the zero-width box (50 60 0 10) is dropped; the attributes follow the kept boxes
    np.testing.assert_array_equal(mixed.boxes_xyxy, [[10, 20, 40, 60], [70, 80, 75, 86]])
    np.testing.assert_array_equal(mixed.ignore, [False, True])
    np.testing.assert_array_equal(mixed.extra["expression"], [1, 0])
    np.testing.assert_array_equal(mixed.extra["illumination"], [0, 1])
    np.testing.assert_array_equal(mixed.extra["pose"], [1, 0])
    # the other spelling of "no face": a count of 1 and an all-zero box, dropped as empty
    assert len(zero_box) == 0
    assert data.report.dropped_boxes == 2
    assert all(str(GT_FILE) in m for m in data.report.messages)
    assert any(m.startswith(f"{GT_FILE}:8:") for m in data.report.messages)  # line of the image name


def test_path_variants(tmp_path):
    by_root = read_widerface(FIXTURE)
    for path in (FIXTURE / "wider_face_split", GT_FILE):
        other = read_widerface(path)
        assert other.root == FIXTURE
        assert [s.key for s in other.samples] == [s.key for s in by_root.samples]
    via_spec = load_annotations(f"widerface:{FIXTURE}")
    assert len(via_spec) == 4
    # a file given directly sets the split from its name
    split_dir = tmp_path / "wider_face_split"
    split_dir.mkdir()
    shutil.copy(GT_FILE, split_dir / "wider_face_train_bbx_gt.txt")
    train = read_widerface(split_dir / "wider_face_train_bbx_gt.txt")
    assert train.root == tmp_path
    assert train.samples[0].key == "WIDER_train/images/0--Parade/0_Parade_marchingband_1_465.jpg"
    assert read_widerface(tmp_path, split="train").samples[0].key == train.samples[0].key


def test_blank_lines_and_short_lines(tmp_path):
    """Blank lines are skipped (line numbers stay right); a 4-number line gives attributes -1."""
    path = tmp_path / "wider_face_split" / "wider_face_val_bbx_gt.txt"
    path.parent.mkdir()
    path.write_text("\n0--Parade/a.jpg\r\n1\r\n1 2 3 4\r\n\r\n")
    (sample,) = read_widerface(tmp_path).samples
    np.testing.assert_array_equal(sample.boxes_xyxy, [[1, 2, 4, 6]])
    assert all(sample.extra[a].tolist() == [-1] for a in ATTRIBUTES)
    assert not sample.ignore.any()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wider_face_split" / "wider_face_val_bbx_gt.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("0--Parade/a.jpg\ntwo\n1 2 3 4 0 0 0 0 0 0\n", 2, "number of faces"),
        ("0--Parade/a.jpg\n1.5\n1 2 3 4 0 0 0 0 0 0\n", 2, "number of faces"),
        ("0--Parade/a.jpg\n-1\n", 2, "negative"),
        ("0--Parade/a.jpg\n3\n1 2 3 4 0 0 0 0 0 0\n", 2, "ends after 1"),  # file ends early
        ("0--Parade/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n0--Parade/b.jpg\n1\n1 2 3 4\n", 4, "not a face line"),
        ("0--Parade/a.jpg\n1\n1 2 3\n", 3, "got 3 number"),
        ("0--Parade/a.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n1 2 3 4 0 0 0 0 0 0\n", 4, "expected an image name"),
        ("0--Parade/a.jpg\n", 1, "no face-count line"),
    ],
)
def test_malformed(tmp_path, text, line, words):
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_widerface(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert words in message
    assert "\n" not in message


def test_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_widerface(tmp_path)  # no wider_face_split/wider_face_val_bbx_gt.txt
    with pytest.raises(DataError, match="not found"):
        read_widerface(tmp_path / "nowhere")
    other = tmp_path / "boxes.txt"
    other.write_text("x")
    with pytest.raises(DataError, match="wider_face_<split>_bbx_gt.txt"):
        read_widerface(other)
    _write(tmp_path, "\n\n")
    with pytest.raises(DataError, match="empty file"):
        read_widerface(tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared WIDER FACE annotations not present")
def test_real_val_file():
    gt_path = SHARED / "wider_face_split" / "wider_face_val_bbx_gt.txt"
    records = parse_bbx_gt(gt_path)
    # Measured on the release in shared/data: 3,226 images, 39,708 face lines (4 of them the all-zero boxes of
    # the images without faces), 585 invalid faces; 11 boxes have zero (or negative) width or height.
    assert len(records) == 3226
    assert sum(len(rows) for _, _, rows in records) == 39708
    assert sum(int((rows[:, 7] == 1).sum()) for _, _, rows in records) == 585
    data = read_widerface(SHARED)
    assert len(data) == 3226
    assert data.report.dropped_boxes == 11
    assert sum(len(s) for s in data.samples) == 39708 - 11
    assert sum(int(s.ignore.sum()) for s in data.samples) == 585
    assert data.samples[0].key == "WIDER_val/images/0--Parade/0_Parade_marchingband_1_465.jpg"
    assert len(data.samples[0]) == 126
    assert all((s.boxes_xyxy[:, 2:] > s.boxes_xyxy[:, :2]).all() for s in data.samples)


def test_fixture_val_file():
    """:func:`test_real_val_file` on the fixture (the same counts, worked out by hand), so the same path runs
    without ../shared: 4 images, 6 face lines once the dummy line after a count of 0 is consumed (1 of them the
    all-zero box of an image without faces), 2 invalid faces; the all-zero box and the zero-width box dropped."""
    records = parse_bbx_gt(GT_FILE)
    assert len(records) == 4
    assert [len(rows) for _, _, rows in records] == [2, 0, 3, 1]
    assert sum(int((rows[:, 7] == 1).sum()) for _, _, rows in records) == 2
    assert [line for _, line, _ in records] == [1, 5, 8, 13]  # 1-based lines of the names
    data = read_widerface(FIXTURE)
    assert len(data) == 4
    assert data.report.dropped_boxes == 2
    assert sum(len(s) for s in data.samples) == 6 - 2
    assert sum(int(s.ignore.sum()) for s in data.samples) == 2
    assert data.samples[0].key == "WIDER_val/images/0--Parade/0_Parade_marchingband_1_465.jpg"
    assert len(data.samples[0]) == 2
    assert all((s.boxes_xyxy[:, 2:] > s.boxes_xyxy[:, :2]).all() for s in data.samples)
