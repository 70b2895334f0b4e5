import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from singleshot.data.cache import ImageCache
from singleshot.data.dataset import DetectionDataset, collate_detections, make_loader
from singleshot.data.formats import load_annotations
from singleshot.data.stats import dataset_stats, format_stats
from singleshot.images import decode_image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass
class Out:
    image: torch.Tensor
    boxes_xyxy: torch.Tensor
    labels: torch.Tensor
    ignore: torch.Tensor


class ToSize:
    """Resize to 32x32 and normalise boxes; draws one random number so determinism can be checked."""

    def __call__(self, image, boxes, labels, ignore, rng):
        h, w = image.shape[:2]
        resized = cv2.resize(image, (32, 32))
        jitter = rng.random()
        out = torch.from_numpy(resized).permute(2, 0, 1).float() + float(jitter)
        scale = np.array([w, h, w, h], np.float32)
        return Out(out, torch.from_numpy(boxes / scale), torch.from_numpy(labels), torch.from_numpy(ignore))


def copy_csv_fixture(tmp_path):
    root = tmp_path / "csv"
    shutil.copytree(FIXTURES / "csv", root)
    return root


def test_cache_build_reuse_and_bad_images(tmp_path):
    root = copy_csv_fixture(tmp_path)
    (root / "images" / "b.jpg").write_bytes(b"corrupt")  # unreadable
    (root / "images" / "c.jpg").unlink()  # missing
    data = load_annotations(f"csv:{root}")
    ds = DetectionDataset.with_cache(data, ToSize(), tmp_path / "cache", max_side=32, progress=False)
    assert len(ds) == 1  # only a.jpg is readable
    assert ds.report.skipped_images == 2
    assert any("b.jpg" in m for m in ds.report.messages) and any("c.jpg" in m for m in ds.report.messages)
    item = ds[0]
    # a.jpg is 64x48, cached at 32x24: boxes are scaled with it and normalised by the transform
    assert ds.cache.image(0).shape == (24, 32, 3)
    np.testing.assert_allclose(item["boxes_xyxy"].numpy(), [[10 / 64, 8 / 48, 30 / 64, 20 / 48], [40 / 64, 10 / 48, 1.0, 30 / 48]])
    assert item["original_size"] == (48, 64) and item["key"] == "images/a.jpg"
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    again = DetectionDataset.with_cache(data, ToSize(), tmp_path / "cache", max_side=32, progress=False)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == files  # reused, not rebuilt
    assert again.report.skipped_images == 2


def test_cached_image_equals_direct_decode(tmp_path):
    data = load_annotations(f"csv:{FIXTURES / 'csv'}")
    cache = ImageCache.build(data.samples, tmp_path, max_side=640, progress=False)
    direct, size = decode_image(data.samples[0].image_path)
    np.testing.assert_array_equal(cache.image(0), direct)
    assert size == (48, 64)


def test_concurrent_cache_builds_do_not_collide(tmp_path):
    # Two trainings started together (an ablation run in parallel) build the same cache at once: both must succeed
    # and leave one complete cache, no partial files.
    from concurrent.futures import ThreadPoolExecutor

    data = load_annotations(f"csv:{FIXTURES / 'csv'}")
    with ThreadPoolExecutor(4) as pool:
        caches = list(pool.map(lambda _: ImageCache.build(data.samples, tmp_path, 640, progress=False), range(4)))
    direct, _ = decode_image(data.samples[0].image_path)
    for cache in caches:
        np.testing.assert_array_equal(cache.image(0), direct)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".bin", ".json"]


def test_without_cache_and_determinism(tmp_path):
    data = load_annotations(f"csv:{FIXTURES / 'csv'}")
    ds = DetectionDataset(data, ToSize(), seed=3)
    assert len(ds) == 3
    first = ds[1]["image"]
    assert torch.equal(ds[1]["image"], first)  # same (seed, epoch, index) -> same draws
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["image"], first)


def test_collate_and_loader_with_workers():
    data = load_annotations(f"csv:{FIXTURES / 'csv'}")
    ds = DetectionDataset(data, ToSize())
    batch = collate_detections([ds[0], ds[2]])
    assert batch.images.shape == (2, 3, 32, 32)
    assert [len(b) for b in batch.boxes_xyxy] == [2, 0]
    batches = list(make_loader(ds, batch_size=2, shuffle=False, workers=2))
    assert [len(b) for b in batches] == [2, 1]
    assert batches[0].keys == ["images/a.jpg", "images/b.jpg"]
    serial = list(make_loader(ds, batch_size=2, shuffle=False, workers=0))
    assert torch.equal(serial[0].images, batches[0].images)  # workers do not change the augmentation draws


def test_stats_on_fixture():
    stats = dataset_stats(load_annotations(f"voc:{FIXTURES / 'voc'}"), long_side=128)
    assert stats["images"] == 2 and stats["boxes"] == 3 and stats["ignored_boxes"] == 1
    assert stats["boxes_per_class"] == {"dog": 1, "person": 2}
    assert sum(b["boxes"] for b in stats["box_side_histogram"]) == 3
    assert stats["box_side_px_at_128"]["p50"] > stats["box_side_px"]["p50"]  # 64-wide images doubled
    text = format_stats(stats)
    assert "images: 2" in text and "histogram" in text


def test_landmarks_ride_with_their_boxes_into_the_batch():
    from singleshot.data.formats import load_annotations
    from singleshot.data.transforms import SSDAugmentation

    data = load_annotations(f"mtfl:{Path(__file__).resolve().parents[1] / 'fixtures' / 'mtfl'}", split="test")
    plain = SSDAugmentation((64, 64), photometric_prob=0, zoom_out_prob=0, crop=False, flip_prob=0)
    ds = DetectionDataset(data, plain, landmarks=5)
    batch = collate_detections([ds[0], ds[1]])
    assert batch.landmarks is not None and batch.landmarks[0].shape == (1, 5, 2)
    expected = torch.from_numpy(data.samples[0].extra["landmarks"][0]) / 80  # the crop is 80 px: normalised
    torch.testing.assert_close(batch.landmarks[0][0], expected)
    without = DetectionDataset(data, plain)
    assert collate_detections([without[0]]).landmarks is None
