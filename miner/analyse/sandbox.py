"""Run the parser where it cannot take the miner down with it.

libcst's native parser overflows its stack (SIGSEGV) on expressions nested thousands deep and
can spend minutes on pathological inputs; neither can be caught in-process, and a worker that
dies on a file would be redelivered the same repository forever. So files that need a parse go
to a child process with a per-file time limit: a crash or a time-out becomes that file's recorded
outcome and the child is replaced for the next file.

Starting a child (fork, then tuning libcst in it) costs about as much as parsing a small
repository, so `shared_sandbox()` keeps one child per mining process across repositories and
replaces it after `RECYCLE_AFTER_FILES` files, which keeps whatever a long-lived parser process
accumulates bounded.

The child is forked while its parent may hold a database connection, the broker connection and
git pipes. It closes all of them at once and keeps only its own pipe end, and the kernel kills it
when its parent dies (see `miner.core.lifeline`): a killed worker leaves no parser behind holding its
transaction open.
"""

from __future__ import annotations

import atexit
import faulthandler
import multiprocessing
import os
import resource
import signal
import sys
import time
from multiprocessing.connection import Connection

from miner.analyse.detect.detector import Detector, FileAnalysis, UnparsableCell
from miner.analyse.parser_tuning import collector_paused, prepare, tune_parser
from miner.analyse.sources import SourceFile
from miner.core.lifeline import close_inherited_descriptors, die_with_parent, parent_is_gone
from miner.core.rules import Rules


def _limit_memory(extra_mb: int) -> None:
    """Cap the child's address space: a hostile file costs a MemoryError, not the machine."""
    if extra_mb <= 0:
        return
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return
    limit = (size_kb * 1024) + extra_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))


