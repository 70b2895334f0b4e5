import math

import numpy as np
import pytest

from singleshot.landmarks import TEMPLATE_112, box_from_points, similarity_transform, similarity_transforms


def test_similarity_recovers_a_hand_made_transform():
    # rotate by 90 degrees, scale 2, shift (10, -5): (1, 0) -> (10, -3), (0, 1) -> (8, -5)
    src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 3.0]])
    angle, scale = math.pi / 2, 2.0
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    dst = src @ rot.T + [10.0, -5.0]
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m, [[0, -2, 10], [2, 0, -5]], atol=1e-9)
    np.testing.assert_allclose(src[1] @ m[:, :2].T + m[:, 2], [10, -3], atol=1e-9)


def test_similarity_skips_unknown_points_and_refuses_too_few():
    src = np.array([[0.0, 0.0], [1.0, 0.0], [np.nan, np.nan]])
    m = similarity_transform(src, src * 3)
    np.testing.assert_allclose(m, [[3, 0, 0], [0, 3, 0]], atol=1e-9)
    with pytest.raises(ValueError, match="two or more"):
        similarity_transform(src[:1], src[:1])


def test_similarity_of_many_faces_at_once_is_each_face_own():
    rng = np.random.default_rng(0)
    faces = TEMPLATE_112[None] * rng.uniform(0.5, 3, (4, 1, 1)) + rng.uniform(0, 200, (4, 1, 2))
    faces += rng.normal(0, 2, faces.shape)
    faces[1, 2:] = np.nan  # two known points: still defined
    faces[2, 1:] = np.nan  # one: undefined
    faces[3] = faces[3, :1]  # all at one place: undefined
    matrices, known = similarity_transforms(faces, TEMPLATE_112)
    assert matrices.shape == (4, 2, 3) and known.tolist() == [5, 2, 1, 5]
    for k in (0, 1):
        np.testing.assert_allclose(matrices[k], similarity_transform(faces[k], TEMPLATE_112), atol=1e-9)
    assert np.isnan(matrices[2:]).all()
    assert similarity_transforms(np.zeros((0, 5, 2)), TEMPLATE_112)[0].shape == (0, 2, 3)


def test_box_from_points_of_the_template_is_its_square():
    boxes = box_from_points(TEMPLATE_112[None])
    np.testing.assert_allclose(boxes, [[0, 0, 112, 112]], atol=1e-6)
    twice = box_from_points(TEMPLATE_112[None] * 2 + 7)  # scaled and shifted face: scaled and shifted box
    np.testing.assert_allclose(twice, [[7, 7, 231, 231]], atol=1e-6)
    assert np.isnan(box_from_points(np.full((1, 5, 2), np.nan))).all()


def test_align_faces_puts_the_points_on_the_template():
    from singleshot.landmarks import align_faces

    image = np.zeros((260, 300, 3), np.uint8)
    # a face twice the template's size, moved to (50, 20): its points drawn as bright dots
    points = TEMPLATE_112 * 2 + [50, 20]
    for x, y in np.rint(points).astype(int):
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
    crop = align_faces(image, points[None])[0]
    assert crop.shape == (112, 112, 3)
    for x, y in np.rint(TEMPLATE_112).astype(int):  # each dot lands on its template point (bilinear: within a pixel)
        assert crop[y - 1 : y + 2, x - 1 : x + 2].max() > 100
    assert crop[5:25, 5:25].max() == 0  # and nothing lands where no dot was


def test_blur_faces_hides_the_box_and_leaves_the_rest():
    from singleshot.landmarks import blur_faces

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (100, 100, 3), np.uint8)
    for mode in ("blur", "pixelate"):
        out = blur_faces(image, [[20, 20, 60, 60]], mode=mode, grow=0.0)
        assert np.array_equal(out[70:, 70:], image[70:, 70:])
        inside = out[25:55, 25:55].astype(float)
        assert inside.std() < image[25:55, 25:55].astype(float).std() / 2  # the detail is gone
    with pytest.raises(ValueError, match="mode"):
        blur_faces(image, [[0, 0, 5, 5]], mode="smudge")


