"""MultiBox loss (SSD paper, section 2.2, "Training objective") with hard negative mining, and the
face-detector author's confidence-aware localisation boost.

``L = (L_conf + alpha * L_loc) / N`` where ``N`` is the number of positive priors in the batch, ``L_loc`` is the
Smooth L1 loss of the encoded offsets over positives, and ``L_conf`` is the softmax cross-entropy over positives
and the hardest negatives (at most ``neg_pos_ratio`` negatives per positive, per image; section 2.2,
"Hard negative mining").

Images without objects: they have no positives and therefore, with the paper's rule, no mined negatives either,
so they add 0 to the loss unless ``min_negatives_per_image`` > 0, in which case their hardest
``min_negatives_per_image`` negatives are added. ``N`` is clamped to at least 1, so a batch with no positive at all
gives a finite loss (0 with the paper's rule) and finite (zero) gradients, never NaN.

:func:`distillation_loss` is the optional teacher term (``train.distill_from``): the student's class scores of every
prior pulled towards a trained teacher's on the same priors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from singleshot.matching import MatchResult


@dataclass
class LossOutput:
    """Loss terms, each a scalar tensor: ``total = (conf + alpha * loc)``, both already divided by ``N``."""

    total: Tensor
    loc: Tensor
    conf: Tensor
    num_positives: Tensor


def hard_negative_mask(conf_loss: Tensor, labels: Tensor, neg_pos_ratio: float, min_negatives: int = 0) -> Tensor:
    """Select, per image, the negatives with the highest confidence loss.

    Args:
        conf_loss: ``(B, P)`` per-prior cross-entropy.
        labels: ``(B, P)`` targets: > 0 positive, 0 negative (background), < 0 ignored.
        neg_pos_ratio: negatives kept per positive (3 in SSD).
        min_negatives: negatives kept per image even with few or no positives.

    Returns:
        ``(B, P)`` bool mask of the selected negatives: exactly ``min(#negatives, max(ratio * #pos, min_negatives))``
        per image, the top-loss ones (ties broken by prior index).
    """
    negatives = labels == 0
    num_pos = (labels > 0).sum(dim=1)  # (B,)
    num_neg = torch.clamp((num_pos.float() * neg_pos_ratio).long(), min=min_negatives)  # (B,)
    # Rank negatives by loss (positives and ignored priors sort last); a stable sort keeps ties in prior order.
    ranking_loss = conf_loss.detach().masked_fill(~negatives, float("-inf"))
    order = ranking_loss.sort(dim=1, descending=True, stable=True).indices  # (B, P)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return negatives & (rank < num_neg[:, None])


class MultiBoxLoss(nn.Module):
    """SSD MultiBox loss over matched targets.

    Args:
        neg_pos_ratio: hard negatives per positive (3 in the SSD paper).
        alpha: weight of the localisation term (1 in the SSD paper).
        min_negatives_per_image: hard negatives mined even in an image with no objects (0 = the paper's rule).
        boost_threshold, alpha_extra: the confidence-aware localisation boost (off when ``alpha_extra`` is None).
            On positive priors where the predicted probability of the true class exceeds ``boost_threshold``,
            the localisation loss is multiplied by ``alpha_extra``: once the classifier is confident, what is left
            to learn is where the box is. The face-detector author found ``alpha_extra`` about 2 helped and 10 was
            unstable; the gate carries no gradient. Suggested: ``boost_threshold=0.9, alpha_extra=2.0``.
    """

    def __init__(self, neg_pos_ratio: float = 3.0, alpha: float = 1.0, min_negatives_per_image: int = 0,
                 boost_threshold: float = 0.9, alpha_extra: float | None = None) -> None:
        super().__init__()
        if neg_pos_ratio < 0 or alpha < 0 or min_negatives_per_image < 0:
            raise ValueError("neg_pos_ratio, alpha and min_negatives_per_image must be >= 0")
        if alpha_extra is not None and alpha_extra <= 0:
            raise ValueError(f"alpha_extra must be positive, got {alpha_extra}")
        self.neg_pos_ratio = neg_pos_ratio
        self.alpha = alpha
        self.min_negatives_per_image = min_negatives_per_image
        self.boost_threshold = boost_threshold
        self.alpha_extra = alpha_extra

    def forward(self, loc_pred: Tensor, conf_pred: Tensor, targets: MatchResult) -> LossOutput:
        """Compute the loss.

        Args:
            loc_pred: ``(B, P, 4)`` predicted offsets.
            conf_pred: ``(B, P, C)`` class logits (class 0 = background).
            targets: matching result with ``(B, P)`` labels and ``(B, P, 4)`` offsets.
        """
        labels = targets.labels
        positives = labels > 0  # (B, P)
        num_positives = positives.sum()
        normaliser = num_positives.clamp(min=1).to(loc_pred.dtype)

        # Localisation: Smooth L1 summed over the 4 offsets of each positive prior.
        loc_per_prior = F.smooth_l1_loss(loc_pred, targets.offsets, reduction="none").sum(dim=-1)  # (B, P)
        if self.alpha_extra is not None:
            with torch.no_grad():
                true_class = labels.clamp(min=0)[..., None]
                p_true = conf_pred.softmax(dim=-1).gather(-1, true_class).squeeze(-1)  # (B, P)
                boost = torch.where(p_true > self.boost_threshold, self.alpha_extra, 1.0)
            loc_per_prior = loc_per_prior * boost
        loc_loss = torch.where(positives, loc_per_prior, 0.0).sum() / normaliser

        # Confidence: cross-entropy on positives and mined hard negatives; ignored priors (label < 0) never count.
        conf_per_prior = F.cross_entropy(
            conf_pred.flatten(0, 1), labels.clamp(min=0).flatten(), reduction="none"
        ).view_as(labels)  # (B, P)
        hard_negatives = hard_negative_mask(
            conf_per_prior, labels, self.neg_pos_ratio, self.min_negatives_per_image
        )
        conf_loss = torch.where(positives | hard_negatives, conf_per_prior, 0.0).sum() / normaliser

        total = conf_loss + self.alpha * loc_loss
        return LossOutput(total=total, loc=loc_loss, conf=conf_loss, num_positives=num_positives)


def distillation_loss(
    student_conf: Tensor,
    teacher_conf: Tensor,
    normaliser: Tensor,
    temperature: float = 1.0,
    prior_mask: Tensor | None = None,
) -> Tensor:
    """Dense class distillation: ``T^2 * sum over priors of KL(teacher || student) / N``.

    Knowledge distillation (Hinton et al. 2015, soft targets at temperature ``T``, gradients kept at the same scale
    by ``T^2``) applied to every prior of a single-shot detector, as the classification term of Chen et al. 2017
    ("Learning efficient object detection models with knowledge distillation"). Unlike the hard labels, which
    score only the positives and the mined negatives, it reaches every background prior the teacher ranks low and
    the student high (the hands and ears a small student boxes), with the teacher's confidence as the target.

    Args:
        student_conf: ``(B, P, C)`` student logits (class 0 = background).
        teacher_conf: ``(B, P, C)`` teacher logits on the same priors (no gradient needed).
        normaliser: scalar ``N``, the positives of the batch as in :class:`MultiBoxLoss` (clamped to at least 1).
        temperature: ``T`` (1: the teacher's own probabilities).
        prior_mask: optional ``(B, P)`` bool, the priors that count (e.g. only those matched to background, so
            the labelled faces keep their hard targets where the teacher is weaker than the labels).
    """
    if student_conf.shape != teacher_conf.shape:
        raise ValueError(f"student scores {tuple(student_conf.shape)} and teacher scores "
                         f"{tuple(teacher_conf.shape)} differ: the teacher needs the same priors and classes")
    log_student = F.log_softmax(student_conf / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_conf.detach() / temperature, dim=-1)
    kl = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=-1)  # (B, P)
    kl = (kl if prior_mask is None else torch.where(prior_mask, kl, 0.0)).sum()
    return kl * temperature**2 / normaliser.clamp(min=1).to(kl.dtype)


def landmark_loss(landm_pred: Tensor, landm_target: Tensor, labels: Tensor) -> Tensor:
    """Smooth L1 on the landmark offsets of positive priors whose object has known landmarks (RetinaFace's
    ``loss_landm``), divided by the number of such priors (at least 1).

    Args:
        landm_pred: ``(B, P, 2L)`` predicted offsets.
        landm_target: ``(B, P, 2L)`` encoded targets (:func:`singleshot.boxes.encode_landmarks`); NaN where a
            point is unknown (a face labelled by a box only, or by some points only).
        labels: ``(B, P)`` matched labels (> 0 positive).

    Returns:
        A scalar. Unknown points and non-positive priors contribute nothing, and a batch with no known landmark
        gives 0 with a zero gradient, never NaN.
    """
    known = ~torch.isnan(landm_target) & (labels > 0)[..., None]  # (B, P, 2L)
    target = torch.where(known, landm_target, torch.zeros((), dtype=landm_target.dtype, device=landm_target.device))
    loss = F.smooth_l1_loss(landm_pred, target, reduction="none") * known
    priors_with_points = known.any(dim=-1).sum().clamp(min=1)
    return loss.sum() / priors_with_points


def wing_loss(pred: Tensor, target: Tensor, width: float = 10.0, curvature: float = 2.0) -> Tensor:
    """Wing loss (Feng et al. 2018, "Wing Loss for Robust Facial Landmark Localisation", eq. 5) over the known
    coordinates, averaged.

    Logarithmic for errors under ``width`` (so small and medium errors keep pulling, where L2 and Smooth L1 fade),
    L1 beyond; ``curvature`` is the paper's epsilon. Both in the units of ``pred`` (the paper's 10 and 2 are pixels of a
    64 px input; section 4.2).

    Args:
        pred: ``(N, D)`` predicted coordinates.
        target: ``(N, D)`` true coordinates; NaN where unknown (no loss, no gradient).

    Returns:
        A scalar; 0 when nothing is known.
    """
    known = ~torch.isnan(target)
    diff = (pred - torch.where(known, target, pred.detach())).abs()
    offset = width - width * math.log1p(width / curvature)
    loss = torch.where(diff < width, width * torch.log1p(diff / curvature), diff - offset)
    return (loss * known).sum() / known.sum().clamp(min=1)
