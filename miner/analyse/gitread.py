"""Read one commit's tree straight from git objects: no checkout; one `ls-tree` lists every path
with its size, one persistent `cat-file --batch` per repository reads the blobs. Every git
process started here dies with the process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git

from miner.core.lifeline import HelperProcessKilled, dies_with_this_process
from miner.core.paths import path_text

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


@dataclass(frozen=True)
class TreeEntry:
    """One path of the mined commit's tree, as git records it."""

    path: str
    mode: int
    sha: str
    size: int | None = None  # None: a submodule, or a blob the object store lacks

    @property
    def is_symlink(self) -> bool:
        return self.mode == SYMLINK_MODE

    @property
    def is_submodule(self) -> bool:
        return self.mode == SUBMODULE_MODE


class BlobReader:
    """One `git cat-file --batch` for a repository: blob contents by id, one process for all.

    Our own rather than GitPython's persistent cat-file so that it dies with the process that
    started it (see `miner.core.lifeline`) and so that its death is told apart from a missing blob: a
    dead helper raises HelperProcessKilled (retried), a missing object ValueError (recorded).
    """

    def __init__(self, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            preexec_fn=dies_with_this_process(),
        )

    def read(self, sha: str) -> bytes:
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(sha.encode("ascii") + b"\n")
            process.stdin.flush()
            header = process.stdout.readline()
        except (BrokenPipeError, OSError):
            header = b""
        if not header.endswith(b"\n"):
            raise self._died()
        fields = header.split()
        if len(fields) != 3:  # "<sha> missing", "<sha> ambiguous"
            raise ValueError(f"object {sha} is not in the object store")
        size = int(fields[2])
        data = process.stdout.read(size + 1)
        if len(data) != size + 1:
            raise self._died()
        if fields[1] != b"blob":
            raise ValueError(f"object {sha} is a {fields[1].decode('ascii', 'replace')}, not a blob")
        return data[:size]

    def _died(self) -> HelperProcessKilled:
        code = self._process.wait()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return HelperProcessKilled(f"git cat-file ended mid-read ({how})")

    def close(self) -> None:
        process = self._process
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


class CommitReader:
    """A repository opened on one commit: `git ls-tree` lists it, one `git cat-file --batch` reads blobs.

    Always use it as a context manager: close() ends the cat-file process, which matters in a
    worker that mines thousands of repositories.
    """

    def __init__(self, git_dir: str | Path, rev: str | None = None) -> None:
        try:
            repo = git.Repo(str(git_dir))
        except git.NoSuchPathError:
            raise NotARepository(f"{git_dir} does not exist") from None
        except git.InvalidGitRepositoryError:
            raise NotARepository(f"{git_dir} is not a git repository") from None
        self.repo = repo
        # GIT_DIR: a bare directory without a config file looks like a work tree to git.
        # safe.directory: mined repositories belong to whoever cloned them; we only read objects.
        self._git_env = {
            **os.environ,
            "GIT_DIR": repo.git_dir,
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "safe.directory",
            "GIT_CONFIG_VALUE_0": "*",
            "GIT_NO_LAZY_FETCH": "1",
        }
        self._sha = self._resolve(rev)
        self._blobs: BlobReader | None = None

    def _git(self, args: list[str]) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            ["git", *args], env=self._git_env, capture_output=True, check=False, preexec_fn=dies_with_this_process()
        )
        if done.returncode < 0:
            raise HelperProcessKilled(f"git {args[0]} killed by signal {signal.Signals(-done.returncode).name}")
        return done

    def _resolve(self, rev: str | None) -> str:
        name = rev or "HEAD"
        done = self._git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}"])
        sha = done.stdout.decode("ascii", "replace").strip()
        if done.returncode == 0 and sha:
            return sha
        self.repo.close()
        if rev is None:
            raise RevisionNotFound("the repository has no commits on its default branch (HEAD names no commit)")
        raise RevisionNotFound(f"revision {name!r} not found")

    def __enter__(self) -> CommitReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._blobs is not None:
            self._blobs.close()
            self._blobs = None
        self.repo.close()

    @property
    def sha(self) -> str:
        return self._sha

    def entries(self) -> Iterator[TreeEntry]:
        """Every non-tree entry of the commit's tree, recursively, with blob sizes, in git's path
        order; one `git ls-tree` reads only tree objects and the blobs' headers, never contents."""
        listing = self._git(["ls-tree", "-r", "-l", "-z", "--full-tree", self._sha])
        if listing.returncode != 0:
            reason = listing.stderr.decode("utf-8", "replace").strip().splitlines()
            raise TreeUnreadable(f"git ls-tree failed: {reason[0] if reason else listing.returncode}")
        for mode, object_id, raw_path, size in ls_tree_records(listing.stdout):
            yield TreeEntry(path=path_text(raw_path), mode=mode, sha=object_id, size=size)

    def read(self, sha: str) -> bytes:
        """Contents of a blob; ValueError when the object store lacks it, HelperProcessKilled when
        git died reading it."""
        if self._blobs is None:
            self._blobs = BlobReader(self._git_env)
        return self._blobs.read(sha)

    def origin_url(self) -> str | None:
        try:
            return self.repo.remotes.origin.url
        except (AttributeError, IndexError, ValueError):
            return None