def test_box_crop_matrix_on_a_hand_computed_case():
    from singleshot.landmarks import box_crop_matrix, invert_affine, map_points

    # box 40 x 20 px centred at (60, 40); crop: 1.5 x 40 = 60 px square at 30 px, so half scale
    m = box_crop_matrix(np.array([40.0, 30.0, 80.0, 50.0]), 30, 1.5)
    assert np.allclose(m, [[0.5, 0, 15 - 30], [0, 0.5, 15 - 20]])
    assert np.allclose(map_points(np.array([[60.0, 40.0], [30.0, 10.0]]), m), [[15, 15], [0, 0]])
    # turned by 90 degrees: the photo's +x points down the crop's +y (x' = -s dy, y' = s dx about the centre)
    r = box_crop_matrix(np.array([40.0, 30.0, 80.0, 50.0]), 30, 1.5, angle_deg=90)
    assert np.allclose(map_points(np.array([[70.0, 40.0]]), r), [[15, 20]], atol=1e-9)
    back = map_points(map_points(np.array([[1.0, 2.0]]), r), invert_affine(r))
    assert np.allclose(back, [[1.0, 2.0]])


def test_warp_crop_keeps_the_mapping_when_it_shrinks():
    from singleshot.landmarks import box_crop_matrix, map_points, warp_crop

    image = np.zeros((400, 400, 3), np.uint8)
    image[200:208, 120:128] = 255  # an 8 x 8 block centred at (123.5, 203.5)
    m = box_crop_matrix(np.array([0.0, 0.0, 400.0, 400.0]), 50, 1.0)  # 8x shrink: 8 x 8 sub-samples per pixel
    crop = warp_crop(image, m, 50)
    assert crop.shape == (50, 50, 3) and crop.dtype == np.float32
    u, v = map_points(np.array([123.5, 203.5]), m)
    ys, xs = np.nonzero(crop[..., 0] > 0)
    weights = crop[ys, xs, 0]
    # the block's mass lands where the matrix says, and all of it (an area average, not one bilinear sample)
    assert abs((xs * weights).sum() / weights.sum() - u) < 0.05 and abs((ys * weights).sum() / weights.sum() - v) < 0.05
    assert abs(weights.sum() - 255.0) < 1.0


@pytest.mark.parametrize("box", [(100.0, 90.0, 190.0, 200.0), (-30.0, -20.0, 150.0, 170.0), (250.0, 260.0, 420.0, 430.0)])
def test_warp_crop_area_first_keeps_the_mapping_and_the_mass(box):
    from singleshot.landmarks import box_crop_matrix, map_points, warp_crop

    image = np.full((400, 400, 3), 20, np.uint8)
    centre = ((box[0] + box[2]) / 2 + 7.3, (box[1] + box[3]) / 2 - 4.6)
    cx, cy = int(np.clip(centre[0], 4, 395)), int(np.clip(centre[1], 4, 395))
    image[cy - 4:cy + 4, cx - 4:cx + 4] = 255  # an 8 x 8 bright block centred at (cx - 0.5, cy - 0.5)
    m = box_crop_matrix(np.array(box), 32, 1.3)  # a 4-7x shrink: block means first
    slow, fast = warp_crop(image, m, 32), warp_crop(image, m, 32, area_first=True)
    assert fast.shape == slow.shape == (32, 32, 3) and fast.dtype == np.float32
    u, v = map_points(np.array([cx - 0.5, cy - 0.5]), m)
    for crop in (slow, fast):
        w = crop[..., 0] - 20
        ys, xs = np.nonzero(w)
        assert abs((xs * w[ys, xs]).sum() / w.sum() - u) < 0.1 and abs((ys * w[ys, xs]).sum() / w.sum() - v) < 0.1
    # the same picture, filtered a little differently (the photo's edge repeated outside in both)
    assert np.abs(fast - slow).mean() < 3.0
    assert warp_crop(image, m, 32, keep_dtype=True, area_first=True).dtype == np.uint8
