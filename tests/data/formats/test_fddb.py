"""The FDDB format: ellipse lists read as boxes (hand-computed), layouts, folds, errors, and the real fold 01."""

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from singleshot.data.formats import DataError, load_annotations
from singleshot.data.formats.fddb import ellipse_to_box, read_fddb

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "fddb"
SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
REAL_FDDB = SHARED / "annotations_only" / "fddb"


def test_fixture_parse_and_hand_computed_boxes():
    data = load_annotations(f"fddb:{FIXTURE}")
    assert data.format == "fddb" and data.class_names == ["background", "face"] and data.root == FIXTURE
    assert [s.key for s in data.samples] == [
        "2002/08/11/big/img_591.jpg", "2002/08/26/big/img_265.jpg", "2003/01/13/big/img_1087.jpg"
    ]  # no originalPics/ folder in the fixture: images are looked up directly under the root
    assert data.samples[0].image_path == FIXTURE / "2002/08/11/big/img_591.jpg"
    assert [len(s) for s in data.samples] == [1, 2, 1]
    a, b, _ = data.samples
    # Axis-aligned (angle 0): major radius along x. Box = centre -+ (40, 30).
    np.testing.assert_allclose(a.boxes_xyxy, [[60, 50, 140, 110]], atol=1e-3)
    # Angle pi/2: the major axis is vertical, the box is 2*25 wide and 2*50 tall.
    # Angle pi/4, radii 20 and 10: half extent sqrt(20^2/2 + 10^2/2) = sqrt(250) = 15.8114 both ways.
    h = math.sqrt(250)
    np.testing.assert_allclose(b.boxes_xyxy, [[175, 100, 225, 200], [60 - h, 60 - h, 60 + h, 60 + h]], atol=1e-3)
    assert b.labels.tolist() == [1, 1] and not b.ignore.any() and b.width is None and b.height is None
    np.testing.assert_allclose(b.extra["major_radius"], [50, 20])
    np.testing.assert_allclose(b.extra["minor_radius"], [25, 10])
    np.testing.assert_allclose(b.extra["angle"], [1.570796, 0.785398])
    np.testing.assert_allclose(b.extra["center_x"], [200, 60])
    np.testing.assert_allclose(b.extra["center_y"], [150, 60])
    assert data.report.messages == []


