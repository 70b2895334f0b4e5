"""Faults during training: a full disk stops the run with one line and keeps the last good checkpoint; a run
killed with SIGKILL again and again and resumed each time ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from singleshot import checkpoint as checkpoint_module
from singleshot.atomic import WriteError
from singleshot.checkpoint import load_checkpoint
from singleshot.config import dump_config
from singleshot.engine.trainer import Trainer
from tests.engine.test_trainer import tiny_config

ROOT = Path(__file__).resolve().parents[2]


def test_a_full_disk_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def save_until_the_disk_fills(obj, f):
        calls.append(1)
        if len(calls) >= 2:  # the second checkpoint finds the disk full
            f.write(b"PK\x03\x04partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, f)

    monkeypatch.setattr(checkpoint_module.torch, "save", save_until_the_disk_fills)
    with pytest.raises(WriteError, match=r"last.pt: no space left on the device"):
        Trainer(tiny_config(tmp_path, "run", checkpoint_every=2), progress=False).fit()
    monkeypatch.undo()
    kept = load_checkpoint(tmp_path / "run" / "last.pt")
    assert kept["train_state"]["iteration"] == 2
    assert not list((tmp_path / "run").glob("*.partial"))
    # the run goes on from it once there is room again
    resumed = Trainer(tiny_config(tmp_path, "run", checkpoint_every=2), progress=False)
    assert resumed.fit(resume=tmp_path / "run" / "last.pt").iteration == 6


def _iteration(path: Path) -> int:
    try:
        return load_checkpoint(path)["train_state"]["iteration"]
    except Exception:  # noqa: BLE001 - not there yet
        return -1


def test_three_sigkills_and_resumes_end_bit_identical(tmp_path):
    Trainer(tiny_config(tmp_path, "straight", epochs=4), progress=False).fit()
    config = tiny_config(tmp_path, "killed", epochs=4, checkpoint_every=1)
    dump_config(config, tmp_path / "killed.yaml")
    last = tmp_path / "killed" / "last.pt"
    command = [sys.executable, "-m", "singleshot", "train", str(tmp_path / "killed.yaml"), "--no-progress"]
    kills = 0
    while kills < 3:
        seen = _iteration(last)
        child = subprocess.Popen(command + (["--resume", str(last)] if last.exists() else []), cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while _iteration(last) <= seen and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if child.poll() is not None:
            break  # finished before the kill: nothing left to interrupt
        os.kill(child.pid, signal.SIGKILL)  # at once: often inside the next step or the next checkpoint write
        child.wait()
        kills += 1
    assert kills == 3
    subprocess.run(command + ["--resume", str(last)], cwd=ROOT, capture_output=True, check=True)
    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(last)
    assert a["train_state"] == b["train_state"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
