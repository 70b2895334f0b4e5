from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from singleshot.attributes.config import AttributeError_
from singleshot.attributes.data import (
    Degradations,
    _normalise,
    augment_batch,
    cut_face_crops,
    degrade_batch,
    square_crops,
)
from singleshot.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_square_crops_centre_and_fill():
    image = np.zeros((40, 40, 3), np.uint8)
    image[10:20, 10:20] = 255
    crop = square_crops(image, np.array([[10, 10, 20, 20]]), 16, fill_rgb=(1, 2, 3))[0]
    assert crop[4:12, 4:12].min() > 200  # the box fills the crop
    edge = square_crops(image, np.array([[-10, -10, 10, 10]]), 16, fill_rgb=(1, 2, 3))[0]
    assert tuple(edge[0, 0]) == (1, 2, 3)  # outside the image: the fill colour


def test_augment_batch_shape_and_determinism():
    x = torch.randn(4, 3, 32, 32)
    a = augment_batch(x, torch.Generator().manual_seed(1))
    b = augment_batch(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)


def test_augment_batch_rotation_turns_the_crop():
    """A horizontal bar stays horizontal without rotation; at +-30 degrees of roll its rows are no longer uniform."""
    x = torch.zeros(8, 3, 32, 32)
    x[:, :, 14:18, :] = 1.0
    flat = augment_batch(x, torch.Generator().manual_seed(0))
    turned = augment_batch(x, torch.Generator().manual_seed(0), rotate_deg=30.0)
    row_spread = lambda t: t[:, 0, 8:24, 8:24].std(dim=2).mean().item()
    assert row_spread(turned) > 2 * row_spread(flat)


MEAN, STD = (120.0, 110.0, 100.0), (60.0, 60.0, 60.0)


def _checker_crops() -> tuple[np.ndarray, torch.Tensor]:
    crops = np.zeros((6, 32, 32, 3), np.uint8)
    crops[:, ::2, ::2] = crops[:, 1::2, 1::2] = (250, 30, 30)  # a red one-pixel checkerboard
    return crops, _normalise(crops, MEAN, STD)


def test_degrade_batch_off_is_identity_and_seeded():
    _, x = _checker_crops()
    assert degrade_batch(x, torch.Generator().manual_seed(0), Degradations(), MEAN, STD) is x
    every = Degradations(grayscale=0.5, low_resolution=0.5, blur=0.5, jpeg=0.5)
    a = degrade_batch(x, torch.Generator().manual_seed(3), every, MEAN, STD)
    b = degrade_batch(x, torch.Generator().manual_seed(3), every, MEAN, STD)
    assert a.shape == x.shape and torch.equal(a, b)


def test_each_degradation_does_what_it_says():
    crops, x = _checker_crops()
    pixels = lambda t: t * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    g = torch.Generator().manual_seed(0)
    grey = pixels(degrade_batch(x, g, Degradations(grayscale=1.0), MEAN, STD))
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-3) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-3)
    assert grey[0, 0, 0, 0].item() == pytest.approx(0.299 * 250 + 0.587 * 30 + 0.114 * 30, abs=0.01)
    # a one-pixel checkerboard has no content left at 16 px: near its mean everywhere
    low = pixels(degrade_batch(x, g, Degradations(low_resolution=1.0, resolution_px=(16, 16)), MEAN, STD))
    assert (low[:, 0] - 125).abs().max() < 5
    blurred = pixels(degrade_batch(x, g, Degradations(blur=1.0, blur_sigma=(2.0, 2.0)), MEAN, STD))
    assert blurred[:, 0].std() < 0.1 * torch.tensor(crops[..., 0], dtype=torch.float32).std()
    coded = pixels(degrade_batch(x, g, Degradations(jpeg=1.0, jpeg_quality=(10, 10)), MEAN, STD))
    _ok, data = cv2.imencode(".jpg", np.ascontiguousarray(crops[0][:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 10])
    expected = cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]
    assert np.abs(coded[0].permute(1, 2, 0).round().numpy() - expected).max() <= 1  # the same codec, round trip


