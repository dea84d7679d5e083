"""Clone a repository safely and cheaply: only the commit mined and only the blobs analysed.

A clone is bare (no checkout, so no smudge filter, LFS or post-checkout hook can run), shallow
(`--depth 1`, one branch, no tags), partial (`--filter=blob:none`: commits and trees only), never
recurses into submodules and runs no hook (`core.hooksPath=/dev/null`). The blobs the pipeline
will read (*.py and *.ipynb that are neither vendored nor links) are then fetched in ONE request,
the way git's own promisor fetch asks for them, and the clone is sealed (its remote removed) so
a later read of a missing object fails at once instead of lazily fetching blob after blob.

Every git process runs under one budget (see `gitrun`). Each way of failing carries the MiningRun
status it is recorded as: clone_failed, timeout or too_large.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from miner.acquire.gitrun import Budget, CloneError, as_url, git_reason, run_git
from miner.core.domain import RunStatus
from miner.core.paths import is_vendored, path_text, source_kind
from miner.core.settings import LimitSettings

SYMLINK_MODE = "120000"
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")

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
    url = as_url(url)
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
            raise CloneError(f"clone failed: {git_reason(done)}")
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
        raise CloneError(f"clone failed: {git_reason(done)}")
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
        raise CloneError(f"cannot list the tree of {commit}: {git_reason(done)}", RunStatus.error)
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
        raise CloneError(f"cannot list the objects of {commit}: {git_reason(done)}", RunStatus.error)
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
            raise CloneError(f"fetching the source blobs failed: {git_reason(done)}")
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
        done = run_git(["ls-remote", "--", as_url(url), "HEAD", ref], budget)
    except CloneError as exc:
        if exc.status is RunStatus.timeout:
            raise CloneError(f"ls-remote timed out after {timeout_s:g} s", RunStatus.timeout) from None
        raise
    if done.returncode != 0:
        raise CloneError(f"ls-remote failed: {git_reason(done)}")
    refs = dict(reversed(line.split("\t", 1)) for line in done.stdout.splitlines() if "\t" in line)
    return refs.get(ref) or refs.get("HEAD")  # the API's default branch can lag a rename
