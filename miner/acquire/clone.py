"""Clone a repository safely and cheaply: only the commit mined and only the blobs analysed.

A clone is bare (no checkout, so no smudge filter, LFS or post-checkout hook can run), shallow
(`--depth 1`, one branch, no tags), partial (`--filter=blob:none`: commits and trees only), never
recurses into submodules and runs no hook (`core.hooksPath=/dev/null`). The blobs the pipeline
will read (*.py and *.ipynb that are neither vendored nor links) are then fetched in ONE request,
the way git's own promisor fetch asks for them, and the clone is sealed (its remote removed) so
a later read of a missing object fails at once instead of lazily fetching blob after blob.

Every git process runs in its own process group under one deadline and one byte budget for the
clone folder; crossing either kills the whole group. Each way of failing carries the MiningRun
status it is recorded as: clone_failed, timeout or too_large.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from miner.core.domain import RunStatus
from miner.core.lifeline import HelperProcessKilled, dies_with_this_process
from miner.core.paths import is_vendored, path_text, source_kind
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

SYMLINK_MODE = "120000"
POLL_INTERVAL_S = 0.1
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


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


def _git_reason(done: subprocess.CompletedProcess) -> str:
    """git's own reason: its first `fatal:`/`error:` line (the later ones are generic advice such
    as "Please make sure you have the correct access rights"), else its last line."""
    lines = [line.strip() for line in done.stderr.strip().splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line[len(prefix) :]
    return lines[-1] if lines else f"git exited {done.returncode}"


def _as_url(url: str) -> str:
    """A local path becomes a file:// URL: a plain path makes git copy files and ignore --filter."""
    if "://" not in url and not url.startswith("git@") and Path(url).exists():
        return Path(url).resolve().as_uri()
    return url


# ------------------------------------------------------------------------------------------ clone


def clone_repository(
    url: str,
    dest: Path,
    limits: LimitSettings,
    rev: str | None = None,
    *,
    upload_pack: str | None = None,
) -> Path:
    """A sealed bare clone of `url` at `dest` holding the default branch HEAD (or `rev`) with the
    trees of that commit and the blobs of its Python sources and notebooks.

    `upload_pack` is the command the remote side runs (for file:// and ssh remotes only): the
    benchmark uses it to serve read-only repositories with filters allowed.
    """
    if url.startswith("-"):
        raise CloneError(f"refusing clone URL {url!r}: it would read as an option")
    budget = Budget.for_clone(limits, dest)
    url = _as_url(url)
    extra = ["--upload-pack", upload_pack] if upload_pack else []
    if rev is None:
        done = run_git(
            [
                "clone",
                "--bare",
                "--quiet",
                "--filter=blob:none",
                "--depth",
                "1",
                "--no-tags",
                "--single-branch",
                *extra,
                "--",
                url,
                str(dest),
            ],
            budget,
        )
        if done.returncode != 0:
            raise CloneError(f"clone failed: {_git_reason(done)}")
        commit = _resolve(dest, "HEAD", budget)
        if commit is None:
            raise CloneError("clone failed: the remote has no commits")
    else:
        commit = _clone_revision(url, dest, rev, budget, extra)
    fetch_source_blobs(dest, commit, budget, upload_pack=upload_pack)
    seal(dest, budget)
    return dest


def _clone_revision(url: str, dest: Path, rev: str, budget: Budget, extra: list[str]) -> str:
    """Shallow when `rev` is a full commit id the server lets us ask for; else every commit and
    tree of the history (still no blobs), so that any name or expression resolves."""
    if _FULL_SHA.match(rev):
        done = run_git(["init", "--bare", "--quiet", str(dest)], budget)
        if done.returncode == 0:
            run_git(["remote", "add", "origin", url], budget, cwd=dest)
            done = run_git(
                [
                    "fetch",
                    "--quiet",
                    "--depth",
                    "1",
                    "--filter=blob:none",
                    "--no-tags",
                    "--no-write-fetch-head",
                    *extra,
                    "origin",
                    rev,
                ],
                budget,
                cwd=dest,
            )
            if done.returncode == 0:
                run_git(["update-ref", "refs/heads/mined", rev], budget, cwd=dest)
                run_git(["symbolic-ref", "HEAD", "refs/heads/mined"], budget, cwd=dest)
                return rev
        _remove_tree(dest)
    done = run_git(["clone", "--bare", "--quiet", "--filter=blob:none", *extra, "--", url, str(dest)], budget)
    if done.returncode != 0:
        raise CloneError(f"clone failed: {_git_reason(done)}")
    commit = _resolve(dest, rev, budget)
    if commit is None:
        raise CloneError(f"revision {rev!r} not found in {url}", RunStatus.error)
    return commit


def _remove_tree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _resolve(git_dir: Path, rev: str, budget: Budget) -> str | None:
    done = run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], budget, cwd=git_dir)
    return (done.stdout.strip() or None) if done.returncode == 0 else None


