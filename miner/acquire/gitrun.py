"""Run git under a budget: one deadline and one byte limit shared by every git process of a
clone, in its own process group, under a guard that kills the group when the miner dies.

Crossing the deadline or the byte limit kills the whole group (git and its helpers) and raises
CloneError with the MiningRun status it is recorded as (timeout, too_large); a git killed by a
signal we did not send raises HelperProcessKilled, which the mine retries.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from miner.core.domain import RunStatus
from miner.core.lifeline import HelperProcessKilled, dies_with_this_process
from miner.core.settings import LimitSettings

_SAFE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for credentials
    "GIT_ASKPASS": "true",
    "GIT_LFS_SKIP_SMUDGE": "1",
    "GIT_CONFIG_NOSYSTEM": "1",
}

# Command-line configuration outranks every config file, including the clone's own.
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",  # no hook runs, whatever a global config says
    "core.fsmonitor=false",
    "protocol.file.allow=always",  # tests and benchmarks serve file:// repositories
    "protocol.ext.allow=never",  # ext:: would run a command named in the URL
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "gc.auto=0",  # no background maintenance in a folder about to vanish
    "maintenance.auto=false",
)

# git starts helpers of its own (remote-https, index-pack) that would outlive it: each git runs
# under a shell that the kernel sends SIGTERM when our process dies (miner.core.lifeline), and that
# then kills its whole process group, git's helpers included.
_GROUP_GUARD = [
    "sh",
    "-c",
    'trap "kill -KILL 0" TERM; exec 3<&0; "$@" <&3 3<&- & exec 3<&-; wait $!',
    "miner-git",
]  # POSIX sh (bash opens /dev/tty); stdin handed to git through fd 3
# a shell reports a child killed by signal N as exit status 128 + N; git's own codes stop at 129
_SIGNAL_EXIT_BASE = 128

POLL_INTERVAL_S = 0.1


class CloneError(RuntimeError):
    """A clone that did not produce a repository; `status` is the MiningRun status to record."""

    def __init__(self, message: str, status: RunStatus = RunStatus.clone_failed) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Budget:
    """One deadline and one byte limit shared by every git process of a clone."""

    deadline: float  # time.monotonic() value
    timeout_s: float
    watch: Path | None = None  # folder whose size is bounded
    max_bytes: int | None = None

    @classmethod
    def for_clone(cls, limits: LimitSettings, dest: Path | None = None) -> Budget:
        return cls(time.monotonic() + limits.clone_timeout_s, limits.clone_timeout_s, dest, limits.max_clone_bytes)


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under `folder` (0 when it does not exist yet)."""
    total = 0
    stack = [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:  # a temporary pack renamed under our feet
                continue
    return total


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL git's whole process group, then reap git (a helper that left the group and still
    holds our pipes must not keep us waiting)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_git(
    args: list[str],
    budget: Budget,
    *,
    cwd: Path | None = None,
    stdin_text: str | None = None,
    binary_stdout: bool = False,
) -> subprocess.CompletedProcess:
    """Run git in its own process group; past the deadline or the byte limit the group dies.

    `subprocess.run(timeout=...)` would kill git alone and leave its helpers (remote-https,
    upload-pack, index-pack) running and writing; killing the group ends them all. Output is
    text (undecodable bytes replaced) unless `binary_stdout`: tree paths need not be UTF-8.
    """
    command = ["git"]
    for setting in _SAFE_CONFIG:
        command += ["-c", setting]
    try:
        process = subprocess.Popen(
            [*_GROUP_GUARD, *command, *args],
            cwd=cwd,
            env={**os.environ, **_SAFE_ENV},
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=dies_with_this_process(signal.SIGTERM),  # no git left fetching for a dead worker
        )
    except OSError as exc:
        raise CloneError(f"cannot run git: {exc}", RunStatus.error) from None
    pending_input = stdin_text.encode() if stdin_text is not None else None
    while True:
        remaining_s = budget.deadline - time.monotonic()
        if remaining_s <= 0:
            _kill_group(process)
            raise CloneError(f"clone timed out after {budget.timeout_s:g} s", RunStatus.timeout)
        try:
            stdout, stderr = process.communicate(pending_input, timeout=min(POLL_INTERVAL_S, remaining_s))
            break
        except subprocess.TimeoutExpired:
            pending_input = None  # communicate() sends its input once, on the first call
        _check_size(budget, on_excess=lambda: _kill_group(process))
    _check_size(budget)
    killed_by = -process.returncode if process.returncode < 0 else process.returncode - _SIGNAL_EXIT_BASE
    if killed_by > 1:  # our own kills raised above: this signal came from outside
        _kill_group(process)  # its helpers (remote-https, index-pack) go with it
        raise HelperProcessKilled(f"git {args[0]} killed by signal {_signal_name(killed_by)}")
    return subprocess.CompletedProcess(
        process.args,
        process.returncode,
        stdout if binary_stdout else stdout.decode("utf-8", "replace"),
        stderr.decode("utf-8", "replace"),
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _check_size(budget: Budget, on_excess: Callable[[], None] | None = None) -> None:
    if budget.watch is None or budget.max_bytes is None:
        return
    size = folder_bytes(budget.watch)
    if size > budget.max_bytes:
        if on_excess is not None:
            on_excess()
        raise CloneError(f"clone exceeded {budget.max_bytes} bytes on disk ({size} bytes so far)", RunStatus.too_large)


def git_reason(done: subprocess.CompletedProcess) -> str:
    """git's own reason: its first `fatal:`/`error:` line (the later ones are generic advice such
    as "Please make sure you have the correct access rights"), else its last line."""
    lines = [line.strip() for line in done.stderr.strip().splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line[len(prefix) :]
    return lines[-1] if lines else f"git exited {done.returncode}"


def as_url(url: str) -> str:
    """A local path becomes a file:// URL: a plain path makes git copy files and ignore --filter."""
    if "://" not in url and not url.startswith("git@") and Path(url).exists():
        return Path(url).resolve().as_uri()
    return url
