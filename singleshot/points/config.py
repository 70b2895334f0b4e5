"""What a point-network run is told: :class:`PointConfig` (YAML ``configs/points/*.yaml``, validated when built,
e.g. by :func:`singleshot.config.load_dataclass`) and :class:`PointError`, the point networks' error."""

from __future__ import annotations

from dataclasses import dataclass, field

from singleshot.config import DatasetConfig
from singleshot.errors import SingleshotError


class PointError(SingleshotError):
    """A point network that cannot be trained or loaded; the message says why."""


@dataclass
class PointConfig:
    """How to train a face point network (:class:`singleshot.models.points.FacePointNet`).

    Attributes:
        train: detection datasets whose faces carry five points (``Sample.extra["landmarks"]``: human points,
            or a teacher's from ``singleshot kindle``); every face with ``min_points`` known points and a box of at
            least ``min_face`` px is used. A set's ``weight`` scales how often each of its faces is drawn (all
            equal: every face once an epoch).
        cache: where the faces are kept once cut out (an ``.npz`` of ``cache_size`` px context crops, a square of
            ``cache_context`` box sides around each box): made on the first run, reused while ``train`` is
            unchanged.
        val_fraction: a share of the photos (by name hash) held out and scored after every epoch (NME:
            mean point error over inter-ocular distance).
        input_size, crop_scale: the network's crop: a square of ``crop_scale`` times the box's long side, at
            ``input_size`` px; ``width``: the network's channel multiplier.
        jitter_shift, jitter_scale: box noise during training (normal, in box sides, and in log scale), so the
            network works from any detector's box, not only the boxes it was trained with.
        rotate_deg, rotate_p: in-plane rotation of up to this many degrees, on this share of the crops.
        grayscale_p, flip: grey crops; mirrored crops (points swapped left for right).
        cut_p: share of crops whose face is cut flat at the edges, as a closely cropped face put in a photo
            (:func:`singleshot.points.data.augment_face`).
        wing_width, wing_curvature: the wing loss's w and epsilon in crop pixels (Feng et al. 2018: 10 and 2 at 64 px).
    """

    train: list[DatasetConfig] = field(default_factory=list)
    cache: str = "runs/face_points/faces.npz"
    cache_size: int = 96
    cache_context: float = 2.0
    min_points: int = 3
    min_face: float = 12.0
    val_fraction: float = 0.05
    input_size: int = 64
    crop_scale: float = 1.3
    width: float = 1.0
    epochs: int = 24
    batch_size: int = 128
    lr: float = 0.002
    weight_decay: float = 0.0001
    jitter_shift: float = 0.06
    jitter_scale: float = 0.08
    rotate_deg: float = 30.0
    rotate_p: float = 0.7
    grayscale_p: float = 0.2
    cut_p: float = 0.0
    flip: bool = True
    wing_width: float = 10.0
    wing_curvature: float = 2.0
    seed: int = 0
    threads: int | None = None
    out: str = "runs/face_points"

    def __post_init__(self) -> None:
        if self.input_size <= 0 or self.input_size % 16:
            raise ValueError(f"input_size must be a positive multiple of 16, got {self.input_size}")
        if self.crop_scale <= 0 or self.cache_context < self.crop_scale:
            raise ValueError(f"need 0 < crop_scale <= cache_context, got {self.crop_scale} and {self.cache_context}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for key in ("rotate_p", "grayscale_p", "cut_p"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key} is a probability in [0, 1], got {getattr(self, key)}")
        if not 2 <= self.min_points <= 5:
            raise ValueError(f"min_points must be 2 to 5, got {self.min_points}")
        for spec in self.train:
            if not spec.weight > 0:
                raise ValueError(f"train set {spec.spec}: weight must be > 0, got {spec.weight}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
