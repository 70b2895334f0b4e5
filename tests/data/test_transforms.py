"""Tests of singleshot.data.transforms: each step on hand-made cases, pipeline properties with hypothesis."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from singleshot.boxes import pairwise_iou_xyxy
from singleshot.data.transforms import (
    CROP_MIN_IOU_CHOICES,
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    AugmentedSample,
    SSDAugmentation,
    as_arrays,
    face_crop,
    horizontal_flip,
    low_resolution,
    normalize_batch,
    photometric_distort,
    random_canvas_rgb,
    random_min_iou_crop,
    random_square_crop,
    resize,
    rotate90,
    zoom_out,
)

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEAN_FILL = np.array([124, 116, 104], np.uint8)  # IMAGENET_MEAN_RGB rounded: the zoom-out / crop fill
#: Box colours: far from each other, from the black background and from the mean fill.
PALETTE = np.array(
    [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [255, 255, 0],
        [255, 0, 255],
        [0, 255, 255],
        [255, 255, 255],
        [255, 128, 0],
        [128, 0, 255],
    ],
    np.uint8,
)


def _targets(boxes: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes with label = index + 1 and ignore = odd index, so alignment can be checked after any filtering."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return b, np.arange(1, len(b) + 1, dtype=np.int64), np.arange(len(b)) % 2 == 1


def _coordinate_image(h: int, w: int) -> np.ndarray:
    """Pixel (y, x) holds (x, y, 7): a crop's top-left pixel tells where it came from (needs h, w <= 256)."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs, ys, np.full_like(xs, 7)], axis=-1).astype(np.uint8)