def test_paste_leaves_flat_bands_at_the_edges_and_the_centre_untouched():
    crops, x = _checker_crops()
    pixels = lambda t: t * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    pasted = pixels(degrade_batch(x, torch.Generator().manual_seed(1),
                                  Degradations(paste=1.0, paste_margin=(0.1, 0.2)), MEAN, STD))
    original = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    # margins of 0.1-0.2 of 32 px: 3 to 6 px cut on every side, the middle 20 x 20 always kept
    assert torch.allclose(pasted[..., 6:26, 6:26], original[..., 6:26, 6:26], atol=1e-3)
    for crop in pasted:
        assert crop[:, :3].std() < 1e-3 and crop[:, -3:].std() < 1e-3  # one flat grey per crop
        assert crop[:, :, :3].std() < 1e-3 and crop[:, :, -3:].std() < 1e-3
        assert (crop[0, 0, 0] - crop[2, -1, -1]).abs() < 1e-3  # grey: the same level in every channel
    # without paste the random stream is the one earlier runs drew
    every = Degradations(grayscale=0.5, low_resolution=0.5)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    degrade_batch(x, g1, every, MEAN, STD)
    torch.rand(len(x), 7, generator=g2)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


def test_cut_face_crops_from_a_dataset_and_refuse_to_mix(tmp_path, capsys):
    spec = f"csv:{ROOT / 'tests' / 'fixtures' / 'csv'}"
    report = cut_face_crops(spec, tmp_path / "crops", size=16, min_size=12, progress=False)
    assert (report.images, report.crops, report.skipped_small) == (3, 2, 1)  # b.jpg's 10 px face is too small
    files = sorted(p.name for p in (tmp_path / "crops").iterdir())
    assert files == ["images__a_0.jpg", "images__a_1.jpg"] and cv2.imread(str(tmp_path / "crops" / files[0])).shape == (16, 16, 3)
    with pytest.raises(AttributeError_, match="--force"):
        cut_face_crops(spec, tmp_path / "crops", size=16, min_size=12, progress=False)
    assert main(["attribute", "crops", "--data", spec, "--out", str(tmp_path / "crops"), "--size", "16",
                 "--min-size", "12", "--force", "--no-progress"]) == 0
    assert "2 crops of 3 images" in capsys.readouterr().out
    from singleshot.data.formats import DataError

    with pytest.raises(DataError):
        cut_face_crops(f"csv:{tmp_path / 'missing'}", tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()  # a bad dataset leaves no folder behind


def test_cut_face_crops_passes_reader_options(tmp_path, capsys):
    from singleshot.data.formats.points import caltech_split

    names = [f"pic{n:05d}.jpg" for n in range(1, 200)]
    names = [next(n for n in names if caltech_split(n) == "train"), next(n for n in names if caltech_split(n) == "val")]
    root = tmp_path / "caltech"
    root.mkdir()
    for name in names:
        cv2.imwrite(str(root / name), np.full((60, 60, 3), 128, np.uint8))
    (root / "WebFaces_GroundThruth.txt").write_text("".join(f"{n} 20 25 40 25 30 35 30 45\n" for n in names))
    counts = {}
    for split in ["all", "train", "val"]:
        assert main(["attribute", "crops", "--data", f"caltech:{root}", "--data-option", f"split={split}", "--out",
                     str(tmp_path / split), "--size", "16", "--min-size", "1", "--no-progress"]) == 0
        counts[split] = int(capsys.readouterr().out.split()[0])
    assert counts == {"all": 2, "train": 1, "val": 1}
    assert main(["attribute", "crops", "--data", f"caltech:{root}", "--data-option", "split=nope", "--out",
                 str(tmp_path / "bad"), "--no-progress"]) != 0
    assert "split" in capsys.readouterr().err


def test_cut_face_crops_aligned_by_the_point_network(tmp_path, capsys):
    from singleshot.attributes.data import aligned_crops
    from singleshot.data.formats import load_annotations
    from singleshot.points import PointRefiner

    spec = f"csv:{ROOT / 'tests' / 'fixtures' / 'csv'}"
    report = cut_face_crops(spec, tmp_path / "al", size=32, min_size=12, progress=False, align="face")
    plain = cut_face_crops(spec, tmp_path / "sq", size=32, min_size=12, progress=False)
    assert report.crops == plain.crops == 2
    sample = next(s for s in load_annotations(spec).samples if s.key.endswith("a.jpg"))
    rgb = cv2.cvtColor(cv2.imread(str(sample.image_path)), cv2.COLOR_BGR2RGB)
    boxes = np.asarray(sample.boxes_xyxy, np.float64)[:1]
    refiner = PointRefiner("face", runtime="torch")
    expected = aligned_crops(rgb, boxes, refiner.predict(rgb, boxes), 32)[0].astype(np.float32)
    written = cv2.cvtColor(cv2.imread(str(tmp_path / "al" / "images__a_0.jpg")), cv2.COLOR_BGR2RGB).astype(np.float32)
    square = cv2.cvtColor(cv2.imread(str(tmp_path / "sq" / "images__a_0.jpg")), cv2.COLOR_BGR2RGB).astype(np.float32)
    # the crop written is the aligned one (up to JPEG and the runtime), not the box's square
    assert np.abs(written - expected).mean() < 4 < np.abs(square - expected).mean()
    assert main(["attribute", "crops", "--data", spec, "--out", str(tmp_path / "bad"), "--align", "nope",
                 "--no-progress"]) == 2
    assert "nope" in capsys.readouterr().err


def test_aligned_crops_follow_the_points_and_fall_back_to_the_box():
    from singleshot.attributes.data import aligned_crops
    from singleshot.landmarks import TEMPLATE_112, align_faces

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (200, 240, 3), np.uint8)
    points = TEMPLATE_112[None] * 1.5 + [30, 20]  # a face 1.5x the template, at (30, 20)
    unknown = np.full((1, 5, 2), np.nan)
    boxes = np.array([[30, 20, 198, 188], [100, 50, 160, 110]], np.float64)
    crops = aligned_crops(image, boxes, np.concatenate((points, unknown)), 32, scale=1.2)
    np.testing.assert_array_equal(crops[0], align_faces(image, points, 32, 1.2, (124, 116, 104))[0])
    np.testing.assert_array_equal(crops[1], square_crops(image, boxes[1:], 32)[0])  # no points: the box's square
    np.testing.assert_array_equal(aligned_crops(image, boxes, None, 32), square_crops(image, boxes, 32))


