"""Real git repositories for tests: built in tmp_path with GitPython, one commit per call.

Tests describe a tree as {path: text or bytes} (plus symbolic links), commit it, and mine the
commit exactly as a crawl would. Nothing is mocked: the objects are git's own, which is also how
a test makes a blob go missing (delete its loose object file right after the commit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import git

from miner.analyse.pipeline import mine_commit
from miner.core.domain import Category, FileResult, Finding, MiningResult
from miner.core.rules import load_rules
from miner.core.settings import LimitSettings

FULL_NAME = "tests/example"


@dataclass(frozen=True)
class BuiltRepo:
    """A work tree with its .git folder, and the sha of its newest commit."""

    path: Path
    sha: str

    @property
    def repo(self) -> git.Repo:
        return git.Repo(self.path)


def init_repo(path: Path) -> git.Repo:
    """An empty repository whose config makes commits byte-exact and unsigned on any machine."""
    path.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(path)
    with repo.config_writer() as config:
        config.set_value("user", "name", "Test Author")
        config.set_value("user", "email", "author@example.invalid")
        config.set_value("core", "autocrlf", "false")  # CRLF tests need the bytes as written
        config.set_value("core", "safecrlf", "false")
        config.set_value("core", "symlinks", "true")
        config.set_value("commit", "gpgsign", "false")
        config.set_value("gc", "auto", "0")  # objects must stay loose for remove_blob
    return repo


def write_tree(root: Path, files: Mapping[str, str | bytes], symlinks: Mapping[str, str] | None = None) -> None:
    """Write text files as UTF-8 without newline translation, bytes as they are; then links."""
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8") if isinstance(content, str) else content
        target.write_bytes(data)
    for relative, points_to in (symlinks or {}).items():
        link = root / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(points_to, link)


def commit_all(repo: git.Repo, message: str = "test commit") -> str:
    repo.git.add("--all", "--force")
    repo.git.commit("--allow-empty", "--no-verify", "-m", message)
    return repo.head.commit.hexsha


def make_repo(
    root: Path,
    files: Mapping[str, str | bytes],
    symlinks: Mapping[str, str] | None = None,
    message: str = "test commit",
) -> BuiltRepo:
    """Init a repository in `root`, write `files` and `symlinks`, commit everything."""
    repo = init_repo(root)
    write_tree(root, files, symlinks)
    sha = commit_all(repo, message)
    repo.close()
    return BuiltRepo(path=root, sha=sha)


def blob_sha(repo_path: Path, relative: str) -> str:
    """The blob id git gives the file's current bytes (`git hash-object`)."""
    repo = git.Repo(repo_path)
    try:
        return repo.git.hash_object(relative)
    finally:
        repo.close()


def remove_blob(repo_path: Path, relative: str) -> str:
    """Delete the loose object of a committed file, leaving the tree pointing at nothing."""
    sha = blob_sha(repo_path, relative)
    loose = repo_path / ".git" / "objects" / sha[:2] / sha[2:]
    if not loose.exists():
        raise AssertionError(f"blob {sha} of {relative} is not a loose object; cannot remove it")
    loose.chmod(0o644)
    loose.unlink()
    return sha


def mine(built: BuiltRepo, rev: str | None = None) -> MiningResult:
    """Mine a built repository with the shipped rules and default limits."""
    return mine_commit(built.path, full_name=FULL_NAME, rules=load_rules(), limits=LimitSettings(), rev=rev)


def mine_tree(root: Path, files: Mapping[str, str | bytes], symlinks: Mapping[str, str] | None = None) -> MiningResult:
    return mine(make_repo(root, files, symlinks))


# --- reading results ---------------------------------------------------------------------------


