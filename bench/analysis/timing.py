"""Wall and CPU seconds of a block: a shared machine's noise only adds time, so `best_of` keeps the fastest."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Timing:
    seconds: float = 0.0
    cpu: float = 0.0  # user+sys of this process and of children waited for meanwhile

    def as_dict(self) -> dict:
        return {"seconds": round(self.seconds, 4), "cpu_seconds": round(self.cpu, 4)}


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


@contextmanager
def timed() -> Iterator[Timing]:
    t = Timing()
    wall, cpu = time.perf_counter(), _cpu()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - wall
        t.cpu = _cpu() - cpu


def best_of(n: int, run: Callable[[], object]) -> Timing:
    best: Timing | None = None
    for _ in range(n):
        with timed() as t:
            run()
        if best is None or t.seconds < best.seconds:
            best = t
    assert best is not None
    return best