def _serve(connection: Connection, detector: Detector, memory_mb: int, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this child ends
    # A crash here is an expected, recorded outcome (the parent names the file), not a bug report:
    # no faulthandler dump inherited from a parent that enabled it (pytest, python -X faulthandler).
    faulthandler.disable()
    tune_parser()  # this child only parses: no validation, plain constructors
    _limit_memory(memory_mb)
    # Long `a + b + ...` chains are deep trees; Python accepts thousands of terms, so the walk
    # must too. Deeper still can overflow the C stack: this child dies and the file is recorded.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    while True:
        try:
            if not connection.poll(PARENT_CHECK_INTERVAL_S):
                if parent_is_gone(parent_pid):
                    return
                continue
            source = connection.recv()
        except (EOFError, OSError):
            return  # the parent closed its end, or died: either way nobody waits for us
        if source is None:
            return
        try:
            with collector_paused():
                analysis = detector.analyse(source)
        except BaseException as exc:  # noqa: BLE001 - anything the detector raises is the file's outcome
            analysis = FileAnalysis((), (UnparsableCell(None, f"{type(exc).__name__}: {exc}"),), True)
        connection.send(analysis)


def _child_main(connection: Connection, detector: Detector, memory_mb: int, parent_pid: int) -> None:
    """The forked child: it keeps its own pipe end and the standard streams, nothing else of its
    parent (no database or broker socket, no git pipe, not the parent's pipe end, so the
    parent's death reads as EOF), and the kernel kills it when the parent dies. It never returns."""
    code = 0
    try:
        die_with_parent(parent_pid)
        close_inherited_descriptors([connection.fileno()])
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        _serve(connection, detector, memory_mb, parent_pid)
    except BaseException:  # noqa: BLE001 - a child must never return into its parent's code
        code = 1
    finally:
        os._exit(code)


RECYCLE_AFTER_FILES = 2000
PARENT_CHECK_INTERVAL_S = 1.0


class _Child:
    """A forked process by pid: its exit code without blocking, a kill, a bounded join."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exitcode: int | None = None

    def poll(self) -> int | None:
        if self.exitcode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.exitcode = -signal.SIGKILL  # reaped elsewhere: gone, cause unknown
                return self.exitcode
            if pid != 0:
                self.exitcode = os.waitstatus_to_exitcode(status)
        return self.exitcode

    def is_alive(self) -> bool:
        return self.poll() is None

    def kill(self) -> None:
        if self.is_alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def join(self, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.exitcode


class ParserSandbox:
    """Analyses SourceFiles in a child process; a context manager, or shared via shared_sandbox()."""

    def __init__(
        self, detector: Detector, timeout_s: float, memory_mb: int = 0, recycle_after_files: int = RECYCLE_AFTER_FILES
    ) -> None:
        self.detector = detector
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.recycle_after_files = recycle_after_files
        self.files_in_child = 0
        self.children_started = 0
        self.owner_pid = os.getpid()
        prepare()  # children fork with the tuned constructors already built
        self._process: _Child | None = None
        self._connection: Connection | None = None

    def __enter__(self) -> ParserSandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def child_pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    def _start(self) -> Connection:
        parent_end, child_end = multiprocessing.Pipe()
        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child_main(child_end, self.detector, self.memory_mb, parent_pid)
        child_end.close()
        self.files_in_child = 0
        self.children_started += 1
        self._process, self._connection = _Child(pid), parent_end
        return parent_end

    def _discard(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(timeout_s=5)
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None

    def analyse(self, source: SourceFile) -> FileAnalysis:
        """The file's analysis. A child that crashes on it gets one more try in a new child: a
        child killed from outside (the OOM killer, an operator) says nothing about the file, a
        file that crashes two children does."""
        if not self.detector.needs_parse(source):
            return FileAnalysis((), (), False)
        analysis, crashed = self._analyse_in_child(source)
        if crashed:
            analysis, _ = self._analyse_in_child(source)
        return analysis

    def _analyse_in_child(self, source: SourceFile) -> tuple[FileAnalysis, bool]:
        if self._connection is not None and self.files_in_child >= self.recycle_after_files:
            self.close()
        connection = self._connection or self._start()
        try:
            connection.send(source)
            self.files_in_child += 1
            if connection.poll(self.timeout_s):
                return connection.recv(), False
            message = f"parser time limit: no result within {self.timeout_s:g} s"
            crashed = False
        except (EOFError, OSError, BrokenPipeError):
            code = self._process.join(timeout_s=5) if self._process is not None else None
            reason = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
            message = f"parser crashed ({reason}); input too deeply nested or malformed"
            crashed = True
        self._discard()
        return FileAnalysis((), (UnparsableCell(None, message),), True), crashed

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.send(None)
            except (OSError, BrokenPipeError):
                pass
        if self._process is not None:
            self._process.join(timeout_s=2)
        self._discard()


_shared: ParserSandbox | None = None


def shared_sandbox(rules: Rules, timeout_s: float, memory_mb: int = 0) -> ParserSandbox:
    """This process's parser sandbox for these settings, started on first use and kept across
    repositories (different settings replace it). Never close it per repository."""
    global _shared
    current = _shared
    if current is not None and (
        current.detector.rules == rules and current.timeout_s == timeout_s and current.memory_mb == memory_mb
    ):
        return current
    if current is not None:
        current.close()
    _shared = ParserSandbox(Detector(rules), timeout_s, memory_mb)
    return _shared


def close_shared_sandbox() -> None:
    """End the shared child (at exit; tests call it to start from nothing)."""
    global _shared
    if _shared is not None and _shared.owner_pid == os.getpid():
        _shared.close()
    _shared = None


def _forget_parents_sandbox() -> None:
    """In a forked child the shared sandbox's pipe and process are the parent's: drop them
    without a word to the parser child, which still serves the parent."""
    global _shared
    if _shared is not None and _shared._connection is not None:
        _shared._connection.close()
    _shared = None


os.register_at_fork(after_in_child=_forget_parents_sandbox)
atexit.register(close_shared_sandbox)
