"""Hostile and broken repositories (issue 6, "Bad input"): every case ends as a FileResult or a
MiningResult with a status and a reason, the rest of the repository is still analysed, and
nothing raises, follows a link, runs a hook or fetches a submodule.

Every case is a real git repository built in tmp_path. Trees that a work tree cannot hold (names
that are not UTF-8, a `.git` folder, gitlinks, links to anywhere) are written with git's own
plumbing (`hash-object`, `mktree`, `commit-tree`, `fast-import`): the objects are what a hostile
push would leave on a server.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from gitrepos import (
    BuiltRepo,
    file_result,
    finding,
    init_repo,
    make_repo,
    mine,
    notebook_v3,
    notebook_v4,
    remove_blob,
    sorted_findings,
)
from sqlmodel import Session, select
from typer.testing import CliRunner

from miner.acquire.clone import clone_repository
from miner.analyse.pipeline import mine_commit
from miner.core.domain import Category, FileKind, FileStatus, MiningResult, RunStatus
from miner.core.rules import load_rules
from miner.core.settings import LimitSettings

C = Category
CALL = "import mlflow\nmlflow.log_param('a', 1)\n"
SIBLING = "train.py"
SIBLING_SOURCE = "import mlflow\nmlflow.autolog()\n"
SIBLING_FINDING = finding(SIBLING, 2, 1, "mlflow.autolog", C.autolog)


def mine_with(
    built: BuiltRepo | Path, rev: str | None = None, full_name: str = "hostile/repo", **limits: float
) -> MiningResult:
    path = built.path if isinstance(built, BuiltRepo) else built
    return mine_commit(path, full_name=full_name, rules=load_rules(), limits=LimitSettings(**limits), rev=rev)


def assert_rest_analysed(result: MiningResult) -> None:
    """The run succeeded and the well-behaved sibling file was analysed with its finding."""
    assert (result.status, result.error) == (RunStatus.ok, None)
    sibling = file_result(result, SIBLING)
    assert (sibling.status, sibling.error, sibling.parsed) == (FileStatus.ok, None, True)
    assert SIBLING_FINDING in result.findings


def assert_outcome(result: MiningResult, path: str, status: FileStatus, reason: str | None) -> None:
    outcome = file_result(result, path)
    assert outcome.status is status, (path, outcome)
    if reason is None:
        assert outcome.error is None, (path, outcome)
    else:
        assert outcome.error is not None and reason in outcome.error, (path, outcome.error)


def assert_storable(result: MiningResult) -> None:
    """Every text the store writes encodes as UTF-8 and holds no NUL (PostgreSQL refuses both)."""
    texts = [result.error or ""]
    for f in result.files:
        texts += [f.path, f.error or ""]
    for f in result.findings:
        texts += [f.path, f.qualified_name, f.api, f.flavor or ""]
    for text in texts:
        text.encode("utf-8")  # raises on lone surrogates
        assert "\x00" not in text, text


# --- git plumbing: trees a work tree cannot hold ---------------------------------------------------


@dataclass(frozen=True)
class Link:
    target: bytes


@dataclass(frozen=True)
class Gitlink:
    commit: str


@dataclass(frozen=True)
class Executable:
    data: bytes


RawTree = Mapping[bytes, "bytes | str | Link | Gitlink | Executable | RawTree"]


def git_out(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True, check=True).stdout


def hash_blob(repo: Path, data: bytes) -> str:
    return git_out(repo, "hash-object", "-w", "--stdin", stdin=data).decode().strip()


def write_raw_tree(repo: Path, tree: RawTree) -> str:
    records = []
    for name, value in tree.items():
        if isinstance(value, Mapping):
            mode, kind, sha = "040000", "tree", write_raw_tree(repo, value)
        elif isinstance(value, Link):
            mode, kind, sha = "120000", "blob", hash_blob(repo, value.target)
        elif isinstance(value, Gitlink):
            mode, kind, sha = "160000", "commit", value.commit
        elif isinstance(value, Executable):
            mode, kind, sha = "100755", "blob", hash_blob(repo, value.data)
        else:
            data = value.encode("utf-8") if isinstance(value, str) else value
            mode, kind, sha = "100644", "blob", hash_blob(repo, data)
        records.append(f"{mode} {kind} {sha}\t".encode() + name + b"\0")
    return git_out(repo, "mktree", "-z", "--missing", stdin=b"".join(records)).decode().strip()


def commit_raw_tree(root: Path, tree: RawTree) -> BuiltRepo:
    """A repository whose HEAD commit has exactly `tree`, written object by object."""
    init_repo(root).close()
    tree_sha = write_raw_tree(root, tree)
    sha = git_out(root, "commit-tree", tree_sha, "-m", "hostile tree").decode().strip()
    git_out(root, "update-ref", "HEAD", sha)
    return BuiltRepo(path=root, sha=sha)


def fast_import(root: Path, files: Iterable[tuple[bytes, bytes]]) -> BuiltRepo:
    """Commit many or huge files in one `git fast-import` stream (no work tree, no index)."""
    init_repo(root).close()
    process = subprocess.Popen(
        # big blobs: no delta search and light compression, so 200 MB commit in seconds
        ["git", "-c", "core.bigFileThreshold=1m", "-c", "core.compression=1", "fast-import", "--quiet", "--done"],
        cwd=root,
        stdin=subprocess.PIPE,
    )
    assert process.stdin is not None
    write = process.stdin.write
    write(b"commit refs/heads/master\ncommitter Test <t@example.invalid> 0 +0000\ndata 4\ntest\n")
    for path, data in files:
        write(b"M 100644 inline " + path + b"\ndata " + str(len(data)).encode() + b"\n" + data + b"\n")
    write(b"\ndone\n")
    process.stdin.close()
    assert process.wait(timeout=300) == 0
    git_out(root, "symbolic-ref", "HEAD", "refs/heads/master")
    return BuiltRepo(path=root, sha=git_out(root, "rev-parse", "HEAD").decode().strip())


# --- symbolic links --------------------------------------------------------------------------------


def test_symlinks_out_of_the_tree_to_themselves_and_in_loops_are_skipped_never_followed(tmp_path: Path) -> None:
    # A file outside the repository that WOULD produce a finding if a link were followed.
    outside = tmp_path / "outside.py"
    outside.write_text("import mlflow\nmlflow.log_metric('leaked', 1)\n")
    built = make_repo(
        tmp_path / "repo",
        {SIBLING: SIBLING_SOURCE, "pkg/real.py": CALL},
        symlinks={
            "passwd.py": "/etc/passwd",
            "up.py": "../../..",
            "outside.py": str(outside),
            "relative_outside.py": "../outside.py",
            "self.py": "self.py",
            "loop_a.py": "loop_b.py",
            "loop_b.py": "loop_a.py",
            "pkg/to_real.py": "real.py",
            "nb.ipynb": "/etc/passwd",
            "tree_loop": ".",  # a linked folder is one entry, never a tree to walk
            "escape": "../..",
        },
    )
    result = mine(built)
    assert_rest_analysed(result)
    link = (FileStatus.skipped, "symbolic link (not followed)", 0, False)
    assert {f.path: (f.status, f.error, f.size_bytes, f.parsed) for f in result.files} == {
        SIBLING: (FileStatus.ok, None, len(SIBLING_SOURCE), True),
        "pkg/real.py": (FileStatus.ok, None, len(CALL), True),
        "passwd.py": link,
        "up.py": link,
        "outside.py": link,
        "relative_outside.py": link,
        "self.py": link,
        "loop_a.py": link,
        "loop_b.py": link,
        "pkg/to_real.py": link,
        "nb.ipynb": link,
    }
    assert sorted_findings(result.findings) == [
        finding("pkg/real.py", 2, 1, "mlflow.log_param", C.params),
        SIBLING_FINDING,
    ]


# --- file names ------------------------------------------------------------------------------------

ODD_NAMES: dict[bytes, str] = {
    b"a..py": "a..py",
    b"..py": "..py",
    b"...py": "...py",
    b"-rf.py": "-rf.py",
    b"--output=x.py": "--output=x.py",
    b"new\nline.py": "new\nline.py",
    b"tab\there.py": "tab\there.py",
    "no\u00a0break\u00a0space.py".encode(): "no\u00a0break\u00a0space.py",
    b"{braces}.py": "{braces}.py",
    b"$(id) && ; |.py": "$(id) && ; |.py",
    b"back\\slash.py": "back\\slash.py",
    b" leading space.py": " leading space.py",
    "emoji \U0001f600.py".encode(): "emoji \U0001f600.py",
    b"caf\xe9.py": "caf\\xe9.py",  # latin-1 bytes: not UTF-8, stored as escapes
    b"\xff\xfe.py": "\\xff\\xfe.py",
    b"\xed\xa0\x80.py": "\\xed\\xa0\\x80.py",  # an encoded surrogate is not valid UTF-8 either
    b"notebook \xe9.ipynb": "notebook \\xe9.ipynb",
}


def odd_names_repo(root: Path) -> BuiltRepo:
    tree: dict[bytes, object] = {name: CALL for name in ODD_NAMES if name.endswith(b".py")}
    tree[b"notebook \xe9.ipynb"] = notebook_v4([("code", CALL)])
    tree[b"{{ cookiecutter.project }}"] = {b"-main.py": CALL, b"sub\xe9": {b"x.py": CALL}}
    tree[SIBLING.encode()] = SIBLING_SOURCE
    return commit_raw_tree(root, tree)  # type: ignore[arg-type]


@pytest.mark.parametrize("via_clone", [False, True], ids=["in-place", "cloned"])
def test_odd_file_names_are_analysed_under_valid_text_paths(tmp_path: Path, via_clone: bool) -> None:
    built = odd_names_repo(tmp_path / "repo")
    if via_clone:  # the crawl's path: the clone must fetch the blobs of names that are not UTF-8 too
        result = mine_with(clone_repository(str(built.path), tmp_path / "clone.git", LimitSettings()))
    else:
        result = mine(built)
    assert_rest_analysed(result)
    expected_paths = set(ODD_NAMES.values()) | {
        "{{ cookiecutter.project }}/-main.py",
        "{{ cookiecutter.project }}/sub\\xe9/x.py",
        SIBLING,
    }
    assert {f.path: f.status for f in result.files} == {path: FileStatus.ok for path in expected_paths}
    for path in expected_paths:
        path.encode("utf-8")  # no lone surrogates: PostgreSQL and every UTF-8 encoder accept it
    assert_storable(result)
    expected = [
        finding(path, 2, 1, "mlflow.log_param", C.params, cell=0 if path.endswith(".ipynb") else None)
        for path in expected_paths - {SIBLING}
    ]
    assert sorted_findings(result.findings) == sorted_findings([*expected, SIBLING_FINDING])


def test_odd_file_names_and_hostile_content_are_stored(tmp_path: Path, session: Session) -> None:
    """The same runs saved to SQLite and PostgreSQL (conftest's `session` runs both): the store
    takes every path and message the miner produced, byte for byte."""
    from miner import __version__
    from schema import models
    from schema.repositories import upsert_repository
    from schema.runs import save_run

    names = mine_with(odd_names_repo(tmp_path / "names"), full_name="hostile/names")
    content = mine_with(
        make_repo(
            tmp_path / "content",
            {
                SIBLING: SIBLING_SOURCE,
                "nul.py": b"import mlflow\x00\n",
                "latin.py": "import mlflow\nx = 'José'\n".encode("latin-1"),
                "py2.py": "import mlflow\nprint 'caf\u00e9'\n",
                "surrogate.ipynb": b'{"cells": [{"cell_type": "code", "source": "import mlflow\\nx = \\"\\ud800\\u0000\\""}]}',
                "bad.ipynb": b"\x00\xff{",
            },
        ),
        full_name="hostile/content",
    )
    stored: dict[str, set[tuple[str, str, str | None]]] = {}
    for run in (names, content):
        assert_storable(run)
        repository = upsert_repository(session=session, full_name=run.full_name)
        saved = save_run(
            session=session, repository=repository, result=run, rules_version="test", tool_version=__version__
        )
        rows = session.exec(select(models.FileResult).where(models.FileResult.mining_run_id == saved.id)).all()
        stored[repository.full_name] = {(r.path, r.status.value, r.error) for r in rows}
        assert stored[repository.full_name] == {(f.path, f.status.value, f.error) for f in run.files}
        finding_paths = session.exec(select(models.Finding.path).where(models.Finding.mining_run_id == saved.id)).all()
        assert sorted(finding_paths) == sorted(f.path for f in run.findings)
    assert {status for _, status, _ in stored[content.full_name]} == {"ok", "unparsable"}


# --- submodules, LFS, hooks ------------------------------------------------------------------------


def test_submodules_are_not_fetched_and_only_py_gitlinks_are_recorded(tmp_path: Path) -> None:
    library = make_repo(tmp_path / "library", {"lib.py": "import mlflow\nmlflow.log_metric('from_submodule', 1)\n"})
    gitmodules = (
        f'[submodule "lib"]\n\tpath = lib\n\turl = {library.path}\n'
        f'[submodule "sub.py"]\n\tpath = sub.py\n\turl = {library.path}\n'
        '[submodule "evil"]\n\tpath = nb.ipynb\n\turl = ../../../../../etc\n'
    )
    built = commit_raw_tree(
        tmp_path / "repo",
        {
            b".gitmodules": gitmodules,
            b"lib": Gitlink(library.sha),
            b"sub.py": Gitlink(library.sha),
            b"nb.ipynb": Gitlink("1" * 40),  # a commit that exists nowhere
            b"vendor": {b"tools.py": Gitlink(library.sha)},
            SIBLING.encode(): SIBLING_SOURCE,
        },
    )
    clone = clone_repository(str(built.path), tmp_path / "clone.git", LimitSettings())
    for result in (mine(built), mine_with(clone)):
        assert_rest_analysed(result)
        submodule = (FileStatus.skipped, "submodule (not fetched)", False)
        assert {f.path: (f.status, f.error, f.parsed) for f in result.files} == {
            SIBLING: (FileStatus.ok, None, True),
            "sub.py": submodule,
            "nb.ipynb": submodule,
            "vendor/tools.py": submodule,
        }
        assert result.findings == [SIBLING_FINDING]  # nothing from the library's lib.py
    # Neither the repository nor its clone holds the library's commit: it was never fetched.
    for git_dir in (built.path, clone):
        missing = subprocess.run(["git", "cat-file", "-e", library.sha], cwd=git_dir, capture_output=True)
        assert missing.returncode != 0


LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)
LFS_NOTES = "import mlflow\n# version https://git-lfs.github.com/spec/v1\nmlflow.set_tag('lfs', 1)\n"


def test_lfs_pointer_files_are_skipped_as_content_not_in_git(tmp_path: Path) -> None:
    built = commit_raw_tree(
        tmp_path / "repo",
        {
            b".gitattributes": "*.py filter=lfs diff=lfs merge=lfs -text\n",
            b"model.py": LFS_POINTER,
            b"models": {b"train.ipynb": LFS_POINTER},
            # mentions LFS but is a real file: analysed as usual
            b"lfs_notes.py": LFS_NOTES,
            SIBLING.encode(): SIBLING_SOURCE,
        },
    )
    result = mine(built)
    assert_rest_analysed(result)
    lfs = (FileStatus.skipped, "Git LFS pointer (the file's content is not in git)", len(LFS_POINTER))
    assert {f.path: (f.status, f.error, f.size_bytes) for f in result.files} == {
        SIBLING: (FileStatus.ok, None, len(SIBLING_SOURCE)),
        "model.py": lfs,
        "models/train.ipynb": lfs,
        "lfs_notes.py": (FileStatus.ok, None, len(LFS_NOTES)),
    }
    assert sorted_findings(result.findings) == [
        finding("lfs_notes.py", 3, 1, "mlflow.set_tag", C.tags),
        SIBLING_FINDING,
    ]


def _hook(marker: Path) -> Executable:
    return Executable(f"#!/bin/sh\ntouch '{marker}'\n".encode())


def test_committed_hooks_and_template_hooks_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    # A git template whose post-checkout hook any ordinary clone with checkout would run.
    template = tmp_path / "template"
    (template / "hooks").mkdir(parents=True)
    template_hook = template / "hooks" / "post-checkout"
    template_hook.write_bytes(_hook(markers / "template").data)
    template_hook.chmod(0o755)
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(template))

    # Control: the template hook is live, so its absence below means something.
    control = make_repo(tmp_path / "control", {SIBLING: SIBLING_SOURCE})
    subprocess.run(["git", "clone", "--quiet", str(control.path), str(tmp_path / "checkout")], check=True)
    assert (markers / "template").exists()
    (markers / "template").unlink()

    built = commit_raw_tree(
        tmp_path / "repo",
        {
            b".git": {
                b"hooks": {b"post-checkout": _hook(markers / "dotgit"), b"evil.py": CALL},
                b"config": b"[core]\n\thooksPath = hooks\n",
            },
            b".GIT": {b"hooks": {b"post-checkout": _hook(markers / "dotgit-upper")}},
            b"hooks": {b"post-checkout": _hook(markers / "hooks"), b"install.py": CALL},
            b".githooks": {b"post-checkout": _hook(markers / "githooks")},
            b"post-checkout": _hook(markers / "top"),
            SIBLING.encode(): SIBLING_SOURCE,
        },
    )
    own_hook = built.path / ".git" / "hooks" / "post-checkout"  # the source repository's own hook
    own_hook.write_bytes(_hook(markers / "source").data)
    own_hook.chmod(0o755)

    clone = clone_repository(str(built.path), tmp_path / "clone.git", LimitSettings())
    for result in (mine(built), mine_with(clone)):
        assert_rest_analysed(result)
        assert {f.path: (f.status, f.error) for f in result.files} == {
            SIBLING: (FileStatus.ok, None),
            "hooks/install.py": (FileStatus.ok, None),
            ".git/hooks/evil.py": (FileStatus.skipped, "vendored folder"),
        }
        assert sorted_findings(result.findings) == [
            finding("hooks/install.py", 2, 1, "mlflow.log_param", C.params),
            SIBLING_FINDING,
        ]
    assert sorted(p.name for p in markers.iterdir()) == []


# --- sizes and counts ------------------------------------------------------------------------------


def test_files_over_the_configured_limits_are_skipped_with_the_reason(tmp_path: Path) -> None:
    limit = 1_000_000
    big_py = (CALL + "x = 1\n" * (2 * limit // 6)).encode()
    big_nb = notebook_v4([("code", CALL), ("markdown", "#" * (2 * limit))]).encode()
    at_limit = CALL.encode() + b"#" * (limit - len(CALL) - 1) + b"\n"
    assert len(at_limit) == limit
    built = make_repo(
        tmp_path / "repo",
        {"big.py": big_py, "big.ipynb": big_nb, "at_limit.py": at_limit, SIBLING: SIBLING_SOURCE},
    )
    result = mine_with(built, max_file_bytes=limit, max_notebook_bytes=limit)
    assert_rest_analysed(result)
    for path, size in (("big.py", len(big_py)), ("big.ipynb", len(big_nb))):
        outcome = file_result(result, path)
        assert (outcome.status, outcome.size_bytes, outcome.parsed) == (FileStatus.skipped, size, False)
        assert outcome.error == f"larger than the configured limit ({size} > {limit} bytes)"
    assert_outcome(result, "at_limit.py", FileStatus.ok, None)
    assert sorted_findings(result.findings) == [
        finding("at_limit.py", 2, 1, "mlflow.log_param", C.params),
        SIBLING_FINDING,
    ]
    assert result.bytes_analysed == len(at_limit) + len(SIBLING_SOURCE)


def test_200_mb_python_file_and_notebook_are_skipped_by_the_default_limits(tmp_path: Path) -> None:
    """Real 200 MiB blobs: sizes come from the object header, so neither is ever read."""
    size = 200 * 1024 * 1024
    big_py = CALL.encode()
    big_py += b"x = 1\n" * ((size - len(big_py)) // 6 + 1)
    head = json.dumps({"metadata": {}, "cells": [{"cell_type": "code", "source": CALL + "#"}]})
    head_bytes, tail = head[:-4].encode(), head[-4:].encode()  # pad inside the source string
    big_nb = head_bytes + b"x" * (size - len(head_bytes) - len(tail)) + tail
    assert json.loads(big_nb[:200] + b'"}]}')  # still a notebook at its start
    built = fast_import(
        tmp_path / "repo", [(b"huge.py", big_py), (b"huge.ipynb", big_nb), (SIBLING.encode(), SIBLING_SOURCE.encode())]
    )
    del big_py, big_nb
    started = time.monotonic()
    result = mine(built)
    print(f"\nmining a commit with two 200 MiB blobs took {time.monotonic() - started:.2f} s")
    assert_rest_analysed(result)
    limits = LimitSettings()
    for path, limit in (("huge.py", limits.max_file_bytes), ("huge.ipynb", limits.max_notebook_bytes)):
        outcome = file_result(result, path)
        assert (outcome.status, outcome.parsed) == (FileStatus.skipped, False)
        assert outcome.size_bytes >= size
        assert outcome.error == f"larger than the configured limit ({outcome.size_bytes} > {limit} bytes)"
    assert result.findings == [SIBLING_FINDING]


def test_100_000_small_files_are_all_recorded(tmp_path: Path) -> None:
    count = 100_000
    files = [(f"pkg{i // 1000}/module_{i}.py".encode(), f"VALUE = {i}\n".encode()) for i in range(count)]
    files.append((SIBLING.encode(), SIBLING_SOURCE.encode()))
    built = fast_import(tmp_path / "repo", files)
    started = time.monotonic()
    result = mine(built)
    elapsed_s = time.monotonic() - started
    print(f"\nmining {count + 1} files took {elapsed_s:.1f} s ({elapsed_s / (count + 1) * 1e6:.0f} us a file)")
    assert_rest_analysed(result)
    assert (result.files_seen, result.files_analysed, result.files_unparsable, result.files_skipped) == (
        count + 1,
        count + 1,
        0,
        0,
    )
    assert len({f.path for f in result.files}) == count + 1
    assert result.findings == [SIBLING_FINDING]


def test_blobs_missing_from_the_object_store_are_skipped_with_their_id(tmp_path: Path) -> None:
    built = make_repo(
        tmp_path / "repo",
        {
            "gone.py": "import mlflow\nmlflow.log_metric('lost', 1)\n",
            "gone.ipynb": notebook_v4([("code", "import mlflow\nmlflow.log_metric('lost', 2)\n")]),
            "README.md": "not a source: its absence is nobody's business\n",
            SIBLING: SIBLING_SOURCE,
        },
    )
    gone_py, gone_nb = remove_blob(built.path, "gone.py"), remove_blob(built.path, "gone.ipynb")
    remove_blob(built.path, "README.md")
    result = mine(built)
    assert_rest_analysed(result)
    assert result.commit_sha == built.sha
    assert_outcome(result, "gone.py", FileStatus.skipped, f"blob {gone_py} missing from the object store")
    assert_outcome(result, "gone.ipynb", FileStatus.skipped, f"blob {gone_nb} missing from the object store")
    assert sorted(f.path for f in result.files) == ["gone.ipynb", "gone.py", SIBLING]
    assert result.findings == [SIBLING_FINDING]


# --- content: encodings, syntax, nesting, time -----------------------------------------------------

PEP_695 = "import mlflow\ntype Pair[T] = tuple[T, T]\ndef first[T](p: Pair[T]) -> T: return p[0]\nclass Box[T]: ...\nmlflow.log_param('a', 1)\n"
PEP_701 = (
    'import mlflow\nitems = [\'a\']\nmlflow.log_param(f"{\'\\n\'.join(f"{x!r}" for x in items)}", f"{f"{f"{1}"}"}")\n'
)
LATIN1 = "import mlflow\nmlflow.log_param('auteur', 'Jos\u00e9')\n"
OK_AT_2 = [(2, "mlflow.log_param")]


@pytest.mark.parametrize(
    ("data", "status", "reason", "calls"),
    [
        (b"import mlflow\nmlflow.log_param('a', 1)\x00\n", FileStatus.unparsable, "source contains NUL bytes", []),
        (LATIN1.encode("latin-1"), FileStatus.unparsable, "not decodable as utf-8", []),
        (("# -*- coding: latin-1 -*-\n" + LATIN1).encode("latin-1"), FileStatus.ok, None, [(3, "mlflow.log_param")]),
        (CALL.encode("utf-16"), FileStatus.unparsable, "UTF-16/UTF-32 text (byte order mark)", []),
        (CALL.encode("utf-16-be"), FileStatus.unparsable, "source contains NUL bytes", []),
        (CALL.encode("utf-32"), FileStatus.unparsable, "UTF-16/UTF-32 text (byte order mark)", []),
        (b"\xef\xbb\xbf" + CALL.encode(), FileStatus.ok, None, OK_AT_2),
        (b"\xef\xbb\xbf# coding: latin-1\n" + CALL.encode(), FileStatus.unparsable, "bad encoding declaration", []),
        (b"# coding: klingon\n" + CALL.encode(), FileStatus.unparsable, "bad encoding declaration", []),
        (b"# coding: punycode\n" + CALL.encode(), FileStatus.unparsable, "not decodable as punycode", []),
        (b"# coding: hex\n" + CALL.encode(), FileStatus.unparsable, "not decodable as hex", []),
        (CALL.replace("\n", "\r\n").encode(), FileStatus.ok, None, OK_AT_2),
        (b"import mlflow\r\r" + CALL.encode(), FileStatus.ok, None, [(4, "mlflow.log_param")]),
        (
            b"import mlflow\nprint 'training'\nexec 'x = 1'\nmlflow.log_param('a', 1)\n",
            FileStatus.unparsable,
            "SyntaxError",
            [],
        ),
        (b"import mlflow\nx = `1`\n", FileStatus.unparsable, "SyntaxError", []),
        (PEP_695.encode(), FileStatus.ok, None, [(5, "mlflow.log_param")]),
        (PEP_701.encode(), FileStatus.ok, None, [(3, "mlflow.log_param")]),
    ],
    ids=[
        "nul",
        "latin1-no-cookie",
        "latin1-cookie",
        "utf16-bom",
        "utf16-no-bom",
        "utf32-bom",
        "utf8-bom",
        "utf8-bom-and-latin1-cookie",
        "unknown-cookie",
        "punycode-cookie",
        "hex-cookie",
        "crlf",
        "cr",
        "python2-print-exec",
        "python2-backticks",
        "pep695",
        "pep701",
    ],
)
def test_encodings_and_syntax_are_recorded(
    tmp_path: Path, data: bytes, status: FileStatus, reason: str | None, calls: list[tuple[int, str]]
) -> None:
    built = make_repo(tmp_path / "repo", {"case.py": data, SIBLING: SIBLING_SOURCE})
    result = mine(built)
    assert_rest_analysed(result)
    assert_outcome(result, "case.py", status, reason)
    assert [(f.line, f.qualified_name) for f in sorted_findings(result.findings) if f.path == "case.py"] == calls
    assert_storable(result)


DEEP = 10_000


@pytest.mark.parametrize(
    ("expression", "reasons"),
    [
        ("(" * DEEP + "1" + ")" * DEEP, ("parser crashed (signal SIGSEGV)", "RecursionError")),
        ("[" * DEEP + "]" * DEEP, ("parser crashed (signal SIGSEGV)", "RecursionError")),
        ("{" * DEEP + "}" * DEEP, ("parser crashed (signal SIGSEGV)", "RecursionError", "SyntaxError")),
        # libcst needs over a minute for this one before it overflows: the time limit ends it
        ("-" * DEEP + "1", ("parser time limit: no result within 5 s", "parser crashed", "RecursionError")),
        ("f(" * DEEP + ")" * DEEP, ("parser crashed (signal SIGSEGV)", "RecursionError")),
    ],
    ids=["parens", "brackets", "braces", "unary-minus", "calls"],
)
def test_expressions_nested_10000_deep_are_recorded_not_a_crash(
    tmp_path: Path, expression: str, reasons: tuple[str, ...]
) -> None:
    built = make_repo(
        tmp_path / "repo",
        {
            "a_before.py": CALL,
            "deep.py": f"import mlflow\nx = {expression}\nmlflow.log_param('a', 1)\n",
            SIBLING: SIBLING_SOURCE,
        },
    )
    result = mine_with(built, parse_timeout_s=5)
    assert_rest_analysed(result)  # the child that died on deep.py was replaced for train.py
    assert_outcome(result, "a_before.py", FileStatus.ok, None)
    deep = file_result(result, "deep.py")
    assert deep.status is FileStatus.unparsable
    assert deep.error is not None and any(reason in deep.error for reason in reasons), deep.error
    assert sorted_findings(result.findings) == [
        finding("a_before.py", 2, 1, "mlflow.log_param", C.params),
        SIBLING_FINDING,
    ]


def test_a_long_plus_chain_that_python_accepts_is_analysed(tmp_path: Path) -> None:
    # `"a" + "b" + ...` over 1,000 terms is a left-nested tree: the parser child's raised
    # recursion limit lets the walk through it, as CPython itself accepts it.
    built = make_repo(
        tmp_path / "repo",
        {"long.py": "import mlflow\nx = 1" + "+1" * 1000 + "\nmlflow.log_param('a', 1)\n", SIBLING: SIBLING_SOURCE},
    )
    result = mine_with(built, parse_timeout_s=30)
    assert file_result(result, "long.py").status is FileStatus.ok
    assert sorted_findings(result.findings) == [finding("long.py", 3, 1, "mlflow.log_param", C.params), SIBLING_FINDING]


def test_a_file_that_takes_the_parser_long_hits_the_per_file_time_limit(tmp_path: Path) -> None:
    built = make_repo(
        tmp_path / "repo",
        {"slow.py": "import mlflow\nx = 1" + "+1" * 10_000 + "\nmlflow.log_param('a', 1)\n", SIBLING: SIBLING_SOURCE},
    )
    started = time.monotonic()
    result = mine_with(built, parse_timeout_s=2)
    assert time.monotonic() - started < 60  # the limit, not the parser, decided (it needs minutes)
    assert_rest_analysed(result)
    slow = file_result(result, "slow.py")
    assert (slow.status, slow.error, slow.parsed) == (
        FileStatus.unparsable,
        "parser time limit: no result within 2 s",
        True,
    )
    assert result.findings == [SIBLING_FINDING]


# --- notebooks -------------------------------------------------------------------------------------


def test_broken_notebooks_are_unparsable_with_a_reason(tmp_path: Path) -> None:
    cases = {
        "invalid.ipynb": (b'{"cells": [{"cell_type": "code", "source": "import mlflow"', "notebook: JSONDecodeError"),
        "huge_int.ipynb": (b'{"cells": [], "metadata": {"n": ' + b"9" * 5000 + b"}}", "notebook: ValueError"),
        "deep_json.ipynb": (b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "notebook: RecursionError"),
        "utf16.ipynb": (notebook_v4([("code", CALL)]).encode("utf-16"), "notebook: not UTF-8"),
        "list.ipynb": (b"[]", "top level is not a JSON object"),
    }
    r_kernel = notebook_v4([("code", "library(mlflow)\nmlflow_log_param('a', 1)\n")], language="R", kernel="ir")
    built = make_repo(
        tmp_path / "repo",
        {**{p: data for p, (data, _) in cases.items()}, "r_kernel.ipynb": r_kernel, SIBLING: SIBLING_SOURCE},
    )
    result = mine(built)
    assert_rest_analysed(result)
    r_outcome = file_result(result, "r_kernel.ipynb")  # well-formed, just not Python: skipped
    assert (r_outcome.status, r_outcome.error) == (FileStatus.skipped, "notebook: kernel language is r, not python")
    for path, (data, reason) in cases.items():
        outcome = file_result(result, path)
        assert (outcome.kind, outcome.status, outcome.size_bytes) == (FileKind.ipynb, FileStatus.unparsable, len(data))
        assert outcome.error is not None and reason in outcome.error, (path, outcome.error)
    assert result.findings == [SIBLING_FINDING]
    assert_storable(result)


def test_notebook_shapes_sources_as_string_or_list_and_cells_without_source(tmp_path: Path) -> None:
    v4 = notebook_v4(
        [
            ("code", ["import mlflow\n", "mlflow.log_param('a', 1)\n"]),  # 0: source as a list
            ("code", "mlflow.log_metric('m', 1)\n"),  # 1: source as a string
            {"cell_type": "code", "metadata": {}, "outputs": []},  # 2: no source key
            {"cell_type": "code", "source": None},  # 3: null source
            {"cell_type": "code", "source": 42},  # 4: not text
            {"cell_type": "code", "source": ["x = 1\n", None, 7, "mlflow.set_tag('t', 1)\n"]},  # 5
            {"cell_type": "markdown"},  # 6: markdown, no source
            {"cell_type": "code", "source": ""},  # 7: empty
        ]
    )
    document = json.loads(v4)
    document["cells"].append("not a cell")  # 8: not an object, but it holds its place in the list
    document["cells"].append({"cell_type": "code", "source": ["mlflow.end_run()"]})  # 9
    v4 = json.dumps(document)
    v3 = notebook_v3([[("heading", "Title"), ("code", "import mlflow\n")], [("code", ["mlflow.autolog()\n"])]])
    built = make_repo(tmp_path / "repo", {"v4.ipynb": v4, "v3.ipynb": v3, SIBLING: SIBLING_SOURCE})
    result = mine(built)
    assert_rest_analysed(result)
    assert_outcome(result, "v4.ipynb", FileStatus.ok, None)
    assert_outcome(result, "v3.ipynb", FileStatus.ok, None)
    assert sorted_findings(result.findings) == sorted_findings(
        [
            SIBLING_FINDING,
            finding("v3.ipynb", 1, 1, "mlflow.autolog", C.autolog, cell=2),
            finding("v4.ipynb", 2, 1, "mlflow.log_param", C.params, cell=0),
            finding("v4.ipynb", 1, 1, "mlflow.log_metric", C.metrics, cell=1),
            finding("v4.ipynb", 2, 1, "mlflow.set_tag", C.tags, cell=5),
            finding("v4.ipynb", 1, 1, "mlflow.end_run", C.runs, cell=9),
        ]
    )


def test_notebook_with_10_000_cells(tmp_path: Path) -> None:
    count = 10_000
    cells: list = [("code", "import mlflow\n")]
    cells += [("markdown" if i % 2 else "code", f"x_{i} = {i}\n") for i in range(1, count - 1)]
    cells.append(("code", "mlflow.log_params({'a': 1})\n"))
    built = make_repo(tmp_path / "repo", {"many.ipynb": notebook_v4(cells), SIBLING: SIBLING_SOURCE})
    started = time.monotonic()
    result = mine(built)
    print(f"\nmining a notebook of {count} cells took {time.monotonic() - started:.2f} s")
    assert_rest_analysed(result)
    assert_outcome(result, "many.ipynb", FileStatus.ok, None)
    assert sorted_findings(result.findings) == [
        finding("many.ipynb", 1, 1, "mlflow.log_params", C.params, cell=count - 1),
        SIBLING_FINDING,
    ]


# --- repository level ------------------------------------------------------------------------------


def _no_default_branch(root: Path) -> Path:
    built = make_repo(root, {SIBLING: SIBLING_SOURCE})
    git_out(built.path, "symbolic-ref", "HEAD", "refs/heads/never-created")
    return built.path


REPOSITORY_CASES = {
    "empty": (lambda root: init_repo(root).working_dir, None, RunStatus.error, "the repository has no commits"),
    "no-default-branch": (_no_default_branch, None, RunStatus.error, "the repository has no commits"),
    "not-a-repository": (
        lambda root: (root.mkdir(), (root / "x.py").write_text(CALL), root)[-1],
        None,
        RunStatus.clone_failed,
        "is not a git repository",
    ),
    "a-file": (lambda root: (root.write_text(CALL), root)[-1], None, RunStatus.clone_failed, "is not a git repository"),
    "missing-path": (lambda root: root, None, RunStatus.clone_failed, "does not exist"),
    "unknown-revision": (
        lambda root: make_repo(root, {SIBLING: SIBLING_SOURCE}).path,
        "no-such-branch",
        RunStatus.error,
        "revision 'no-such-branch' not found",
    ),
    "revision-names-a-blob": (
        lambda root: make_repo(root, {SIBLING: SIBLING_SOURCE}).path,
        "HEAD:train.py",
        RunStatus.error,
        "revision 'HEAD:train.py' not found",
    ),
    "bad-reflog-selector": (
        lambda root: make_repo(root, {SIBLING: SIBLING_SOURCE}).path,
        "@{-1}",
        RunStatus.error,
        "revision '@{-1}' not found",
    ),
    "option-like-revision": (
        lambda root: make_repo(root, {SIBLING: SIBLING_SOURCE}).path,
        "--output=pwned",
        RunStatus.error,
        "revision '--output=pwned' not found",
    ),
}


@pytest.mark.parametrize("case", list(REPOSITORY_CASES))
def test_broken_repositories_end_as_a_failed_run_not_an_exception(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    build, rev, status, reason = REPOSITORY_CASES[case]
    monkeypatch.chdir(tmp_path)
    path = Path(build(tmp_path / "target"))
    result = mine_with(path, rev=rev)
    assert (result.status, result.commit_sha, result.files, result.findings) == (status, None, [], [])
    assert result.error is not None and reason in result.error, result.error
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("case", ["empty", "no-default-branch", "not-a-repository", "unknown-revision"])
def test_miner_mine_reports_broken_repositories_and_exits_1(tmp_path: Path, case: str) -> None:
    from miner.cli import app
    from schema import models
    from schema.db import open_session

    build, rev, status, reason = REPOSITORY_CASES[case]
    path = Path(build(tmp_path / "target"))
    database_url = f"sqlite:///{tmp_path / 'miner.db'}"
    env = {"MINER_CONFIG": str(tmp_path / "no-config.yaml"), "MINER_DATABASE_URL": database_url, "MINER_WORKERS": "1"}
    args = ["mine", str(path), "--name", "hostile/repo", "--format", "json"] + (["--rev", rev] if rev else [])
    outcome = CliRunner().invoke(app, args, env=env)
    assert outcome.exit_code == 1, outcome.output
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit)
    [row] = json.loads(outcome.stdout)
    assert (row["repository"], row["status"], row["commit"]) == ("hostile/repo", status.value, None)
    assert reason in row["error"]
    with open_session(database_url) as session:  # recorded, not lost
        runs = session.exec(select(models.MiningRun.status, models.MiningRun.error)).all()
    assert [(s, reason in (e or "")) for s, e in runs] == [(status, True)]


def test_miner_mine_with_a_path_that_names_nothing_exits_1_with_a_message(tmp_path: Path) -> None:
    from miner.cli import app

    env = {"MINER_CONFIG": str(tmp_path / "no-config.yaml"), "MINER_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}
    missing = str(tmp_path / "no" / "such" / "repo")
    outcome = CliRunner().invoke(app, ["mine", missing, "--format", "json"], env=env)
    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    assert re.sub(r"\s+", " ", outcome.stderr).strip() == (
        f"error: {missing!r} is neither a local path, a clone URL nor owner/name"
    )
