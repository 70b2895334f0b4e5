"""Annotation text that is not UTF-8: read with the stated Latin-1 fallback, the line noted."""

from __future__ import annotations

from singleshot.data.formats import load_annotations
from singleshot.data.formats.base import read_text
from singleshot.structures import AnnotationReport
from tests.fuzzing import copy_fixture


def test_latin1_csv_is_read_and_the_first_bad_line_noted(tmp_path):
    root = copy_fixture("csv", tmp_path)
    text = (root / "boxes.csv").read_bytes().replace(b"b.jpg,64,48,5,5,15,15", b"b.jpg,64,48,5,5,15,15,caf\xe9")
    (root / "boxes.csv").write_bytes(text)
    data = load_annotations(f"csv:{root}")
    assert data.class_names == ["background", "face", "café"]
    assert any(m.startswith(f"{root / 'boxes.csv'}:4: not UTF-8 (byte 0xe9)") for m in data.report.messages)


def test_utf8_with_a_byte_order_mark_is_plain_utf8(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes("\ufeffcafé\n".encode())
    report = AnnotationReport()
    assert read_text(path, report) == "café\n"
    assert report.messages == []
