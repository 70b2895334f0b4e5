import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from singleshot.boxes import (
    box_area_xyxy,
    clip_boxes_xyxy,
    cxcywh_to_xyxy,
    decode_offsets,
    encode_offsets,
    pairwise_iou_xyxy,
    xyxy_to_cxcywh,
)


def test_conversions_hand_computed():
    xyxy = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    cxcywh = torch.tensor([[20.0, 40.0, 20.0, 40.0]])
    assert torch.equal(xyxy_to_cxcywh(xyxy), cxcywh)
    assert torch.equal(cxcywh_to_xyxy(cxcywh), xyxy)
    assert box_area_xyxy(xyxy).item() == 800.0


def test_iou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 1.0, 2.0]])
    iou = pairwise_iou_xyxy(a, b)
    assert iou.shape == (1, 4)
    torch.testing.assert_close(iou, torch.tensor([[1 / 7, 1.0, 0.0, 0.5]]))


def test_iou_batched_shape_and_values():
    boxes1 = torch.rand(3, 5, 2).repeat(1, 1, 2) + torch.tensor([0.0, 0.0, 0.5, 0.5])
    boxes2 = torch.rand(3, 7, 2).repeat(1, 1, 2) + torch.tensor([0.0, 0.0, 0.3, 0.4])
    iou = pairwise_iou_xyxy(boxes1, boxes2)
    assert iou.shape == (3, 5, 7)
    for b in range(3):
        torch.testing.assert_close(iou[b], pairwise_iou_xyxy(boxes1[b], boxes2[b]))


def test_degenerate_boxes_are_finite():
    zero = torch.tensor([[5.0, 5.0, 5.0, 9.0], [1.0, 1.0, 1.0, 1.0]])
    iou = pairwise_iou_xyxy(zero, zero)
    assert torch.isfinite(iou).all() and (iou == 0).all()
    priors = torch.tensor([[0.5, 0.5, 0.0, 0.2], [0.5, 0.5, 0.1, 0.1]])
    offsets = encode_offsets(xyxy_to_cxcywh(torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.4, 0.4, 0.6, 0.6]])), priors)
    assert torch.isfinite(offsets).all()
    decoded = decode_offsets(torch.full((2, 4), 1e4), priors)
    assert torch.isfinite(decoded).all()


def test_encode_hand_computed():
    prior = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    box = torch.tensor([[0.52, 0.46, 0.4, 0.4]])
    offsets = encode_offsets(box, prior)
    expected = torch.tensor([[0.02 / (0.2 * 0.1), -0.04 / (0.4 * 0.1), math.log(2.0) / 0.2, 0.0]])
    torch.testing.assert_close(offsets, expected)


def test_clip():
    boxes = torch.tensor([[-5.0, 3.0, 120.0, 50.0]])
    assert clip_boxes_xyxy(boxes, 100, 40).tolist() == [[0.0, 3.0, 100.0, 40.0]]


coord = st.floats(0.0, 1.0, allow_nan=False)
# Sizes within 50x of the prior: decoding caps the scale at 1000/16 = 62.5x (see boxes._MAX_LOG_SCALE).
size = st.floats(0.02, 1.0, allow_nan=False)


@given(st.lists(st.tuples(coord, coord, size, size), min_size=1, max_size=8), st.tuples(coord, coord, size, size))
@settings(max_examples=200, deadline=None)
def test_encode_decode_roundtrip(boxes, prior):
    boxes_cxcywh = torch.tensor(boxes, dtype=torch.float64)
    priors_cxcywh = torch.tensor([prior], dtype=torch.float64).expand_as(boxes_cxcywh)
    decoded = decode_offsets(encode_offsets(boxes_cxcywh, priors_cxcywh), priors_cxcywh)
    torch.testing.assert_close(decoded, boxes_cxcywh, rtol=1e-6, atol=1e-9)


box = st.tuples(coord, coord, coord, coord).map(lambda t: (min(t[0], t[2]), min(t[1], t[3]), max(t[0], t[2]), max(t[1], t[3])))


@given(st.lists(box, min_size=1, max_size=6), st.lists(box, min_size=1, max_size=6))
@settings(max_examples=200, deadline=None)
def test_iou_symmetric_and_bounded(a, b):
    a_t, b_t = torch.tensor(a), torch.tensor(b)
    iou_ab = pairwise_iou_xyxy(a_t, b_t)
    iou_ba = pairwise_iou_xyxy(b_t, a_t)
    assert torch.isfinite(iou_ab).all()
    assert (iou_ab >= 0).all() and (iou_ab <= 1 + 1e-6).all()
    torch.testing.assert_close(iou_ab, iou_ba.T)


def test_landmark_encoding_round_trip_and_hand_value():
    from singleshot.boxes import decode_landmarks, encode_landmarks

    priors = torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.1, 0.2, 0.1, 0.1]])
    points = torch.rand(3, 2, 5, 2)
    offsets = encode_landmarks(points, priors)
    assert offsets.shape == (3, 2, 10)
    torch.testing.assert_close(decode_landmarks(offsets, priors), points)
    # (0.6 - 0.5) / (0.2 * 0.1) = 5, (0.3 - 0.5) / (0.4 * 0.1) = -5
    one = encode_landmarks(torch.tensor([[[0.6, 0.3]]]), priors[:1])
    torch.testing.assert_close(one, torch.tensor([[5.0, -5.0]]))
