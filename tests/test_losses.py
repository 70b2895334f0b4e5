import pytest
import torch
import torch.nn.functional as F

from singleshot.losses import MultiBoxLoss, distillation_loss, hard_negative_mask
from singleshot.matching import MatchResult


def make_targets(labels):
    b, p = labels.shape
    return MatchResult(
        labels=labels,
        offsets=torch.randn(b, p, 4),
        matched_index=torch.zeros(b, p, dtype=torch.long),
        matched_iou=torch.zeros(b, p),
    )


def test_hard_negative_mask_picks_exactly_the_top_loss_negatives():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        conf_loss = torch.rand(4, 50, generator=g)
        labels = torch.randint(-1, 3, (4, 50), generator=g) * (torch.rand(4, 50, generator=g) < 0.3)
        labels[0] = 0  # an image without positives
        mask = hard_negative_mask(conf_loss, labels, neg_pos_ratio=3, min_negatives=2)
        for i in range(4):
            negatives = (labels[i] == 0).nonzero().squeeze(1).tolist()
            n_pos = int((labels[i] > 0).sum())
            k = min(len(negatives), max(3 * n_pos, 2))
            expected = set(sorted(negatives, key=lambda j: -conf_loss[i, j].item())[:k])
            assert set(mask[i].nonzero().squeeze(1).tolist()) == expected


def test_loss_hand_computed():
    labels = torch.tensor([[1, 0, 0, 0, 0, -1]])
    loc_pred = torch.zeros(1, 6, 4)
    conf_pred = torch.zeros(1, 6, 2)
    conf_pred[0, 1, 1] = 3.0  # the hardest negative
    conf_pred[0, 2, 1] = 2.0
    conf_pred[0, 3, 1] = 1.0
    conf_pred[0, 4, 1] = -5.0  # easy negative, not mined (3 negatives for 1 positive)
    conf_pred[0, 5, 1] = 9.0  # ignored: never mined even though its loss is highest
    targets = make_targets(labels)
    targets.offsets = torch.zeros(1, 6, 4)
    targets.offsets[0, 0] = torch.tensor([0.5, -2.0, 0.0, 1.0])
    out = MultiBoxLoss()(loc_pred, conf_pred, targets)
    loc_expected = 0.5 * 0.5**2 + (2.0 - 0.5) + 0.0 + 0.5
    ce = F.cross_entropy(conf_pred[0], torch.tensor([1, 0, 0, 0, 0, 0]), reduction="none")
    conf_expected = ce[0] + ce[1] + ce[2] + ce[3]
    torch.testing.assert_close(out.loc, torch.tensor(loc_expected))
    torch.testing.assert_close(out.conf, conf_expected)
    torch.testing.assert_close(out.total, conf_expected + loc_expected)
    assert out.num_positives.item() == 1


def test_divided_by_number_of_positives_over_batch():
    labels = torch.zeros(2, 40, dtype=torch.long)
    labels[0, :2] = 1
    labels[1, :3] = 1
    loc, conf = torch.randn(2, 40, 4), torch.randn(2, 40, 3)
    targets = make_targets(labels)
    out = MultiBoxLoss(alpha=1.0)(loc, conf, targets)
    loc_sum = F.smooth_l1_loss(loc, targets.offsets, reduction="none").sum(-1)[labels > 0].sum()
    torch.testing.assert_close(out.loc, loc_sum / 5)


def test_batch_without_positives_is_finite():
    labels = torch.zeros(3, 30, dtype=torch.long)
    loc = torch.randn(3, 30, 4, requires_grad=True)
    conf = torch.randn(3, 30, 2, requires_grad=True)
    out = MultiBoxLoss()(loc, conf, make_targets(labels))
    assert torch.isfinite(out.total) and out.total.item() == 0.0
    out.total.backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(conf.grad).all()
    # With min_negatives_per_image, empty images contribute their hardest negatives (documented option).
    conf2 = conf.detach().clone().requires_grad_(True)
    out2 = MultiBoxLoss(min_negatives_per_image=5)(loc, conf2, make_targets(labels))
    ce = F.cross_entropy(conf2.detach().flatten(0, 1), labels.flatten(), reduction="none").view(3, 30)
    torch.testing.assert_close(out2.conf, ce.topk(5, dim=1).values.sum())
    out2.total.backward()
    assert torch.isfinite(conf2.grad).all()