def _to_uint8_image(sample: AugmentedSample) -> np.ndarray:
    """Undo the normalisation: ``(3, H, W)`` float -> ``(H, W, 3)`` uint8 RGB."""
    mean = torch.tensor(IMAGENET_MEAN_RGB).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD_RGB).view(3, 1, 1)
    return (sample.image * std + mean).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _geometric_only(size: tuple[int, int], **kwargs) -> SSDAugmentation:
    return SSDAugmentation(size, photometric_prob=0.0, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Individual steps, hand-made cases
# ----------------------------------------------------------------------------------------------------------------


def test_horizontal_flip_known_box():
    image = np.zeros((6, 10, 3), np.uint8)
    image[2:5, 1:4] = 200  # the content of the box [1, 2, 4, 5]
    boxes, labels, ignore = _targets([[1, 2, 4, 5]])
    out, out_boxes, out_labels, out_ignore = horizontal_flip(image, boxes, labels, ignore)
    np.testing.assert_array_equal(out_boxes, [[6, 2, 9, 5]])  # x -> 10 - x, corners swapped
    assert (out[2:5, 6:9] == 200).all() and out.sum() == image.sum()
    np.testing.assert_array_equal(out_labels, labels)
    np.testing.assert_array_equal(out_ignore, ignore)
    np.testing.assert_array_equal(boxes, [[1, 2, 4, 5]])  # input untouched


def test_zoom_out_keeps_box_sizes_and_places_content_at_the_offset():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    boxes, labels, ignore = _targets([[2, 3, 12, 15], [20, 0, 30, 20]])
    for _ in range(10):
        out, out_boxes, out_labels, out_ignore = zoom_out(image, boxes, labels, ignore, rng, max_zoom_out=4.0)
        h, w = out.shape[:2]
        assert 20 <= h <= 80 and 30 <= w <= 120
        shift = out_boxes - boxes
        left, top = int(shift[0, 0]), int(shift[0, 1])
        np.testing.assert_array_equal(shift, np.tile([left, top, left, top], (2, 1)))  # same shift, same size
        np.testing.assert_array_equal(out[top : top + 20, left : left + 30], image)
        fill = np.ones((h, w), bool)
        fill[top : top + 20, left : left + 30] = False
        assert (out[fill] == MEAN_FILL).all()
        np.testing.assert_array_equal(out_labels, labels)
        np.testing.assert_array_equal(out_ignore, ignore)


def test_zoom_out_factor_one_is_identity():
    image = np.full((5, 7, 3), 9, np.uint8)
    boxes, labels, ignore = _targets([[1, 1, 3, 4]])
    out, out_boxes, _, _ = zoom_out(image, boxes, labels, ignore, np.random.default_rng(0), max_zoom_out=1.0)
    np.testing.assert_array_equal(out, image)
    np.testing.assert_array_equal(out_boxes, boxes)


def test_crop_keeps_only_boxes_whose_centres_are_inside():
    image = _coordinate_image(100, 120)
    # Centres spread over the image, so crops keep some and drop others.
    boxes, labels, ignore = _targets(
        [[0, 0, 30, 30], [40, 10, 80, 50], [90, 60, 120, 100], [10, 60, 50, 95], [55, 45, 65, 55]]
    )
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    rng = np.random.default_rng(11)
    dropped_some = False
    for _ in range(60):
        out, out_boxes, out_labels, out_ignore = random_min_iou_crop(
            image, boxes, labels, ignore, rng, min_iou_choices=(0.3,)
        )
        x1, y1 = int(out[0, 0, 0]), int(out[0, 0, 1])  # where the crop came from
        h, w = out.shape[:2]
        x2, y2 = x1 + w, y1 + h
        assert 0.5 < h / w < 2 and h >= int(0.3 * 100) and w >= int(0.3 * 120)
        inside = (centres[:, 0] > x1) & (centres[:, 0] < x2) & (centres[:, 1] > y1) & (centres[:, 1] < y2)
        np.testing.assert_array_equal(out_labels, labels[inside])  # exactly those boxes, in order
        np.testing.assert_array_equal(out_ignore, ignore[inside])
        expected = np.clip(boxes[inside], [x1, y1, x1, y1], [x2, y2, x2, y2]) - [x1, y1, x1, y1]
        np.testing.assert_allclose(out_boxes, expected)
        crop = torch.tensor([[x1, y1, x2, y2]], dtype=torch.float32)
        assert pairwise_iou_xyxy(crop, torch.from_numpy(boxes)).max() >= 0.3  # the drawn minimum IoU holds
        dropped_some |= not inside.all()
    assert dropped_some


def test_crop_none_choice_returns_image_unchanged():
    image = _coordinate_image(40, 50)
    boxes, labels, ignore = _targets([[5, 5, 20, 20]])
    out, out_boxes, out_labels, _ = random_min_iou_crop(
        image, boxes, labels, ignore, np.random.default_rng(0), min_iou_choices=(None,)
    )
    assert out is image and out_boxes is boxes and out_labels is labels


def test_crop_impossible_iou_gives_up_uncropped():
    # A 4x4 box cannot reach IoU 0.9 with any crop of at least 0.3 of a 200x200 image.
    image = _coordinate_image(200, 200)
    boxes, labels, ignore = _targets([[0, 0, 4, 4]])
    out, out_boxes, _, _ = random_min_iou_crop(
        image, boxes, labels, ignore, np.random.default_rng(0), min_iou_choices=(0.9,), max_trials=5
    )
    assert out.shape == image.shape
    np.testing.assert_array_equal(out_boxes, boxes)


def test_default_crop_choices_are_the_tutorials():
    assert CROP_MIN_IOU_CHOICES == (None, 0.0, 0.1, 0.3, 0.5, 0.7, 0.9)


def test_resize_scales_boxes():
    image = np.zeros((100, 200, 3), np.uint8)
    boxes, labels, ignore = _targets([[20, 10, 60, 90]])
    out, out_boxes, out_labels, out_ignore = resize(image, boxes, labels, ignore, (50, 400))
    assert out.shape == (50, 400, 3)
    np.testing.assert_allclose(out_boxes, [[40, 5, 120, 45]])
    np.testing.assert_array_equal(out_labels, labels)
    np.testing.assert_array_equal(out_ignore, ignore)


def test_photometric_with_p1_changes_colours_never_geometry():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    original = image.copy()
    boxes, labels, ignore = _targets([[1, 2, 10, 20], [5, 5, 39, 29]])
    for _ in range(5):
        out, out_boxes, out_labels, out_ignore = photometric_distort(image, boxes, labels, ignore, rng, p=1.0)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert not np.array_equal(out, image)
        assert out_boxes is boxes and out_labels is labels and out_ignore is ignore
    np.testing.assert_array_equal(image, original)  # never in place


def test_photometric_on_grey_is_a_monotone_grey_map():
    # Saturation and hue leave grey alone (S = 0); brightness and contrast are increasing per-value maps.
    values = np.arange(256, dtype=np.uint8)
    image = np.repeat(np.repeat(values[None, :, None], 3, axis=2), 4, axis=0)  # (4, 256, 3), grey ramp
    rng = np.random.default_rng(8)
    for _ in range(20):
        out, _, _, _ = photometric_distort(image, *_targets([]), rng, p=1.0)
        assert (out == out[..., :1]).all()  # still grey
        assert (np.diff(out[0, :, 0].astype(int)) >= 0).all()


def test_photometric_ranges_are_respected():
    # Brightness alone (others at identity) scales a mid grey by a factor within [0.5, 1.5].
    image = np.full((8, 8, 3), 100, np.uint8)
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(50):
        out, _, _, _ = photometric_distort(
            image, *_targets([]), rng, p=1.0, contrast_range=(1, 1), saturation_range=(1, 1), hue_delta_deg=0.0
        )
        seen.add(int(out[0, 0, 0]))
        assert 50 <= out[0, 0, 0] <= 150
    assert len(seen) > 10


def test_as_arrays_clips_and_drops_and_validates():
    image = np.zeros((10, 20, 3), np.uint8)
    boxes, labels, ignore = _targets([[-5, 2, 8, 30], [25, 0, 30, 5], [3, 3, 3, 8]])
    _, out_boxes, out_labels, out_ignore = as_arrays(image, boxes, labels, ignore)
    np.testing.assert_array_equal(out_boxes, [[0, 2, 8, 10]])
    np.testing.assert_array_equal(out_labels, [1])
    np.testing.assert_array_equal(out_ignore, [False])
    with pytest.raises(ValueError, match="uint8"):
        as_arrays(image.astype(np.float32), boxes, labels, ignore)
    with pytest.raises(ValueError, match="labels"):
        as_arrays(image, boxes, labels[:2], ignore)


def test_constructor_validates():
    with pytest.raises(ValueError):
        SSDAugmentation((300, 0))
    with pytest.raises(ValueError):
        SSDAugmentation((300, 300), flip_prob=1.5)
    with pytest.raises(ValueError):
        SSDAugmentation((300, 300), crop_min_ious=())


# ----------------------------------------------------------------------------------------------------------------
# K = 0, determinism, output contract
# ----------------------------------------------------------------------------------------------------------------


def test_no_boxes_everywhere():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    empty = _targets([])
    for step in (
        lambda: photometric_distort(image, *empty, rng, p=1.0),
        lambda: zoom_out(image, *empty, rng),
        lambda: random_min_iou_crop(image, *empty, rng, min_iou_choices=(0.9,)),
        lambda: horizontal_flip(image, *empty),
        lambda: resize(image, *empty, (30, 30)),
    ):
        _, boxes, labels, ignore = step()
        assert boxes.shape == (0, 4) and labels.shape == (0,) and ignore.shape == (0,)
    for transform in (SSDAugmentation((32, 32)), SSDAugmentation((32, 32), crop_mode="square")):
        for _ in range(10):
            out = transform(image, *empty, rng)
            assert out.image.shape == (3, 32, 32) and out.boxes_xyxy.shape == (0, 4) and len(out) == 0
            assert out.labels.dtype == torch.int64 and out.ignore.dtype == torch.bool


def test_empty_crop_of_negative_image_still_zooms_in():
    image = _coordinate_image(100, 100)
    out, _, _, _ = random_min_iou_crop(image, *_targets([]), np.random.default_rng(2), min_iou_choices=(0.9,))
    assert out.shape[0] < 100 or out.shape[1] < 100


def test_same_seed_same_output_and_inputs_untouched():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    boxes, labels, ignore = _targets([[10, 10, 50, 70], [40, 60, 85, 115]])
    copies = [a.copy() for a in (image, boxes, labels, ignore)]
    augment = SSDAugmentation((64, 64))
    outputs = []
    for seed in range(8):
        first = augment(image, boxes, labels, ignore, np.random.default_rng(seed))
        second = augment(image, boxes, labels, ignore, np.random.default_rng(seed))
        for name in ("image", "boxes_xyxy", "labels", "ignore"):
            assert torch.equal(getattr(first, name), getattr(second, name))
        outputs.append(first.image)
    assert not all(torch.equal(outputs[0], o) for o in outputs[1:])  # and seeds matter
    for before, after in zip(copies, (image, boxes, labels, ignore)):
        np.testing.assert_array_equal(before, after)


def test_output_contract_and_normalisation():
    image = np.zeros((30, 30, 3), np.uint8)
    image[:] = MEAN_FILL
    resize_only = SSDAugmentation((20, 25), photometric_prob=0.0, zoom_out_prob=0.0, crop=False, flip_prob=0.0)
    out = resize_only(image, *_targets([[3, 6, 15, 24]]), np.random.default_rng(0))
    assert out.image.shape == (3, 20, 25) and out.image.dtype == torch.float32
    expected = (torch.tensor(MEAN_FILL, dtype=torch.float32) - torch.tensor(IMAGENET_MEAN_RGB)) / torch.tensor(
        IMAGENET_STD_RGB
    )
    torch.testing.assert_close(out.image[:, 0, 0], expected)
    torch.testing.assert_close(out.boxes_xyxy, torch.tensor([[0.1, 0.2, 0.5, 0.8]]))
    assert out.boxes_xyxy.dtype == torch.float32 and out.labels.tolist() == [1] and out.ignore.tolist() == [False]


def test_photometric_alone_keeps_geometry_in_the_pipeline():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (50, 80, 3), dtype=np.uint8)
    boxes, labels, ignore = _targets([[8, 5, 40, 45], [50, 10, 79, 30]])
    augment = SSDAugmentation((25, 40), photometric_prob=1.0, zoom_out_prob=0.0, crop=False, flip_prob=0.0)
    for _ in range(5):
        out = augment(image, boxes, labels, ignore, rng)
        torch.testing.assert_close(out.boxes_xyxy, torch.from_numpy(boxes / [80, 50, 80, 50]).float())


