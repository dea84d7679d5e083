"""Child processes that die with their parent and hold nothing of it.

A worker killed with `kill -9` (an operator, the OOM killer) must not leave a child behind: an
orphan that kept a copy of the worker's database socket keeps the worker's transaction open on
the server, with its row locks, and every later save of that repository waits on it. So every
long-lived child this project starts (the parser child, git's `cat-file --batch`, a clone's git,
a local pool's processes, a Celery pool child) asks the kernel to kill it when its parent dies,
and the forked parser child also closes every descriptor it inherited but its own pipe.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable, Iterable

_PR_SET_PDEATHSIG = 1


class HelperProcessKilled(RuntimeError):
    """A helper process (git, the parser child) died from a signal we did not send: the work it
    was doing says nothing about the repository, so it is retried rather than recorded."""


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def die_with_parent(parent_pid: int | None = None, sig: int = signal.SIGKILL) -> None:
    """Have the kernel send `sig` to this process when its parent dies (Linux's
    PR_SET_PDEATHSIG). Call it first thing in a child; when the parent is already gone (it died
    between the fork and this call, so no signal will come), exit at once.

    Safe in a `preexec_fn`: a ctypes call and a getppid, no allocation of Python objects that
    matter. Elsewhere (no prctl) the parent-pid check still runs; callers that loop should also
    check `parent_is_gone` now and then.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def dies_with_this_process(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child gets `sig` when the calling process dies."""
    parent_pid = os.getpid()
    return lambda: die_with_parent(parent_pid, sig)


def parent_is_gone(parent_pid: int) -> bool:
    """The fallback where PR_SET_PDEATHSIG is missing or was defeated: re-parented means orphaned."""
    return os.getppid() != parent_pid


def open_descriptors() -> list[int]:
    """This process's open file descriptors (from /proc/self/fd; a range scan elsewhere)."""
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/fd"))
    except OSError:
        limit = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
        found = []
        for descriptor in range(limit):
            try:
                os.fstat(descriptor)
            except OSError:
                continue
            found.append(descriptor)
        return found


def close_inherited_descriptors(keep: Iterable[int]) -> None:
    """Close every descriptor but `keep` and the standard three: sockets to the database and the
    broker, git pipes, the parent's end of our own pipe. Only the descriptors go: the Python
    objects that wrapped them are never used in this process (it leaves with os._exit)."""
    kept = {0, 1, 2, *keep}
    for descriptor in open_descriptors():
        if descriptor not in kept:
            try:
                os.close(descriptor)
            except OSError:
                pass  # the /proc listing's own descriptor, already closed
