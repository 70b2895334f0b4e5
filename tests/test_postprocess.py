import torch

from singleshot.boxes import cxcywh_to_xyxy, decode_offsets
from singleshot.postprocess import postprocess
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
