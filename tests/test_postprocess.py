import numpy as np
import pytest
import torch

from singleshot.boxes import clip_boxes_xyxy, cxcywh_to_xyxy, decode_offsets
from singleshot.postprocess import merge_large_faces, postprocess
from singleshot.structures import Detections
from tests.test_ops import reference_nms


def reference_postprocess(loc, conf, priors, image_size, min_score, max_overlap, top_k, pre_nms_top_k):
    """Per-image, per-class loops (the tutorial's detect_objects, plus a per-class pre-NMS top-k)."""
    h, w = image_size
    scale = torch.tensor([w, h, w, h])
    results = []
    for i in range(loc.shape[0]):
        boxes = cxcywh_to_xyxy(decode_offsets(loc[i], priors)).clamp(0, 1) * scale
        scores = conf[i].softmax(-1)
        found = []
        for c in range(1, conf.shape[2]):
            s, idx = scores[:, c].topk(min(pre_nms_top_k, len(priors)))
            idx = idx[s >= min_score]
            s = s[s >= min_score]
            for j in reference_nms(boxes[idx], s, max_overlap):
                found.append((s[j].item(), c, boxes[idx[j]]))
        found.sort(key=lambda t: -t[0])
        results.append(found[:top_k])
    return results


def test_matches_reference_on_random_batch():
    g = torch.Generator().manual_seed(0)
    p, c = 300, 4
    priors = torch.cat((torch.rand(p, 2, generator=g), 0.05 + 0.3 * torch.rand(p, 2, generator=g)), dim=1)
    loc = 0.5 * torch.randn(3, p, 4, generator=g)
    conf = 3 * torch.randn(3, p, c, generator=g)
    args = {"min_score": 0.3, "max_overlap": 0.45, "top_k": 25, "pre_nms_top_k": 100}
    out = postprocess(loc, conf, priors, (120, 160), **args)
    ref = reference_postprocess(loc, conf, priors, (120, 160), **args)
    assert len(out) == 3
    for det, expected in zip(out, ref):
        assert len(det) == len(expected) <= 25
        torch.testing.assert_close(det.scores, torch.tensor([e[0] for e in expected]))
        assert det.labels.tolist() == [e[1] for e in expected]
        torch.testing.assert_close(det.boxes_xyxy, torch.stack([e[2] for e in expected]))


def test_one_foreground_class_matches_reference():
    """Two classes take the sigmoid shortcut (softmax of two logits); it must agree with the softmax reference."""
    g = torch.Generator().manual_seed(1)
    p = 500
    priors = torch.cat((torch.rand(p, 2, generator=g), 0.05 + 0.3 * torch.rand(p, 2, generator=g)), dim=1)
    loc = 0.5 * torch.randn(2, p, 4, generator=g)
    conf = 4 * torch.randn(2, p, 2, generator=g)
    args = {"min_score": 0.2, "max_overlap": 0.45, "top_k": 40, "pre_nms_top_k": 150}
    out = postprocess(loc, conf, priors, (120, 160), **args)
    ref = reference_postprocess(loc, conf, priors, (120, 160), **args)
    for det, expected in zip(out, ref):
        assert 0 < len(det) == len(expected) <= 40
        torch.testing.assert_close(det.scores, torch.tensor([e[0] for e in expected]))
        assert det.labels.tolist() == [1] * len(expected)
        torch.testing.assert_close(det.boxes_xyxy, torch.stack([e[2] for e in expected]))


def test_hand_made_batch_returns_every_image():
    priors = torch.tensor([[0.25, 0.25, 0.2, 0.2], [0.26, 0.25, 0.2, 0.2], [0.75, 0.75, 0.2, 0.2]])
    loc = torch.zeros(2, 3, 4)
    conf = torch.full((2, 3, 3), -10.0)
    conf[:, :, 0] = 10.0  # background everywhere...
    conf[0, 0] = torch.tensor([0.0, 10.0, 0.0])  # ...except image 0: class 1 on prior 0 and 1 (overlapping)
    conf[0, 1] = torch.tensor([0.0, 9.0, 0.0])
    conf[0, 2] = torch.tensor([0.0, 0.0, 8.0])  # and class 2 on prior 2
    conf[1, 1] = torch.tensor([0.0, 0.0, 10.0])  # image 1: class 2 on prior 1 only
    out = postprocess(loc, conf, priors, (100, 200), min_score=0.5, max_overlap=0.45)
    assert [len(d) for d in out] == [2, 1]
    assert out[0].labels.tolist() == [1, 2]
    torch.testing.assert_close(out[0].boxes_xyxy[0], torch.tensor([30.0, 15.0, 70.0, 35.0]))
    torch.testing.assert_close(out[0].boxes_xyxy[1], torch.tensor([130.0, 65.0, 170.0, 85.0]))
    assert out[1].labels.tolist() == [2]
    torch.testing.assert_close(out[1].boxes_xyxy[0], torch.tensor([32.0, 15.0, 72.0, 35.0]))


