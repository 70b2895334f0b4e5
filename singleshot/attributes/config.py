"""What an attribute run is told: :class:`AttributeConfig` (YAML ``configs/attributes/*.yaml``, validated when
built, e.g. by :func:`singleshot.config.load_dataclass`) and :class:`AttributeError_`, the attributes' error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from singleshot.errors import SingleshotError


class AttributeError_(SingleshotError):
    """An attribute that cannot be trained or loaded; the message says why."""


@dataclass
class AttributeConfig:
    """How to train one binary face attribute (YAML: ``configs/attributes/*.yaml``).

    Attributes:
        name: the attribute's name (``smile``); ``labels``: names of outcome 0 and 1.
        train, test: folders with one subfolder per outcome, ``0/`` and ``1/``, of face crops.
        exclude: a text file listing crops to leave out (first column: path relative to the crops' parent,
            e.g. GENKI-4K's ``suspect_duplicates.txt``), or None.
        detector_weights: the face detector whose backbone is transferred (None: the bundled face model).
        backbone_init: ``detector`` (transfer), ``random`` (the no-transfer baseline: same network, untrained), or
            ``imagenet``: the backbone of the registered model ``backbone_model`` with its packaged ImageNet weights
            (docs/pretrained.md; no detector checkpoint: for a larger teacher, e.g. ``face_mobilenet_v2``).
        backbone_model: with ``backbone_init: imagenet``, the model whose backbone is used.
        freeze_backbone: train the head only; otherwise the backbone is fine-tuned at ``backbone_lr_factor`` x lr.
        input_size: side of the square crops fed to the network.
        levels: which backbone maps (indices, shallow to deep; negative from the deepest) are pooled for the head.
        crop_scale: side of the crop cut around a detected box, in box sides (1.0: the box's long side).
        flip_tta: at test and inference time, average the probabilities of each crop and its mirror image.
        teacher: an attribute checkpoint, or a list of them (their probabilities averaged), to distil from
            (knowledge distillation, Hinton et al. 2015): the teacher scores the student's crops (resized to its
            input, with its mirror average if it has one) and the student also learns these soft probabilities
            (see ``distill_online``). None: labels only. A list may also name a registered network trained on
            other data (``fer-happy``, an expression network's P(happy): :mod:`singleshot.attributes.teachers`).
        distill_weight: weight of the teacher's soft targets in the loss; the labels get ``1 - distill_weight``.
        distill_online: the teacher scores every augmented batch, the very crops the student sees ("function
            matching", Beyer et al. 2022; needed with mixup); off: it scores each crop once before training and
            the student learns these fixed targets under its augmentation, at no cost per step (the augmentation
            is mild).
        mixup: Beta(mixup, mixup) mixing of crop pairs (Zhang et al. 2018) with the targets mixed alike; with a
            teacher this gives it in-between images to explain (0: off).
        unlabeled: folders of face crops without labels (searched recursively, e.g. cut from detection datasets by
            ``singleshot attribute crops``), trained on the teacher's soft targets only; needs a teacher.
        val_fraction: a part of the training crops (stratified, seeded) held out and scored every
            ``val_every`` epochs, so that settings can be chosen without the test split (0: none).
        augment_grayscale, augment_low_resolution, augment_blur, augment_jpeg: per-crop probabilities of the
            degradations of :class:`singleshot.attributes.data.Degradations` (photos unlike the training crops:
            grayscale, small faces enlarged, blur, JPEG artefacts; 0: off). augment_paste: the probability of flat
            bands of up to a fifth of the side at the crop's edges (a closely cropped face put in a photo).
            augment_rotate_deg: head roll, +- this many degrees, beside the flip / shift / scale / brightness
            augmentation.
        align: the crops (``train``, ``test``) are aligned by five face points (``singleshot attribute align``,
            which records its ``scale`` beside them; it becomes ``crop_scale``, in template crops); at inference a
            detection's five points align its crop the same way (a detector without a landmark head: square
            crops).
        teacher_square: for an aligned student (``align``) taught by a head trained on square crops: the square
            crops of the same faces under the same file names (``singleshot attribute crops`` without ``--align``),
            the training folder first, then one folder for each ``unlabeled`` folder, in order. Teacher members
            trained on square crops score these, aligned members the student's own crops (offline distillation).
        train_views: folders of other views of the training crops, under the same names below the folder
            (``0/``, ``1/``): the same faces as another dataset and the inference pipeline show them, e.g.
            ``singleshot attribute align --zoom 0.9:1.4 --grayscale`` (cut closer, grey, aligned by the points
            found on such a face). Each view of a training face trains with that face's label and teacher target
            (the teachers score the face's own crop); views of held-out faces are scored apart (``val_views_*``
            in the history and metrics: a held-out measure on faces unlike the training crops).
        unlabeled_views: views of the ``unlabeled`` faces made the same way: one folder per ``unlabeled`` folder,
            in order (an empty string for none), the same names inside it. Each trains on its face's teacher
            target, so the student learns to give on a face as a photo shows it what the teachers say of its
            clean crop. Views with a teacher need ``distill_online: false`` (the targets are the faces' own).
        extra_train: more labelled folders (``0/``, ``1/``) from other datasets, e.g. MTFL's smile labels cut by
            ``singleshot attribute crops --label smile``. Their crops learn their own labels (by default with no
            teacher target, as the teachers learnt the ``train`` set's idea of the attribute: see
            ``extra_distill_weight``); with ``val_fraction`` the same share of them is held out and scored apart
            (``val_extra_*``: held out, from another dataset).
            ``train_views`` folders may hold views of their training faces too (under the same names).
        extra_distill_weight: the teachers' share of the target of the ``extra_train`` crops and their views, as
            ``distill_weight`` is for the ``train`` crops; 0 (the default): their labels alone. Another dataset's
            labels may be noisier than the training set's (MTFL's are), and the teachers' share softens them.
            Needs a teacher, offline (``distill_online: false``).
        extra_square: with ``teacher_square`` and ``extra_distill_weight``: the square crops of the ``extra_train``
            faces under the same names, one folder per ``extra_train`` folder, in order (what the teachers trained
            on square crops score).
        calibrate: with a held-out part (``val_fraction``), choose the decision threshold there (the one of best
            accuracy, on the held-out crops, their degraded copies and their ``train_views`` together) and fold
            it into the last bias (the held-out ``extra_train`` crops join that choice),
            so that 0.5 on the saved network's probability is that threshold (users and tools read 0.5).
    """

    name: str = "smile"
    labels: tuple[str, str] = ("not smiling", "smiling")
    train: str = "../shared/data/smile/genki4k_faces64/train"
    test: str = "../shared/data/smile/genki4k_faces64/test"
    exclude: str | None = "../shared/data/smile/genki4k_faces64/suspect_duplicates.txt"
    detector_weights: str | None = None
    backbone_init: Literal["detector", "random", "imagenet"] = "detector"
    backbone_model: str | None = None
    freeze_backbone: bool = False
    backbone_lr_factor: float = 0.1
    input_size: int = 64
    levels: list[int] = field(default_factory=lambda: [-2, -1])
    crop_scale: float = 1.0
    flip_tta: bool = False
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.002
    weight_decay: float = 0.01
    seed: int = 0
    threads: int | None = None
    teacher: str | list[str] | None = None
    distill_weight: float = 0.0
    distill_online: bool = True
    mixup: float = 0.0
    unlabeled: list[str] = field(default_factory=list)
    val_fraction: float = 0.0
    val_every: int = 10
    augment_grayscale: float = 0.0
    augment_low_resolution: float = 0.0
    augment_blur: float = 0.0
    augment_jpeg: float = 0.0
    augment_paste: float = 0.0
    augment_rotate_deg: float = 0.0
    calibrate: bool = False
    align: bool = False
    teacher_square: list[str] = field(default_factory=list)
    train_views: list[str] = field(default_factory=list)
    unlabeled_views: list[str] = field(default_factory=list)
    extra_train: list[str] = field(default_factory=list)
    extra_distill_weight: float = 0.0
    extra_square: list[str] = field(default_factory=list)
    out: str = "runs/attributes/smile.pt"

    def __post_init__(self) -> None:
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        if self.distill_weight > 0 and not self.teacher:
            raise ValueError("distill_weight > 0 needs a teacher (an attribute checkpoint)")
        if self.unlabeled and not self.teacher:
            raise ValueError("unlabeled crops need a teacher (an attribute checkpoint) to label them")
        if self.mixup > 0 and self.teacher and not self.distill_online:
            raise ValueError("mixup with a teacher needs distill_online (the mixed crops are scored as they come)")
        if self.mixup < 0:
            raise ValueError(f"mixup must be >= 0, got {self.mixup}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for key in ("augment_grayscale", "augment_low_resolution", "augment_blur", "augment_jpeg",
                    "augment_paste"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key} is a probability in [0, 1], got {getattr(self, key)}")
        if self.teacher_square:
            if not (self.align and self.teacher) or self.distill_online:
                raise ValueError("teacher_square is for an aligned student (align: true) with a teacher, offline "
                                 "(distill_online: false)")
            if len(self.teacher_square) != 1 + len(self.unlabeled):
                raise ValueError(f"teacher_square needs {1 + len(self.unlabeled)} folders (the training crops', "
                                 f"then one per unlabeled folder), got {len(self.teacher_square)}")
        if self.unlabeled_views and len(self.unlabeled_views) != len(self.unlabeled):
            raise ValueError(f"unlabeled_views needs {len(self.unlabeled)} folders (one per unlabeled folder, '' for "
                             f"none), got {len(self.unlabeled_views)}")
        if not 0.0 <= self.extra_distill_weight <= 1.0:
            raise ValueError(f"extra_distill_weight must be in [0, 1], got {self.extra_distill_weight}")
        if self.extra_distill_weight > 0 and (not self.extra_train or not self.teacher or self.distill_online):
            raise ValueError("extra_distill_weight > 0 needs extra_train and a teacher, offline "
                             "(distill_online: false)")
        if self.extra_square and (self.extra_distill_weight == 0 or not self.teacher_square):
            raise ValueError("extra_square is read only with teacher_square and extra_distill_weight > 0")
        if self.teacher_square and self.extra_distill_weight > 0 and len(self.extra_square) != len(self.extra_train):
            raise ValueError(f"extra_square needs {len(self.extra_train)} folders (the square crops of each "
                             f"extra_train folder's faces, for the teachers trained on square crops), "
                             f"got {len(self.extra_square)}")
        if (self.train_views or self.unlabeled_views) and self.teacher and self.distill_online:
            raise ValueError("views learn the teacher's targets on their faces' own crops: set distill_online: false")
        if (self.backbone_init == "imagenet") != (self.backbone_model is not None):
            raise ValueError("backbone_model names the model whose ImageNet backbone is used: give it with "
                             "backbone_init: imagenet, and only then")
        if self.calibrate and self.val_fraction <= 0:
            raise ValueError("calibrate chooses the threshold on held-out crops: set val_fraction > 0")
