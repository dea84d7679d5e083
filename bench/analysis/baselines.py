"""The cheap baselines our analysis is a ratio of: git grep, the seed study's heuristic, plain parses, what-ifs.

Each reads the same commits as our analysis, so the ratios say what detection costs over reading
or parsing the bytes at all.
"""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import libcst as cst
from libcst._nodes.base import CSTNode

from bench.analysis.corpus import Repo, git
from miner.analyse.detect.detector import Detector
from miner.analyse.gitread import CommitReader
from miner.analyse.parser_tuning import collector_paused, tuned_parser
from miner.analyse.sources import SourceError, load_source
from miner.core.paths import is_vendored, source_kind

SEED_WORDS = (b"log_param", b"log_metric", b"autolog")


def grep_one(repo: Repo) -> int:
    r = git(repo.git_dir, "grep", "-c", "mlflow", repo.commit, "--", "*.py", "*.ipynb", capture_output=True)
    return sum(1 for line in r.stdout.splitlines() if line)


def run_grep(repos: list[Repo], processes: int) -> int:
    if processes <= 1:
        return sum(grep_one(r) for r in repos)
    with ThreadPoolExecutor(processes) as pool:  # each thread waits on its own git process
        return sum(pool.map(grep_one, repos))


def seed_heuristic(repos: list[Repo]) -> dict[str, bool]:
    """The seed study: does any .py/.ipynb blob's text contain log_param, log_metric or autolog?"""
    flagged: dict[str, bool] = {}
    for repo in repos:
        hit = False
        with CommitReader(repo.git_dir, repo.commit) as reader:
            for entry in reader.entries():
                if source_kind(entry.path) is None or entry.is_symlink or entry.is_submodule:
                    continue
                try:
                    data = reader.read(entry.sha)
                except ValueError:
                    continue
                if any(word in data for word in SEED_WORDS):
                    hit = True
                    break
        flagged[repo.name] = hit
    return flagged


def parse_units(repos: list[Repo], rules) -> dict[str, list[str]]:
    """Code to hand libcst: every analysed .py file, those whose bytes name mlflow, and exactly the
    cells our detector parses (Detector.needs_parse passed, notebook cells after IPython stripping)."""
    detector = Detector(rules)
    units: dict[str, list[str]] = {"py_all": [], "py_mlflow": [], "same_as_ours": []}
    for repo in repos:
        for blob in repo.analysed:
            try:
                source = load_source(blob.path, blob.data)
            except SourceError:
                continue
            if source.kind == "py":
                units["py_all"].append(source.cells[0])
                if b"mlflow" in blob.data:
                    units["py_mlflow"].append(source.cells[0])
            if detector.needs_parse(source):
                units["same_as_ours"].extend(c for c in source.cells if c.strip())
    return units


def parse_all(codes: list[str]) -> int:
    failures = 0
    for code in codes:
        try:
            cst.parse_module(code)
        except Exception:
            failures += 1
    return failures


@dataclass
class ParsedFile:
    repo: str
    path: str
    kind: str
    cells: list[str]
    imports_namespace: bool  # an import statement of the namespace can be in its text: we parse it


def parsed_files(repos: list[Repo], rules) -> list[ParsedFile]:
    """The files that name the namespace (the substring prefilter), each with whether the import
    prefilter (Detector.needs_parse) lets it through to the parser."""
    detector = Detector(rules)
    out = []
    for repo in repos:
        for blob in repo.analysed:
            try:
                source = load_source(blob.path, blob.data)
            except SourceError:
                continue
            if any(source.mentions(ns) for ns in rules.namespaces):
                out.append(
                    ParsedFile(
                        repo.name,
                        blob.path,
                        source.kind,
                        [c for c in source.cells if c.strip()],
                        detector.needs_parse(source),
                    )
                )
    return out


def ast_gather(codes: list[str]) -> int:
    """What-if: the stdlib parser and a walk collecting the node types our gather pass collects."""
    failures = 0
    wanted = (ast.Call, ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)
    for code in codes:
        try:
            [node for node in ast.walk(ast.parse(code)) if isinstance(node, wanted)]
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            failures += 1
    return failures


def parse_without_validation(codes: list[str]) -> int:
    """What-if: libcst's parser with CSTNode.__post_init__ (every node's _validate) switched off."""
    original = CSTNode.__post_init__
    CSTNode.__post_init__ = lambda self: None  # type: ignore[method-assign]
    try:
        return parse_all(codes)
    finally:
        CSTNode.__post_init__ = original  # type: ignore[method-assign]


def parse_tuned(codes: list[str]) -> int:
    """The parse as the sandbox child runs it: miner.analyse.parser_tuning's constructors, no validation,
    no cycle collection (the floor our analysis can reach with libcst)."""
    with tuned_parser(), collector_paused():
        return parse_all(codes)


def pipeline_read(repos: list[Repo]) -> int:
    """Read the analysed blobs as the pipeline does: CommitReader.entries() (one ls-tree with
    sizes), then read() of each through GitPython's persistent cat-file --batch."""
    total = 0
    for repo in repos:
        with CommitReader(repo.git_dir, repo.commit) as reader:
            for entry in reader.entries():
                if source_kind(entry.path) is None or is_vendored(entry.path) or entry.is_symlink or entry.is_submodule:
                    continue
                if entry.size is None:
                    continue
                try:
                    total += len(reader.read(entry.sha))
                except ValueError:
                    pass
    return total


def plumbing_read(repos: list[Repo]) -> int:
    """What-if: one `git ls-tree -r -l -z` and one `git cat-file --batch` per repository."""
    total = 0
    for repo in repos:
        out = git(repo.git_dir, "ls-tree", "-r", "-l", "-z", repo.commit, capture_output=True).stdout
        shas = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, path_b = record.split(b"\t", 1)
            mode, kind, sha, size = meta.split()
            path = path_b.decode("utf-8", "surrogateescape")
            if kind == b"blob" and size.isdigit() and source_kind(path) and not is_vendored(path) and mode != b"120000":
                shas.append(sha)
        if shas:
            batch = git(repo.git_dir, "cat-file", "--batch", input=b"\n".join(shas) + b"\n", capture_output=True).stdout
            pos = 0
            for _ in shas:
                end = batch.index(b"\n", pos)
                size = int(batch[pos:end].split()[2])
                total += len(batch[end + 1 : end + 1 + size])
                pos = end + 1 + size + 1
    return total
