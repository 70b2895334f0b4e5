"""The one inference path: resize -> pad -> network -> post-process -> original pixels, and a dataset runner.

Everything that runs a detector over images goes through here: :class:`singleshot.predictor.Detector` (on every
runtime), the trainer's validation, ``singleshot eval --weights``, ``singleshot bench`` and the benchmarks.

- :func:`resize_keep_aspect` / :func:`padded_size`: each image is resized so its long side is ``long_side`` (or to
  fit a fixed ``(H, W)``), aspect ratio kept, and a batch is padded on the right and bottom to a multiple of
  :data:`PAD_MULTIPLE` (priors are computed for that exact size, on each level's stride grid, so nothing is
  stretched and the padding does not move the detections: docs/engine.md).
- :class:`ModelPredictor`: the PyTorch runtime in three timed stages (``preprocess``, ``forward``,
  ``postprocess``).
- :func:`predict_dataset`: any ``detect(list of RGB arrays) -> list of Detections`` over an annotation set, from
  its files or from a training image cache; predictions in original-image pixels, as ``(K, 6)`` rows.

Torch-only: ONNX runtimes live in :mod:`singleshot.deploy` and are composed by the ``Detector``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from singleshot.data.transforms import normalize_image
from singleshot.models import SingleShotDetector
from singleshot.postprocess import postprocess
from singleshot.structures import Detections

#: Inputs are padded to a multiple of this many pixels (the face models' deepest stride is 64: the stride-grid
#: priors make any multiple work; 32 keeps the padding small).
PAD_MULTIPLE = 32


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is ``>= value``."""
    return value + (-value % multiple)


def resize_keep_aspect(
    image: np.ndarray, long_side: int | None = None, fit: tuple[int, int] | None = None
) -> tuple[np.ndarray, float]:
    """``(H, W, 3)`` image resized so its long side is ``long_side`` (or to fit inside ``fit`` = ``(H, W)``), aspect
    kept; returns the image and its scale. Area interpolation when shrinking, bilinear when enlarging."""
    h, w = image.shape[:2]
    scale = min(fit[0] / h, fit[1] / w) if fit is not None else float(long_side) / max(h, w)
    if scale == 1:
        return image, scale
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation), scale


def padded_size(images: Sequence[np.ndarray], multiple: int = PAD_MULTIPLE) -> tuple[int, int]:
    """``(H, W)`` of a batch holding ``images`` top-left, each side rounded up to ``multiple``."""
    return (round_up(max(i.shape[0] for i in images), multiple), round_up(max(i.shape[1] for i in images), multiple))


def to_original_pixels(detections: Sequence[Detections], scales: Sequence[float],
                       images: Sequence[np.ndarray]) -> None:
    """Divide each detection's boxes by its image's resize scale and clip them to the original image (in place)."""
    for det, scale, image in zip(detections, scales, images):
        h, w = image.shape[:2]
        det.boxes_xyxy = (det.boxes_xyxy / scale).clamp_(min=0)
        det.boxes_xyxy[:, 0::2].clamp_(max=w)
        det.boxes_xyxy[:, 1::2].clamp_(max=h)
        if det.landmarks is not None:
            det.landmarks = det.landmarks / scale


