"""Read one commit's tree straight from git objects: no checkout; one `ls-tree` lists every path
with its size, one persistent `cat-file --batch` per repository reads the blobs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
from gitdb.util import hex_to_bin

SYMLINK_MODE = 0o120000
SUBMODULE_MODE = 0o160000


class RevisionNotFound(LookupError):
    """The revision does not name a commit in this repository."""


class NotARepository(LookupError):
    """The path does not exist or holds no git repository."""


class TreeUnreadable(RuntimeError):
    """git could not list the commit's tree (a corrupt or missing tree object)."""


def ls_tree_records(data: bytes) -> Iterator[tuple[int, str, bytes, int | None]]:
    """(mode, object id, raw path, size) of each record of `git ls-tree -r -l -z` output.

    Size is None where git has none to give: `-` for a submodule's commit, `BAD` for a blob the
    object store lacks (a partial clone's unfetched blob, a damaged repository). Raw bytes, not
    GitPython's Tree: GitPython refuses a whole tree when one name is `.git`, `git~1` or another
    checkout hazard, which would lose every other file. We never check out, so such names are
    harmless here (a `.git` folder is vendored).
    """
    for record in data.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, _type, object_id, size = meta.split(maxsplit=3)
        size = size.strip()
        yield int(mode, 8), object_id.decode("ascii"), path, int(size) if size.isdigit() else None


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
    size: int | None = None      # None: a submodule, or a blob the object store lacks

    @property
    def is_symlink(self) -> bool:
        return self.mode == SYMLINK_MODE

    @property
    def is_submodule(self) -> bool:
        return self.mode == SUBMODULE_MODE


class CommitReader:
    """A repository opened on one commit: `git ls-tree` lists it, GitPython's persistent cat-file reads blobs.

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
        git_env = {
            "GIT_DIR": self.repo.git_dir,
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "safe.directory",
            "GIT_CONFIG_VALUE_0": "*",
        }
        self.repo.git.update_environment(**git_env)
        self._git_env = {**os.environ, **git_env, "GIT_NO_LAZY_FETCH": "1"}
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
        """Every non-tree entry of the commit's tree, recursively, with blob sizes, in git's path
        order; one `git ls-tree` reads only tree objects and the blobs' headers, never contents."""
        listing = subprocess.run(
            ["git", "ls-tree", "-r", "-l", "-z", "--full-tree", self.commit.hexsha],
            env=self._git_env, capture_output=True, check=False,
        )
        if listing.returncode != 0:
            reason = listing.stderr.decode("utf-8", "replace").strip().splitlines()
            raise TreeUnreadable(f"git ls-tree failed: {reason[0] if reason else listing.returncode}")
        for mode, object_id, raw_path, size in ls_tree_records(listing.stdout):
            yield TreeEntry(path=path_text(raw_path), mode=mode, sha=object_id, size=size)

    def read(self, sha: str) -> bytes:
        """Contents of a blob; ValueError when the object store lacks it."""
        return self.repo.odb.stream(hex_to_bin(sha)).read()

    def origin_url(self) -> str | None:
        try:
            return self.repo.remotes.origin.url
        except (AttributeError, IndexError, ValueError):
            return None
