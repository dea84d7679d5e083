"""Read one commit's tree straight from git objects: no checkout, one cat-file process per repository."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
from gitdb.util import bin_to_hex, hex_to_bin

SYMLINK_MODE = 0o120000
SUBMODULE_MODE = 0o160000


class RevisionNotFound(LookupError):
    """The revision does not name a commit in this repository."""


class NotARepository(LookupError):
    """The path does not exist or holds no git repository."""


TREE_MODE_TYPE = 0o040000 >> 12


def tree_records(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(mode, name, binary object id) of each entry of a raw tree object, in stored order.

    Our own reader rather than GitPython's Tree: GitPython (3.2) refuses a whole tree when one
    name is `.git`, `git~1` or another checkout hazard, which would lose every other file of the
    commit. We never check out, so such names are harmless here (a `.git` folder is vendored).
    """
    offset = 0
    while offset < len(data):
        space = data.index(b" ", offset)
        end = data.index(b"\0", space)
        if end + 21 > len(data):
            raise ValueError("truncated tree object")
        yield int(data[offset:space], 8), data[space + 1:end], data[end + 1:end + 21]
        offset = end + 21


def path_text(raw: bytes) -> str:
    """A tree path as text every store accepts: bytes that are not UTF-8 become `\\xNN` escapes
    (never lone surrogates, which PostgreSQL and UTF-8 encoders refuse)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


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
        try:
            self.repo = git.Repo(str(git_dir))
        except git.NoSuchPathError:
            raise NotARepository(f"{git_dir} does not exist") from None
        except git.InvalidGitRepositoryError:
            raise NotARepository(f"{git_dir} is not a git repository") from None
        # GIT_DIR: a bare directory without a config file looks like a work tree to GitPython.
        # safe.directory: mined repositories belong to whoever cloned them; we only read objects.
        self.repo.git.update_environment(
            GIT_DIR=self.repo.git_dir,
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="safe.directory",
            GIT_CONFIG_VALUE_0="*",
        )
        if rev is None and not self.repo.head.is_valid():
            self.repo.close()
            raise RevisionNotFound("the repository has no commits on its default branch (HEAD names no commit)")
        try:
            self.commit = self.repo.commit(rev or "HEAD")
        except (git.BadName, git.BadObject, ValueError, LookupError, git.GitCommandError) as exc:
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
        stack = [(b"", self.commit.tree.binsha)]
        while stack:
            prefix, tree_id = stack.pop()
            for mode, name, object_id in tree_records(self.repo.odb.stream(tree_id).read()):
                if mode >> 12 == TREE_MODE_TYPE:
                    stack.append((prefix + name + b"/", object_id))
                else:
                    yield TreeEntry(path=path_text(prefix + name), mode=mode, sha=bin_to_hex(object_id).decode("ascii"))

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
