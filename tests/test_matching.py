import pytest
import torch

from singleshot.boxes import cxcywh_to_xyxy, encode_offsets, pairwise_iou_xyxy, xyxy_to_cxcywh
from singleshot.matching import IGNORE_LABEL, match_priors, pad_targets
from singleshot.priors import PriorLevel, PriorSpec, generate_prior_grid, generate_priors, ssd300_prior_spec


def reference_match(priors_cxcywh, boxes_xyxy, labels, threshold=0.5):
    """Plain per-image matcher with Python loops over objects (the documented rule, written the slow way)."""
    num_priors = priors_cxcywh.shape[0]
    if len(boxes_xyxy) == 0:
        return torch.zeros(num_priors, dtype=torch.long), None
    overlap = pairwise_iou_xyxy(boxes_xyxy, cxcywh_to_xyxy(priors_cxcywh))  # (M, P)
    overlap_for_each_prior, object_for_each_prior = overlap.max(dim=0)
    forced = {}  # prior -> object
    pending = list(range(len(boxes_xyxy)))
    while pending:
        proposals = {}
        for obj in pending:
            ious = overlap[obj].clone()
            ious[list(forced)] = -1.0
            if ious.max() > 0:
                proposals.setdefault(int(ious.argmax()), []).append(obj)
        if not proposals:
            break
        for prior, objs in proposals.items():
            forced[prior] = max(objs, key=lambda o: (overlap[o, prior].item(), -o))
        pending = [o for o in pending if o not in forced.values() and any(o in v for v in proposals.values())]
    for prior, obj in forced.items():
        object_for_each_prior[prior] = obj
        overlap_for_each_prior[prior] = 1.0
    label_for_each_prior = labels[object_for_each_prior].clone()
    label_for_each_prior[overlap_for_each_prior < threshold] = 0
    offsets = encode_offsets(xyxy_to_cxcywh(boxes_xyxy[object_for_each_prior]), priors_cxcywh)
    return label_for_each_prior, offsets


def random_boxes(n, generator):
    centres = torch.rand(n, 2, generator=generator)
    sizes = torch.rand(n, 2, generator=generator) * 0.5 + 0.02
    return torch.cat((centres - sizes / 2, centres + sizes / 2), dim=1).clamp(0, 1)


def small_priors():
    spec = PriorSpec(
        levels=(PriorLevel(sizes=(0.15,), aspect_ratios=(1.0, 2.0, 0.5), next_size=0.3), PriorLevel(sizes=(0.4, 0.7))),
    )
    return generate_priors(spec, (64, 64), [(8, 8), (4, 4)])


def check_against_reference(priors, boxes_list, labels_list, threshold=0.5):
    boxes, labels, _, valid = pad_targets(boxes_list, labels_list)
    result = match_priors(priors, boxes, labels, valid, iou_threshold=threshold)
    for i, (b, lab) in enumerate(zip(boxes_list, labels_list)):
        ref_labels, ref_offsets = reference_match(priors, b, lab, threshold)
        assert torch.equal(result.labels[i], ref_labels), f"image {i}"
        if ref_offsets is not None:
            positive = ref_labels > 0
            torch.testing.assert_close(result.offsets[i][positive], ref_offsets[positive])
            # every object is matched to at least one prior
            assert set(result.matched_index[i][positive].tolist()) == set(range(len(b)))


def test_matches_reference_on_random_cases():
    g = torch.Generator().manual_seed(0)
    priors = small_priors()
    for trial in range(30):
        counts = torch.randint(0, 7, (5,), generator=g).tolist()
        counts[trial % 5] = 0  # every batch has an image with no objects
        boxes_list = [random_boxes(n, g) for n in counts]
        labels_list = [torch.randint(1, 4, (n,), generator=g) for n in counts]
        check_against_reference(priors, boxes_list, labels_list)


def test_matches_reference_with_ssd300_priors_and_overlapping_objects():
    g = torch.Generator().manual_seed(1)
    priors = generate_priors(ssd300_prior_spec(), (300, 300), [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)])
    base = random_boxes(4, g)
    overlapping = torch.cat((base, base + 0.01, base[:1], base[:1]), dim=0).clamp(0, 1)  # near and exact copies
    boxes_list = [overlapping, random_boxes(30, g), torch.zeros(0, 4)]
    labels_list = [torch.arange(1, 11), torch.randint(1, 21, (30,), generator=g), torch.zeros(0, dtype=torch.long)]
    check_against_reference(priors, boxes_list, labels_list)
    check_against_reference(priors, boxes_list, labels_list, threshold=0.35)


def test_each_object_forced_onto_its_best_prior_even_when_iou_is_low():
    priors = small_priors()
    tiny = torch.tensor([[0.50, 0.50, 0.51, 0.51]])  # IoU with every prior far below 0.5
    boxes, labels, _, valid = pad_targets([tiny], [torch.tensor([2])])
    result = match_priors(priors, boxes, labels, valid)
    assert (result.labels[0] == 2).sum() == 1
    assert (result.labels[0] > 0).sum() == 1


def test_image_without_objects_is_all_background():
    priors = small_priors()
    boxes, labels, _, valid = pad_targets([torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)])
    result = match_priors(priors, boxes, labels, valid)
    assert (result.labels == 0).all()
    assert (result.matched_index == -1).all()
    assert torch.isfinite(result.offsets).all()


