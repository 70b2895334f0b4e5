"""The predictions JSON reader and the WIDER FACE submission reader, fed mutated files: a result or one
SingleshotError, nothing else."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given

from singleshot.errors import SingleshotError
from singleshot.evaluation.predictions import load_predictions
from tests.fuzzing import FUZZ_SETTINGS, assert_one_line, mutated

PREDICTIONS = json.dumps({
    "a.jpg": [[10.0, 8.0, 30.0, 20.0, 0.9, 1], [40, 10, 70, 30, 0.5]],
    "sub/b.jpg": [[1, 2, 3, 4, 0.3, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]],
    "c.jpg": [],
}, indent=1).encode()
SUBMISSION = b"0_Parade_marchingband_1_465.jpg\n2\n10 20 30 40 0.9\n1.5 2 3 4 0.1 extra\n"


@FUZZ_SETTINGS
@given(mutated(PREDICTIONS))
def test_predictions_json_gives_boxes_or_one_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "detections.json"
        path.write_bytes(data)
        try:
            for rows in load_predictions(path).values():
                assert rows.ndim == 2 and rows.shape[1] >= 6
        except SingleshotError as err:
            assert_one_line(err)


@FUZZ_SETTINGS
@given(mutated(SUBMISSION))
def test_wider_submission_gives_boxes_or_one_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "0--Parade").mkdir()
        (Path(tmp) / "0--Parade" / "0_Parade_marchingband_1_465.txt").write_bytes(data)
        try:
            for rows in load_predictions(tmp).values():
                assert rows.shape[1] == 6
        except SingleshotError as err:
            assert_one_line(err)
