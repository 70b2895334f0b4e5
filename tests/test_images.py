"""Images are read the same way everywhere: upright by their EXIF orientation (detect, datasets, the image cache,
sizes from headers), bounded by the pixel limit from the header, and JPEGs over it decoded reduced where allowed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from singleshot.data.cache import ImageCache
from singleshot.data.dataset import DetectionDataset
from singleshot.data.formats import load_annotations
from singleshot.errors import SingleshotError
from singleshot.images import (
    ImageError,
    PixelLimitError,
    check_pixels,
    decode_image,
    image_problem,
    image_size,
    max_pixels,
    orient,
    read_header,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo.jpg"  # 512x367, three faces, no EXIF orientation


def _with_orientation(upright: Image.Image, orientation: int, path: Path, **save) -> Path:
    """``upright`` stored as a camera would store it under EXIF ``orientation`` (so that a viewer applying the tag
    shows ``upright``)."""
    # the inverse of each orientation's transform (6 and 8 are each other's inverse; the rest are their own)
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}
    stored = upright.transpose(inverse[orientation]) if orientation in inverse else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, exif=exif.tobytes(), **save)
    return path


def _pattern(width: int = 60, height: int = 40) -> Image.Image:
    """An image whose every pixel differs from its mirror images and rotations (a ramp and a corner mark)."""
    y, x = np.mgrid[0:height, 0:width]
    array = np.stack([x * 255 // width, y * 255 // height, (x + 2 * y) % 256], axis=2).astype(np.uint8)
    array[:8, :12] = (255, 0, 0)  # red in the upright top-left corner
    return Image.fromarray(array)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_turned_upright_as_pil_does(tmp_path, orientation):
    path = _with_orientation(_pattern(), orientation, tmp_path / f"o{orientation}.png")
    header = read_header(path)
    assert (header.orientation, header.width, header.height) == (orientation, 60, 40)  # 5-8 swap the stored size
    assert image_size(path) == (40, 60)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    image, original = decode_image(path)
    np.testing.assert_array_equal(image, expected)
    np.testing.assert_array_equal(image, np.asarray(_pattern()))
    assert original == (40, 60)
    with Image.open(path) as im:
        stored = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(orient(stored, orientation), expected)


def _rotated_jpeg(tmp_path: Path, upright: Image.Image | None = None) -> Path:
    """A JPEG stored sideways (portrait pixels) with EXIF Orientation=6, as phones write it."""
    return _with_orientation(upright or _pattern(), 6, tmp_path / "phone.jpg", quality=98)


def test_a_rotated_jpeg_is_upright_in_the_header_the_decoder_the_cache_and_the_dataset(tmp_path):
    path = _rotated_jpeg(tmp_path)
    with Image.open(path) as im:
        assert im.size == (40, 60)  # stored sideways
    assert image_size(path) == (40, 60)  # (height, width) upright: the header's sizes are swapped
    image, original = decode_image(path)
    assert image.shape == (40, 60, 3) and original == (40, 60)
    assert image[2:6, 2:10].mean(axis=(0, 1)) @ (1, -1, -1) > 150  # the red mark is top-left again
    # a dataset whose box (upright pixels) covers the red mark sees red under it, decoded and from the cache
    (tmp_path / "boxes.csv").write_text("image,width,height,x1,y1,x2,y2\nphone.jpg,60,40,0,0,12,8\n")
    data = load_annotations(f"csv:{tmp_path}")
    cache = ImageCache.build(data.samples, tmp_path / "cache", 640, progress=False)
    assert cache.image(0).shape == (40, 60, 3) and cache.entries[0].original_width == 60
    for dataset in (DetectionDataset(data, transform=None), DetectionDataset(data, transform=None, cache=cache)):
        picture, boxes, size = dataset.load(0)
        x1, y1, x2, y2 = boxes[0].astype(int)
        assert size == (40, 60) and picture[y1:y2, x1:x2].mean(axis=(0, 1)) @ (1, -1, -1) > 150


def test_detect_finds_faces_in_the_upright_frame_of_a_rotated_jpeg(tmp_path):
    from singleshot.cli import main
    from singleshot.predictor import Detector

    with Image.open(DEMO) as demo:
        path = _rotated_jpeg(tmp_path, demo.convert("RGB"))
    with Image.open(path) as im:
        upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    detector = Detector()
    expected = detector.detect(upright, min_score=0.5)
    assert len(expected) >= 2
    found = detector.detect(path, min_score=0.5)
    np.testing.assert_allclose(found.boxes_xyxy.numpy(), expected.boxes_xyxy.numpy(), atol=1.5)
    assert main(["detect", str(path), "--out", str(tmp_path / "out")]) == 0
    rows = np.array(json.loads((tmp_path / "out" / "detections.json").read_text())["phone.jpg"])
    np.testing.assert_allclose(rows[:, :4], expected.boxes_xyxy.numpy(), atol=1.5)
    assert rows[:, 2].max() > 367  # x beyond the stored (portrait) width: upright pixels


def test_a_jpeg_over_the_limit_is_decoded_reduced_where_allowed_with_a_note(tmp_path):
    path = tmp_path / "big.jpg"
    _pattern(640, 480).save(path, quality=95)
    notes = []
    image, original = decode_image(path, limit=100_000, on_reduce=notes.append)  # 307 kP: 1/2 gives 77 kP
    assert image.shape == (240, 320, 3) and original == (480, 640)
    assert notes == [("640x480 pixels (0.307 MP) is over the limit of 0.1 MP (SINGLESHOT_MAX_PIXELS or --max-pixels); "
                      "decoded at 1/2 scale (320x240)")]
    assert decode_image(path, limit=100_000) is None  # not allowed: refused, as before
    assert "is over the limit of 0.1 MP" in image_problem(path, limit=100_000)
    assert decode_image(path, limit=1000, on_reduce=notes.append) is None  # 1/8 is still 4800 px: refused
    png = tmp_path / "big.png"
    _pattern(640, 480).save(png)
    assert decode_image(png, limit=100_000, on_reduce=notes.append) is None  # PNG decoders cannot reduce
    with pytest.raises(PixelLimitError) as err:
        check_pixels(read_header(png), 100_000, reduce=True, source=png)
    assert str(err.value).startswith(f"{png}: 640x480 pixels") and err.value.pixels == 307_200


def _by_x(rows: list) -> np.ndarray:
    """Detection rows ordered left to right (scores tie-break differently at two scales)."""
    rows = np.array(rows)
    return rows[np.argsort(rows[:, 0])]


def test_detect_and_eval_take_max_pixels_and_detect_reports_in_original_pixels(tmp_path, capsys, monkeypatch):
    from singleshot.cli import main

    monkeypatch.setenv("SINGLESHOT_MAX_PIXELS", "150000000")  # recorded, so the limit the CLI sets is undone after
    big = tmp_path / "photos" / "demo.jpg"
    big.parent.mkdir()
    with Image.open(DEMO) as demo:
        demo.resize((1024, 734)).save(big, quality=95)
    assert main(["detect", str(big), "--out", str(tmp_path / "full")]) == 0
    assert main(["detect", str(big), "--out", str(tmp_path / "reduced"), "--max-pixels", "300000"]) == 0
    assert "demo.jpg: 1024x734 pixels (0.752 MP) is over the limit of 0.3 MP" in capsys.readouterr().err
    full, reduced = (_by_x(json.loads((tmp_path / d / "detections.json").read_text())["demo.jpg"])
                     for d in ("full", "reduced"))
    assert len(full) == len(reduced) >= 2
    np.testing.assert_allclose(reduced[:, :4], full[:, :4], atol=12)  # found at 1/2 scale, told in original pixels
    (tmp_path / "photos" / "boxes.csv").write_text("image,width,height,x1,y1,x2,y2\ndemo.jpg,1024,734,0,0,10,10\n")
    weights = str(ROOT / "singleshot" / "weights" / "face_slim.pt")
    assert main(["eval", "--data", f"csv:{tmp_path / 'photos'}", "--weights", weights, "--max-pixels", "3e5",
                 "--min-score", "0.5", "--save-predictions", str(tmp_path / "eval.json")]) == 0
    assert "decoded at 1/2 scale" in capsys.readouterr().err
    evaluated = _by_x(json.loads((tmp_path / "eval.json").read_text())["demo.jpg"])
    np.testing.assert_allclose(evaluated[:, :4], reduced[:, :4], atol=2)  # eval, as detect: original pixels
    assert main(["detect", str(big), "--max-pixels", "-3"]) == 2
    assert "--max-pixels: expected a positive whole number, got '-3'" in capsys.readouterr().err


def test_a_bad_limit_in_the_environment_is_one_line(monkeypatch):
    monkeypatch.setenv("SINGLESHOT_MAX_PIXELS", "lots")
    with pytest.raises(SingleshotError, match=r"^SINGLESHOT_MAX_PIXELS='lots': expected a positive number of pixels"):
        max_pixels()
    monkeypatch.setenv("SINGLESHOT_MAX_PIXELS", "1.5e8")
    assert max_pixels() == 150_000_000


def test_a_huge_jpeg_past_pils_own_bomb_check_still_gives_its_size(tmp_path):
    # a JPEG header declaring 20000x10000 (200 MP, over PIL's 179 MP refusal): the size is read all the same, so a
    # reduced decode can be planned, and the limit refuses it otherwise
    path = tmp_path / "pano.jpg"
    _pattern(64, 32).save(path, quality=90)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (10000).to_bytes(2, "big") + (20000).to_bytes(2, "big")
    path.write_bytes(bytes(data))
    header = read_header(path)
    assert (header.width, header.height, header.is_jpeg) == (20000, 10000, True)
    assert check_pixels(header, reduce=True) == 2
    assert "20000x10000 pixels (200 MP) is over the limit of 150 MP" in image_problem(path)
    with pytest.raises(ImageError, match="not an image"):
        read_header(b"GIF89a garbage")
    with pytest.raises(ImageError, match="nothing.jpg: not found"):
        read_header(tmp_path / "nothing.jpg")


@pytest.fixture(scope="module")
def image_seeds(tmp_path_factory) -> dict[str, bytes]:
    """Small files of each kind the header reader meets (small, so each mutant is cheap): a sideways phone JPEG, a
    PNG with EXIF, a BMP."""
    folder = tmp_path_factory.mktemp("seeds")
    seeds = {"jpeg": _with_orientation(_pattern(16, 12), 6, folder / "phone.jpg", quality=60).read_bytes(),
             "png": _with_orientation(_pattern(24, 16), 8, folder / "o8.png").read_bytes()}
    _pattern(24, 16).save(folder / "p.bmp")
    seeds["bmp"] = (folder / "p.bmp").read_bytes()
    return seeds


@pytest.mark.parametrize("kind", ["jpeg", "png", "bmp"])
def test_mutated_images_give_a_header_and_pixels_or_one_error(tmp_path, monkeypatch, image_seeds, kind):
    from hypothesis import given

    from tests.fuzzing import assert_one_line, fuzz_settings, mutated

    path = tmp_path / f"mutant.{kind}"
    # a mutant that declares megapixels is refused from its header instead of decoded: the refusal is what is tested
    # there, and each mutant stays a millisecond
    monkeypatch.setenv("SINGLESHOT_MAX_PIXELS", "100000")

    @fuzz_settings(ci_examples=60)
    @given(mutated(image_seeds[kind]))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            header = read_header(data)
        except ImageError as err:
            assert_one_line(err)
            assert decode_image(path) is None and image_size(path) is None
            return
        assert header.width >= 1 and header.height >= 1 and 1 <= header.orientation <= 8
        assert read_header(path) == header  # bytes and file read alike (serve and detect agree)
        decoded = decode_image(path, on_reduce=lambda message: None)
        if decoded is not None:
            image, original = decoded
            assert original == (header.height, header.width) and image.dtype == np.uint8
            if header.pixels <= max_pixels():
                assert image.shape == (header.height, header.width, 3)  # the header's size is the decoded size

    check()
