"""The benchmark corpus: which commits of which repositories, and their blobs read once, untimed.

Every tool is then timed on the same bytes; `inventory` also records what the mirror lacks, so
the report can say which files every tool skipped."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from miner.analyse.gitread import SUBMODULE_MODE, SYMLINK_MODE
from miner.core.paths import is_vendored, source_kind
from miner.core.settings import LimitSettings
from miner.present.evaluation import find_git_dir


@dataclass
class Blob:
    path: str
    sha: str
    size: int
    data: bytes


@dataclass
class Repo:
    name: str
    git_dir: Path
    commit: str
    source_bytes: int = 0  # every .py/.ipynb blob of the tree, vendored or not (git grep's input)
    source_files: int = 0
    analysed: list[Blob] = field(default_factory=list)  # what the pipeline reads: not vendored, present
    missing: list[str] = field(default_factory=list)  # .py/.ipynb paths whose blob the mirror lacks
    git_dir_bytes: int = 0

    @property
    def item(self) -> tuple[str, str, str]:
        return (self.name, str(self.git_dir), self.commit)

    @property
    def analysed_bytes(self) -> int:
        return sum(b.size for b in self.analysed)


def load_corpus(corpus: Path, repos_root: Path, limit: int | None = None) -> tuple[list[Repo], list[str]]:
    """The corpus's repositories found under `repos_root` (the first `limit`), and the names not found."""
    entries = json.loads(corpus.read_text())["repositories"]
    if limit:
        entries = entries[:limit]
    repos: list[Repo] = []
    not_found: list[str] = []
    for entry in entries:
        git_dir = find_git_dir(repos_root, entry["repo"])
        if git_dir is None:
            not_found.append(entry["repo"])
            continue
        repos.append(Repo(entry["repo"], git_dir, entry["commit"]))
    return repos, not_found


def git(git_dir: Path | str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], **kwargs)


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def inventory(repo: Repo, limits: LimitSettings) -> None:
    """The commit's .py/.ipynb blobs, the analysed ones with their bytes (one cat-file --batch)."""
    out = git(repo.git_dir, "ls-tree", "-r", "-l", "-z", repo.commit, capture_output=True, check=True).stdout
    wanted: list[tuple[str, str, str]] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, path_b = record.split(b"\t", 1)
        mode, kind, sha, size = meta.decode().split()
        path = path_b.decode("utf-8", "surrogateescape")
        if kind != "blob" or source_kind(path) is None:
            continue
        if size == "-" or not size.isdigit():  # `BAD`: the object is not in the mirror
            repo.missing.append(path)
            continue
        repo.source_files += 1
        repo.source_bytes += int(size)
        if int(mode, 8) in (SYMLINK_MODE, SUBMODULE_MODE) or is_vendored(path):
            continue
        limit = limits.max_notebook_bytes if path.endswith(".ipynb") else limits.max_file_bytes
        if int(size) <= limit:
            wanted.append((path, sha, size))
    if wanted:
        batch = git(
            repo.git_dir,
            "cat-file",
            "--batch",
            input="".join(s + "\n" for _, s, _ in wanted).encode(),
            capture_output=True,
            check=True,
        ).stdout
        pos = 0
        for path, sha, _ in wanted:
            end = batch.index(b"\n", pos)
            header = batch[pos:end].split()
            size = int(header[2])
            repo.analysed.append(Blob(path, sha, size, batch[end + 1 : end + 1 + size]))
            pos = end + 1 + size + 1
    repo.git_dir_bytes = dir_bytes(repo.git_dir)