class ModelPredictor:
    """A :class:`SingleShotDetector` in memory, run on RGB uint8 images (the PyTorch runtime).

    Args:
        model: the detector (put in eval mode here).
        mean_rgb, std_rgb: the normalisation it was trained with.
        long_side: default inference long side.
        vote_iou: box voting IoU (None: plain NMS).
    """

    def __init__(
        self,
        model: SingleShotDetector,
        mean_rgb: Sequence[float],
        std_rgb: Sequence[float],
        long_side: int = 640,
        vote_iou: float | None = None,
    ) -> None:
        self.model = model.eval()
        self.mean_rgb = tuple(float(v) for v in mean_rgb)
        self.std_rgb = tuple(float(v) for v in std_rgb)
        self.long_side = int(long_side)
        self.vote_iou = vote_iou
        # every batch padded to a square for relative priors (PriorSpec.square_input), so a photo's priors do not
        # depend on its shape or on the photos batched with it
        self.square = model.prior_spec.square_input

    def preprocess(self, images: Sequence[np.ndarray], long_side: int | None = None) -> tuple[torch.Tensor, list[float]]:
        """RGB uint8 images -> ``(B, 3, H, W)`` normalised batch, right/bottom padded with zeros (the mean colour),
        and each image's scale."""
        pairs = [resize_keep_aspect(image, long_side or self.long_side) for image in images]
        resized = [p[0] for p in pairs]
        height, width = padded_size(resized)
        if self.square:
            height = width = max(height, width)
        batch = torch.zeros(len(resized), 3, height, width)
        for i, r in enumerate(resized):
            batch[i, :, : r.shape[0], : r.shape[1]] = normalize_image(r, self.mean_rgb, self.std_rgb)
        return batch, [p[1] for p in pairs]

    @torch.no_grad()
    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(B, 3, H, W)`` -> raw ``loc (B, P, 4)``, ``conf (B, P, C)`` (and ``landm (B, P, 2L)`` from a model with
        a landmark head)."""
        return self.model(batch.contiguous(memory_format=torch.channels_last))

    def postprocess(
        self, loc: torch.Tensor, conf: torch.Tensor, size: tuple[int, int], min_score: float, max_overlap: float,
        top_k: int, landm: torch.Tensor | None = None,
    ) -> list[Detections]:
        """Decode, filter and NMS at the padded input ``size`` ``(H, W)``: boxes (and landmarks) in input pixels."""
        return postprocess(loc, conf, self.model.priors(size), size, min_score=min_score, max_overlap=max_overlap,
                           top_k=top_k, vote_iou=self.vote_iou, landm=landm)

    def detect(
        self, images: Sequence[np.ndarray], min_score: float = 0.5, max_overlap: float = 0.45, top_k: int = 200,
        long_side: int | None = None,
    ) -> list[Detections]:
        """Detections for each image, boxes in its original pixels."""
        batch, scales = self.preprocess(images, long_side)
        outputs = self.forward(batch)
        results = self.postprocess(*outputs[:2], tuple(batch.shape[-2:]), min_score, max_overlap, top_k,
                                   landm=outputs[2] if len(outputs) > 2 else None)
        to_original_pixels(results, scales, images)
        return results


DetectFn = Callable[[list[np.ndarray]], list[Detections]]


def predict_dataset(
    detect: DetectFn,
    data: Any,
    *,
    cache: Any = None,
    batch_size: int = 8,
    progress: bool = True,
    desc: str = "detecting",
) -> tuple[dict[str, np.ndarray], int]:
    """Run ``detect`` over every image of ``data`` (an :class:`~singleshot.data.formats.AnnotationSet`).

    Args:
        detect: a list of RGB uint8 images -> their :class:`Detections` in the pixels of the images given.
        cache: a training :class:`~singleshot.data.cache.ImageCache` of ``data``'s images (possibly downscaled):
            read from it, and the boxes are scaled back to the original images; None: decode the files.
        batch_size: images per ``detect`` call.

    Returns:
        ``({sample key: (K, 6) rows [x1, y1, x2, y2, score, label]} in original pixels, images missing or unreadable)``;
        a missing image has no entry (scored as without detections).
    """
    from singleshot.images import decode_image

    predictions: dict[str, np.ndarray] = {}
    missing = 0
    samples = list(data.samples)
    if cache is not None:
        indices = [i for i, e in enumerate(cache.entries) if e is not None]
        missing = len(samples) - len(indices)
    else:
        indices = list(range(len(samples)))
    bar = tqdm(total=len(indices), desc=desc, unit="img", disable=not progress, leave=cache is None)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        images, keys, factors = [], [], []
        for i in chunk:
            if cache is not None:
                entry = cache.entries[i]
                images.append(cache.image(i))
                factors.append((entry.original_width / entry.width, entry.original_height / entry.height))
            else:
                path = samples[i].image_path
                decoded = decode_image(path, on_reduce=lambda message, p=path: tqdm.write(f"{p}: {message}", file=sys.stderr))
                if decoded is None:
                    missing += 1
                    continue
                image, (height, width) = decoded
                images.append(image)
                factors.append((width / image.shape[1], height / image.shape[0]))  # 1 unless decoded reduced
            keys.append(samples[i].key)
        for key, det, (fx, fy) in zip(keys, detect(images) if images else [], factors):
            rows = det.to_rows()
            if (fx, fy) != (1.0, 1.0):
                rows[:, :4] *= [fx, fy, fx, fy]
                rows[:, 6:] *= [fx, fy] * ((rows.shape[1] - 6) // 2)  # landmarks, when the model has them
            predictions[key] = rows
        bar.update(len(chunk))
    bar.close()
    return predictions, missing