# ----------------------------------------------------------------------------------------------------------------
# Pipeline properties
# ----------------------------------------------------------------------------------------------------------------


@st.composite
def _annotated_images(draw):
    """A random image with K in [0, 6] random boxes (at least 2 px a side) inside it, and an rng seed."""
    h = draw(st.integers(8, 120))
    w = draw(st.integers(8, 120))
    k = draw(st.integers(0, 6))
    boxes = []
    for _ in range(k):
        x1 = draw(st.floats(0, w - 2))
        y1 = draw(st.floats(0, h - 2))
        x2 = draw(st.floats(x1 + 2, w))
        y2 = draw(st.floats(y1 + 2, h))
        boxes.append([x1, y1, x2, y2])
    seed = draw(st.integers(0, 2**32 - 1))
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    ignore = np.asarray(draw(st.lists(st.booleans(), min_size=k, max_size=k)), bool)
    return image, np.asarray(boxes, np.float32).reshape(-1, 4), ignore, seed


@PROPERTY
@given(_annotated_images(), st.sampled_from([(32, 32), (24, 40)]))
def test_property_boxes_inside_unit_square_with_area_and_aligned(data, size):
    image, boxes, ignore, seed = data
    labels = np.arange(1, len(boxes) + 1, dtype=np.int64)  # label = index + 1
    out = SSDAugmentation(size)(image, boxes, labels, ignore, np.random.default_rng(seed))
    assert out.image.shape == (3, *size) and torch.isfinite(out.image).all()
    b = out.boxes_xyxy
    assert b.shape == (len(out.labels), 4) == (len(out.ignore), 4)
    assert ((b >= 0) & (b <= 1)).all()
    assert ((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).all()
    index = out.labels.numpy() - 1
    assert len(set(index.tolist())) == len(index) and ((index >= 0) & (index < len(boxes))).all()
    np.testing.assert_array_equal(out.ignore.numpy(), ignore[index])


@st.composite
def _painted_images(draw):
    """Non-overlapping boxes, one per grid cell (or none), each painted a distinct palette colour on black."""
    h = draw(st.integers(24, 160))
    w = draw(st.integers(24, 160))
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    image = np.zeros((h, w, 3), np.uint8)
    boxes = []
    for r in range(rows):
        for c in range(cols):
            if draw(st.integers(0, 3)) == 0:  # most cells hold a box
                continue
            cx1, cx2 = c * w // cols, (c + 1) * w // cols
            cy1, cy2 = r * h // rows, (r + 1) * h // rows
            if cx2 - cx1 < 8 or cy2 - cy1 < 8:
                continue
            x1 = draw(st.integers(cx1, cx2 - 8))
            y1 = draw(st.integers(cy1, cy2 - 8))
            x2 = draw(st.integers(x1 + 8, cx2))
            y2 = draw(st.integers(y1 + 8, cy2))
            image[y1:y2, x1:x2] = PALETTE[len(boxes)]
            boxes.append([x1, y1, x2, y2])
    return image, np.asarray(boxes, np.float32).reshape(-1, 4), draw(st.integers(0, 2**32 - 1))


@PROPERTY
@given(_painted_images(), st.sampled_from([(96, 96), (80, 128)]))
def test_property_boxes_stay_on_their_content(data, size):
    image, boxes, seed = data
    labels = np.arange(1, len(boxes) + 1, dtype=np.int64)
    ignore = np.zeros(len(boxes), bool)
    augment = _geometric_only(size)
    height, width = size
    rng = np.random.default_rng(seed)
    for _ in range(4):  # several draws of zoom / crop / flip per image: cheap, and more boxes checked
        out = augment(image, boxes, labels, ignore, rng)
        pixels = _to_uint8_image(out).astype(int)
        for box, label in zip(out.boxes_xyxy.numpy() * [width, height, width, height], out.labels.tolist()):
            if box[2] - box[0] < 4 or box[3] - box[1] < 4:
                continue  # too small for bilinear interpolation to leave a pure pixel inside
            cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
            centre = pixels[cy, cx]
            assert np.abs(centre - PALETTE[label - 1].astype(int)).max() <= 8, (box, label, centre)


def test_square_crop_is_square_keeps_centred_boxes_and_spans_the_scale_range():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (100, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 30, 30], [100, 50, 140, 90]], np.float32)
    labels, ignore = np.array([1, 2]), np.array([False, True])
    sides = []
    for _ in range(300):
        crop, b, lab, ign = random_square_crop(image, boxes, labels, ignore, rng, scale_range=(0.3, 2.0))
        assert crop.shape[0] == crop.shape[1] and crop.dtype == np.uint8
        assert len(b) >= 1 and len(b) == len(lab) == len(ign)
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert (b >= 0).all() and (b <= crop.shape[0]).all()
        sides.append(crop.shape[0] / 100)
        for box, label in zip(b, lab):  # a kept box still frames its own content
            src = boxes[label - 1]
            assert box[2] - box[0] <= src[2] - src[0] + 1e-4
    assert min(sides) < 0.5 and max(sides) > 1.6  # both zoom-in and zoom-out happen


