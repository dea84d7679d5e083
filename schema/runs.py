"""Saving a mine: one run, its files and findings, in one transaction that replaces an earlier save.

Writing functions commit because `save_run` must own its transaction: it rolls back and retries
on a concurrent insert of the same (repository, commit).

Store conventions (as in the FastAPI template's crud.py): every function takes a keyword-only
`session` and never opens one itself; writing functions commit, so a store function returns with
its work committed. Call them on a session with nothing else pending.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, delete, false, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from miner.core import domain
from schema.models import FileResult, Finding, MiningRun, Repository, RunUsage, as_utc
from schema.summaries import usage_profile, usage_rows

log = logging.getLogger(__name__)

# Attempts at the replace when a concurrent writer inserted the same (repository, commit) first.
SAVE_ATTEMPTS = 3


def save_run(
    *,
    session: Session,
    repository: Repository,
    result: domain.MiningResult,
    crawl_id: int | None = None,
    rules_version: str,
    tool_version: str,
) -> MiningRun:
    """Store one mine in one transaction; mining the same (repository, commit) again replaces it.

    Replacement: the run of (repository, result.commit_sha), its FileResults and Findings are
    deleted and the new ones written. A failed run without a commit (the clone failed before
    HEAD was known) replaces the earlier commit-less failed run of the same repository in the
    same crawl, so retries within a crawl leave one row while each crawl keeps its own.

    Concurrency: on PostgreSQL the repository row is locked first, so two saves for one
    repository run one after the other; SQLite has a single writer anyway. Should an insert
    still meet a unique violation, the transaction is rolled back and the replace retried.
    """
    if result.full_name != repository.full_name:
        raise ValueError(f"result of {result.full_name} given for {repository.full_name}")
    if result.status is domain.RunStatus.ok and not result.commit_sha:
        raise ValueError("a successful run needs its commit_sha")
    repository_id = repository.id
    if repository_id is None:
        raise ValueError("save the repository (upsert_repository) before its runs")

    for attempt in range(1, SAVE_ATTEMPTS + 1):
        try:
            run = _replace_run(
                session,
                repository_id,
                result,
                crawl_id=crawl_id,
                rules_version=rules_version,
                tool_version=tool_version,
            )
            session.commit()
            return run
        except IntegrityError:
            session.rollback()
            if attempt == SAVE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _replace_run(
    session: Session,
    repository_id: int,
    result: domain.MiningResult,
    *,
    crawl_id: int | None,
    rules_version: str,
    tool_version: str,
) -> MiningRun:
    # PostgreSQL: serialise saves per repository (SQLite ignores FOR UPDATE; one writer anyway).
    # populate_existing: the row as it is now, not a copy this session loaded earlier
    repository = session.exec(
        select(Repository)
        .where(Repository.id == repository_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()

    if result.commit_sha is not None:
        replaced = (MiningRun.repository_id == repository_id) & (MiningRun.commit_sha == result.commit_sha)
    else:
        replaced = (
            (MiningRun.repository_id == repository_id)
            & MiningRun.commit_sha.is_(None)
            & (MiningRun.status != domain.RunStatus.ok)
            & (MiningRun.crawl_id.is_(None) if crawl_id is None else MiningRun.crawl_id == crawl_id)
        )
    replaced_ids = list(session.exec(select(MiningRun.id).where(replaced)).all())
    if replaced_ids:
        # A redelivered task (its worker died after storing) or a deliberate re-mine: worth a
        # line in the worker's log, since each one is work done twice.
        log.info(
            "replacing run %s of repository %d (commit %s)",
            ", ".join(map(str, replaced_ids)),
            repository_id,
            result.commit_sha or "none",
        )
        _delete_runs(session, select(MiningRun.id).where(MiningRun.id.in_(replaced_ids)))

    usage = usage_rows(result.findings)
    run = MiningRun(
        repository_id=repository_id,
        crawl_id=crawl_id,
        commit_sha=result.commit_sha,
        started_at=result.started_at,
        finished_at=result.finished_at,
        status=result.status,
        error=result.error,
        files_seen=result.files_seen,
        files_analysed=result.files_analysed,
        files_unparsable=result.files_unparsable,
        files_skipped=result.files_skipped,
        bytes_analysed=result.bytes_analysed,
        duration_s=result.duration_s,
        rules_version=rules_version,
        tool_version=tool_version,
        **usage_profile(usage),
    )
    session.add(run)
    session.flush()  # the unique (repository_id, commit_sha) is checked here

    # Core executemany on the tables, skipping the ORM's per-row bookkeeping: a large
    # repository has tens of thousands of findings (20,000 take about a second).
    connection = session.connection()
    if result.files:
        connection.execute(insert(FileResult.__table__), list(_file_rows(run.id, result.files)))
    if result.findings:
        connection.execute(insert(Finding.__table__), list(_finding_rows(run.id, result.findings)))
        connection.execute(insert(RunUsage.__table__), [{"mining_run_id": run.id, **row} for row in usage])

    _refresh_latest(session, repository_id)
    session.refresh(run, ["latest"])

    if result.status is domain.RunStatus.ok:
        finished_at = as_utc(result.finished_at)
        if repository.last_mined_at is None or as_utc(repository.last_mined_at) <= finished_at:
            repository.last_mined_sha = result.commit_sha
            repository.last_mined_at = finished_at
    if result.clone_url:
        repository.clone_url = result.clone_url
    if result.default_branch:
        repository.default_branch = result.default_branch
    session.add(repository)
    session.flush()
    return run


def _refresh_latest(session: Session, repository_id: int) -> None:
    """Mark the repository's latest successful run (and its usage rows), unmark the others.

    The same definition as the anti-join `latest_runs` used to evaluate on every query:
    greatest finished_at, ties broken by the greater id. Recomputed for the whole repository
    on every save, under the repository row lock, so a replaced or older run cannot leave a
    stale flag behind.
    """
    newest = (
        select(MiningRun.id)
        .where(MiningRun.repository_id == repository_id, MiningRun.status == domain.RunStatus.ok)
        .order_by(MiningRun.finished_at.desc(), MiningRun.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    no_sync = {"synchronize_session": False}
    session.exec(
        update(MiningRun)
        .where(MiningRun.repository_id == repository_id)
        .values(latest=func.coalesce(MiningRun.id == newest, false())),
        execution_options=no_sync,
    )
    run_latest = select(MiningRun.latest).where(MiningRun.id == RunUsage.mining_run_id)
    session.exec(
        update(RunUsage)
        .where(RunUsage.mining_run_id.in_(select(MiningRun.id).where(MiningRun.repository_id == repository_id)))
        .values(latest=run_latest.scalar_subquery()),
        execution_options=no_sync,
    )


def _delete_runs(session: Session, run_ids: Select[Any]) -> None:
    """Children first: correct without ON DELETE CASCADE (SQLite with foreign keys off)."""
    ids = run_ids.scalar_subquery()
    no_sync = {"synchronize_session": False}
    session.exec(delete(RunUsage).where(RunUsage.mining_run_id.in_(ids)), execution_options=no_sync)
    session.exec(delete(Finding).where(Finding.mining_run_id.in_(ids)), execution_options=no_sync)
    session.exec(delete(FileResult).where(FileResult.mining_run_id.in_(ids)), execution_options=no_sync)
    session.exec(delete(MiningRun).where(MiningRun.id.in_(ids)), execution_options=no_sync)


_FILE_FIELDS = tuple(field.name for field in dataclasses.fields(domain.FileResult))
_FINDING_FIELDS = tuple(field.name for field in dataclasses.fields(domain.Finding))


def _file_rows(run_id: int, files: Iterable[domain.FileResult]) -> Iterable[dict[str, Any]]:
    for file in files:
        row = {name: getattr(file, name) for name in _FILE_FIELDS}
        row["unparsable_cells"] = list(file.unparsable_cells)
        row["mining_run_id"] = run_id
        yield row


def _finding_rows(run_id: int, findings: Iterable[domain.Finding]) -> Iterable[dict[str, Any]]:
    # getattr, not dataclasses.asdict: asdict deep-copies, and a run can carry 100k findings
    for finding in findings:
        row = {name: getattr(finding, name) for name in _FINDING_FIELDS}
        row["mining_run_id"] = run_id
        yield row
