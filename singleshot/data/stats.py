"""``singleshot data stats``: what a dataset holds, and the sizes of its boxes (useful when choosing priors)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from tqdm import tqdm

from singleshot.images import decode_image, image_size
from singleshot.structures import AnnotationSet

#: Box-size bins (side ``sqrt(w * h)`` in pixels): face detectors are designed around these octaves.
SIZE_BINS = (0, 8, 16, 32, 64, 128, 256, 512, float("inf"))


def _histogram(sides: np.ndarray) -> list[dict[str, Any]]:
    counts, _ = np.histogram(sides, bins=np.array(SIZE_BINS))
    return [
        {"from": SIZE_BINS[i], "to": None if SIZE_BINS[i + 1] == float("inf") else SIZE_BINS[i + 1], "boxes": int(c)}
        for i, c in enumerate(counts)
    ]


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    return {f"p{q}": round(float(v), 1) for q, v in zip((5, 25, 50, 75, 95), np.percentile(values, (5, 25, 50, 75, 95)))}


def dataset_stats(data: AnnotationSet, long_side: int | None = 640, check_images: bool = False) -> dict[str, Any]:
    """Counts and box-size statistics of ``data``.

    Box size is ``sqrt(w * h)`` in pixels of the original image and, when ``long_side`` is given, after resizing
    the image so its long side is ``long_side`` (what the network sees). Image sizes come from the annotations,
    else from the image headers; images whose size is unknown (files absent) are left out of the resized figures
    and counted. ``check_images`` decodes every image and counts the missing or unreadable ones.
    """
    boxes = [s.boxes_xyxy for s in data.samples]
    all_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    labels = np.concatenate([s.labels for s in data.samples]) if data.samples else np.zeros(0, np.int64)
    ignore = np.concatenate([s.ignore for s in data.samples]) if data.samples else np.zeros(0, bool)
    w = all_boxes[:, 2] - all_boxes[:, 0]
    h = all_boxes[:, 3] - all_boxes[:, 1]
    sides = np.sqrt(w * h)
    per_class = Counter(labels.tolist())

    stats: dict[str, Any] = {
        "format": data.format,
        "root": str(data.root),
        "images": len(data.samples),
        "images_with_boxes": sum(1 for s in data.samples if len(s)),
        "boxes": len(all_boxes),
        "ignored_boxes": int(ignore.sum()),
        "boxes_per_class": {data.class_names[k] if k < len(data.class_names) else str(k): int(v)
                            for k, v in sorted(per_class.items())},
        "max_boxes_per_image": max((len(s) for s in data.samples), default=0),
        "box_side_px": _percentiles(sides),
        "box_height_over_width": _percentiles(h / np.maximum(w, 1e-6)),
        "box_side_histogram": _histogram(sides),
        "reading": data.report.summary() or "no problems",
    }
    if long_side:
        resized, unknown = [], 0
        for s in data.samples:
            size = (s.height, s.width) if s.width and s.height else image_size(s.image_path)
            if size is None:
                unknown += 1 if len(s) else 0
                continue
            side = np.sqrt((s.boxes_xyxy[:, 2] - s.boxes_xyxy[:, 0]) * (s.boxes_xyxy[:, 3] - s.boxes_xyxy[:, 1]))
            resized.append(side * long_side / max(size))
        resized_sides = np.concatenate(resized) if resized else np.zeros(0)
        stats["long_side"] = long_side
        stats[f"box_side_px_at_{long_side}"] = _percentiles(resized_sides)
        stats[f"box_side_histogram_at_{long_side}"] = _histogram(resized_sides)
        stats["images_of_unknown_size"] = unknown
    if check_images:
        bad = [str(s.image_path) for s in tqdm(data.samples, desc="checking images", unit="img")
               if decode_image(s.image_path, max_side=64) is None]
        stats["unreadable_images"] = len(bad)
        stats["unreadable_examples"] = bad[:5]
    return stats


def format_stats(stats: dict[str, Any]) -> str:
    """A readable report of :func:`dataset_stats`."""
    lines = [
        f"{stats['format']}:{stats['root']}",
        (
            f"images: {stats['images']} ({stats['images_with_boxes']} with boxes)   boxes: {stats['boxes']} "
            f"({stats['ignored_boxes']} ignored)   max per image: {stats['max_boxes_per_image']}"
        ),
        "per class: " + ", ".join(f"{k} {v}" for k, v in stats["boxes_per_class"].items()),
        "box side sqrt(w*h), px: " + " ".join(f"{k}={v}" for k, v in stats["box_side_px"].items()),
        "box height/width: " + " ".join(f"{k}={v}" for k, v in stats["box_height_over_width"].items()),
    ]
    hist_keys = ["box_side_histogram"]
    if "long_side" in stats:
        lines.append(
            f"box side at long side {stats['long_side']}, px: "
            + " ".join(f"{k}={v}" for k, v in stats[f"box_side_px_at_{stats['long_side']}"].items())
            + (f"   ({stats['images_of_unknown_size']} images of unknown size left out)"
               if stats["images_of_unknown_size"] else "")
        )
        hist_keys.append(f"box_side_histogram_at_{stats['long_side']}")
    for key in hist_keys:
        lines.append(f"histogram ({'original' if key == 'box_side_histogram' else 'resized'} pixels):")
        total = max(1, sum(b["boxes"] for b in stats[key]))
        for b in stats[key]:
            span = f"{b['from']:>4}-{b['to'] if b['to'] is not None else '':<4}"
            lines.append(f"  {span} {b['boxes']:>7}  {'#' * round(40 * b['boxes'] / total)}")
    lines.append(f"reading: {stats['reading']}")
    if "unreadable_images" in stats:
        lines.append(f"unreadable or missing images: {stats['unreadable_images']} {stats['unreadable_examples']}")
    return "\n".join(lines)