def test_class_aware_nms_keeps_overlapping_boxes_of_other_classes():
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    conf = torch.tensor([[[0.0, 5.0, 5.0]]])
    out = postprocess(torch.zeros(1, 1, 4), conf, priors, (10, 10), min_score=0.3)
    assert sorted(out[0].labels.tolist()) == [1, 2]


def test_nothing_above_min_score_gives_empty_detections():
    conf = torch.zeros(2, 5, 2)
    conf[..., 0] = 10.0
    out = postprocess(torch.zeros(2, 5, 4), conf, torch.rand(5, 4) * 0.5 + 0.1, (10, 10), min_score=0.5)
    assert [len(d) for d in out] == [0, 0]
    assert out[0].boxes_xyxy.shape == (0, 4)


def test_box_voting_moves_kept_boxes_to_the_weighted_mean_of_their_overlaps():
    from singleshot.deploy.numpy_ops import postprocess_numpy, vote_boxes_numpy
    from singleshot.ops import vote_boxes_padded

    boxes = torch.tensor([[[0.0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60], [0, 0, 0, 0]]])
    scores = torch.tensor([[0.9, 0.3, 0.8, 0.7]])
    valid = torch.tensor([[True, True, True, True]])
    voted = vote_boxes_padded(boxes, scores, valid, 0.5)[0]
    # IoU of the first two is 80 / 120 = 0.67 >= 0.5: (0.9 * box0 + 0.3 * box1) / 1.2
    torch.testing.assert_close(voted[0], torch.tensor([0.5, 0.0, 10.5, 10.0]))
    torch.testing.assert_close(voted[2], boxes[0, 2])  # alone: unchanged
    torch.testing.assert_close(voted[3], boxes[0, 3])  # degenerate (no voter, not even itself): unchanged
    assert torch.equal(vote_boxes_padded(boxes, scores, valid, 0.7)[0, 0], boxes[0, 0])  # 0.67 < 0.7: no vote
    invalid = vote_boxes_padded(boxes, scores, torch.tensor([[True, False, True, True]]), 0.5)[0]
    assert torch.equal(invalid[0], boxes[0, 0])  # invalid boxes do not vote
    np.testing.assert_allclose(
        vote_boxes_numpy(boxes[0].numpy(), scores[0].numpy(), np.array([0, 2, 3]), 0.5), voted[[0, 2, 3]].numpy(),
        atol=1e-6,
    )
    # through the numpy post-processing: NMS keeps box 0 (box 1 overlaps it by 0.67 > 0.45), voting moves it
    b, s, _ = postprocess_numpy(boxes.numpy()[:, :3], scores.numpy()[:, :3, None], min_score=0.1, vote_iou=0.5)[0]
    np.testing.assert_allclose(b[0], [0.5, 0.0, 10.5, 10.0], atol=1e-6)
    assert s.tolist() == pytest.approx([0.9, 0.8])


def test_torch_and_numpy_postprocessing_agree_with_voting():
    from singleshot.deploy.numpy_ops import postprocess_numpy

    torch.manual_seed(3)
    priors = torch.rand(300, 4) * torch.tensor([1.0, 1.0, 0.3, 0.3]) + torch.tensor([0.0, 0.0, 0.05, 0.05])
    loc, conf = torch.randn(2, 300, 4) * 0.5, torch.randn(2, 300, 3) * 2
    ref = postprocess(loc, conf, priors, (64, 96), min_score=0.3, vote_iou=0.5)
    boxes = clip_boxes_xyxy(cxcywh_to_xyxy(decode_offsets(loc, priors[None].expand(2, -1, -1)))) * torch.tensor(
        [96.0, 64, 96, 64])
    scores = conf.softmax(-1)[..., 1:]
    got = postprocess_numpy(boxes.numpy(), scores.numpy(), min_score=0.3, vote_iou=0.5)
    for r, (b, s, lab) in zip(ref, got):
        order_r = np.lexsort((r.boxes_xyxy[:, 0].numpy(), -r.scores.numpy()))
        order_g = np.lexsort((b[:, 0], -s))
        np.testing.assert_allclose(r.boxes_xyxy.numpy()[order_r], b[order_g], atol=1e-3)
        np.testing.assert_array_equal(r.labels.numpy()[order_r], lab[order_g])


