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
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from singleshot.atomic import atomic_write, write_text
from singleshot.structures import AnnotationReport, Sample

#: Images with more pixels than this are refused before any decoding, from the size their header declares: a
#: 100-megapixel photo passes, a 20000x20000 PNG of 400 KB (2.7 GB once decoded) does not. The environment variable
#: ``SINGLESHOT_MAX_PIXELS`` changes it for detect, datasets and the image cache (``singleshot serve`` has its own,
#: lower upload limit: :class:`singleshot.serve.uploads.UploadLimits`).
DEFAULT_MAX_PIXELS = 150_000_000


def max_pixels() -> int:
    """The pixel limit in force: ``SINGLESHOT_MAX_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    return int(os.environ.get("SINGLESHOT_MAX_PIXELS") or DEFAULT_MAX_PIXELS)


def _header(path: Path) -> tuple[int, int] | str:
    """``(height, width)`` from the header, or what is wrong with the file."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below decides, not PIL's
            with Image.open(path) as im:
                w, h = im.size
        return h, w
    except FileNotFoundError:
        return "not found"
    except Image.DecompressionBombError as err:  # PIL refuses over twice its own limit; its message has the count
        count = next(iter(re.findall(r"\((\d+) pixels\)", str(err))), "0")
        limit = min(max_pixels(), 2 * Image.MAX_IMAGE_PIXELS)
        return (f"declares {int(count) / 1e6:.3g} MP, over the limit of {limit / 1e6:.3g} MP "
                f"(SINGLESHOT_MAX_PIXELS); refused before decoding")
    except Exception:  # noqa: BLE001 - any unreadable header means "not an image we can bound"
        return "not an image (unreadable header)"


def image_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)`` of an image file from its header (no pixel decoding), or None if unreadable."""
    header = _header(Path(path))
    return header if isinstance(header, tuple) else None


def image_problem(path: Path, limit: int | None = None) -> str | None:
    """Why :func:`decode_image` refuses ``path`` without decoding it (one phrase), or None when it may decode."""
    return _refusal(_header(Path(path)), limit)


def _refusal(header: tuple[int, int] | str, limit: int | None) -> str | None:
    """What is wrong with a file whose header read as ``header``, or None when it may be decoded."""
    if isinstance(header, str):
        return header
    h, w = header
    limit = limit or max_pixels()
    if h * w > limit:
        return (f"{w}x{h} pixels ({h * w / 1e6:.3g} MP) is over the limit of {limit / 1e6:.3g} MP "
                f"(SINGLESHOT_MAX_PIXELS); refused before decoding")
    return None


def decode_image(path: Path, max_side: int | None = None,
                 limit: int | None = None) -> tuple[np.ndarray, tuple[int, int]] | None:
    """Read an image as RGB uint8 ``(h, w, 3)``, shrunk so its long side is at most ``max_side``.

    Returns ``(image, (original_height, original_width))``, or None if the file is missing, cannot be decoded, or
    declares more than ``limit`` pixels (default :func:`max_pixels`) in its header: the size is read before any
    decoding, so memory is bounded by the limit, not by the file (:func:`image_problem` says why). Large images are
    decoded at reduced resolution directly (OpenCV's ``IMREAD_REDUCED_COLOR_2/4``), several times faster than a
    full decode and resize. EXIF orientation is ignored: pixels are used as stored, which is what annotation files
    refer to and what the header size reports.
    """
    path = Path(path)
    if not path.is_file():
        return None
    original = _header(path)  # read once: the limit check and the reduced-decode choice both use it
    if _refusal(original, limit) is not None:
        return None
    flag = cv2.IMREAD_COLOR
    if max_side:
        ratio = max(original) / max_side
        flag = cv2.IMREAD_REDUCED_COLOR_4 if ratio >= 4 else cv2.IMREAD_REDUCED_COLOR_2 if ratio >= 2 else flag
    image = cv2.imread(str(path), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        return None
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
        entries = _read_index(bin_path, index_path, len(samples)) if bin_path.is_file() else None
        if entries is None and index_path.exists():  # damaged (torn, truncated, edited): rebuilt, said once
            tqdm.write(f"{index_path.with_suffix('.bin')}: image cache damaged (size or index), rebuilding it")
        if entries is not None:
            if report is not None:
                for sample, e in zip(samples, entries):
                    if e is None:
                        report.skipped_images += 1
                        report.note(str(sample.image_path), "missing or unreadable image; skipped")
            return cls(bin_path, entries, max_side)

        entries: list[CacheEntry | None] = []
        offset = 0
        # A unique partial file per build (atomic_write): two trainings started together may build the same cache at
        # once; each writes its own copy and the renames leave one complete cache whichever finishes last. A full
        # disk ends in one WriteError, the partial file removed. The index is written last, so an interrupted build
        # is never mistaken for a complete one.
        with atomic_write(bin_path) as out:
            for sample in tqdm(samples, desc=f"caching images (long side <= {max_side})", disable=not progress,
                               unit="img"):
                decoded = decode_image(sample.image_path, max_side)
                if decoded is None:
                    entries.append(None)
                    if report is not None:
                        report.skipped_images += 1
                        problem = image_problem(sample.image_path) or "cannot be decoded"
                        report.note(str(sample.image_path), f"{problem}; skipped")
                    continue
                image, (orig_h, orig_w) = decoded
                out.write(np.ascontiguousarray(image).tobytes())
                entries.append(CacheEntry(offset, image.shape[0], image.shape[1], orig_h, orig_w))
                offset += image.size
        write_text(index_path, json.dumps({"max_side": max_side, "entries": [e.__dict__ if e else None for e in entries]}))
        return cls(bin_path, entries, max_side)


def _read_index(bin_path: Path, index_path: Path, count: int) -> list[CacheEntry | None] | None:
    """The entries of a built cache, or None when the index is missing or damaged or the ``.bin`` file's size is
    not what the index says (a cache cut short by a full disk, or another process's write): the caller rebuilds."""
    try:
        entries = [CacheEntry(**e) if e else None for e in json.loads(index_path.read_text())["entries"]]
        expected = max((e.offset + e.height * e.width * 3 for e in entries if e), default=0)
        ok = len(entries) == count and bin_path.stat().st_size == expected
    except (OSError, ValueError, TypeError, KeyError):  # unreadable, not JSON, or not the index's shape
        return None
    return entries if ok else None


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