# ------------------------------------------------------------------------------------------ blobs


def source_blob_ids(git_dir: Path, commit: str, budget: Budget) -> list[str]:
    """Blob ids of the files the pipeline reads: *.py / *.ipynb, not vendored, not links.

    Reads trees only (`ls-tree` without sizes), which a blob-less clone already holds.
    """
    done = run_git(["ls-tree", "-r", "-z", "--full-tree", commit], budget, cwd=git_dir, binary_stdout=True)
    if done.returncode != 0:
        raise CloneError(f"cannot list the tree of {commit}: {_git_reason(done)}", RunStatus.error)
    wanted: dict[str, None] = {}
    for record in done.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid = meta.decode("ascii").split()
        if kind != "blob" or mode == SYMLINK_MODE:
            continue
        path = path_text(raw_path)  # the very text the pipeline will judge the path by
        if source_kind(path) is None or is_vendored(path):
            continue
        wanted[oid] = None
    return list(wanted)


def missing_objects(git_dir: Path, commit: str, budget: Budget) -> set[str]:
    """Objects of the commit's tree the clone lacks, listed without fetching them."""
    done = run_git(["rev-list", "--objects", "--no-walk", "--missing=print", commit], budget, cwd=git_dir)
    if done.returncode != 0:
        raise CloneError(f"cannot list the objects of {commit}: {_git_reason(done)}", RunStatus.error)
    return {line[1:].strip() for line in done.stdout.splitlines() if line.startswith("?")}


def fetch_source_blobs(git_dir: Path, commit: str, budget: Budget, *, upload_pack: str | None = None) -> list[str]:
    """Fetch the missing source blobs of `commit` in one request; returns the ids still missing.

    A server that ignored the filter sent every blob already, and nothing is fetched. Should the
    batch fail (a server that lacks one of the blobs refuses the whole request), it is split in
    halves until the blobs it cannot serve are isolated; those stay missing and the pipeline
    records those files as skipped.
    """
    wanted = source_blob_ids(git_dir, commit, budget)
    if not wanted:
        return []
    absent = missing_objects(git_dir, commit, budget)
    to_fetch = [oid for oid in wanted if oid in absent]
    if not to_fetch:
        return []
    unavailable: list[str] = []
    batches = [to_fetch]
    while batches:
        batch = batches.pop()
        done = run_git(
            [
                "-c",
                "fetch.negotiationAlgorithm=noop",
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--recurse-submodules=no",
                "--no-auto-maintenance",
                "--filter=blob:none",
                *(["--upload-pack", upload_pack] if upload_pack else []),
                "--stdin",
                "origin",
            ],
            budget,
            cwd=git_dir,
            stdin_text="".join(f"{oid}\n" for oid in batch),
        )
        if done.returncode == 0:
            continue
        if len(batch) == len(to_fetch) and not _remote_answers(git_dir, budget, upload_pack):
            raise CloneError(f"fetching the source blobs failed: {_git_reason(done)}")
        if len(batch) == 1:
            unavailable.append(batch[0])
        else:
            middle = len(batch) // 2
            batches += [batch[:middle], batch[middle:]]
    return unavailable


def _remote_answers(git_dir: Path, budget: Budget, upload_pack: str | None) -> bool:
    extra = ["--upload-pack", upload_pack] if upload_pack else []
    return run_git(["ls-remote", *extra, "origin", "HEAD"], budget, cwd=git_dir).returncode == 0


def seal(git_dir: Path, budget: Budget) -> None:
    """Forget the remote: with no promisor left, reading a missing object fails instead of
    fetching it, so mining never touches the network."""
    run_git(["config", "--remove-section", "remote.origin"], budget, cwd=git_dir)
    run_git(["config", "--unset-all", "extensions.partialclone"], budget, cwd=git_dir)


# ----------------------------------------------------------------------------------- remote heads


def remote_head(url: str, branch: str | None, timeout_s: float = 60) -> str | None:
    """The commit a remote branch (default: HEAD) points at, read with `git ls-remote`: no clone.

    None when the remote has no such ref (an empty repository); CloneError when it cannot be read.
    """
    ref = f"refs/heads/{branch}" if branch else "HEAD"
    budget = Budget(time.monotonic() + timeout_s, timeout_s)
    try:
        done = run_git(["ls-remote", "--", _as_url(url), "HEAD", ref], budget)
    except CloneError as exc:
        if exc.status is RunStatus.timeout:
            raise CloneError(f"ls-remote timed out after {timeout_s:g} s", RunStatus.timeout) from None
        raise
    if done.returncode != 0:
        raise CloneError(f"ls-remote failed: {_git_reason(done)}")
    refs = dict(reversed(line.split("\t", 1)) for line in done.stdout.splitlines() if "\t" in line)
    return refs.get(ref) or refs.get("HEAD")  # the API's default branch can lag a rename