def test_ignored_objects_give_ignore_label():
    priors = small_priors()
    g = torch.Generator().manual_seed(3)
    boxes_list = [random_boxes(3, g)]
    ignore = [torch.tensor([False, True, False])]
    boxes, labels, ign, valid = pad_targets(boxes_list, [torch.tensor([1, 1, 1])], ignore)
    result = match_priors(priors, boxes, labels, valid, gt_ignore=ign)
    assert (result.labels[0][result.matched_index[0] == 1] <= 0).all()
    assert (result.labels[0] == IGNORE_LABEL).any()
    assert ((result.labels[0] == 1) == ((result.matched_index[0] != 1) & (result.labels[0] != 0))).all()


def test_objects_competing_for_one_prior_all_get_a_prior():
    priors = small_priors()
    box = torch.tensor([[0.3, 0.3, 0.6, 0.6]])
    boxes, labels, _, valid = pad_targets([box.repeat(3, 1)], [torch.tensor([1, 2, 3])])
    result = match_priors(priors, boxes, labels, valid, iou_threshold=0.99)
    assert sorted(result.labels[0][result.labels[0] > 0].tolist()) == [1, 2, 3]


def test_zero_area_object_is_not_forced():
    priors = small_priors()
    boxes, labels, _, valid = pad_targets([torch.tensor([[0.4, 0.4, 0.4, 0.6]])], [torch.tensor([1])])
    result = match_priors(priors, boxes, labels, valid)
    assert (result.labels == 0).all()


GRID_CASES = [
    (ssd300_prior_spec(), (300, 300), [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]),
    (PriorSpec(levels=ssd300_prior_spec().levels[2:], clip=False), (300, 300), [(10, 10), (5, 5), (3, 3), (1, 1)]),
    (
        PriorSpec(
            levels=(
                PriorLevel(sizes=(10.0, 16.0, 24.0), stride=8),
                PriorLevel(sizes=(32.0, 48.0), aspect_ratios=(1.0, 0.8), stride=16),
                PriorLevel(sizes=(96.0,), aspect_ratios=(1.0, 2.0, 0.5), next_size=160.0, stride=32),
                PriorLevel(sizes=(200.0, 300.0), stride=64),
            ),
            unit="pixels",
        ),
        (240, 320),
        [(30, 40), (15, 20), (8, 10), (4, 5)],
    ),
    (  # a side no stride divides (a training crop of any size): maps overhang the input, border priors clip hard
        PriorSpec(
            levels=(
                PriorLevel(sizes=(10.0, 16.0), stride=8),
                PriorLevel(sizes=(32.0,), aspect_ratios=(1.0, 0.8), stride=16),
                PriorLevel(sizes=(128.0, 256.0), stride=64),
            ),
            unit="pixels",
        ),
        (330, 250),
        [(42, 32), (21, 16), (6, 4)],
    ),
]


def awkward_boxes(n, generator):
    """Mixed sizes and shapes, some crossing the image border, some tiny, some repeated."""
    boxes = random_boxes(n, generator)
    if n >= 4:
        boxes[0] = torch.tensor([-0.1, 0.8, 0.15, 1.2])  # crosses the border
        boxes[1] = torch.tensor([0.5, 0.5, 0.505, 0.52])  # tiny: no prior reaches the threshold
        boxes[2] = boxes[3]  # identical objects compete for the same prior
    return boxes


def test_grid_matching_equals_all_pairs():
    g = torch.Generator().manual_seed(5)
    for spec, image_size, feature_sizes in GRID_CASES:
        grid = generate_prior_grid(spec, image_size, feature_sizes)
        assert torch.equal(grid.cxcywh, generate_priors(spec, image_size, feature_sizes))
        for trial in range(6):
            counts = torch.randint(0, 25, (4,), generator=g).tolist()
            counts[trial % 4] = 0
            boxes_list = [awkward_boxes(n, g) for n in counts]
            labels_list = [torch.randint(1, 5, (n,), generator=g) for n in counts]
            ignore_list = [torch.rand(n, generator=g) < 0.2 for n in counts]
            boxes, labels, ignore, valid = pad_targets(boxes_list, labels_list, ignore_list)
            for threshold in (0.35, 0.5, 0.7):
                dense = match_priors(grid.cxcywh, boxes, labels, valid, ignore, iou_threshold=threshold)
                fast = match_priors(grid, boxes, labels, valid, ignore, iou_threshold=threshold)
                for field in ("labels", "matched_index", "matched_iou", "offsets"):
                    assert torch.equal(getattr(dense, field), getattr(fast, field)), (field, threshold, trial)


def test_grid_matching_crowded_conflicts():
    # 40 copies of one box: each needs its own prior, most of them far below the threshold.
    spec, image_size, feature_sizes = GRID_CASES[2]
    grid = generate_prior_grid(spec, image_size, feature_sizes)
    box = torch.tensor([[0.4, 0.4, 0.5, 0.55]])
    boxes, labels, _, valid = pad_targets([box.repeat(40, 1)], [torch.arange(1, 41)])
    dense = match_priors(grid.cxcywh, boxes, labels, valid)
    fast = match_priors(grid, boxes, labels, valid)
    assert torch.equal(dense.labels, fast.labels)
    assert sorted(set(fast.labels[0][fast.labels[0] > 0].tolist())) == list(range(1, 41))


def test_invalid_threshold_is_refused():
    boxes, labels, _, valid = pad_targets([torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)])
    with pytest.raises(ValueError, match="iou_threshold"):
        match_priors(small_priors(), boxes, labels, valid, iou_threshold=0.0)
