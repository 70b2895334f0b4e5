"""Decode every image once: a memory-mapped cache of RGB uint8 images resized to a maximum long side.

JPEG decoding dominates data loading on a 2-core CPU; decoding each photo once, at the size training needs,
removes it from every epoch. The cache is one flat ``.bin`` file of concatenated ``(h, w, 3)`` uint8 arrays plus
a ``.json`` index, named by a fingerprint of the image files (paths, sizes, modification times) and the maximum
side, so it is rebuilt when the images change and shared by every run and DataLoader worker (the operating
system's page cache holds it once). Images that cannot be read are reported and left out, never silently lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from singleshot.structures import AnnotationReport, Sample


def image_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)`` of an image file from its header (no pixel decoding), or None if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
        return h, w
    except Exception:  # noqa: BLE001 - any unreadable header means "unknown"; decoding decides
        return None


def decode_image(path: Path, max_side: int | None = None) -> tuple[np.ndarray, tuple[int, int]] | None:
    """Read an image as RGB uint8 ``(h, w, 3)``, shrunk so its long side is at most ``max_side``.

    Returns ``(image, (original_height, original_width))``, or None if the file is missing or cannot be decoded.
    Large images are decoded at reduced resolution directly (OpenCV's ``IMREAD_REDUCED_COLOR_2/4``), several
    times faster than a full decode and resize. EXIF orientation is ignored: pixels are used as stored, which is
    what annotation files refer to and what the header size reports.
    """
    path = Path(path)
    if not path.is_file():
        return None
    original = image_size(path)
    flag = cv2.IMREAD_COLOR
    if max_side and original is not None:
        ratio = max(original) / max_side
        flag = cv2.IMREAD_REDUCED_COLOR_4 if ratio >= 4 else cv2.IMREAD_REDUCED_COLOR_2 if ratio >= 2 else flag
    image = cv2.imread(str(path), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        return None
    if original is None:
        original = image.shape[:2]
    h, w = image.shape[:2]
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (int(original[0]), int(original[1]))


@dataclass
class CacheEntry:
    """Where one image lies in the cache and how it was resized."""

    offset: int
    height: int
    width: int
    original_height: int
    original_width: int


class ImageCache:
    """A built cache; use :meth:`build` (it reuses an existing cache with the same fingerprint).

    ``entries[i]`` is the entry of ``samples[i]`` or None if that image could not be read.
    """

    def __init__(self, bin_path: Path, entries: list[CacheEntry | None], max_side: int) -> None:
        self.bin_path = Path(bin_path)
        self.entries = entries
        self.max_side = max_side
        self._data: np.memmap | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_data"] = None  # each process maps the file itself instead of pickling its contents
        return state

    def image(self, i: int) -> np.ndarray:
        """The cached RGB image ``(h, w, 3)`` uint8 of sample ``i`` (a read-only view)."""
        entry = self.entries[i]
        if entry is None:
            raise KeyError(f"image {i} is not in the cache (it could not be read)")
        if self._data is None:
            self._data = np.memmap(self.bin_path, dtype=np.uint8, mode="r")
        size = entry.height * entry.width * 3
        return self._data[entry.offset : entry.offset + size].reshape(entry.height, entry.width, 3)

    @classmethod
    def build(
        cls,
        samples: Sequence[Sample],
        cache_dir: Path,
        max_side: int,
        report: AnnotationReport | None = None,
        progress: bool = True,
    ) -> ImageCache:
        """Decode and resize every sample's image once into ``cache_dir`` (reused if already there).

        Unreadable images are noted in ``report`` (one line each, naming the file) and have no entry.
        """
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        name = _fingerprint(samples, max_side)
        bin_path, index_path = cache_dir / f"{name}.bin", cache_dir / f"{name}.json"
        if bin_path.is_file() and index_path.is_file():
            index = json.loads(index_path.read_text())
            entries = [CacheEntry(**e) if e else None for e in index["entries"]]
            if report is not None:
                for sample, e in zip(samples, entries):
                    if e is None:
                        report.skipped_images += 1
                        report.note(str(sample.image_path), "missing or unreadable image; skipped")
            return cls(bin_path, entries, max_side)

        entries: list[CacheEntry | None] = []
        offset = 0
        # A unique partial file per build: two trainings started together may build the same cache at once; each
        # writes its own copy and the renames below leave one complete cache whichever finishes last.
        with tempfile.NamedTemporaryFile(dir=cache_dir, prefix=f"{name}.", suffix=".bin.partial", delete=False) as out:
            partial = Path(out.name)
            for sample in tqdm(samples, desc=f"caching images (long side <= {max_side})", disable=not progress,
                               unit="img"):
                decoded = decode_image(sample.image_path, max_side)
                if decoded is None:
                    entries.append(None)
                    if report is not None:
                        report.skipped_images += 1
                        report.note(str(sample.image_path), "missing or unreadable image; skipped")
                    continue
                image, (orig_h, orig_w) = decoded
                out.write(np.ascontiguousarray(image).tobytes())
                entries.append(CacheEntry(offset, image.shape[0], image.shape[1], orig_h, orig_w))
                offset += image.size
        # Written last and renamed into place, so an interrupted build is never mistaken for a complete one.
        os.replace(partial, bin_path)
        index_text = json.dumps({"max_side": max_side, "entries": [e.__dict__ if e else None for e in entries]})
        with tempfile.NamedTemporaryFile("w", dir=cache_dir, prefix=f"{name}.", suffix=".json.partial",
                                         delete=False) as tmp_index:
            tmp_index.write(index_text)
        os.replace(tmp_index.name, index_path)
        return cls(bin_path, entries, max_side)


def _fingerprint(samples: Sequence[Sample], max_side: int) -> str:
    digest = hashlib.sha1(f"v1:{max_side}".encode())
    for sample in samples:
        path = Path(sample.image_path)
        try:
            stat = path.stat()
            digest.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}:missing\n".encode())
    return digest.hexdigest()[:20]
