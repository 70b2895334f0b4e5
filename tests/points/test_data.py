import numpy as np
import pytest

from singleshot.config import DatasetConfig
from singleshot.points import FLIP_ORDER, PointError, augment_face, extract_faces


def _dot_image(size=96, at=(30.0, 50.0)):
    image = np.zeros((size, size, 3), np.uint8)
    image[int(at[1]), int(at[0])] = 255
    return image


def test_extract_faces_cuts_every_face_and_reuses_its_cache(point_set, tmp_path):
    sets = [DatasetConfig(spec=f"csv:{point_set}")]
    cache = tmp_path / "faces.npz"
    faces = extract_faces(sets, cache, size=48, context=2.0, val_fraction=0.25, progress=False)
    assert faces.crops.shape == (12, 48, 48, 3) and faces.points_xy.shape == (12, 5, 2)
    assert faces.counts == {f"csv:{point_set}": 12} and 0 < faces.val.sum() < 12
    # the box is centred and fills half of the context crop: corners at 12 and 36 px
    assert np.allclose(faces.boxes_xyxy[:, :2], 12, atol=0.01) and np.allclose(faces.boxes_xyxy[:, 2:], 36, atol=0.01)
    # each point lands on its dark dot
    for crop, points in zip(faces.crops, faces.points_xy):
        for x, y in points:
            assert crop[round(y), round(x)].mean() < 110
    stamp = cache.stat().st_mtime_ns
    again = extract_faces(sets, cache, size=48, context=2.0, val_fraction=0.25, progress=False)
    assert cache.stat().st_mtime_ns == stamp and np.array_equal(again.crops, faces.crops)
    other = extract_faces(sets, cache, size=32, context=2.0, val_fraction=0.25, progress=False)
    assert other.crops.shape[1] == 32  # other settings: made again


def test_extract_faces_names_unreadable_photos_and_refuses_an_empty_set(point_set, tmp_path, capsys):
    (point_set / "images" / "p00.png").write_bytes(b"not an image")
    faces = extract_faces([DatasetConfig(spec=f"csv:{point_set}")], tmp_path / "f.npz", size=32, progress=False)
    assert len(faces.crops) == 11 and "p00.png" in capsys.readouterr().out
    with pytest.raises(PointError, match="no training sets"):
        extract_faces([], tmp_path / "g.npz", progress=False)


def test_augment_face_without_noise_is_the_plain_crop():
    crop = _dot_image(at=(30, 50))
    points = np.full((5, 2), np.nan)
    points[0] = (30, 50)
    out, moved = augment_face(crop, points, np.array([24.0, 24.0, 72.0, 72.0]), 64, 2.0, np.random.default_rng(0))
    # crop: a square of 2 x 48 = 96 px around (48, 48), at 64 px: x' = (x - 48) * 2/3 + 32
    assert np.allclose(moved[0], [(30 - 48) * 2 / 3 + 32, (50 - 48) * 2 / 3 + 32], atol=1e-4)
    assert np.isnan(moved[1:]).all() and out.shape == (64, 64, 3)


def test_augment_face_mirror_swaps_left_and_right_and_keeps_points_on_the_image():
    crop = _dot_image(at=(30, 50))
    points = np.array([[30, 50], [60, 50], [45, 60], [35, 70], [55, 70]], float)
    box = np.array([24.0, 24.0, 72.0, 72.0])
    flipped = None
    for seed in range(20):
        out, moved = augment_face(crop, points, box, 64, 2.0, np.random.default_rng(seed), flip=True)
        plain = (np.array([30, 50]) - 48) * 2 / 3 + 32
        if not np.allclose(moved[0], plain, atol=1e-4):
            flipped = out, moved
            break
    assert flipped is not None
    out, moved = flipped
    assert list(FLIP_ORDER) == [1, 0, 2, 4, 3]
    # the mirrored left eye is now point 1, at x' = 63 - x, and the bright pixel moved with it
    assert np.allclose(moved[1], [63 - plain[0], plain[1]], atol=1e-4)
    y, x = np.unravel_index(out.mean(2).argmax(), out.shape[:2])
    assert abs(x - moved[1, 0]) <= 1 and abs(y - moved[1, 1]) <= 1


def test_augment_face_cut_flattens_the_edges_inside_the_box_and_keeps_the_points():
    crop = np.random.default_rng(0).uniform(0, 255, (96, 96, 3)).astype(np.float32)
    points = np.array([[40, 40], [56, 40], [48, 50], [42, 60], [54, 60]], float)
    box = np.array([24.0, 24.0, 72.0, 72.0])  # at 64 px with crop_scale 2: the box is crop pixels 16..48
    plain, plain_points = augment_face(crop, points, box, 64, 2.0, np.random.default_rng(1))
    out, moved = augment_face(crop, points, box, 64, 2.0, np.random.default_rng(1), cut_p=1.0, cut_max=0.15)
    assert np.allclose(moved, plain_points)
    # every side flat at least up to the box edge, at most 0.15 box sides (4.8 px) inside; the middle untouched
    fill = out[0, 0, 0]
    for band in (out[:16], out[49:], out[:, :16], out[:, 49:]):
        assert np.all(band == fill)
    assert np.array_equal(out[22:43, 22:43], plain[22:43, 22:43])
    # without cut_p the random stream is the earlier one
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    augment_face(crop, points, box, 64, 2.0, rng_a, shift=0.1)
    augment_face(crop, points, box, 64, 2.0, rng_b, shift=0.1, cut_p=0.0)
    assert rng_a.random() == rng_b.random()


def test_augment_face_rotation_moves_points_with_the_pixels():
    crop = _dot_image(at=(30, 50))
    points = np.full((5, 2), np.nan)
    points[0] = (30, 50)
    out, moved = augment_face(crop, points, np.array([24.0, 24.0, 72.0, 72.0]), 64, 2.0,
                              np.random.default_rng(3), rotate_deg=40, rotate_p=1.0)
    y, x = np.unravel_index(out.mean(2).argmax(), out.shape[:2])
    assert abs(x - moved[0, 0]) <= 1 and abs(y - moved[0, 1]) <= 1
    assert not np.allclose(moved[0], [(30 - 48) * 2 / 3 + 32, (50 - 48) * 2 / 3 + 32], atol=0.5)
