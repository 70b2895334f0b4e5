"""Crash-safe writes: a kill inside a write, a full disk, any other failure and two writers at once never leave a
torn file or a stray temporary one."""

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

from singleshot import atomic as atomic_module
from singleshot import checkpoint as checkpoint_module
from singleshot.atomic import WriteError, atomic_write, write_bytes, write_text
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


def _fail_in_body(path: Path, monkeypatch) -> None:
    with atomic_write(path) as f:
        f.write(b"half of the new file")
        raise ValueError("a bug in the writer")


def _interrupt_in_body(path: Path, monkeypatch) -> None:
    with atomic_write(path) as f:
        f.write(b"half of the new file")
        raise KeyboardInterrupt


def _fail_fsync(path: Path, monkeypatch) -> None:
    def broken(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(atomic_module.os, "fsync", broken)
    write_bytes(path, b"new")


def _fail_rename(path: Path, monkeypatch) -> None:
    def broken(src, dst):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(atomic_module.os, "replace", broken)
    write_bytes(path, b"new")


@pytest.mark.parametrize("failure, raised", [
    (_fail_in_body, ValueError), (_interrupt_in_body, KeyboardInterrupt), (_fail_fsync, WriteError),
    (_fail_rename, WriteError),
])
def test_any_failure_removes_the_temporary_file_and_keeps_the_previous_one(tmp_path, monkeypatch, failure, raised):
    path = write_bytes(tmp_path / "detections.json", b"previous")
    with pytest.raises(raised):
        failure(path, monkeypatch)
    monkeypatch.undo()
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["detections.json"]  # no stray temporary file


# Runs the code given after it in a child that signals, then sleeps to be killed, once the temporary file of
# TARGET is written and flushed to disk, just before the rename that would replace TARGET.
_KILLED_IN_THE_WRITE = """
import os, sys, time
from singleshot import atomic

target, marker = os.path.basename(sys.argv[1]), sys.argv[2]
fsync = os.fsync

def fsync_then_wait(fd):
    fsync(fd)
    if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(f".{target}."):
        open(marker, "w").close()
        time.sleep(300)

atomic.os.fsync = fsync_then_wait
"""


def _kill_inside_the_write(tmp_path: Path, target: Path, code: str) -> None:
    """Run ``code`` in a child and SIGKILL it inside its write of ``target``."""
    marker = tmp_path / "writing"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_IN_THE_WRITE + code, str(target), str(marker)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert child.poll() is None, "the child ended before writing"
            assert time.monotonic() < deadline, "the child did not start writing"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert list(target.parent.glob(f".{target.name}.*.partial"))  # killed inside the write: the new file lay there


def test_a_kill_inside_an_onnx_export_leaves_the_previous_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from singleshot.deploy.onnx_export import export_onnx
    from singleshot.models import create_model

    target = tmp_path / "face.onnx"
    torch.manual_seed(0)
    export_onnx(create_model("face_slim", width=0.25).eval(), target, ["background", "face"], (120.0, 115.0, 100.0),
                (60.0, 60.0, 60.0), input_size=(64, 64))
    previous = target.read_bytes()
    _kill_inside_the_write(tmp_path, target, f"""
from singleshot.deploy.onnx_export import export_onnx
from singleshot.models import create_model
export_onnx(create_model("face_slim", width=0.25).eval(), {str(target)!r}, ["background", "face"],
            (120.0, 115.0, 100.0), (60.0, 60.0, 60.0), input_size=(96, 96))
""")
    assert target.read_bytes() == previous
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[2:] == [64, 64]  # the previous export, whole


def test_a_kill_inside_the_detections_json_write_leaves_the_previous_file(tmp_path):
    out = tmp_path / "out"
    previous = {"earlier.jpg": np.array([[1.0, 2.0, 30.0, 40.0, 0.9, 1.0]])}
    write_predictions(out / "detections.json", previous)
    _kill_inside_the_write(tmp_path, out / "detections.json", f"""
from singleshot.cli import main
main(["detect", {str(ROOT / "assets" / "demo.jpg")!r}, "--out", {str(out)!r}])
""")
    read = read_predictions(out / "detections.json")
    assert list(read) == ["earlier.jpg"] and np.allclose(read["earlier.jpg"], previous["earlier.jpg"])


def _detect_repeatedly(out: str, min_score: str, count: int) -> None:
    from singleshot.cli import main

    for _ in range(count):
        assert main(["detect", str(ROOT / "assets" / "demo.jpg"), "--out", out, "--min-score", min_score]) == 0


def test_two_detect_runs_into_one_out_never_leave_a_torn_detections_json(tmp_path):
    out = tmp_path / "out"
    path = out / "detections.json"
    context = multiprocessing.get_context("spawn")
    # two settings that find different numbers of faces, so each run's file is told apart
    runs = [context.Process(target=_detect_repeatedly, args=(str(out), score, 4)) for score in ("0.3", "0.9")]
    for run in runs:
        run.start()
    seen = set()
    while any(run.is_alive() for run in runs):
        if path.exists():
            seen.add(len(read_predictions(path)["demo.jpg"]))  # parses whole at every moment
        time.sleep(0.01)
    for run in runs:
        run.join()
        assert run.exitcode == 0
    seen.add(len(read_predictions(path)["demo.jpg"]))
    assert len(seen) <= 2 and not list(out.glob("*.partial"))


def test_a_full_disk_while_writing_a_csv_dataset_keeps_the_previous_one(tmp_path, monkeypatch):
    from singleshot.data.formats import load_annotations, simple

    data = load_annotations(f"csv:{ROOT / 'tests' / 'fixtures' / 'csv'}")
    out = simple.write_csv(data, tmp_path / "set")
    previous = (out / "boxes.csv").read_bytes()
    writer = simple.csv.writer

    class FullAfterTwoRows:
        """csv.writer whose third row meets a full disk."""

        def __init__(self, f) -> None:
            self.inner, self.rows = writer(f), 0

        def writerow(self, row) -> None:
            self.rows += 1
            if self.rows == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.inner.writerow(row)

    monkeypatch.setattr(simple.csv, "writer", FullAfterTwoRows)
    with pytest.raises(WriteError, match=r"boxes.csv: no space left on the device"):
        simple.write_csv(data, out)
    assert (out / "boxes.csv").read_bytes() == previous
    assert not list(out.glob(".*.partial"))
