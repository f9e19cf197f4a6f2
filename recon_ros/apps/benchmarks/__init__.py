"""Benchmarks behind `recon-ros bench` and the scripts in bench/: figures and ratios against a
baseline measured in the same run. Speed targets live here, never in timed tests."""

import time
from collections.abc import Callable

import numpy as np


def time_calls(fn: Callable[[], object], iterations: int, warmup: int, sync: Callable[[], None]):
    """``fn`` timed ``iterations`` times after ``warmup`` calls (``sync`` waits for the device):
    ``{"median_ms", "best_ms", "per_s"}`` (best: the fastest call, the figure least disturbed by
    other processes on a shared machine)."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    med, best = float(np.median(times)), float(np.min(times))
    return {"median_ms": med * 1e3, "best_ms": best * 1e3, "per_s": 1.0 / med}
