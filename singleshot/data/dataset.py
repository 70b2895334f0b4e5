"""Detection dataset, collate function and loader: variable numbers of boxes per image.

A :class:`DetectionDataset` reads images from an :class:`~singleshot.data.cache.ImageCache` (decoded once) or
from disk, scales the sample's boxes to the decoded image, applies a transform (for example
:class:`singleshot.data.transforms.SSDAugmentation`) and returns tensors. Randomness comes from a generator
seeded by ``(seed, epoch, index)``, so an epoch's augmentation is the same whatever the number of workers and
after a resume.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from singleshot.data.cache import ImageCache
from singleshot.images import decode_image
from singleshot.structures import AnnotationReport, AnnotationSet, Sample

#: transform(image (H, W, 3) uint8 RGB, boxes_xyxy (K, 4) float32 px, labels (K,), ignore (K,), rng) -> result
#: with tensor attributes ``image (3, h, w)``, ``boxes_xyxy (K', 4)`` normalised to [0, 1], ``labels``, ``ignore``.
Transform = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.random.Generator], Any]


@dataclass
class Batch:
    """A collated batch.

    Attributes:
        images: ``(B, 3, H, W)`` float32 normalised images.
        boxes_xyxy: ``B`` tensors ``(K_i, 4)``, normalised to [0, 1] of the network input.
        labels: ``B`` long tensors ``(K_i,)``.
        ignore: ``B`` bool tensors ``(K_i,)``.
        keys: ``B`` sample keys; ``indices``: ``(B,)`` dataset indices.
        original_sizes: ``B`` ``(height, width)`` of the images as stored on disk.
        geometries: per image, the ``geometry`` attribute of the transform's result when it has one (a custom
            transform's record of where the decoded image lies in the network input), else None (always None
            with :class:`~singleshot.data.transforms.SSDAugmentation`).
        decoded_sizes: ``B`` ``(height, width)`` of the images the transform received.
        landmarks: ``B`` tensors ``(K_i, L, 2)`` of points normalised like the boxes (NaN where unknown), when the
            dataset was asked for landmarks; else None.
    """

    images: Tensor
    boxes_xyxy: list[Tensor]
    labels: list[Tensor]
    ignore: list[Tensor]
    keys: list[str]
    indices: Tensor
    original_sizes: list[tuple[int, int]]
    geometries: list[Any]
    decoded_sizes: list[tuple[int, int]]
    landmarks: list[Tensor] | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


class DetectionDataset(Dataset):
    """Samples of one or more annotation sets as training or evaluation examples.

    Args:
        samples: the samples (or an :class:`AnnotationSet`).
        transform: see :data:`Transform`.
        cache: decoded images for exactly these samples (see :meth:`with_cache`); without one, images are decoded
            from disk at every access.
        seed: base seed of the per-sample random generators.
        report: where problems are counted (a missing or corrupt image is reported and skipped).
        landmarks: points per box to carry (5 for faces; 0: none): each sample's ``extra["landmarks"]``
            ``(K, L, 2)`` (NaN for a set without them) goes through the transform with its boxes and comes out as
            the item's ``landmarks``.

    Items are dicts: ``image``, ``boxes_xyxy``, ``labels``, ``ignore`` (from the transform), ``key``, ``index``,
    ``original_size``, ``decoded_size`` and ``geometry`` (the transform's, when it records one).
    """

    def __init__(
        self,
        samples: Sequence[Sample] | AnnotationSet,
        transform: Transform,
        cache: ImageCache | None = None,
        seed: int = 0,
        report: AnnotationReport | None = None,
        landmarks: int = 0,
    ) -> None:
        self.samples = list(samples.samples if isinstance(samples, AnnotationSet) else samples)
        self.landmarks = int(landmarks)
        self.transform = transform
        self.cache = cache
        self.seed = seed
        self.epoch = 0
        self.report = report if report is not None else AnnotationReport()
        if cache is not None:
            if len(cache.entries) != len(self.samples):
                raise ValueError("the image cache was built for a different list of samples")
            self.valid = [i for i, e in enumerate(cache.entries) if e is not None]
        else:
            self.valid = []
            for i, s in enumerate(self.samples):
                if Path(s.image_path).is_file():
                    self.valid.append(i)
                else:
                    self.report.skipped_images += 1
                    self.report.note(str(s.image_path), "image not found; skipped")

    @classmethod
    def with_cache(
        cls,
        samples: Sequence[Sample] | AnnotationSet,
        transform: Transform,
        cache_dir: Path,
        max_side: int,
        seed: int = 0,
        progress: bool = True,
        landmarks: int = 0,
    ) -> DetectionDataset:
        """A dataset over an image cache built (or reused) in ``cache_dir`` at long side ``max_side``."""
        sample_list = list(samples.samples if isinstance(samples, AnnotationSet) else samples)
        report = AnnotationReport()
        cache = ImageCache.build(sample_list, cache_dir, max_side, report=report, progress=progress)
        return cls(sample_list, transform, cache=cache, seed=seed, report=report, landmarks=landmarks)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws :meth:`__getitem__` reproduces."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.valid)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]] | None:
        """``(image RGB uint8, boxes scaled to it (K, 4), original (h, w))`` of dataset item ``index``, or None
        (``(K, 4 + 2L)`` with the landmarks after the boxes when the dataset carries them)."""
        i = self.valid[index]
        sample = self.samples[i]
        if self.cache is not None:
            image = self.cache.image(i)
            entry = self.cache.entries[i]
            original = (entry.original_height, entry.original_width)
        else:
            # a JPEG over the pixel limit is decoded reduced (the boxes are scaled to it below), and noted
            decoded = decode_image(sample.image_path,
                                   on_reduce=lambda message: self.report.note(str(sample.image_path), message))
            if decoded is None:
                return None
            image, original = decoded
        scale = np.array([image.shape[1] / original[1], image.shape[0] / original[0]] * 2, dtype=np.float32)
        boxes = sample.boxes_xyxy * scale
        # Formats without image sizes (WIDER, FDDB) could not be clipped when read: clip to the decoded image.
        np.clip(boxes[:, 0::2], 0, image.shape[1], out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, image.shape[0], out=boxes[:, 1::2])
        if self.landmarks:  # the points ride along as extra columns (singleshot.data.transforms' convention)
            points = sample.extra.get("landmarks")
            if points is None or points.shape[1:] != (self.landmarks, 2):
                points = np.full((len(boxes), self.landmarks, 2), np.nan, np.float32)
            points = (np.asarray(points, np.float32) * scale[:2]).reshape(len(boxes), 2 * self.landmarks)
            boxes = np.concatenate((boxes, points), axis=1)
        return image, boxes, original

    def __getitem__(self, index: int) -> dict[str, Any]:
        loaded = self.load(index)
        attempts = 0
        while loaded is None:  # an image that fails to decode is reported and the next one is used instead
            path = self.samples[self.valid[index]].image_path
            self.report.skipped_images += 1
            self.report.note(str(path), "cannot decode the image; skipped")
            # Also a warning: a note made inside a DataLoader worker process does not reach the parent's report.
            warnings.warn(f"{path}: cannot decode the image; skipped", stacklevel=2)
            attempts += 1
            if attempts >= len(self):
                raise RuntimeError("no image of the dataset can be decoded")
            index = (index + 1) % len(self)
            loaded = self.load(index)
        image, boxes, original = loaded
        sample = self.samples[self.valid[index]]
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        result = self.transform(image, boxes[keep], sample.labels[keep], sample.ignore[keep], rng)
        item = {
            "image": result.image,
            "boxes_xyxy": result.boxes_xyxy,
            "labels": result.labels,
            "ignore": result.ignore,
            "key": sample.key,
            "index": index,
            "original_size": original,
            "decoded_size": image.shape[:2],
            "geometry": getattr(result, "geometry", None),
        }
        if self.landmarks:
            item["landmarks"] = result.landmarks
        return item


def collate_detections(items: Sequence[dict[str, Any]]) -> Batch:
    """Stack images (all the same size after the transform) and keep per-image box lists."""
    return Batch(
        images=torch.stack([it["image"] for it in items]),
        boxes_xyxy=[it["boxes_xyxy"] for it in items],
        labels=[it["labels"] for it in items],
        ignore=[it["ignore"] for it in items],
        keys=[it["key"] for it in items],
        indices=torch.tensor([it["index"] for it in items]),
        original_sizes=[it["original_size"] for it in items],
        geometries=[it["geometry"] for it in items],
        decoded_sizes=[it["decoded_size"] for it in items],
        landmarks=[it["landmarks"] for it in items] if "landmarks" in items[0] else None,
    )


def worker_init(_: int) -> None:
    """DataLoader ``worker_init_fn``: one thread per worker."""
    # Each worker is one process on a 2-core machine: one thread each, and no OpenCV thread pool inside workers.
    cv2.setNumThreads(0)
    torch.set_num_threads(1)


def make_loader(
    dataset: DetectionDataset,
    batch_size: int,
    shuffle: bool,
    workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset`` with :func:`collate_detections`, seeded shuffling and tuned workers."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate_detections,
        worker_init_fn=worker_init if workers else None,
        persistent_workers=workers > 0,
        generator=generator,
        drop_last=drop_last,
    )