def test_square_crop_pads_with_the_mean_outside_the_image():
    rng = np.random.default_rng(1)
    image = np.full((50, 50, 3), 7, np.uint8)
    for _ in range(50):
        crop, *_ = random_square_crop(image, np.zeros((0, 4), np.float32), np.zeros(0, int), np.zeros(0, bool), rng,
                                      scale_range=(1.5, 2.0), fill_rgb=(200, 100, 50))
        assert crop.shape[0] >= 75
        outside = np.all(crop == (200, 100, 50), axis=-1)
        inside = np.all(crop == 7, axis=-1)
        assert inside.sum() == 2500 and (inside | outside).all()


def test_augmentation_square_mode_output_and_validation():
    aug = SSDAugmentation((64, 64), crop_mode="square", zoom_out_prob=0.0)
    image = np.random.default_rng(2).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    out = aug(image, np.array([[10, 10, 30, 30]], np.float32), np.array([1]), np.array([False]),
              np.random.default_rng(0))
    assert out.image.shape == (3, 64, 64)
    with pytest.raises(ValueError, match="crop_mode"):
        SSDAugmentation((64, 64), crop_mode="circle")


def test_uint8_output_normalised_later_is_bitwise_the_same():
    image = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    boxes, labels, ignore = _targets([[8, 5, 40, 45], [50, 10, 79, 30]])
    floats = SSDAugmentation((32, 48))
    uint8 = SSDAugmentation((32, 48), normalize=False)
    for seed in range(4):  # the same draws either way: only the last step differs
        a = floats(image, boxes, labels, ignore, np.random.default_rng(seed))
        b = uint8(image, boxes, labels, ignore, np.random.default_rng(seed))
        assert b.image.dtype == torch.uint8 and b.image.shape == a.image.shape
        assert torch.equal(normalize_batch(b.image[None])[0], a.image)
        assert torch.equal(a.boxes_xyxy, b.boxes_xyxy)