class _PointTeacher:
    """Finds one face with its five points where the template would put them on the crop, filling the canvas'
    middle half; nothing on crops whose name starts with 'blank'."""

    name = "toy"

    def __init__(self):
        from singleshot.landmarks import TEMPLATE_112

        self.points = TEMPLATE_112 / 112 * 128 + 64  # the crop spans pixels 64-192 of a 256 canvas
        self.blank = False

    def detect(self, page):
        if page[64:192, 64:192].max() == page[64:192, 64:192].min():  # a flat crop: no face
            return np.zeros((0, 14), np.float32), np.zeros(0, np.float32)
        row = np.concatenate(([64, 64, 192, 192], self.points.ravel()))[None]
        return row.astype(np.float32), np.array([0.9], np.float32)


def test_align_crop_folder_keeps_names_and_counts_what_it_could_not_align(tmp_path):
    import json

    from singleshot.attributes.data import ALIGN_FILE, align_crop_folder
    from singleshot.landmarks import aligned_template

    src = tmp_path / "crops"
    ramp = np.arange(64, dtype=np.float64) * 4  # x in blue, y in green: any misplacement changes the pixels
    smooth = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], np.full((64, 64), 100.0)), -1).astype(np.uint8)
    for rel in ("train/0/a.jpg", "train/1/b.jpg", "test/1/c.jpg"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src / rel), smooth)
    cv2.imwrite(str(src / "test/1/flat.jpg"), np.full((64, 64, 3), 90, np.uint8))
    report = align_crop_folder(src, tmp_path / "out", _PointTeacher(), size=32, scale=1.0, progress=False)
    assert (report.crops, report.aligned) == (4, 3) and report.unaligned == [str(src / "test/1/flat.jpg")]
    for rel in ("train/0/a.jpg", "train/1/b.jpg", "test/1/c.jpg", "test/1/flat.jpg"):
        assert cv2.imread(str(tmp_path / "out" / rel)).shape == (32, 32, 3)  # same names: exclusion lists apply
    # the teacher put the points where the template has them on the crop: the aligned crop is the crop, resized
    assert np.allclose(aligned_template(64), aligned_template(32) * 2)
    aligned = cv2.imread(str(tmp_path / "out/train/0/a.jpg")).astype(int)
    shrunk = cv2.resize(smooth, (32, 32), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(shrunk - aligned)[2:-2, 2:-2].mean() < 4  # JPEG and resampling apart
    assert np.abs(shrunk[:, ::-1] - aligned)[2:-2, 2:-2, 0].mean() > 40  # (a mirrored crop would be far off)
    meta = json.loads((tmp_path / "out" / ALIGN_FILE).read_text())
    assert (meta["size"], meta["scale"], meta["aligned"], meta["unaligned"]) == (32, 1.0, 3, 1)
    with pytest.raises(AttributeError_, match="already holds"):
        align_crop_folder(src, tmp_path / "out", _PointTeacher(), progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"not an image")
    with pytest.raises(AttributeError_, match="none of its 1 image"):
        align_crop_folder(tmp_path / "bad", tmp_path / "out_bad", _PointTeacher(), progress=False)


def test_attribute_align_refuses_a_teacher_without_points(tmp_path, capsys):
    assert main(["attribute", "align", "--crops", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--teacher", "haar", "--no-progress"]) == 2  # OpenCV's Haar cascade: boxes only
    assert "gives no five face points" in capsys.readouterr().err


def test_align_crop_folder_writes_a_view_as_the_photo_shows_it(tmp_path):
    """zoom / grayscale: the crop is reframed and turned grey first, and cut from the canvas (the toy teacher puts
    the points where the template has them on the canvas' middle half, so the view is that half, resized)."""
    import json

    from singleshot.attributes.data import ALIGN_FILE, align_crop_folder, reframe

    src = tmp_path / "crops"
    ramp = np.arange(64, dtype=np.float64) * 4
    smooth = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], np.full((64, 64), 100.0)), -1).astype(np.uint8)
    (src / "train/1").mkdir(parents=True)
    cv2.imwrite(str(src / "train/1/a.png"), smooth)
    align_crop_folder(src, tmp_path / "out", _PointTeacher(), size=32, progress=False, zoom=(2.0, 2.0),
                      grayscale=True)
    view = cv2.imread(str(tmp_path / "out/train/1/a.png")).astype(int)
    expected = cv2.cvtColor(cv2.resize(reframe(smooth[..., ::-1], 2.0), (32, 32), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_RGB2GRAY).astype(int)
    assert (view[..., 0] == view[..., 1]).all() and (view[..., 1] == view[..., 2]).all()  # grey
    assert np.abs(view[..., 0] - expected)[2:-2, 2:-2].mean() < 4  # zoomed 2x: the crop's middle half
    unzoomed = cv2.cvtColor(cv2.resize(smooth[..., ::-1], (32, 32), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_RGB2GRAY).astype(int)
    assert np.abs(view[..., 0] - unzoomed)[2:-2, 2:-2].mean() > 10
    meta = json.loads((tmp_path / "out" / ALIGN_FILE).read_text())
    assert (meta["zoom"], meta["grayscale"]) == ([2.0, 2.0], True)
    with pytest.raises(AttributeError_, match="zoom must be a range"):
        align_crop_folder(src, tmp_path / "out2", _PointTeacher(), progress=False, zoom=(1.4, 0.9))


def test_reframe_zooms_about_the_centre():
    from singleshot.attributes.data import reframe

    crop = np.zeros((40, 40, 3), np.uint8)
    crop[10:30, 10:30] = 200  # a square filling the middle half
    assert (reframe(crop, 2.0)[2:-2, 2:-2] == 200).all()  # zoomed 2x it fills the crop
    assert (reframe(crop, 1.0) == crop).all()


def test_attribute_align_zoom_flag_is_validated(tmp_path, capsys):
    from singleshot.cli import _zoom_range

    assert _zoom_range("1.25") == (1.25, 1.25) and _zoom_range("0.9:1.4") == (0.9, 1.4)
    for bad in ("1.4:0.9", "0", "a", "1:2:3"):
        assert main(["attribute", "align", "--crops", str(tmp_path), "--out", str(tmp_path / "o"), "--zoom", bad]) == 2
        assert "a zoom Z or a range LOW:HIGH" in capsys.readouterr().err


def test_cut_face_crops_sorted_by_a_label_column(tmp_path, capsys):
    import json

    from tests.data.formats.test_points import _original_mtfl

    root = _original_mtfl(tmp_path / "MTFL")
    out = tmp_path / "smile"
    assert main(["attribute", "crops", "--data", f"mtfl:{root}", "--data-option", "split=train", "--data-option",
                 "parts=net_7876", "--label", "smile", "--align", "face", "--out", str(out), "--size", "16",
                 "--no-progress"]) == 0
    assert "2 crops of 2 images" in capsys.readouterr().out
    assert [p.name for p in (out / "1").iterdir()] == ["net_7876__1_0_0_0.jpg"]
    assert [p.name for p in (out / "0").iterdir()] == ["net_7876__2_0_0_0.jpg"]
    # aligned crops record their scale, as `attribute align` does: an aligned attribute trains on them
    assert json.loads((out / "aligned.json").read_text())["scale"] == 1.0
    spec = f"csv:{ROOT / 'tests' / 'fixtures' / 'csv'}"
    assert main(["attribute", "crops", "--data", spec, "--label", "smile", "--out", str(tmp_path / "none"),
                 "--min-size", "1", "--no-progress"]) != 0
    assert "no 'smile' label" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