def test_ellipse_to_box_matches_opencv_drawing():
    """The angle convention: OpenCV (the official evaluation's drawing) puts the major axis at ``angle`` from x."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, t = rng.uniform(20, 80), rng.uniform(-math.pi, math.pi)
        b = a * rng.uniform(0.4, 0.9)
        t = math.radians(round(math.degrees(t)))  # OpenCV draws whole degrees
        canvas = np.zeros((200, 200), np.uint8)
        cv2.ellipse(canvas, (100, 100), (int(a), int(b)), math.degrees(t), 0, 360, 1, -1)
        ys, xs = np.nonzero(canvas)
        box = ellipse_to_box(int(a), int(b), t, 100, 100)[0]
        np.testing.assert_allclose([xs.min(), ys.min(), xs.max(), ys.max()], box, atol=1.5)


def test_folds_and_path_variants(tmp_path):
    assert [s.key for s in read_fddb(FIXTURE, folds=[2]).samples] == ["2003/01/13/big/img_1087.jpg"]
    assert len(read_fddb(FIXTURE / "FDDB-folds")) == 3  # the FDDB-folds folder itself; root is its parent
    assert read_fddb(FIXTURE / "FDDB-folds").root == FIXTURE
    one = read_fddb(FIXTURE / "FDDB-folds" / "FDDB-fold-01-ellipseList.txt")
    assert len(one) == 2 and one.root == FIXTURE and one.samples[0].key == "2002/08/11/big/img_591.jpg"
    with pytest.raises(DataError, match="FDDB-fold-03-ellipseList.txt: FDDB fold 3 not found"):
        read_fddb(FIXTURE, folds=[3])
    with pytest.raises(DataError, match="folds= selects files"):
        read_fddb(FIXTURE / "FDDB-folds" / "FDDB-fold-01-ellipseList.txt", folds=[1])
    with pytest.raises(DataError, match="not found"):
        read_fddb(tmp_path / "missing")
    with pytest.raises(DataError, match="no FDDB-fold-NN-ellipseList.txt"):
        read_fddb(tmp_path)


def test_original_pics_layout(tmp_path):
    shutil.copytree(FIXTURE / "FDDB-folds", tmp_path / "FDDB-folds")
    (tmp_path / "originalPics").mkdir()
    data = read_fddb(tmp_path)
    assert data.samples[0].key == "originalPics/2002/08/11/big/img_591.jpg"
    assert data.samples[0].image_path == tmp_path / "originalPics/2002/08/11/big/img_591.jpg"


@pytest.mark.parametrize(
    "text, message",
    [
        ("img_1\n1\n40 30 0 100\n", r"ellipse.txt:3: expected 'major_radius .*got 4 field"),
        ("img_1\n1\n40 30 zero 100 80 1\n", r"ellipse.txt:3: ellipse fields must be numbers"),
        ("img_1\n1\n40 30 nan 100 80 1\n", r"ellipse.txt:3: ellipse fields must be finite"),
        ("img_1\ntwo\n", r"ellipse.txt:2: expected the number of faces of 'img_1', got 'two'"),
        ("img_1\n", r"ellipse.txt:2: file ends after image name 'img_1'"),
        ("img_1\n3\n40 30 0 100 80 1\n", r"ellipse.txt:3: file ends inside 'img_1': 3 face line\(s\) announced, 1"),
        ("img_1\n1\n40 30 0 100 80 1\nimg 2\n0\n", r"ellipse.txt:4: expected an image name"),
        ("\n\n", r"ellipse.txt: no images"),
    ],
)
def test_malformed_files(tmp_path, text, message):
    path = tmp_path / "ellipse.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_fddb(path)


def test_degenerate_and_duplicate_records_are_reported(tmp_path):
    folds = tmp_path / "FDDB-folds"
    folds.mkdir()
    (folds / "FDDB-fold-01-ellipseList.txt").write_text(
        "img_1\n2\n40 30 0 100 80 1\n0 30 0 50 50 1\n\nimg_1\n1\n10 5 0 20 20 1\n"
    )
    (folds / "FDDB-fold-01.txt").write_text("img_1\nimg_1\nimg_2\n")
    data = read_fddb(tmp_path)
    assert len(data) == 1 and len(data.samples[0]) == 1  # zero radius dropped, repeated record skipped
    assert data.samples[0].extra["center_x"].tolist() == [100.0]  # extra columns filtered with the boxes
    assert data.report.dropped_boxes == 1 and data.report.skipped_images == 1
    text = "\n".join(data.report.messages)
    assert "FDDB-fold-01-ellipseList.txt:1: 1 box(es) with no area dropped" in text
    assert "FDDB-fold-01-ellipseList.txt:6: image 'img_1' already annotated" in text
    assert "1 image(s) listed more than once" in text and "1 listed image(s) have no annotation" in text


@pytest.mark.skipif(not REAL_FDDB.is_dir(), reason="shared FDDB annotations not present")
def test_real_fold_01():
    data = read_fddb(REAL_FDDB, folds=[1])
    # Measured on FDDB-fold-01-ellipseList.txt: 288 images, 512 faces, every line well-formed.
    assert len(data) == 288 and sum(len(s) for s in data.samples) == 512
    assert data.report.dropped_boxes == 0 and data.report.skipped_images == 0
    # This copy's FDDB-fold-01.txt lists 290 lines: img_228 and img_1116 twice; reported, not fatal.
    assert len(data.report.messages) == 1 and "2 image(s) listed more than once" in data.report.messages[0]
    first = data.samples[0]
    assert first.key == "2002/07/31/big/img_228.jpg" and len(first) == 2
    # 55.012198 33.056167 -1.540952 103.432230 107.856136: near-vertical major axis, a tall box.
    np.testing.assert_allclose(
        first.boxes_xyxy[0], ellipse_to_box(55.012198, 33.056167, -1.540952, 103.432230, 107.856136)[0], rtol=1e-6
    )
    boxes = np.concatenate([s.boxes_xyxy for s in data.samples])
    tall = (boxes[:, 3] - boxes[:, 1]) > (boxes[:, 2] - boxes[:, 0])
    assert tall.sum() == 511  # faces are taller than wide: the angle is the major axis' angle from x


def test_fixture_fold_01():
    """:func:`test_real_fold_01` on the fixture's fold 01 (2 images, 3 ellipses), so the same path runs without
    ../shared: the fold's images in list order, every line kept, boxes from :func:`ellipse_to_box`, and the angle
    read as the major axis' angle from x (the pi/2 ellipse gives the one tall box)."""
    data = read_fddb(FIXTURE, folds=[1])
    assert len(data) == 2 and sum(len(s) for s in data.samples) == 3
    assert data.report.dropped_boxes == 0 and data.report.skipped_images == 0 and data.report.messages == []
    first = data.samples[0]
    assert first.key == "2002/08/11/big/img_591.jpg" and len(first) == 1
    np.testing.assert_allclose(first.boxes_xyxy[0], ellipse_to_box(40.0, 30.0, 0.0, 100.0, 80.0)[0], rtol=1e-6)
    boxes = np.concatenate([s.boxes_xyxy for s in data.samples])
    tall = (boxes[:, 3] - boxes[:, 1]) > (boxes[:, 2] - boxes[:, 0]) + 1e-3
    assert tall.tolist() == [False, True, False]
