"""Our own analysis, timed: one process, the in-process parser variant, run_parallel, and a stage breakdown."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.analysis.corpus import Repo
from bench.analysis.timing import Timing, timed
from miner.analyse.detect.detector import Detector
from miner.analyse.gitread import CommitReader
from miner.analyse.parser_tuning import collector_paused, tuned_parser
from miner.analyse.pipeline import mine_commit
from miner.analyse.sandbox import close_shared_sandbox
from miner.core.domain import MiningResult
from miner.core.rules import load_rules
from miner.core.settings import LimitSettings
from miner.orchestrate.mining import run_parallel


def mine_item(item: tuple[str, str, str]) -> MiningResult:
    """One repository at one commit, exactly as the miner does it (picklable for run_parallel)."""
    name, git_dir, commit = item
    return mine_commit(git_dir, full_name=name, rules=load_rules(), limits=LimitSettings(), rev=commit)


class InProcessSandbox:
    """Stands in for miner.analyse.sandbox's shared parser child: the detector runs in this process, with
    libcst tuned as the child tunes it, so the stages can be timed (and profiled) and the
    sandbox's own cost measured."""

    def __init__(self, detector, timeout_s: float = 0.0, memory_mb: int = 0) -> None:
        self.detector = detector

    def __enter__(self) -> InProcessSandbox:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def analyse(self, source):
        with collector_paused():
            return self.detector.analyse(source)

    def close(self) -> None:
        pass


@contextmanager
def parse_in_process() -> Iterator[bool]:
    """Replace the pipeline's parser sandbox by InProcessSandbox (and tune libcst in this process
    meanwhile); yields whether the pipeline had a sandbox to replace."""
    import miner.analyse.pipeline as pipeline_mod

    original = getattr(pipeline_mod, "shared_sandbox", None)
    if original is None:
        yield False
        return
    pipeline_mod.shared_sandbox = lambda rules, *_: InProcessSandbox(Detector(rules))  # type: ignore[attr-defined]
    try:
        with tuned_parser():
            yield True
    finally:
        pipeline_mod.shared_sandbox = original  # type: ignore[attr-defined]


def run_ours(
    repos: list[Repo], workers: int, per_repo: dict[str, float] | None = None
) -> tuple[Timing, dict[str, MiningResult]]:
    function = mine_item
    if workers <= 1 and per_repo is not None:  # in-process: a closure is fine and times each repo

        def function(item: tuple[str, str, str]) -> MiningResult:
            started = time.perf_counter()
            try:
                return mine_item(item)
            finally:
                per_repo[item[0]] = time.perf_counter() - started

    with timed() as t:
        results = {item[0]: result for item, result in run_parallel(function, [r.item for r in repos], workers)}
        close_shared_sandbox()  # inside the timing: the parser child's CPU is counted once it is reaped
    return t, results


def makespan(durations: list[float], workers: int) -> float:
    """Finish time of a pool handing tasks, in this order, to whichever worker frees first."""
    free = [0.0] * workers
    for d in durations:
        i = free.index(min(free))
        free[i] += d
    return max(free)


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x ^= i * 7
    return x


def cpu_ceiling(workers: int, seconds_per_task: float = 1.5) -> dict:
    """The machine's own 'workers over 1' figure right now: pure-Python spinning through run_parallel."""
    n = 200_000
    while True:  # calibrate one task to about seconds_per_task
        t = time.perf_counter()
        _spin(n)
        dt = time.perf_counter() - t
        if dt > 0.2:
            break
        n *= 2
    n = int(n * seconds_per_task / dt)
    tasks = [n] * (2 * workers)
    with timed() as one:
        list(run_parallel(_spin, tasks, 1))
    with timed() as many:
        list(run_parallel(_spin, tasks, workers))
    return {"one_seconds": one.seconds, "many_seconds": many.seconds, "speedup": one.seconds / many.seconds}


class Breakdown:
    """Inclusive wall time of the pipeline's stages, by wrapping the functions mine_commit calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._undo: list[tuple[object, str, object]] = []

    def _add(self, key: str, dt: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + dt
        self.calls[key] = self.calls.get(key, 0) + 1

    def wrap(self, owner: object, attr: str, key: str) -> None:
        original = getattr(owner, attr)
        add = self._add

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(key, time.perf_counter() - t)

        self._undo.append((owner, attr, original))
        setattr(owner, attr, wrapper)

    def wrap_generator(self, owner: object, attr: str, key: str) -> None:
        original = getattr(owner, attr)
        add = self._add

        def wrapper(*args, **kwargs):
            it = original(*args, **kwargs)
            while True:
                t = time.perf_counter()
                try:
                    value = next(it)
                except StopIteration:
                    add(key, time.perf_counter() - t)
                    return
                add(key, time.perf_counter() - t)
                yield value

        self._undo.append((owner, attr, original))
        setattr(owner, attr, wrapper)

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()


def run_breakdown(repos: list[Repo]) -> tuple[float, dict[str, float], dict[str, int]]:
    import miner.analyse.detect.detector as detector_mod
    import miner.analyse.pipeline as pipeline_mod
    import miner.analyse.sources as sources_mod

    b = Breakdown()
    b.wrap(CommitReader, "__init__", "git: open repo + resolve commit")
    b.wrap_generator(CommitReader, "entries", "git: ls-tree -r -l (paths + sizes)")
    b.wrap(CommitReader, "read", "git: blob read (cat-file --batch)")
    b.wrap(CommitReader, "close", "git: close (end cat-file)")
    b.wrap(pipeline_mod, "load_source", "load_source (decode / notebook)")
    b.wrap(sources_mod, "notebook_file", "  notebook_file (json + cells)")
    b.wrap(sources_mod, "strip_ipython", "  strip_ipython")
    b.wrap(detector_mod.Detector, "analyse", "Detector.analyse")
    b.wrap(detector_mod, "_parse", "  libcst parse_module")
    b.wrap(detector_mod, "gather", "  gather pass (walk.py)")
    try:
        with parse_in_process(), timed() as t:
            for repo in repos:
                mine_item(repo.item)
    finally:
        b.restore()
    return t.seconds, b.seconds, b.calls
