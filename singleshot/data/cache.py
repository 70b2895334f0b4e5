"""Decode every image once: a memory-mapped cache of RGB uint8 images resized to a maximum long side.

JPEG decoding dominates data loading on a 2-core CPU; decoding each photo once, at the size training needs,
removes it from every epoch. The cache is one flat ``.bin`` file of concatenated ``(h, w, 3)`` uint8 arrays plus
a ``.json`` index, named by a fingerprint of the image files (paths, sizes, modification times) and the maximum
side, so it is rebuilt when the images change and shared by every run and DataLoader worker (the operating
system's page cache holds it once). Images that cannot be read are reported and left out, never silently lost.

Damage is caught twice: when a cache is opened, by its index and the ``.bin`` file's size (a cache cut short by a
full disk or a killed copy is rebuilt whole); when an image is first read in a process, by the CRC-32 of its bytes
(a flipped byte in the middle of the file): that image is decoded again from its file, and the index is removed so
the next start rebuilds the cache.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from singleshot.atomic import atomic_write, write_text
from singleshot.images import decode_image, image_problem
from singleshot.structures import AnnotationReport, Sample


@dataclass
class CacheEntry:
    """Where one image lies in the cache and how it was resized."""

    offset: int
    height: int
    width: int
    original_height: int
    original_width: int
    crc32: int  # of the entry's bytes, checked on the first read in each process


class ImageCache:
    """A built cache; use :meth:`build` (it reuses an existing cache with the same fingerprint).

    ``entries[i]`` is the entry of ``samples[i]`` or None if that image could not be read.
    """

    def __init__(self, bin_path: Path, entries: list[CacheEntry | None], max_side: int,
                 sources: Sequence[str | Path] | None = None) -> None:
        self.bin_path = Path(bin_path)
        self.entries = entries
        self.max_side = max_side
        self.sources = [str(p) for p in sources] if sources is not None else None  # image files, to rebuild entries
        self._data: np.memmap | None = None
        self._checked: set[int] = set()
        self._rebuilt: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_data"] = None  # each process maps the file itself instead of pickling its contents
        return state

    def image(self, i: int) -> np.ndarray:
        """The cached RGB image ``(h, w, 3)`` uint8 of sample ``i`` (a read-only view)."""
        entry = self.entries[i]
        if entry is None:
            raise KeyError(f"image {i} is not in the cache (it could not be read)")
        if i in self._rebuilt:
            return self._rebuilt[i]
        if self._data is None:
            self._data = np.memmap(self.bin_path, dtype=np.uint8, mode="r")
        size = entry.height * entry.width * 3
        view = self._data[entry.offset : entry.offset + size]
        # checked once per process: about a millisecond per image, so the first epoch pays it and later ones do not
        if i not in self._checked:
            if view.size != size or zlib.crc32(view) != entry.crc32:
                return self._rebuild(i, entry)
            self._checked.add(i)
        return view.reshape(entry.height, entry.width, 3)

    def _rebuild(self, i: int, entry: CacheEntry) -> np.ndarray:
        """Sample ``i``'s image decoded again from its file after its cached bytes failed the checksum; the index
        is removed so the next :meth:`build` rebuilds the whole cache."""
        from singleshot.data.formats.base import DataError

        source = self.sources[i] if self.sources is not None else None
        decoded = decode_image(source, self.max_side, on_reduce=_noter(None, source)) if source is not None else None
        if decoded is None or decoded[0].shape != (entry.height, entry.width, 3):
            raise DataError(f"{self.bin_path}: image {i} ({source}) is damaged in the cache (checksum) and cannot be "
                            "decoded again from its file; delete the cache folder")
        if not self._rebuilt:
            tqdm.write(f"{self.bin_path}: image cache damaged ({source} fails its checksum); decoded from the file, "
                       "the cache is rebuilt at the next start")
            self.bin_path.with_suffix(".json").unlink(missing_ok=True)
        self._rebuilt[i] = decoded[0]
        return decoded[0]

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
            return cls(bin_path, entries, max_side, [s.image_path for s in samples])

        entries: list[CacheEntry | None] = []
        offset = 0
        # A unique partial file per build (atomic_write): two trainings started together may build the same cache at
        # once; each writes its own copy and the renames leave one complete cache whichever finishes last. A full
        # disk ends in one WriteError, the partial file removed. The index is written last, so an interrupted build
        # is never mistaken for a complete one.
        with atomic_write(bin_path) as out:
            for sample in tqdm(samples, desc=f"caching images (long side <= {max_side})", disable=not progress,
                               unit="img"):
                # a JPEG over the pixel limit is decoded reduced (the cache keeps a small copy anyway), and noted
                decoded = decode_image(sample.image_path, max_side, on_reduce=_noter(report, sample.image_path))
                if decoded is None:
                    entries.append(None)
                    if report is not None:
                        report.skipped_images += 1
                        problem = image_problem(sample.image_path) or "cannot be decoded"
                        report.note(str(sample.image_path), f"{problem}; skipped")
                    continue
                image, (orig_h, orig_w) = decoded
                data = np.ascontiguousarray(image).tobytes()
                out.write(data)
                entries.append(CacheEntry(offset, image.shape[0], image.shape[1], orig_h, orig_w, zlib.crc32(data)))
                offset += image.size
        write_text(index_path, json.dumps({"max_side": max_side, "entries": [e.__dict__ if e else None for e in entries]}))
        return cls(bin_path, entries, max_side, [s.image_path for s in samples])


def _noter(report: AnnotationReport | None, path: str | Path):
    """A callback that notes in ``report`` (when given) why ``path`` was decoded reduced."""
    return lambda message: report.note(str(path), message) if report is not None else None


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
    digest = hashlib.sha1(f"v2:{max_side}".encode())  # v2: upright (EXIF) images, checksums
    for sample in samples:
        path = Path(sample.image_path)
        try:
            stat = path.stat()
            digest.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}:missing\n".encode())
    return digest.hexdigest()[:20]
