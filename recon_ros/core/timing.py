"""Per-stage wall-clock timings (last and mean milliseconds), thread-safe."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class StageTiming:
    last_ms: float
    mean_ms: float
    count: int


class StageTimer:
    """Accumulates durations per named stage.

    Args:
        synchronize: called before reading the clock at both ends of a stage, e.g.
            ``torch.cuda.synchronize`` so asynchronous GPU work is counted in its own stage.
    """

    def __init__(self, synchronize: Callable[[], None] | None = None) -> None:
        self._synchronize = synchronize
        self._lock = threading.Lock()
        self._stages: dict[str, list[float]] = {}  # name -> [last, total, count]

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        if self._synchronize is not None:
            self._synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._synchronize is not None:
                self._synchronize()
            self.record(stage, (time.perf_counter() - start) * 1000.0)

    def record(self, stage: str, milliseconds: float) -> None:
        with self._lock:
            entry = self._stages.setdefault(stage, [0.0, 0.0, 0])
            entry[0] = milliseconds
            entry[1] += milliseconds
            entry[2] += 1

    def snapshot(self) -> dict[str, StageTiming]:
        with self._lock:
            return {
                name: StageTiming(last, total / count, int(count))
                for name, (last, total, count) in self._stages.items()
            }

    def reset(self) -> None:
        with self._lock:
            self._stages.clear()
