"""Mine one commit of one repository: tree entries -> sources -> detector -> MiningResult."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from miner.analyse.detect.detector import FileAnalysis
from miner.analyse.gitread import CommitReader, RevisionNotFound, TreeEntry
from miner.analyse.sandbox import shared_sandbox
from miner.analyse.sources import NotPythonSource, SourceError, SourceFile, is_lfs_pointer, load_source
from miner.core.domain import FileKind, FileResult, FileStatus, Finding, MiningResult, RunStatus
from miner.core.lifeline import HelperProcessKilled
from miner.core.paths import is_vendored, source_kind
from miner.core.rules import Rules
from miner.core.settings import LimitSettings


def _now() -> datetime:
    return datetime.now(UTC)


def _skipped(entry: TreeEntry, kind: FileKind, reason: str, size: int = 0) -> FileResult:
    return FileResult(path=entry.path, kind=kind, status=FileStatus.skipped, error=reason, size_bytes=size)


Analyse = Callable[[SourceFile], FileAnalysis]


def analyse_entry(
    reader: CommitReader, entry: TreeEntry, analyse: Analyse, limits: LimitSettings
) -> tuple[FileResult, list[Finding]] | None:
    """The outcome for one tree entry, or None when it is not a Python source at all."""
    kind_name = source_kind(entry.path)
    if kind_name is None:
        return None
    kind = FileKind(kind_name)
    if is_vendored(entry.path):
        return _skipped(entry, kind, "vendored folder"), []
    if entry.is_symlink:
        return _skipped(entry, kind, "symbolic link (not followed)"), []
    if entry.is_submodule:
        return _skipped(entry, kind, "submodule (not fetched)"), []
    if entry.size is None:  # git listed no size: the blob is not in the object store
        return _skipped(entry, kind, f"blob {entry.sha} missing from the object store"), []
    size = entry.size
    limit = limits.max_notebook_bytes if kind is FileKind.ipynb else limits.max_file_bytes
    if size > limit:
        return _skipped(entry, kind, f"larger than the configured limit ({size} > {limit} bytes)", size), []
    try:
        data = reader.read(entry.sha)
    except ValueError:
        return _skipped(entry, kind, f"blob {entry.sha} missing from the object store"), []
    if is_lfs_pointer(data):
        return _skipped(entry, kind, "Git LFS pointer (the file's content is not in git)", size), []
    try:
        source = load_source(entry.path, data)
    except NotPythonSource as exc:
        return _skipped(entry, kind, str(exc), size), []
    except SourceError as exc:
        return FileResult(entry.path, kind, FileStatus.unparsable, error=str(exc), size_bytes=size), []
    analysis = analyse(source)
    if analysis.unparsable:
        message = "; ".join(
            f"cell {u.cell}: {u.message}" if u.cell is not None else u.message for u in analysis.unparsable
        )
        result = FileResult(
            entry.path,
            kind,
            FileStatus.unparsable,
            error=message,
            size_bytes=size,
            parsed=analysis.parsed,
            unparsable_cells=tuple(u.cell for u in analysis.unparsable if u.cell is not None),
        )
    else:
        result = FileResult(entry.path, kind, FileStatus.ok, size_bytes=size, parsed=analysis.parsed)
    return result, list(analysis.findings)


def mine_commit(
    git_dir: str | Path,
    *,
    full_name: str,
    rules: Rules,
    limits: LimitSettings,
    rev: str | None = None,
    on_file: Callable[[str], None] | None = None,
) -> MiningResult:
    """Analyse every Python file and notebook of one commit; never raises for bad content.

    HelperProcessKilled (a git helper killed from outside) propagates: the mine is retried."""
    started = _now()
    try:
        reader = CommitReader(git_dir, rev)
    except RevisionNotFound as exc:
        return MiningResult(full_name, None, RunStatus.error, started, _now(), error=str(exc))
    except HelperProcessKilled:
        raise  # not the repository's doing: the caller tries again
    except Exception as exc:  # not a repository, unreadable: a recorded outcome
        return MiningResult(
            full_name, None, RunStatus.clone_failed, started, _now(), error=f"{type(exc).__name__}: {exc}"
        )
    sandbox = shared_sandbox(rules, limits.parse_timeout_s, limits.parse_memory_mb)
    with reader:
        result = MiningResult(full_name, reader.sha, RunStatus.ok, started, started)
        try:
            for entry in reader.entries():
                outcome = analyse_entry(reader, entry, sandbox.analyse, limits)
                if outcome is None:
                    continue
                file_result, findings = outcome
                result.files.append(file_result)
                result.findings.extend(findings)
                if file_result.status is not FileStatus.skipped:
                    result.bytes_analysed += file_result.size_bytes
                if on_file is not None:
                    on_file(entry.path)
        except HelperProcessKilled:
            raise
        except Exception as exc:  # a corrupt tree object, git failing on it: the run records it
            result.status = RunStatus.error
            result.error = f"{type(exc).__name__}: {exc}"
    result.finished_at = _now()
    return result
