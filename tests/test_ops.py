import torch

from singleshot.boxes import pairwise_iou_xyxy
from singleshot.ops import batched_nms, nms, nms_padded


def reference_nms(boxes, scores, threshold):
    """Brute-force greedy NMS: walk the boxes by decreasing score (ties: lower index first)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i].item(), i))
    iou = pairwise_iou_xyxy(boxes, boxes)
    kept = []
    for i in order:
        if all(iou[i, j] <= threshold for j in kept):
            kept.append(i)
    return kept


def clustered_boxes(n, generator, clusters=4):
    centres = torch.rand(clusters, 2, generator=generator)[torch.randint(0, clusters, (n,), generator=generator)]
    centres = centres + 0.05 * torch.randn(n, 2, generator=generator)
    sizes = 0.1 + 0.2 * torch.rand(n, 2, generator=generator)
    return torch.cat((centres - sizes / 2, centres + sizes / 2), dim=1)


def test_nms_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    for trial in range(40):
        n = int(torch.randint(1, 120, (1,), generator=g))
        boxes = clustered_boxes(n, g)
        scores = torch.rand(n, generator=g)
        if trial % 4 == 0:
            scores = (scores * 5).round() / 5  # many ties
        for threshold in (0.3, 0.45, 0.7):
            assert nms(boxes, scores, threshold).tolist() == reference_nms(boxes, scores, threshold)


def test_nms_long_suppression_chain():
    # Each box overlaps only its neighbours: keep alternates, the worst case for the fixed-point iteration.
    n = 60
    x = torch.arange(n, dtype=torch.float32) * 0.5
    boxes = torch.stack((x, torch.zeros(n), x + 1.0, torch.ones(n)), dim=1)
    scores = torch.linspace(1.0, 0.1, n)
    assert nms(boxes, scores, 0.3).tolist() == reference_nms(boxes, scores, 0.3)
    assert nms(boxes, scores, 0.3).tolist() == list(range(0, n, 2))


def test_nms_empty_and_single():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    assert nms(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([0.3]), 0.5).tolist() == [0]


def test_batched_nms_is_per_group():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        n = int(torch.randint(1, 150, (1,), generator=g))
        boxes = clustered_boxes(n, g, clusters=3)
        scores = torch.rand(n, generator=g)
        groups = torch.randint(0, 5, (n,), generator=g) * 7  # sparse, unsorted group ids
        expected = []
        for group in groups.unique().tolist():
            idx = (groups == group).nonzero().squeeze(1)
            expected += idx[reference_nms(boxes[idx], scores[idx], 0.45)].tolist()
        expected.sort(key=lambda i: (-scores[i].item(), i))
        assert batched_nms(boxes, scores, groups, 0.45).tolist() == expected
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).tolist() == []


def test_nms_padded_ignores_invalid_entries():
    boxes = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.05, 0.0, 1.0, 1.0]]])
    scores = torch.tensor([[0.9, 0.8, 0.7]])
    valid = torch.tensor([[False, True, True]])  # the top box is padding: it must not suppress anything
    keep = nms_padded(boxes, scores, valid, 0.5)
    assert keep.tolist() == [[False, True, False]]
