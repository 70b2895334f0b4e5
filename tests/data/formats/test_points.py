from pathlib import Path

import numpy as np
import pytest

from singleshot.data.formats import DataError, load_annotations
from singleshot.landmarks import TEMPLATE_112, box_from_points

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_caltech_points_become_landmarks_and_estimated_boxes():
    data = load_annotations(f"caltech:{FIXTURES / 'caltech'}")
    assert [s.key for s in data.samples] == ["pic00001.jpg", "pic00002.jpg"] and len(data.samples[0]) == 2
    first = data.samples[0]
    np.testing.assert_allclose(first.extra["landmarks"][0, :3], [[20, 30], [40, 30], [30, 40]])
    assert np.isnan(first.extra["landmarks"][:, 3:]).all()  # mouth corners unknown
    np.testing.assert_allclose(first.extra["mouth_centre"][0], [30, 50])
    assert first.extra["box_from_points"].all()
    # the box is the alignment square through the four points: centred between the eyes, about 3x their distance
    x1, y1, x2, y2 = first.boxes_xyxy[0]
    assert abs((x1 + x2) / 2 - 30) < 1.0 and 55 < x2 - x1 < 75 and y1 < 30 and y2 > 50  # eyes at 30, mouth at 50
    bigger = load_annotations(f"caltech:{FIXTURES / 'caltech'}", box_scale=1.5).samples[0].boxes_xyxy[0]
    assert bigger[2] - bigger[0] == pytest.approx(1.5 * (x2 - x1), rel=1e-4)


def test_mtfl_crops_are_their_own_boxes_with_five_points():
    data = load_annotations(f"mtfl:{FIXTURES / 'mtfl'}", split="test")
    assert len(data) == 2 and data.samples[0].key == "AFLW/0001-image1.jpg"
    np.testing.assert_allclose(data.samples[0].boxes_xyxy, [[0, 0, 80, 80]])
    np.testing.assert_allclose(data.samples[0].extra["landmarks"][0],  # x1..x5 then y1..y5
                               [[30, 23], [50, 25], [40, 37], [28, 45], [48, 47]])
    with pytest.raises(DataError, match="train' or 'test"):
        load_annotations(f"mtfl:{FIXTURES / 'mtfl'}", split="val")
    with pytest.raises(DataError, match="new_training.txt"):
        load_annotations(f"mtfl:{FIXTURES / 'mtfl'}", split="train")


@pytest.mark.parametrize("option", [{"parts": "net_7876"}, {"box_scale": 0.67}, {"parts": "net_7876", "box_scale": 2}])
def test_mtfl_crop_layout_refuses_options_of_the_original_release(option):
    with pytest.raises(DataError, match=rf"new_testing.txt: option {', '.join(option)} applies only to the original"):
        load_annotations(f"mtfl:{FIXTURES / 'mtfl'}", split="test", **option)


def test_point_formats_name_the_line_of_a_bad_row(tmp_path):
    (tmp_path / "WebFaces_GroundThruth.txt").write_text("pic1.jpg 1 2 3\n")
    with pytest.raises(DataError, match=r"GroundThruth.txt:1: expected 8 numbers"):
        load_annotations(f"caltech:{tmp_path}")


def test_estimated_box_follows_the_template():
    four = np.vstack((TEMPLATE_112[:3], TEMPLATE_112[3:].mean(0, keepdims=True)))
    from singleshot.data.formats.points import _CALTECH_TEMPLATE

    np.testing.assert_allclose(box_from_points(four[None], _CALTECH_TEMPLATE), [[0, 0, 112, 112]], atol=1e-6)


def _original_mtfl(root: Path) -> Path:
    """The original MTFL release's layout: whole photos, backslash paths, points then four attributes."""
    import cv2

    for folder in ("net_7876", "lfw_5590"):
        (root / folder).mkdir(parents=True)
    for name in ("net_7876/1_0_0.jpg", "net_7876/2_0_0.jpg", "lfw_5590/A_0001.jpg"):
        cv2.imwrite(str(root / name), np.full((120, 120, 3), 128, np.uint8))
    (root / "training.txt").write_text(
        "net_7876\\1_0_0.jpg 40 80 60 45 75 50 50 65 85 85 1 1 2 3\n"
        " net_7876\\2_0_0.jpg 40 80 60 45 75 50 50 65 85 85 2 2 1 5\r\n"
        " lfw_5590\\A_0001.jpg 40 80 60 45 75 50 50 65 85 85 1 1 2 3\n")
    return root


def test_mtfl_original_release_gives_attributes_and_estimated_boxes(tmp_path):
    root = _original_mtfl(tmp_path / "MTFL")
    data = load_annotations(f"mtfl:{root}", split="train")
    assert [s.key for s in data.samples] == ["net_7876/1_0_0.jpg", "net_7876/2_0_0.jpg", "lfw_5590/A_0001.jpg"]
    first, second = data.samples[:2]
    np.testing.assert_allclose(first.extra["landmarks"][0], [[40, 50], [80, 50], [60, 65], [45, 85], [75, 85]])
    assert (first.extra["smile"][0], first.extra["female"][0], first.extra["glasses"][0]) == (1, 0, 0)
    assert (second.extra["smile"][0], second.extra["female"][0], second.extra["glasses"][0]) == (0, 1, 1)
    assert second.extra["head_pose"][0] == 5 and first.extra["box_from_points"].all()
    x1, y1, x2, y2 = first.boxes_xyxy[0]
    assert abs((x1 + x2) / 2 - 60) < 1.5 and y1 < 50 and y2 > 85  # eyes 40 px apart, centred at 60
    smaller = load_annotations(f"mtfl:{root}", split="train", box_scale=0.5).samples[0].boxes_xyxy[0]
    assert smaller[2] - smaller[0] == pytest.approx(0.5 * (x2 - x1), rel=1e-4)
    only = load_annotations(f"mtfl:{root}", split="train", parts="net_7876")
    assert [s.key for s in only.samples] == ["net_7876/1_0_0.jpg", "net_7876/2_0_0.jpg"]
    with pytest.raises(DataError, match="no photos listed in nope"):
        load_annotations(f"mtfl:{root}", split="train", parts="nope")
    (root / "testing.txt").write_text("net_7876\\1_0_0.jpg 40 80 60 45 75 50 50 65 85 85 1 3 2 3\n")
    with pytest.raises(DataError, match=r"testing.txt:1: attributes must be"):
        load_annotations(f"mtfl:{root}", split="test")