def test_landmarks_follow_their_boxes_through_nms_and_voting():
    from singleshot.boxes import encode_landmarks, encode_offsets, xyxy_to_cxcywh

    priors = torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.52, 0.5, 0.4, 0.4], [0.2, 0.2, 0.1, 0.1]])
    boxes = torch.tensor([[0.3, 0.3, 0.7, 0.7], [0.32, 0.3, 0.72, 0.7], [0.15, 0.15, 0.25, 0.25]])
    points = torch.stack([torch.full((5, 2), 0.4), torch.full((5, 2), 0.5), torch.full((5, 2), 0.2)])  # (3, 5, 2)
    loc = encode_offsets(xyxy_to_cxcywh(boxes), priors)[None]
    landm = encode_landmarks(points, priors)[None]
    conf = torch.tensor([[[0.0, 3.0], [0.0, 1.0], [0.0, 2.0]]])  # scores: prior 0 > 2 > 1
    det = postprocess(loc, conf, priors, (100, 200), min_score=0.1, landm=landm)[0]
    assert det.landmarks.shape == (2, 5, 2)  # prior 1 suppressed by prior 0
    torch.testing.assert_close(det.landmarks[0], torch.tensor([[80.0, 40.0]] * 5))  # (0.4 * 200, 0.4 * 100)
    torch.testing.assert_close(det.landmarks[1], torch.tensor([[40.0, 20.0]] * 5))
    voted = postprocess(loc, conf, priors, (100, 200), min_score=0.1, landm=landm, vote_iou=0.5)[0]
    w = torch.sigmoid(torch.tensor([3.0, 1.0]))
    x = float((w[0] * 80 + w[1] * 100) / w.sum())  # the two overlapping candidates' points, by score
    torch.testing.assert_close(voted.landmarks[0, :, 0], torch.full((5,), x))
    assert postprocess(loc, conf, priors, (100, 200), min_score=0.1)[0].landmarks is None


def test_head_with_landmarks_returns_a_third_output():
    from singleshot.models.heads import SSDHead

    head = SSDHead((8, 16), (2, 3), num_classes=2, depthwise=True, num_landmarks=5)
    loc, conf, landm = head([torch.zeros(1, 8, 4, 4), torch.zeros(1, 16, 2, 2)])
    assert loc.shape == (1, 44, 4) and conf.shape == (1, 44, 2) and landm.shape == (1, 44, 10)
    assert len(SSDHead((8,), (2,), num_classes=2)([torch.zeros(1, 8, 4, 4)])) == 2


def _dets(rows, points=False):
    rows = torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)
    landmarks = rows[:, None, :2].repeat(1, 5, 1) if points else None
    return Detections(rows[:, :4], rows[:, 4], rows[:, 5].long(), landmarks=landmarks)


def test_merge_large_faces_takes_large_ones_from_the_coarse_scale():
    main = _dets([[10, 10, 200, 200, 0.9, 1],   # a large face, loosely boxed at the main scale
                  [300, 10, 320, 30, 0.8, 1],   # a small face only the main scale finds
                  [400, 10, 560, 170, 0.7, 1]])  # a large face the coarse scale misses: kept (the union)
    coarse = _dets([[20, 20, 190, 190, 0.95, 1],  # the large face, tighter
                    [300, 10, 321, 31, 0.6, 1],   # a small face: the main scale's box stays
                    [600, 10, 780, 190, 0.5, 1]])  # a large face only the coarse scale finds
    merged = merge_large_faces(main, coarse, large_side=100.0)
    assert merged.boxes_xyxy.tolist() == [[20, 20, 190, 190], [300, 10, 320, 30], [400, 10, 560, 170],
                                          [600, 10, 780, 190]]
    assert merged.scores.tolist() == pytest.approx([0.95, 0.8, 0.7, 0.5])
    assert merge_large_faces(main, coarse, large_side=1000.0) is main  # nothing large: the main set as it is
    assert len(merge_large_faces(main, coarse, large_side=100.0, top_k=2)) == 2
    # another label is another object: both stay
    other = _dets([[20, 20, 190, 190, 0.95, 2]])
    assert len(merge_large_faces(main, other, large_side=100.0)) == 4
    # a small face of the main scale is not given way to a large, less sure box of the coarse one (NMS by score)
    small = _dets([[50, 50, 130, 130, 0.99, 1]])
    loose = _dets([[45, 45, 145, 145, 0.05, 1]])
    assert merge_large_faces(small, loose, large_side=100.0).scores.tolist() == pytest.approx([0.99])
    # a large one is: the coarse scale decides large objects, box and score
    big = _dets([[40, 40, 150, 150, 0.99, 1]])
    assert merge_large_faces(big, loose, large_side=100.0).boxes_xyxy.tolist() == [[45, 45, 145, 145]]
    # unless the coarse scale's surest box on it is a small one (a face near the size limit): the main box stays
    near = _dets([[45, 45, 145, 145, 0.05, 1], [42, 42, 140, 140, 0.9, 1]])
    assert merge_large_faces(big, near, large_side=100.0).boxes_xyxy.tolist() == [[40, 40, 150, 150]]


def test_merge_large_faces_with_no_main_detections_and_with_points():
    coarse = _dets([[20, 20, 190, 190, 0.95, 1]], points=True)
    merged = merge_large_faces(_dets([], points=True), coarse, large_side=100.0)
    assert merged.boxes_xyxy.tolist() == [[20, 20, 190, 190]] and merged.landmarks.shape == (1, 5, 2)
    assert len(merge_large_faces(_dets([]), _dets([]), large_side=1.0)) == 0