# the five face points as fractions of their box: eyes, nose, mouth corners (left = smaller x)
_FACE_POINTS = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]], np.float32)


def _boxes_with_points(boxes):
    boxes = np.asarray(boxes, np.float32)
    points = boxes[:, None, :2] + _FACE_POINTS[None] * (boxes[:, None, 2:] - boxes[:, None, :2])
    return np.concatenate((boxes, points.reshape(len(boxes), -1)), axis=1)


@pytest.mark.parametrize("options", [
    {}, {"crop_mode": "square"}, {"data_anchor_prob": 1.0, "anchor_sizes": (16, 32, 64)}, {"flip_prob": 1.0},
])
def test_landmarks_move_with_their_boxes_through_every_augmentation(options):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (120, 160, 3), np.uint8)
    boxes = _boxes_with_points([[40, 30, 80, 90], [100, 20, 140, 60], [10, 70, 30, 100]])
    transform = SSDAugmentation((96, 96), **options)
    checked = 0
    for seed in range(25):
        out = transform(image, boxes, np.ones(3, np.int64), np.zeros(3, bool), np.random.default_rng(seed))
        assert out.landmarks is not None and out.landmarks.shape == (len(out), 5, 2)
        b = out.boxes_xyxy.numpy()
        whole = (b[:, 0] > 1e-4) & (b[:, 1] > 1e-4) & (b[:, 2] < 1 - 1e-4) & (b[:, 3] < 1 - 1e-4)  # not clipped
        for box, points in zip(b[whole], out.landmarks.numpy()[whole]):
            # where the points were on the face, mirrored faces included (left and right swapped by the flip)
            expected = box[:2] + _FACE_POINTS * (box[2:] - box[:2])
            np.testing.assert_allclose(points, expected, atol=1e-4)
            checked += 1
    assert checked > 10


