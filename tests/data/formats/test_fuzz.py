"""Every dataset reader, fed mutated copies of its fixture: a parsed set or one SingleshotError, nothing else.

``singleshot data stats`` runs the reader and then the statistics, so both are exercised on each mutant.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given

from singleshot.data.formats import load_annotations
from singleshot.data.stats import dataset_stats, format_stats
from singleshot.errors import SingleshotError
from tests.fuzzing import FIXTURES, FUZZ_SETTINGS, assert_one_line, copy_fixture, mutated

# (spec format, fixture folder, file to mutate inside it, path given to the reader, reader options)
CASES = [
    ("csv", "csv", "boxes.csv", "", {}),
    ("voc", "voc", "Annotations/000002.xml", "", {}),
    ("voc", "voc", "ImageSets/Main/test.txt", "", {"split": "test"}),
    ("coco", "coco", "instances.json", "instances.json", {}),
    ("yolo", "yolo", "labels/train/p.txt", "", {}),
    ("yolo", "yolo", "classes.txt", "", {}),
    ("yolo", "yolo", "images/train/p.jpg", "", {}),
    ("dlib", "dlib", "training.xml", "training.xml", {}),
    ("widerface", "widerface", "wider_face_split/wider_face_val_bbx_gt.txt", "", {}),
    ("fddb", "fddb", "FDDB-folds/FDDB-fold-01-ellipseList.txt", "", {}),
    ("fddb", "fddb", "FDDB-folds/FDDB-fold-01.txt", "", {}),
    ("caltech", "caltech", "WebFaces_GroundThruth.txt", "", {}),
    ("mtfl", "mtfl", "new_testing.txt", "", {}),
    ("mtfl", "mtfl", "AFLW/0001-image1.jpg", "", {}),
]


@pytest.mark.parametrize(("fmt", "fixture", "victim", "target", "options"), CASES,
                         ids=[f"{c[0]}:{c[2]}" for c in CASES])
def test_reader_gives_a_set_or_one_error(fmt, fixture, victim, target, options):
    seed = (FIXTURES / fixture / victim).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_fixture(fixture, Path(tmp))

        @FUZZ_SETTINGS
        @given(mutated(seed))
        def check(data: bytes) -> None:
            (root / victim).write_bytes(data)
            try:
                annotations = load_annotations(f"{fmt}:{root / target}", **options)
                format_stats(dataset_stats(annotations, check_images=True))
            except SingleshotError as err:
                assert_one_line(err)

        check()
