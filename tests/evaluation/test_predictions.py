import json

import numpy as np
import pytest
import torch

from singleshot.data.formats import DataError, load_annotations
from singleshot.evaluation import evaluate
from singleshot.evaluation.predictions import parse_predictions, read_predictions, write_predictions
from singleshot.structures import Detections


def test_rows_carry_landmarks_after_the_label_and_evaluation_reads_the_boxes(tmp_path):
    points = torch.arange(10, dtype=torch.float32).view(1, 5, 2)
    det = Detections(torch.tensor([[10.0, 10, 40, 50]]), torch.tensor([0.9]), torch.tensor([1]), landmarks=points)
    rows = det.to_rows()
    assert rows.shape == (1, 16)
    np.testing.assert_allclose(rows[0, 6:], np.arange(10))  # lx1, ly1, ..., lx5, ly5
    write_predictions(tmp_path / "p.json", {"a.jpg": rows})
    back = read_predictions(tmp_path / "p.json")["a.jpg"]
    np.testing.assert_allclose(back, rows)
    assert Detections(det.boxes_xyxy, det.scores, det.labels).to_rows().shape == (1, 6)
    # the protocols score the boxes: the same AP with and without the points
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    (gt_dir / "boxes.csv").write_text("image,width,height,x1,y1,x2,y2\na.jpg,100,100,10,10,40,50\n")
    data = load_annotations(f"csv:{gt_dir}")
    key = data.samples[0].key
    with_points = evaluate(data, {key: rows}).metrics["mAP"]
    assert with_points == evaluate(data, {key: rows[:, :6]}).metrics["mAP"] == pytest.approx(1.0)


def test_rows_of_odd_lengths_are_refused():
    with pytest.raises(DataError, match="landmark"):
        parse_predictions({"a.jpg": [[1, 2, 3, 4, 0.5, 1, 7]]}, "p.json")
    with pytest.raises(DataError, match="other rows"):
        parse_predictions({"a.jpg": [[1, 2, 3, 4, 0.5, 1, 7, 8], [1, 2, 3, 4, 0.5, 1, 7, 8, 9, 10]]}, "p.json")
    assert parse_predictions(json.loads('{"a.jpg": [[1, 2, 3, 4, 0.5]]}'), "p.json")["a.jpg"].shape == (1, 6)


def test_no_detections_with_landmarks_give_empty_rows():
    det = Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long),
                     landmarks=torch.zeros(0, 5, 2))
    assert det.to_rows().shape == (0, 16)


def test_written_scores_keep_their_order_so_the_ap_reads_back_the_same(tmp_path):
    # a true face scored 0.99941 above a false box scored 0.99939 would tie at 0.999 if scores were rounded to 3
    # decimals, and the ranking (hence the AP) read back would change
    rows = np.array([[10, 10, 40, 50, 0.99941, 1], [60, 60, 90, 90, 0.99939, 1]], np.float64)
    write_predictions(tmp_path / "p.json", {"a.jpg": rows})
    back = read_predictions(tmp_path / "p.json")["a.jpg"]
    assert back[0, 4] > back[1, 4]
    np.testing.assert_allclose(back, rows, atol=1e-6)


def test_class_names_travel_in_the_file_and_readers_skip_them(tmp_path):
    from singleshot.evaluation.predictions import read_class_names

    path = tmp_path / "p.json"
    write_predictions(path, {"a.jpg": np.array([[1, 2, 3, 4, 0.9, 2]])}, ["background", "head", "helmet"])
    assert next(iter(json.loads(path.read_text()))) == "@classes"
    assert read_class_names(path) == ["background", "head", "helmet"]
    assert list(read_predictions(path)) == ["a.jpg"] and read_predictions(path)["a.jpg"][0, 5] == 2
    path.write_text(json.dumps({"@classes": "head", "a.jpg": []}))
    with pytest.raises(DataError, match="@classes"):
        read_predictions(path)
    write_predictions(path, {"a.jpg": np.zeros((0, 6))})
    assert read_class_names(path) is None