def finding(
    path: str,
    line: int,
    column: int,
    qualified_name: str,
    category: Category,
    *,
    flavor: str | None = None,
    cell: int | None = None,
    disabling: bool = False,
    via_client: bool = False,
    rule: str = "v1",
) -> Finding:
    """An expected finding; the api is the qualified name's last part, as the spec defines it."""
    return Finding(
        path=path,
        line=line,
        column=column,
        qualified_name=qualified_name,
        api=qualified_name.rsplit(".", 1)[-1],
        category=category,
        flavor=flavor,
        cell=cell,
        disabling=disabling,
        via_client=via_client,
        rule=rule,
    )


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    def key(f: Finding) -> tuple[str, int, int, int, str]:
        return (f.path, -1 if f.cell is None else f.cell, f.line, f.column, f.qualified_name)

    return sorted(findings, key=key)


def findings_in(result: MiningResult, path: str) -> list[Finding]:
    return sorted_findings(f for f in result.findings if f.path == path)


def file_result(result: MiningResult, path: str) -> FileResult:
    matches = [f for f in result.files if f.path == path]
    assert len(matches) == 1, f"expected one FileResult for {path}, got {matches!r}"
    return matches[0]


# --- notebooks ---------------------------------------------------------------------------------

Cell = tuple[str, str | Sequence[str]] | Mapping[str, object]


def _cell_dict_v4(cell: Cell) -> dict:
    if isinstance(cell, Mapping):
        return dict(cell)
    cell_type, source = cell
    body: dict[str, object] = {"cell_type": cell_type, "metadata": {}, "source": source}
    if cell_type == "code":
        body.update(execution_count=None, outputs=[])
    return body


def notebook_v4(cells: Iterable[Cell], language: str | None = "python", kernel: str = "python3") -> str:
    """An nbformat 4 notebook. A cell is ("code" | "markdown" | "raw", source) where source is a
    string or a list of lines (each keeping its "\\n", as Jupyter stores them), or a raw dict."""
    metadata: dict[str, object] = {}
    if language is not None:
        metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": language}
        metadata["language_info"] = {"name": language}
    document = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": metadata,
        "cells": [_cell_dict_v4(cell) for cell in cells],
    }
    return json.dumps(document, indent=1)


def _cell_dict_v3(cell: Cell) -> dict:
    if isinstance(cell, Mapping):
        return dict(cell)
    cell_type, source = cell
    if cell_type == "code":
        return {
            "cell_type": "code",
            "collapsed": False,
            "input": source,
            "language": "python",
            "metadata": {},
            "outputs": [],
        }
    if cell_type == "heading":
        return {"cell_type": "heading", "level": 1, "metadata": {}, "source": source}
    return {"cell_type": cell_type, "metadata": {}, "source": source}


def notebook_v3(worksheets: Iterable[Iterable[Cell]]) -> str:
    """An nbformat 3 notebook: code cells keep their source under `input`, cells live in worksheets."""
    document = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": ""},
        "worksheets": [{"cells": [_cell_dict_v3(c) for c in sheet], "metadata": {}} for sheet in worksheets],
    }
    return json.dumps(document, indent=1)


def lines(source: str) -> list[str]:
    """A cell source as Jupyter stores it: a list of lines, each but the last ending in "\\n"."""
    return source.splitlines(keepends=True)


# --- mining in a child process -----------------------------------------------------------------


def result_as_json(result: MiningResult) -> dict:
    """The parts of a MiningResult tests compare, as plain JSON values."""
    return {
        "status": result.status.value,
        "error": result.error,
        "files": sorted([f.path, f.status.value, f.error, list(f.unparsable_cells)] for f in result.files),
        "findings": [{**asdict(f), "category": f.category.value} for f in sorted_findings(result.findings)],
    }


def mine_in_subprocess(
    built: BuiltRepo, env: Mapping[str, str] | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Mine in a fresh interpreter: for crashes that would take pytest down with them, and for
    behaviour that may depend on the interpreter's hash seed."""
    here = Path(__file__).resolve().parent
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join([str(here), str(here.parent), child_env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(built.path)],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=timeout_s,
        check=False,
    )


if __name__ == "__main__":  # python tests/gitrepos.py REPO_PATH: mine HEAD, print JSON
    print(json.dumps(result_as_json(mine(BuiltRepo(Path(sys.argv[1]), sha="")))))
