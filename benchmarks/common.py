"""Helpers shared by the benchmarks: timing and the one-JSON-line-last convention."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import torch


def set_threads(threads: int) -> None:
    """Pin torch's thread count (its default may ignore the CPU set and oversubscribe)."""
    torch.set_num_threads(threads)


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def emit(result: dict) -> None:
    """Print the benchmark's result as the last line, JSON."""
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))