def test_flip_mirrors_points_and_swaps_left_and_right():
    image = np.zeros((10, 20, 3), np.uint8)
    boxes = _boxes_with_points([[2, 2, 8, 8]])
    _, out, _, _ = horizontal_flip(image, boxes, np.ones(1, np.int64), np.zeros(1, bool))
    points = out[0, 4:].reshape(5, 2)
    np.testing.assert_allclose(out[0, :4], [12, 2, 18, 8])
    np.testing.assert_allclose(points[0], [20 - (2 + 0.7 * 6), 2 + 0.4 * 6])  # the old right eye, mirrored
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]  # left still the smaller x


def test_boxes_without_points_give_no_landmarks():
    out = SSDAugmentation((32, 32))(np.zeros((40, 40, 3), np.uint8), np.array([[5, 5, 30, 30]], np.float32),
                                    np.ones(1, np.int64), np.zeros(1, bool), np.random.default_rng(0))
    assert out.landmarks is None


def test_grayscale_prob_turns_crops_grey_and_leaves_other_draws_alone():
    rng_image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    boxes, labels, ignore = _targets([[10, 10, 50, 50]])
    grey = _geometric_only((32, 32), grayscale_prob=1.0)(rng_image, boxes, labels, ignore, np.random.default_rng(5))
    pixels = _to_uint8_image(grey).astype(int)
    assert np.abs(pixels[..., 0] - pixels[..., 1]).max() <= 1 and np.abs(pixels[..., 1] - pixels[..., 2]).max() <= 1
    colour = _geometric_only((32, 32))(rng_image, boxes, labels, ignore, np.random.default_rng(5))
    assert torch.equal(grey.boxes_xyxy, colour.boxes_xyxy)  # the same crop and flip: geometry untouched
    assert np.abs(_to_uint8_image(colour).astype(int)[..., 0] - _to_uint8_image(colour)[..., 1]).max() > 10
    with pytest.raises(ValueError, match="grayscale_prob"):
        SSDAugmentation((32, 32), grayscale_prob=2.0)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_rotate90_moves_boxes_and_points_with_the_pixels(turns):
    image = np.zeros((30, 50, 3), np.uint8)
    image[5:15, 10:30] = 255  # a white box, 20 wide and 10 tall
    boxes = _boxes_with_points([[10, 5, 30, 15]])
    out, moved, _, _ = rotate90(image, boxes, np.ones(1, np.int64), np.zeros(1, bool), turns)
    assert out.shape[:2] == ((50, 30) if turns % 2 else (30, 50))
    ys, xs = np.nonzero(out[..., 0])
    np.testing.assert_allclose(moved[0, :4], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    # the points turn with the box: each stays at the same place relative to the white pixels
    marker = np.zeros((30, 50), np.float32)
    marker[int(boxes[0, 5]), int(boxes[0, 4])] = 1  # the left eye's pixel
    turned = cv2.rotate(marker, {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}[turns])
    y, x = np.argwhere(turned)[0]
    assert abs(moved[0, 4] - (x + 0.5)) <= 1 and abs(moved[0, 5] - (y + 0.5)) <= 1


def test_rotate90_prob_turns_some_crops_and_is_validated():
    image = np.random.default_rng(0).integers(0, 256, (40, 80, 3), dtype=np.uint8)
    boxes, labels, ignore = _targets([[10, 10, 50, 20]])
    fixed = {"zoom_out_prob": 0.0, "crop": False}
    plain = _geometric_only((32, 32), **fixed)(image, boxes, labels, ignore, np.random.default_rng(5))
    shapes = set()
    for seed in range(12):  # half the image wide, a quarter tall: wider than tall unless turned a quarter
        out = _geometric_only((32, 32), rotate90_prob=1.0, **fixed)(image, boxes, labels, ignore,
                                                                     np.random.default_rng(seed))
        w, h = (out.boxes_xyxy[0, 2:] - out.boxes_xyxy[0, :2]).tolist()
        shapes.add("tall" if h > w else "wide")
    assert shapes == {"tall", "wide"}  # quarter turns and half turns both drawn
    w, h = (plain.boxes_xyxy[0, 2:] - plain.boxes_xyxy[0, :2]).tolist()
    assert w > h
    with pytest.raises(ValueError, match="rotate90_prob"):
        SSDAugmentation((32, 32), rotate90_prob=-0.1)


def _canvas_colour(sample: AugmentedSample, photo_grey: int) -> np.ndarray | None:
    """The commonest pixel that is not the photo's grey (the resize blends a pixel or two at its edge); None when
    the canvas is too thin to see or has the photo's grey."""
    pixels = sample.image.permute(1, 2, 0).numpy().reshape(-1, 3).astype(int)
    canvas = pixels[np.abs(pixels - photo_grey).max(axis=1) > 3]
    if len(canvas) < 0.05 * len(pixels):
        return None
    colours, counts = np.unique(canvas, axis=0, return_counts=True)
    return colours[np.argmax(counts)]


def test_canvas_fill_prob_fills_the_canvas_with_black_white_grey_or_a_colour():
    image = np.full((40, 40, 3), 77, np.uint8)  # the photo: one grey
    boxes, labels, ignore = _targets([[10, 10, 30, 30]])
    options = {"zoom_out_prob": 1.0, "max_zoom_out": 2.0, "crop": False, "flip_prob": 0.0, "normalize": False}
    seen = set()
    for seed in range(40):
        out = _geometric_only((80, 80), canvas_fill_prob=1.0, **options)(image, boxes, labels, ignore,
                                                                         np.random.default_rng(seed))
        fill = _canvas_colour(out, 77)
        if fill is None:
            continue
        assert not np.array_equal(fill, MEAN_FILL)
        seen.add("black" if not fill.any() else "white" if (fill == 255).all() else
                 "grey" if fill[0] == fill[1] == fill[2] else "colour")
    assert seen == {"black", "white", "grey", "colour"}
    off = _geometric_only((80, 80), **options)(image, boxes, labels, ignore, np.random.default_rng(1))
    np.testing.assert_array_equal(_canvas_colour(off, 77), MEAN_FILL)  # off: SSD's mean fill
    assert {random_canvas_rgb(np.random.default_rng(s)) for s in range(200)} >= {(0, 0, 0), (255, 255, 255)}
    with pytest.raises(ValueError, match="canvas_fill_prob"):
        SSDAugmentation((32, 32), canvas_fill_prob=-0.1)


def test_low_resolution_blurs_large_faces_and_spares_small_ones():
    checker = ((np.indices((100, 100)).sum(axis=0) % 2) * 255).astype(np.uint8)
    image = np.repeat(checker[..., None], 3, axis=2)  # the finest detail there is
    big, labels, ignore = np.array([[10, 10, 60, 60]], np.float32), np.ones(1, np.int64), np.zeros(1, bool)
    out, boxes, _, _ = low_resolution(image, big, labels, ignore, np.random.default_rng(0))
    assert out.shape == image.shape and np.array_equal(boxes, big)
    assert out.astype(float).std() < 0.2 * image.astype(float).std()  # the checkerboard averaged away
    # a 20 px face would fall below 16 px at any factor <= 0.6: the image is left as it is
    small = np.array([[10, 10, 30, 30]], np.float32)
    kept, _, _, _ = low_resolution(image, small, labels, ignore, np.random.default_rng(0))
    assert kept is image
    # an ignored small face does not block it
    both = np.concatenate([big, small])
    out, _, _, _ = low_resolution(image, both, np.ones(2, np.int64), np.array([False, True]), np.random.default_rng(0))
    assert out is not image
    for bad in [(0.0, 0.5), (0.5, 1.5), (0.6, 0.2)]:
        with pytest.raises(ValueError, match="lowres_scale"):
            SSDAugmentation((32, 32), lowres_scale=bad)
    with pytest.raises(ValueError, match="lowres_prob"):
        SSDAugmentation((32, 32), lowres_prob=1.5)


def test_blank_prob_replaces_the_photo_by_a_plain_frame_without_faces():
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    boxes, labels, ignore = _targets([[10, 10, 40, 40]])
    for seed in range(5):
        out = _geometric_only((32, 32), blank_prob=1.0, normalize=False)(image, boxes, labels, ignore,
                                                                        np.random.default_rng(seed))
        colours = np.unique(out.image.reshape(3, -1).T.numpy(), axis=0)
        assert len(out.boxes_xyxy) == 0 and len(out.labels) == 0
        # one colour, and the mean fill where the square crop is larger than the frame (a blended edge between)
        assert len(colours) <= 4 and not any(np.array_equal(c, image[0, 0]) for c in colours)
    # boxes that carry points keep their columns, so a landmark model's batches stay one shape
    with_points = np.concatenate([boxes[:1], np.full((1, 10), 20.0, np.float32)], axis=1)
    out = _geometric_only((32, 32), blank_prob=1.0)(image, with_points, labels[:1], ignore[:1],
                                                    np.random.default_rng(0))
    assert len(out.boxes_xyxy) == 0
    kept = _geometric_only((32, 32), blank_prob=0.0)(image, boxes, labels, ignore, np.random.default_rng(0))
    assert len(kept.boxes_xyxy) >= 1
    with pytest.raises(ValueError, match="blank_prob"):
        SSDAugmentation((32, 32), blank_prob=1.5)


def test_face_crop_cuts_a_square_around_one_face():
    image = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    boxes = np.array([[50, 60, 110, 120], [150, 150, 165, 165], [10, 140, 70, 200]], np.float32)
    labels, ignore = np.array([1, 1, 1]), np.array([False, False, True])  # a 15 px face, an ignored one
    for seed in range(30):
        out, kept, _, kept_ignore = face_crop(image, boxes, labels, ignore, np.random.default_rng(seed))
        side = out.shape[0]
        assert out.shape == (side, side, 3) and 60 - 1 <= side <= 1.6 * 60 + 1
        assert len(kept) == 1 and not kept_ignore[0]  # the 60 px face: the others lie outside the cut
        assert kept[0, :4].min() >= 0 and kept[0, :4].max() <= side
        np.testing.assert_allclose(kept[0, 2:4] - kept[0, :2], [60, 60], atol=1.01)  # whole: not cut through
    # a cut through the face: its box clipped to the cut on every side
    out, kept, _, _ = face_crop(image, boxes, labels, ignore, np.random.default_rng(0), cut_range=(0.5, 0.5))
    np.testing.assert_allclose(kept[0, :4], [0, 0, 30, 30])
    # the cut's pixels are the photo's (the cut lies inside it here)
    out, kept, _, _ = face_crop(image, boxes[:1], labels[:1], ignore[:1], np.random.default_rng(0),
                                cut_range=(1.0, 1.0))
    y, x = np.argwhere((image == out[0, 0]).all(axis=2))[0]
    np.testing.assert_array_equal(image[y : y + 60, x : x + 60], out)
    # a cut of the same size anywhere: a face only where its centre falls inside, and then whole or clipped
    empty = 0
    for seed in range(30):
        out, kept, _, _ = face_crop(image, boxes[:1], labels[:1], ignore[:1], np.random.default_rng(seed),
                                    around_face=False)
        assert 60 - 1 <= out.shape[0] <= 1.6 * 60 + 1 and len(kept) <= 1
        empty += len(kept) == 0
    assert 10 <= empty < 30
    # no face of 32 px or more that is not ignored: the sample as it was
    small = face_crop(image, boxes[1:], labels[1:], ignore[1:], np.random.default_rng(0))
    assert small[0] is image and np.array_equal(small[1], boxes[1:])


def test_face_crop_prob_shows_a_face_crop_on_a_canvas():
    image = np.full((200, 200, 3), 77, np.uint8)
    boxes, labels, ignore = np.array([[50, 60, 110, 120]], np.float32), np.ones(1, np.int64), np.zeros(1, bool)
    sides = []
    for seed in range(30):
        out = _geometric_only((90, 90), face_crop_prob=1.0, canvas_fill_prob=1.0, normalize=False)(
            image, boxes, labels, ignore, np.random.default_rng(seed))
        assert len(out.boxes_xyxy) == 1
        sides.append(float(out.boxes_xyxy[0, 2] - out.boxes_xyxy[0, 0]))  # in output widths
    # a cut of 1-1.6 face sides on a canvas of 1-3 cut sides: the face spans 1 / 4.8 to all of the output
    assert min(sides) >= 1 / 4.8 - 0.01 and max(sides) <= 1.0 + 1e-6 and max(sides) > 2 * min(sides)
    fills = _geometric_only((90, 90), face_crop_prob=1.0, face_crop_canvas=1.0, normalize=False)(
        image, boxes, labels, ignore, np.random.default_rng(0))
    assert fills.boxes_xyxy[0, 2] - fills.boxes_xyxy[0, 0] >= 1 / 1.6 - 0.01  # no canvas: the face fills the photo
    # off: the same draws and output as before the option existed
    a = _geometric_only((90, 90))(image, boxes, labels, ignore, np.random.default_rng(3))
    b = _geometric_only((90, 90), face_crop_prob=0.0)(image, boxes, labels, ignore, np.random.default_rng(3))
    assert torch.equal(a.image, b.image) and torch.equal(a.boxes_xyxy, b.boxes_xyxy)
    faceless = sum(len(_geometric_only((90, 90), face_crop_prob=1.0, face_crop_negative=1.0)(
        image, boxes, labels, ignore, np.random.default_rng(seed)).boxes_xyxy) == 0 for seed in range(20))
    assert faceless >= 10  # the cuts made anywhere in the photo mostly miss its one face
    for bad, match in [({"face_crop_negative": -0.5}, "face_crop_negative"), ({"face_crop_prob": 1.5}, "face_crop_prob"), ({"face_crop_scale": (0.05, 1.0)}, "face_crop_scale"),
                       ({"face_crop_canvas": 0.5}, "face_crop_canvas")]:
        with pytest.raises(ValueError, match=match):
            SSDAugmentation((32, 32), **bad)
