"""Read one commit's tree straight from git objects: no checkout, one cat-file process per repository."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
from gitdb.util import hex_to_bin

SYMLINK_MODE = 0o120000
SUBMODULE_MODE = 0o160000


class RevisionNotFound(LookupError):
    """The revision does not name a commit in this repository."""


@dataclass(frozen=True)
class TreeEntry:
    """One path of the mined commit's tree, as git records it."""

    path: str
    mode: int
    sha: str

    @property
    def is_symlink(self) -> bool:
        return self.mode == SYMLINK_MODE

    @property
    def is_submodule(self) -> bool:
        return self.mode == SUBMODULE_MODE


class CommitReader:
    """A repository opened on one commit; GitPython's persistent cat-file reads the objects.

    GitPython keeps `git cat-file` processes and caches alive per Repo, so always use this as a
    context manager: close() ends them, which matters in a worker that mines thousands of repos.
    """

    def __init__(self, git_dir: str | Path, rev: str | None = None) -> None:
        self.repo = git.Repo(str(git_dir))
        # GIT_DIR: a bare directory without a config file looks like a work tree to GitPython.
        # safe.directory: mined repositories belong to whoever cloned them; we only read objects.
        self.repo.git.update_environment(
            GIT_DIR=self.repo.git_dir,
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="safe.directory",
            GIT_CONFIG_VALUE_0="*",
        )
        try:
            self.commit = self.repo.commit(rev or "HEAD")
        except (git.BadName, ValueError, git.GitCommandError) as exc:
            self.repo.close()
            raise RevisionNotFound(f"revision {rev or 'HEAD'!r} not found: {exc}") from None

    def __enter__(self) -> "CommitReader":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.repo.git.clear_cache()
        self.repo.close()

    @property
    def sha(self) -> str:
        return self.commit.hexsha

    def entries(self) -> Iterator[TreeEntry]:
        """Every non-tree entry of the commit's tree, recursively, without reading blob contents."""
        stack = [self.commit.tree]
        while stack:
            tree = stack.pop()
            for item in tree:
                if item.type == "tree":
                    stack.append(item)
                else:
                    yield TreeEntry(path=item.path, mode=item.mode, sha=item.hexsha)

    def size(self, sha: str) -> int:
        """Size of a blob in bytes; ValueError when the object store lacks it."""
        return self.repo.odb.info(hex_to_bin(sha)).size

    def read(self, sha: str) -> bytes:
        """Contents of a blob; ValueError when the object store lacks it."""
        return self.repo.odb.stream(hex_to_bin(sha)).read()

    def origin_url(self) -> str | None:
        try:
            return self.repo.remotes.origin.url
        except (AttributeError, IndexError, ValueError):
            return None
