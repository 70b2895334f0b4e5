"""A damaged image cache (cut short, a torn or edited index) is detected by its size and index and rebuilt."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from singleshot.data.cache import ImageCache
from singleshot.data.formats import load_annotations
from singleshot.images import decode_image, image_problem
from singleshot.structures import AnnotationReport

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _damage_bin(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])  # a full disk or a killed copy: the tail missing


def _damage_index(path: Path) -> None:
    path.write_text(path.read_text()[:40])  # torn JSON


def _edit_index(path: Path) -> None:
    path.write_text('{"max_side": 640, "entries": [null]}')  # valid JSON, not this cache's entries


@pytest.mark.parametrize("damage", [_damage_bin, _damage_index, _edit_index])
def test_a_damaged_cache_is_rebuilt(tmp_path, capsys, damage):
    data = load_annotations(f"csv:{FIXTURES / 'csv'}")
    ImageCache.build(data.samples, tmp_path, 640, progress=False)
    (bin_path,) = tmp_path.glob("*.bin")
    damage(bin_path if damage is _damage_bin else bin_path.with_suffix(".json"))
    cache = ImageCache.build(data.samples, tmp_path, 640, progress=False)
    assert "image cache damaged (size or index), rebuilding it" in capsys.readouterr().out
    for i, sample in enumerate(data.samples):
        np.testing.assert_array_equal(cache.image(i), decode_image(sample.image_path)[0])
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".bin", ".json"]
    ImageCache.build(data.samples, tmp_path, 640, progress=False)
    assert "rebuilding" not in capsys.readouterr().out  # whole again: reused


def test_a_damaged_entry_fails_its_checksum_and_is_decoded_again(tmp_path, capsys):
    data = load_annotations(f"csv:{FIXTURES / 'csv'}")
    ImageCache.build(data.samples, tmp_path, 640, progress=False)
    (bin_path,) = tmp_path.glob("*.bin")
    raw = bytearray(bin_path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte: the size and the index still look whole
    bin_path.write_bytes(bytes(raw))
    cache = ImageCache.build(data.samples, tmp_path, 640, progress=False)  # opened: the damage is not seen yet
    assert "rebuilding" not in capsys.readouterr().out
    for i, sample in enumerate(data.samples):
        if cache.entries[i] is not None:
            np.testing.assert_array_equal(cache.image(i), decode_image(sample.image_path, 640)[0])
    out = capsys.readouterr().out
    assert out.count("image cache damaged") == 1 and "fails its checksum" in out  # said once
    assert not bin_path.with_suffix(".json").exists()  # the next start rebuilds the whole cache
    ImageCache.build(data.samples, tmp_path, 640, progress=False)
    assert bin_path.read_bytes() != bytes(raw)


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` RGB pixels: its header and one compressed row (a pixel bomb's
    shape: a few hundred bytes that would decode to gigabytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = zlib.compress(b"\x00" * (1 + 3 * width))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", row) + chunk(b"IEND", b""))
    return path


def test_a_pixel_bomb_is_refused_from_its_header(tmp_path):
    bomb = _png_header(tmp_path / "bomb.png", 20000, 20000)
    start = time.perf_counter()
    assert decode_image(bomb) is None
    assert time.perf_counter() - start < 1.0  # refused from the header, nothing decoded
    assert image_problem(bomb) == ("declares 400 MP, over the limit of 150 MP (SINGLESHOT_MAX_PIXELS or --max-pixels); "
                                   "refused before decoding")
    # a 100-megapixel photo passes the check; a lower limit (an argument or the environment) refuses it
    photo = _png_header(tmp_path / "photo.png", 12000, 8400)
    assert image_problem(photo) is None
    assert "12000x8400 pixels (101 MP) is over the limit of 50 MP" in image_problem(photo, limit=50_000_000)
    assert decode_image(photo, limit=50_000_000) is None


def test_the_cache_notes_why_an_image_was_refused(tmp_path, monkeypatch):
    data = load_annotations(f"csv:{FIXTURES / 'csv'}")
    monkeypatch.setenv("SINGLESHOT_MAX_PIXELS", "10")  # the 64x48 fixtures are over it, even at 1/8 scale
    report = AnnotationReport()
    cache = ImageCache.build(data.samples, tmp_path, 640, report=report, progress=False)
    assert cache.entries == [None] * len(data.samples) and report.skipped_images == len(data.samples)
    assert "a.jpg: 64x48 pixels (0.00307 MP) is over the limit of 1e-05 MP (SINGLESHOT_MAX_PIXELS" in report.messages[0]


def test_detect_skips_a_refused_image_with_the_reason(tmp_path, capsys):
    from singleshot.cli import main

    bomb = _png_header(tmp_path / "bomb.png", 20000, 20000)
    assert main(["detect", str(bomb), str(FIXTURES / "csv" / "images" / "a.jpg"), "--out", str(tmp_path / "out")]) == 0
    assert "bomb.png: declares 400 MP, over the limit of 150 MP" in capsys.readouterr().err
