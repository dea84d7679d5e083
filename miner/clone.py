"""Clone a repository safely: bare (no checkout, so no hooks or filters run), shallow, bounded in time."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from miner.domain import RunStatus
from miner.settings import LimitSettings

_SAFE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never wait for credentials
    "GIT_LFS_SKIP_SMUDGE": "1",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_ASKPASS": "true",
}


class CloneError(RuntimeError):
    """A clone that did not produce a repository; `status` is the MiningRun status to record."""

    def __init__(self, message: str, status: RunStatus = RunStatus.clone_failed) -> None:
        super().__init__(message)
        self.status = status


def _git(args: list[str], timeout_s: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **_SAFE_ENV}
    return subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=always", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )


def clone_repository(url: str, dest: Path, limits: LimitSettings, rev: str | None = None) -> Path:
    """A bare clone of `url` at `dest` holding the default branch HEAD (or `rev`)."""
    args = ["clone", "--bare", "--no-tags", "--quiet"]
    if rev is None:
        args += ["--depth", "1", "--single-branch"]
    try:
        done = _git([*args, "--", url, str(dest)], limits.clone_timeout_s)
    except subprocess.TimeoutExpired:
        raise CloneError(f"clone timed out after {limits.clone_timeout_s} s", RunStatus.timeout) from None
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"git exited {done.returncode}"
        raise CloneError(f"clone failed: {message}")
    return dest


def remote_head(url: str, branch: str | None, timeout_s: float = 60) -> str | None:
    """The commit a remote branch (default: HEAD) points at, read with `git ls-remote`: no clone.

    None when the remote has no such ref (an empty repository); CloneError when it cannot be read.
    """
    ref = f"refs/heads/{branch}" if branch else "HEAD"
    try:
        done = _git(["ls-remote", "--", url, "HEAD", ref], timeout_s)
    except subprocess.TimeoutExpired:
        raise CloneError(f"ls-remote timed out after {timeout_s} s", RunStatus.timeout) from None
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"git exited {done.returncode}"
        raise CloneError(f"ls-remote failed: {message}")
    refs = dict(reversed(line.split("\t", 1)) for line in done.stdout.splitlines() if "\t" in line)
    return refs.get(ref) or refs.get("HEAD")  # the API's default branch can lag a rename
