"""Turn what a user typed (owner/name, a clone URL, a local path) into a git directory to read."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git

from miner.acquire.clone import CloneError, clone_repository
from miner.core.settings import Settings

_OWNER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")
_URL_NAME = re.compile(r"[:/]([^/:]+)/([^/]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class Target:
    """A repository to mine: where it comes from and the name it is stored under."""

    spec: str
    full_name: str
    clone_url: str | None  # None for a local repository read in place
    local_path: Path | None


def name_from_url(url: str) -> str | None:
    """`https://github.com/o/n.git`, `git@github.com:o/n.git`, `file:///x/o/n` -> `o/n`."""
    match = _URL_NAME.search(url.strip())
    return f"{match.group(1)}/{match.group(2)}" if match else None


def _local_name(path: Path) -> str:
    try:
        repo = git.Repo(str(path))
        try:
            url = repo.remotes.origin.url if "origin" in [r.name for r in repo.remotes] else None
        finally:
            repo.close()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        url = None
    if url and (name := name_from_url(url)):
        return name
    folder = path.resolve()
    if folder.name == ".git":
        folder = folder.parent
    return folder.name.removesuffix(".git")


def parse_target(spec: str, settings: Settings, name: str | None = None) -> Target:
    path = Path(spec).expanduser()
    if path.exists():
        return Target(spec, name or _local_name(path), None, path)
    if "://" in spec or spec.startswith("git@"):
        derived = name_from_url(spec)
        return Target(spec, name or derived or spec, spec, None)
    if _OWNER_NAME.match(spec):
        web = settings.github.web_url.rstrip("/")
        return Target(spec, name or spec, f"{web}/{spec}.git", None)
    raise ValueError(f"{spec!r} is neither a local path, a clone URL nor owner/name")


@contextmanager
def materialise(target: Target, settings: Settings, rev: str | None = None) -> Iterator[Path]:
    """A git directory for the target; a clone lives in a temporary folder removed afterwards."""
    if target.local_path is not None:
        yield target.local_path
        return
    assert target.clone_url is not None
    if settings.work_dir:
        Path(settings.work_dir).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="miner-", dir=settings.work_dir))
    try:
        yield clone_repository(target.clone_url, workdir / "repo.git", settings.limits, rev=rev)
    finally:
        # git may still hold files for a moment after its group was killed: retry once, then
        # give up quietly rather than fail the run over a temporary folder
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists():
            shutil.rmtree(workdir, ignore_errors=True)


__all__ = ["CloneError", "Target", "materialise", "name_from_url", "parse_target"]
