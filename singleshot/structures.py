"""Small data structures shared across the package."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


@dataclass
class Detections:
    """Detections of one image.

    Attributes:
        boxes_xyxy: ``(K, 4)`` float boxes in input-image pixels.
        scores: ``(K,)`` float confidence of each box, decreasing.
        labels: ``(K,)`` long class index of each box (>= 1; 0 is background and never reported).
        attributes: attribute name -> ``(K,)`` float probability per box (e.g. ``smile``), when asked for.
        landmarks: ``(K, L, 2)`` float points in the boxes' pixels (faces: L = 5, left eye, right eye, nose, left and
            right mouth corner), or None for a model without a landmark head.
    """

    boxes_xyxy: Tensor
    scores: Tensor
    labels: Tensor
    attributes: dict[str, Tensor] = field(default_factory=dict)
    landmarks: Tensor | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def to_rows(self) -> np.ndarray:
        """``(K, 6)`` float64 ``[x1, y1, x2, y2, score, label]``: the rows of the predictions JSON; ``(K, 6 + 2L)``
        with ``lx1, ly1, ..., lxL, lyL`` after them when the detections have landmarks."""
        columns = [self.boxes_xyxy, self.scores[:, None], self.labels[:, None].to(self.scores.dtype)]
        if self.landmarks is not None:
            columns.append(self.landmarks.reshape(len(self.scores), 2 * self.landmarks.shape[1]).to(self.scores.dtype))
        return torch.cat(columns, 1).to(torch.float64).numpy()

    @classmethod
    def empty(cls, device: torch.device | str = "cpu") -> Detections:
        """No detections."""
        return cls(
            boxes_xyxy=torch.zeros(0, 4, device=device),
            scores=torch.zeros(0, device=device),
            labels=torch.zeros(0, dtype=torch.long, device=device),
        )


@dataclass
class Sample:
    """One annotated image, as every dataset format yields it.

    Attributes:
        image_path: path of the image file (it may not exist when only annotations are at hand).
        key: the image's path relative to the dataset root, ``/``-separated; the key of the predictions JSON.
        boxes_xyxy: ``(K, 4)`` float32 boxes in absolute pixels, ``x2 > x1`` and ``y2 > y1``.
        labels: ``(K,)`` int64 class indices, >= 1 (index into the set's ``class_names``; 0 is background).
        ignore: ``(K,)`` bool; ignored objects are neither positives nor negatives in training and are not
            counted as misses in evaluation (WIDER ``invalid``, VOC ``difficult``, COCO ``iscrowd``...).
        width, height: image size in pixels when the annotation gives it (or it was read from the file).
        extra: per-box columns the format carries beyond these (e.g. WIDER's ``blur``, ``occlusion``; FDDB's
            ellipse parameters), each an array of length K.
    """

    image_path: Path
    key: str
    boxes_xyxy: np.ndarray
    labels: np.ndarray
    ignore: np.ndarray
    width: int | None = None
    height: int | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.boxes_xyxy.shape[0])


@dataclass
class AnnotationReport:
    """What went wrong while reading annotations, counted, with one line per problem kept for the user.

    Problems that do not stop reading (a box clipped to the image, a degenerate box dropped, an image skipped)
    are counted here; the reader goes on. Lines read ``file:line: problem``.
    """

    clipped_boxes: int = 0
    dropped_boxes: int = 0
    skipped_images: int = 0
    messages: list[str] = field(default_factory=list)

    def note(self, where: str, problem: str) -> None:
        """Record one problem at ``where`` (``file`` or ``file:line``)."""
        self.messages.append(f"{where}: {problem}")

    def summary(self) -> str:
        """One line: the counts, or an empty string when nothing went wrong."""
        parts = []
        if self.clipped_boxes:
            parts.append(f"{self.clipped_boxes} box(es) clipped to the image")
        if self.dropped_boxes:
            parts.append(f"{self.dropped_boxes} empty box(es) dropped")
        if self.skipped_images:
            parts.append(f"{self.skipped_images} image(s) skipped")
        return "; ".join(parts)


@dataclass
class AnnotationSet:
    """A dataset's annotations: its samples and class names.

    Attributes:
        root: the folder the sample keys are relative to.
        samples: one :class:`Sample` per image, in file order.
        class_names: ``class_names[i]`` names label ``i``; ``class_names[0]`` is ``"background"``.
        format: the registered format name it was read with.
        report: problems met while reading.
    """

    root: Path
    samples: list[Sample]
    class_names: list[str]
    format: str
    report: AnnotationReport = field(default_factory=AnnotationReport)

    def __len__(self) -> int:
        return len(self.samples)
