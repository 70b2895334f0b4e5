"""Crash-safe file writes: a unique temporary file in the target's folder, flushed to disk, then renamed over it.

A rename within one file system is atomic, so a reader (or a resumed run) sees either the previous file or the
complete new one, never a torn mix: a kill during the write leaves the previous file valid and a ``.partial``
file beside it; two processes writing one path each write their own temporary file and the last rename wins. A
full disk or any other write failure removes the temporary file, keeps the previous file and raises one
:class:`WriteError` naming the path.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from singleshot.errors import SingleshotError


class WriteError(SingleshotError):
    """A file that could not be written (full disk, no permission); the previous file at the path is kept."""


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb", newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file for ``path`` (``mode`` ``"wb"`` or ``"w"``, UTF-8; ``newline`` as for ``open``, ``""``
    for the csv module); on a clean exit it replaces ``path``, on any exception the temporary file is removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        # mkstemp makes the file private (0600); the result keeps the mode of the file it replaces, else 0644
        os.fchmod(fd, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
    except OSError as err:
        raise _write_error(path, err) from None
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": newline} if "b" not in mode else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the file
        os.replace(tmp, path)
    except BaseException as err:
        _remove(tmp)
        cause = _os_error(err)
        if cause is None:
            raise
        raise _write_error(path, cause) from None


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def _os_error(err: BaseException) -> OSError | None:
    """``err`` or the OSError it was raised while handling: torch.save's zip writer meets a full disk as an OSError
    and then raises its own RuntimeError while closing the archive, which hides the cause."""
    seen = 0
    while err is not None and seen < 8:
        if isinstance(err, OSError):
            return err
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def _write_error(path: Path, err: OSError) -> WriteError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return WriteError(f"{path}: no space left on the device ({err.strerror}); the previous file, if any, is kept")
    return WriteError(f"{path}: cannot write ({err.strerror or err}); the previous file, if any, is kept")


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass  # already gone: nothing to clean up