def test_confidence_aware_localisation_boost():
    labels = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0]])
    loc = torch.randn(1, 8, 4)
    conf = torch.zeros(1, 8, 2)
    conf[0, 0, 1] = 10.0  # confident positive: p(face) > 0.9 -> boosted
    conf[0, 1, 1] = 0.0  # unsure positive: p = 0.5 -> not boosted
    targets = make_targets(labels)
    per_prior = F.smooth_l1_loss(loc, targets.offsets, reduction="none").sum(-1)[0]
    plain = MultiBoxLoss()(loc, conf, targets)
    boosted = MultiBoxLoss(boost_threshold=0.9, alpha_extra=2.0)(loc, conf, targets)
    torch.testing.assert_close(plain.loc, (per_prior[0] + per_prior[1]) / 2)
    torch.testing.assert_close(boosted.loc, (2.0 * per_prior[0] + per_prior[1]) / 2)
    torch.testing.assert_close(boosted.conf, plain.conf)
    # No gradient flows through the gate: the boosted localisation term does not depend on the logits.
    conf_req = conf.clone().requires_grad_(True)
    MultiBoxLoss(alpha_extra=2.0)(loc.clone().requires_grad_(True), conf_req, targets).loc.backward()
    assert conf_req.grad is None or (conf_req.grad == 0).all()


def test_invalid_options_are_refused():
    with pytest.raises(ValueError):
        MultiBoxLoss(alpha_extra=0.0)
    with pytest.raises(ValueError):
        MultiBoxLoss(neg_pos_ratio=-1)


def test_distillation_loss_is_the_tempered_kl_per_positive():
    student = torch.randn(2, 5, 3, requires_grad=True)
    teacher = torch.randn(2, 5, 3)
    n = torch.tensor(4)
    assert distillation_loss(teacher.clone(), teacher, n).item() == pytest.approx(0.0, abs=1e-6)
    for t in (1.0, 2.0):
        p_t = (teacher / t).softmax(-1)
        expected = (p_t * (p_t.log() - (student / t).log_softmax(-1))).sum() * t * t / 4
        assert distillation_loss(student, teacher, n, t).item() == pytest.approx(expected.item(), rel=1e-5)
    # a step against the gradient brings the student's probabilities towards the teacher's
    loss = distillation_loss(student, teacher, n)
    loss.backward()
    moved = student.detach() - 0.5 * student.grad
    assert distillation_loss(moved, teacher, n) < loss
    with pytest.raises(ValueError, match="same priors"):
        distillation_loss(student, teacher[:, :4], n)


def test_distillation_loss_counts_only_the_masked_priors():
    student, teacher, n = torch.randn(1, 4, 2), torch.randn(1, 4, 2), torch.tensor(1)
    mask = torch.tensor([[True, False, True, False]])
    per_prior = [distillation_loss(student[:, i:i + 1], teacher[:, i:i + 1], n).item() for i in range(4)]
    assert distillation_loss(student, teacher, n, prior_mask=mask).item() == pytest.approx(per_prior[0] + per_prior[2],
                                                                                          rel=1e-5)


def test_landmark_loss_counts_only_known_points_on_positives():
    from singleshot.losses import landmark_loss

    pred = torch.zeros(1, 3, 4, requires_grad=True)
    target = torch.tensor([[[0.5, 0.5, 2.0, float("nan")],  # positive, one point known + half of another
                            [1.0, 1.0, 1.0, 1.0],            # background: ignored
                            [float("nan")] * 4]])            # positive without landmarks: ignored
    labels = torch.tensor([[1, 0, 1]])
    loss = landmark_loss(pred, target, labels)
    # smooth L1 (beta 1): 0.125 + 0.125 + 1.5 over one prior with points
    assert loss.item() == pytest.approx(1.75)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 1:].abs().sum() == 0
    none = landmark_loss(pred, torch.full((1, 3, 4), float("nan")), labels)
    assert none.item() == 0.0


def test_wing_loss_on_hand_computed_values_and_unknown_coordinates():
    import math

    from singleshot.losses import wing_loss

    pred = torch.tensor([[1.0, 4.0, 30.0, 0.0]], requires_grad=True)
    target = torch.tensor([[0.0, 0.0, 0.0, float("nan")]])
    loss = wing_loss(pred, target, width=10.0, curvature=2.0)
    c = 10 - 10 * math.log(1 + 10 / 2)
    expected = (10 * math.log(1 + 1 / 2) + 10 * math.log(1 + 4 / 2) + (30 - c)) / 3
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    loss.backward()
    assert pred.grad[0, 3] == 0 and torch.isfinite(pred.grad).all()
    # continuous at |x| = width
    at = wing_loss(torch.tensor([[10.0]]), torch.zeros(1, 1))
    near = wing_loss(torch.tensor([[10.0001]]), torch.zeros(1, 1))
    assert abs(at.item() - near.item()) < 1e-3
    assert wing_loss(torch.zeros(1, 2), torch.full((1, 2), float("nan"))).item() == 0
