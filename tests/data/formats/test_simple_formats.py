"""Parse tests for the CSV, VOC, COCO, YOLO, dlib and folder formats on tiny fixtures, and their error messages."""

from pathlib import Path

import numpy as np
import pytest

from singleshot.data.formats import DataError, list_formats, load_annotations, parse_spec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def test_csv_fixture():
    data = load_annotations(f"csv:{FIXTURES / 'csv'}")
    assert data.class_names == ["background", "face"]
    assert [s.key for s in data.samples] == ["images/a.jpg", "images/b.jpg", "images/c.jpg"]
    a, b, c = data.samples
    # a.jpg's second box (40, 10, 70, 30) crosses the 64-pixel-wide image: clipped and counted
    np.testing.assert_array_equal(a.boxes_xyxy, [[10, 8, 30, 20], [40, 10, 64, 30]])
    assert data.report.clipped_boxes == 1 and "boxes.csv:2 (a.jpg)" in data.report.messages[0]
    assert len(b) == 1 and len(c) == 0  # c.jpg is listed without objects
    assert all(s.image_path.exists() for s in data.samples)
    assert (a.width, a.height) == (64, 48)


def test_csv_errors(tmp_path):
    (tmp_path / "boxes.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_annotations(f"csv:{tmp_path}")
    (tmp_path / "boxes.csv").write_text("name,x,y\n")
    with pytest.raises(DataError, match=r"boxes.csv:1: expected header"):
        load_annotations(f"csv:{tmp_path}")
    (tmp_path / "boxes.csv").write_text("image,width,height,x1,y1,x2,y2\na.jpg,64,48,1,2,three,4\n")
    with pytest.raises(DataError, match=r"boxes.csv:2: box coordinates must be numbers"):
        load_annotations(f"csv:{tmp_path}")
    with pytest.raises(DataError, match="not found"):
        load_annotations(f"csv:{tmp_path / 'missing'}")


def test_csv_ignore_column(tmp_path):
    (tmp_path / "boxes.csv").write_text(
        "image,width,height,x1,y1,x2,y2,label,ignore\n"
        "a.jpg,64,48,1,1,20,20,face,0\n"
        "a.jpg,64,48,30,10,50,30,face,1\n"
        "b.jpg,64,48,,,,,,\n"
    )
    data = load_annotations(f"csv:{tmp_path}")
    a, b = data.samples
    assert a.ignore.tolist() == [False, True] and len(b) == 0
    (tmp_path / "boxes.csv").write_text("image,width,height,x1,y1,x2,y2,label,ignore\na.jpg,64,48,1,1,20,20,face,yes\n")
    with pytest.raises(DataError, match=r"boxes.csv:2: ignore must be 0 or 1"):
        load_annotations(f"csv:{tmp_path}")


def test_voc_fixture_and_split():
    data = load_annotations(f"voc:{FIXTURES / 'voc'}")
    assert data.class_names == ["background", "dog", "person"]
    first = data.samples[0]
    assert first.key == "JPEGImages/000001.jpg"
    assert first.labels.tolist() == [2, 1]
    assert first.ignore.tolist() == [False, True]  # the dog is difficult
    assert first.extra["truncated"].tolist() == [False, True]
    test = load_annotations(f"voc:{FIXTURES / 'voc'}", split="test")
    assert [s.key for s in test.samples] == ["JPEGImages/000002.jpg"]
    faces = load_annotations(f"voc:{FIXTURES / 'voc'}", single_class="face")
    assert faces.class_names == ["background", "face"] and faces.samples[0].labels.tolist() == [1, 1]


def test_voc_filename_naming_no_file_falls_back_to_the_image_named_after_the_xml(tmp_path):
    import shutil

    root = tmp_path / "voc"
    shutil.copytree(FIXTURES / "voc", root)
    xml = root / "Annotations" / "000001.xml"
    text = xml.read_text()
    assert "<filename>000001.jpg</filename>" in text
    xml.write_text(text.replace("<filename>000001.jpg</filename>", "<filename>000001.xml</filename>"))
    data = load_annotations(f"voc:{root}")
    assert data.samples[0].key == "JPEGImages/000001.jpg" and data.samples[0].image_path.is_file()
    assert any("'000001.xml' not found; using 000001.jpg" in m for m in data.report.messages)


def test_voc_errors(tmp_path):
    (tmp_path / "annotations").mkdir()
    with pytest.raises(DataError, match="no .xml files"):
        load_annotations(f"voc:{tmp_path}")
    (tmp_path / "annotations" / "a.xml").write_text("<annotation><object><name>x</name></object>")
    data = load_annotations(f"voc:{tmp_path}")  # unparseable XML: reported and skipped
    assert data.report.skipped_images == 1 and "a.xml" in data.report.messages[0]
    (tmp_path / "annotations" / "a.xml").write_text("<annotation><object><name>x</name></object></annotation>")
    with pytest.raises(DataError, match="missing <bndbox>"):
        load_annotations(f"voc:{tmp_path}")


def test_coco_fixture():
    data = load_annotations(f"coco:{FIXTURES / 'coco' / 'instances.json'}")
    assert data.class_names == ["background", "hand", "face"]  # category ids 1, 3
    x, y = data.samples
    assert x.key == "x.jpg" and x.image_path.exists()
    np.testing.assert_array_equal(x.boxes_xyxy, [[10, 8, 30, 20], [30, 20, 40, 30]])
    assert x.labels.tolist() == [2, 1] and x.ignore.tolist() == [False, True]
    assert len(y) == 0


def test_coco_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_annotations(f"coco:{bad}")
    bad.write_text('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1], "category_id": 5}], "categories": []}')
    with pytest.raises(DataError, match="unknown category_id 5"):
        load_annotations(f"coco:{bad}")


def test_yolo_fixture():
    data = load_annotations(f"yolo:{FIXTURES / 'yolo'}")
    assert data.class_names == ["background", "face", "smile"]
    p, q = data.samples
    assert p.key == "images/train/p.jpg"
    np.testing.assert_allclose(p.boxes_xyxy, [[10, 8, 30, 20], [40, 12, 56, 36]], atol=1e-3)
    assert p.labels.tolist() == [1, 2] and len(q) == 0


def test_yolo_errors(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes((FIXTURES / "csv" / "images" / "a.jpg").read_bytes())
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.1\n")
    with pytest.raises(DataError, match=r"a.txt:1: expected 'class cx cy w h'"):
        load_annotations(f"yolo:{tmp_path}")
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (tmp_path / "images" / "broken.jpg").write_bytes(b"not an image")
    data = load_annotations(f"yolo:{tmp_path}")  # the corrupt image is reported and skipped
    assert len(data) == 1 and data.report.skipped_images == 1 and "broken.jpg" in data.report.messages[0]


def test_dlib_fixture():
    data = load_annotations(f"dlib:{FIXTURES / 'dlib' / 'training.xml'}")
    (d,) = data.samples
    np.testing.assert_array_equal(d.boxes_xyxy, [[10, 8, 30, 20], [40, 20, 50, 30]])
    assert d.ignore.tolist() == [False, True] and d.image_path.exists()


def test_folder_lists_images_recursively():
    data = load_annotations(f"folder:{FIXTURES / 'yolo'}")
    assert [s.key for s in data.samples] == ["images/train/p.jpg", "images/train/q.jpg"]
    assert all(len(s) == 0 for s in data.samples)


def test_spec_errors():
    with pytest.raises(DataError, match="expected FORMAT:PATH"):
        parse_spec("just-a-path")
    with pytest.raises(DataError, match="did you mean csv"):
        parse_spec("cvs:somewhere")
    assert {"csv", "voc", "coco", "yolo", "dlib", "folder"} <= set(list_formats())


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data not available")
def test_real_sets():
    counting = load_annotations(f"csv:{SHARED / 'faces' / 'face_counting' / 'val'}")
    assert (len(counting), sum(len(s) for s in counting.samples)) == (300, 1306)
    mask = load_annotations(f"voc:{SHARED / 'faces' / 'face_mask'}", single_class="face")
    assert (len(mask), sum(len(s) for s in mask.samples)) == (749, 3528)
    tiny = load_annotations(f"dlib:{SHARED / 'faces' / 'dlib_tiny' / 'training.xml'}")
    assert len(tiny) == 4 and all(s.image_path.exists() for s in tiny.samples)


def test_fixture_sets_read_as_the_real_ones():
    """:func:`test_real_sets` on fixtures with the same layouts, so the same calls run without ../shared: a CSV
    set (``boxes.csv`` + ``images/``, as face_counting), the face mask layout (``annotations/`` + ``images/``,
    Spanish class names mapped to one class; tests/fixtures/face_mask holds one real CC0 image of that set and a
    crop of it) and a dlib XML whose images exist."""
    counting = load_annotations(f"csv:{FIXTURES / 'csv'}")
    assert (len(counting), sum(len(s) for s in counting.samples)) == (3, 3)
    mask = load_annotations(f"voc:{FIXTURES / 'face_mask'}", single_class="face")
    assert (len(mask), sum(len(s) for s in mask.samples)) == (2, 8)
    assert mask.class_names == ["background", "face"] and all((s.labels == 1).all() for s in mask.samples)
    assert [s.key for s in mask.samples] == ["images/maksssksksss230.jpg", "images/maksssksksss230_crop.jpg"]
    assert [(s.width, s.height) for s in mask.samples] == [(512, 367), (300, 367)]
    assert all(s.image_path.exists() for s in mask.samples) and not mask.report.messages
    tiny = load_annotations(f"dlib:{FIXTURES / 'dlib' / 'training.xml'}")
    assert len(tiny) == 1 and all(s.image_path.exists() for s in tiny.samples)
