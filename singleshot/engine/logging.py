"""The trainer's logs: ``train_log.csv``, ``val_log.csv``, TensorBoard when installed, and the progress-bar text."""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from singleshot.engine.state import TrainState
from singleshot.losses import LossOutput


class TrainLogger:
    """Averages loss terms over a window; writes ``train_log.csv``, ``val_log.csv`` and TensorBoard if installed.

    Args:
        out_dir: the run's folder.
        append: continue the logs of a resumed run (no header) instead of starting them.
        shots: 2 for a two-shot model: ``conf``/``loc`` are the second shot's, with ``pal1_*`` columns for the first.
        distill: log the distillation term (a ``distill`` column).
        landmarks: log the landmark term (a ``landm`` column, unweighted) of a model with a landmark head.
    """

    def __init__(self, out_dir: Path, append: bool, shots: int = 1, distill: bool = False,
                 landmarks: bool = False) -> None:
        mode = "a" if append else "w"
        self.shots, self.distill, self.landmarks = shots, distill, landmarks
        # Kept open for the whole run (rows are flushed as written) and closed by close().
        self._train_file = open(out_dir / "train_log.csv", mode, newline="")  # noqa: SIM115
        self._val_file = open(out_dir / "val_log.csv", mode, newline="")  # noqa: SIM115
        self._train = csv.writer(self._train_file)
        self._val = csv.writer(self._val_file)
        if not append:
            # two shots: conf/loc are the second shot's (pal2), as in the DSFD training logs, plus pal1 terms
            extra = (["pal1_conf", "pal1_loc"] if shots == 2 else []) + (["distill"] if distill else []) + \
                (["landm"] if landmarks else [])
            self._train.writerow(["epoch", "iteration", "lr", "loss", "conf", "loc", "positives", *extra,
                                  "img_per_s", "time"])
            self._val.writerow(["epoch", "iteration", "ap", "time"])
        self._sums = np.zeros(8)
        self._count = 0
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(out_dir / "tensorboard"))
        except Exception:  # noqa: BLE001 - TensorBoard is optional (not installed is the usual case)
            self._tb = None

    def add(self, loss: LossOutput, shot_losses: Sequence[LossOutput] | None = None,
            distill: torch.Tensor | None = None, landm: torch.Tensor | None = None) -> None:
        """Add one step's terms to the window (``shot_losses``: both shots' of a two-shot model)."""
        first = [shot_losses[0].conf.item(), shot_losses[0].loc.item()] if shot_losses else [0.0, 0.0]
        self._sums += [loss.total.item(), loss.conf.item(), loss.loc.item(), float(loss.num_positives), *first,
                       0.0 if distill is None else distill.item(), 0.0 if landm is None else landm.item()]
        self._count += 1

    def flush(self, state: TrainState, lr: float, speed: float) -> dict[str, float]:
        """Write the window's means as a row of ``train_log.csv``, start a new window; returns the means."""
        mean = self._sums / max(1, self._count)
        row = {"loss": mean[0], "conf": mean[1], "loc": mean[2], "positives": mean[3], "lr": lr,
               "pal1_conf": mean[4], "pal1_loc": mean[5], "distill": mean[6], "landm": mean[7]}
        extra = ([f"{mean[4]:.5f}", f"{mean[5]:.5f}"] if self.shots == 2 else []) + \
            ([f"{mean[6]:.5f}"] if self.distill else []) + ([f"{mean[7]:.5f}"] if self.landmarks else [])
        self._train.writerow([state.epoch + 1, state.iteration, f"{lr:.6g}", f"{mean[0]:.5f}", f"{mean[1]:.5f}",
                              f"{mean[2]:.5f}", f"{mean[3]:.1f}", *extra, f"{speed:.1f}", f"{time.time():.0f}"])
        self._train_file.flush()
        if self._tb is not None:
            for key in ("loss", "conf", "loc", "lr"):
                self._tb.add_scalar(f"train/{key}", row[key], state.iteration)
        self._sums[:] = 0
        self._count = 0
        return row

    def progress(self, row: dict[str, float], speed: float, remaining_s: float) -> str:
        """The progress bar's text for a row of :meth:`flush`: losses, rate, speed and time left."""
        terms = (
            f"pal1 conf {row['pal1_conf']:.3f} pal1 loc {row['pal1_loc']:.3f} "
            f"pal2 conf {row['conf']:.3f} pal2 loc {row['loc']:.3f}"
            if self.shots == 2 else f"conf {row['conf']:.3f} loc {row['loc']:.3f}"
        ) + (f" distill {row['distill']:.3f}" if self.distill else "") + \
            (f" landm {row['landm']:.3f}" if self.landmarks else "")
        return f"loss {row['loss']:.3f} {terms} lr {row['lr']:.2g} {speed:.0f} img/s ETA {_hms(remaining_s)}"

    def val(self, state: TrainState, ap: float) -> None:
        """Write a validation AP to ``val_log.csv``."""
        self._val.writerow([state.epoch, state.iteration, f"{ap:.5f}", f"{time.time():.0f}"])
        self._val_file.flush()
        if self._tb is not None:
            self._tb.add_scalar("val/ap", ap, state.iteration)

    def close(self) -> None:
        """Close the files (and TensorBoard's writer)."""
        self._train_file.close()
        self._val_file.close()
        if self._tb is not None:
            self._tb.close()


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
