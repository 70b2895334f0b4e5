"""Crash-safe writes: a kill inside a write, a full disk and two writers at once never leave a torn file."""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from singleshot import checkpoint as checkpoint_module
from singleshot.atomic import WriteError, write_text
from singleshot.checkpoint import load_checkpoint, save_checkpoint
from singleshot.evaluation.predictions import read_predictions, write_predictions

ROOT = Path(__file__).resolve().parents[1]
GOOD = {"format": "singleshot-checkpoint", "version": 1, "weights": torch.arange(1000.0)}

# Writes the first bytes of a new checkpoint, says so, and waits to be killed inside the write.
_SLOW_WRITER = """
import sys, time
import torch
from singleshot import checkpoint

def slow_save(obj, f):
    f.write(b"PK\\x03\\x04" + b"x" * 100000)
    f.flush()
    open(sys.argv[2], "w").close()
    time.sleep(120)

checkpoint.torch.save = slow_save
checkpoint.save_checkpoint(sys.argv[1], {"format": "singleshot-checkpoint", "version": 1})
"""


def test_a_kill_inside_the_write_leaves_the_previous_checkpoint(tmp_path):
    path, marker = tmp_path / "last.pt", tmp_path / "writing"
    save_checkpoint(path, GOOD)
    child = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(path), str(marker)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the writer did not start writing"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert torch.equal(load_checkpoint(path)["weights"], GOOD["weights"])
    assert [p.name for p in tmp_path.glob(".last.pt.*.partial")]  # the torn new one lies beside it, never in place


def _full_disk(obj, f) -> None:
    f.write(b"PK\x03\x04partial")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_gives_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, GOOD)
    monkeypatch.setattr(checkpoint_module.torch, "save", _full_disk)
    with pytest.raises(WriteError, match=r"last.pt: no space left on the device .*previous file, if any, is kept"):
        save_checkpoint(path, {**GOOD, "weights": torch.zeros(3)})
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["weights"], GOOD["weights"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # the partial file is removed


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 256 KB tmpfs (needs the right to mount: root in a container); skipped where mounting is refused."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=False, capture_output=True
    ).returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the simulated full disk above covers the same path")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_disk_keeps_the_previous_checkpoint(small_tmpfs):
    path = small_tmpfs / "last.pt"
    save_checkpoint(path, {**GOOD, "weights": torch.zeros(20_000)})  # 80 KB: there is room for one
    with pytest.raises(WriteError, match="no space left on the device"):
        save_checkpoint(path, {**GOOD, "weights": torch.ones(50_000)})  # 200 KB more does not fit beside it
    assert torch.equal(load_checkpoint(path)["weights"], torch.zeros(20_000))
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["last.pt"]


def _write_predictions_repeatedly(path: str, value: float, count: int) -> None:
    rows = {f"img{i}.jpg": np.full((50, 6), value) for i in range(40)}  # about 60 KB: many write() calls
    for _ in range(count):
        write_predictions(path, rows)


def test_two_runs_writing_one_json_never_leave_it_torn(tmp_path):
    path = tmp_path / "detections.json"
    write_text(path, "{}")
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_predictions_repeatedly, args=(str(path), v, 30)) for v in (1.0, 2.0)]
    for w in writers:
        w.start()
    reads = 0
    while any(w.is_alive() for w in writers) or reads == 0:
        values = {float(r[0, 0]) for r in read_predictions(path).values()} or {0.0}
        assert len(values) == 1  # one writer's whole file, never a mix
        reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert {float(r[0, 0]) for r in read_predictions(path).values()} <= {1.0, 2.0}
    assert not list(tmp_path.glob("*.partial"))


def test_the_written_file_keeps_a_readable_mode(tmp_path):
    path = write_text(tmp_path / "config.yaml", "a: 1\n")
    assert path.stat().st_mode & 0o777 == 0o644
    os.chmod(path, 0o600)
    write_text(path, "a: 2\n")
    assert path.stat().st_mode & 0o777 == 0o600
