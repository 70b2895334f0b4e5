"""Training samplers: the order of every draw of a run as a function of ``(seed, epoch)``.

:class:`EpochSampler` orders one epoch over several weighted training sets, :class:`RunSampler` chains the
epochs of a whole run (resuming mid-epoch by skipping the draws already trained) and :class:`EpochDraws` reads
its ``(epoch, index)`` draws, so one DataLoader with long-lived workers serves every epoch of the trainer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Sampler

from singleshot.data.dataset import DetectionDataset


class EpochSampler(Sampler[int]):
    """The sample order of one epoch over several concatenated training sets.

    Set ``k`` contributes ``round(weight_k * size_k)`` draws (a subset when the weight is below 1, repeats when
    above), all shuffled together by a generator seeded with ``(seed, epoch)``. Resuming an interrupted epoch
    (skipping the draws it already trained) is :class:`RunSampler`'s job.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], seed: int) -> None:
        self.sizes = list(sizes)
        self.weights = list(weights)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> np.ndarray:
        """Every index of the epoch, ``(len(self),)``."""
        rng = np.random.default_rng([self.seed, self.epoch])
        parts, offset = [], 0
        for size, weight in zip(self.sizes, self.weights):
            count = round(weight * size)
            repeats = -(-count // size) if size else 0
            draws = np.concatenate([rng.permutation(size) for _ in range(repeats)]) if repeats else np.zeros(0, int)
            parts.append(draws[:count] + offset)
            offset += size
        return rng.permutation(np.concatenate(parts)) if parts else np.zeros(0, int)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return sum(round(w * s) for s, w in zip(self.sizes, self.weights))


class RunSampler(Sampler[tuple[int, int]]):
    """The ``(epoch, index)`` draws of a whole run, from ``start_epoch`` (after ``skip`` draws) to ``end_epoch``.

    Each epoch is :class:`EpochSampler`'s order cut to whole batches (the partial batch an epoch-long DataLoader
    drops with ``drop_last``), so one DataLoader serves every epoch: its worker processes start once and keep
    preparing the next epoch's batches while the last ones train or validation runs, instead of being started and
    refilled every epoch (most of an epoch's time when a GPU makes the steps fast).

    Data-parallel training (``world_size`` processes, ``batch_size`` each): the order is cut to whole global
    batches of ``batch_size * world_size`` draws and process ``rank`` takes its consecutive ``batch_size`` of
    each, so the processes together draw exactly what one process with the global batch would, in the same
    batches, and every draw is still ``(seed, epoch, index)``. ``skip`` counts global draws (whole global batches).
    """

    def __init__(self, epochs: EpochSampler, batch_size: int, start_epoch: int, end_epoch: int, skip: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of {world_size} processes")
        self.epochs, self.batch_size = epochs, batch_size
        self.start_epoch, self.end_epoch, self.skip = start_epoch, end_epoch, skip
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        step = self.batch_size * self.world_size
        for epoch in range(self.start_epoch, self.end_epoch):
            self.epochs.set_epoch(epoch)
            order = self.epochs.order()
            whole = len(order) // step * step
            first = self.skip if epoch == self.start_epoch else 0
            mine = order[first:whole].reshape(-1, self.world_size, self.batch_size)[:, self.rank].reshape(-1)
            yield from ((epoch, int(i)) for i in mine)

    def __len__(self) -> int:
        step = self.batch_size * self.world_size
        per_epoch = len(self.epochs) // step * step
        return max(0, per_epoch * (self.end_epoch - self.start_epoch) - self.skip) // self.world_size


class EpochDraws(torch.utils.data.Dataset):
    """The concatenated training sets indexed by :class:`RunSampler`'s ``(epoch, index)`` draws.

    The epoch travels with each draw (it seeds the augmentation, ``(seed, epoch, index)``), so worker processes
    that outlive an epoch still augment each draw exactly as an epoch-long loader would.
    """

    def __init__(self, datasets: Sequence[DetectionDataset]) -> None:
        self.datasets = list(datasets)
        self.joined = ConcatDataset(self.datasets)

    def __len__(self) -> int:
        return len(self.joined)

    def __getitem__(self, draw: tuple[int, int]) -> Any:
        epoch, index = draw
        for d in self.datasets:
            d.set_epoch(epoch)
        return self.joined[index]
