"""What went wrong: each repository's last run when it failed, and the unparsable files.

Failures count each repository once, by the status of its latest run of any status, so a
repository that failed and was mined again successfully is no longer a failure. The summary
(`failure_counts`, part of `compute_stats`), the failure listing and the export's runs table
all select the failed runs here, so they agree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from miner.core.domain import FileStatus, RunStatus
from miner.present.figures import iso
from schema.filters import Filters, has_repository_conditions, merge_crawl, repository_conditions
from schema.latest import latest_runs
from schema.models import FileResult, MiningRun, Repository


def _run_filters(filters: Filters) -> list[ColumnElement[bool]]:
    """The filters as conditions on MiningRun rows of any status (failures, not usage)."""
    conditions: list[ColumnElement[bool]] = []
    if filters.crawl_id is not None:
        conditions.append(MiningRun.crawl_id == filters.crawl_id)
    if filters.since is not None:
        conditions.append(MiningRun.finished_at >= filters.since)
    if has_repository_conditions(filters):
        conditions.append(MiningRun.repository_id.in_(select(Repository.id).where(*repository_conditions(filters))))
    return conditions


def failed_last_runs(filters: Filters) -> Select[Any]:
    """Each repository's last run within the filters (any status), where that run failed.

    A SELECT of MiningRun.id from `miningrun` (swap its columns with `with_only_columns`).
    "Last" as for the latest successful run: greatest finished_at, then the greater id. Only
    the failed runs are examined, each against the newer runs of its own repository: a few
    percent of the table, through the (repository_id, status, finished_at) index.
    """
    newer = aliased(MiningRun, name="newer_run")
    newer_run = select(newer.id).where(
        newer.repository_id == MiningRun.repository_id,
        or_(
            newer.finished_at > MiningRun.finished_at,
            and_(newer.finished_at == MiningRun.finished_at, newer.id > MiningRun.id),
        ),
    )
    if filters.crawl_id is not None:
        newer_run = newer_run.where(newer.crawl_id == filters.crawl_id)
    return select(MiningRun.id).where(MiningRun.status != RunStatus.ok, *_run_filters(filters), ~newer_run.exists())


def _ok_run_exists(filters: Filters) -> ColumnElement[bool]:
    """For the MiningRun in the enclosing query: its repository has a successful run in scope."""
    ok_run = aliased(MiningRun, name="ok_run")
    exists = select(ok_run.id).where(ok_run.repository_id == MiningRun.repository_id, ok_run.status == RunStatus.ok)
    if filters.crawl_id is not None:
        exists = exists.where(ok_run.crawl_id == filters.crawl_id)
    if filters.since is not None:
        exists = exists.where(ok_run.finished_at >= filters.since)
    return exists.exists()


def failure_counts(
    session: Session,
    *,
    filters: Filters,
    unparsable_files: int,
    skipped_files: int,
) -> dict[str, Any]:
    """Failed last runs by status, and the file counts `compute_stats` already summed."""
    statement = (
        failed_last_runs(filters)
        .with_only_columns(
            MiningRun.status,
            func.count(),
            func.sum(case((~_ok_run_exists(filters), 1), else_=0)),
        )
        .group_by(MiningRun.status)
    )
    counted = session.exec(statement).all()
    by_status = {RunStatus(row[0]): int(row[1]) for row in counted}
    without_ok_run = sum(int(row[2] or 0) for row in counted)
    return {
        "runs": {status.value: int(by_status.get(status, 0)) for status in RunStatus if status is not RunStatus.ok},
        "repositories_without_ok_run": without_ok_run,
        "unparsable_files": unparsable_files,
        "skipped_files": skipped_files,
    }


def failure_rows(*, session: Session, filters: Filters | None = None) -> list[dict[str, Any]]:
    """What went wrong, for people to look at: failed runs first, then unparsable files.

    Runs: each repository whose latest run (of any status, within the filters) failed.
    Files: the unparsable files of the latest successful runs. Every row has the same keys
    (kind, repository, status, commit, path, finished_at, error); a run row has no path.
    """
    filters = merge_crawl(filters, None)
    failed_runs = session.exec(
        failed_last_runs(filters)
        .with_only_columns(
            Repository.full_name,
            MiningRun.status,
            MiningRun.commit_sha,
            MiningRun.finished_at,
            MiningRun.error,
        )
        .join(Repository, Repository.id == MiningRun.repository_id)
        .order_by(Repository.full_name)
    )
    rows = [
        {
            "kind": "run",
            "repository": row.full_name,
            "status": RunStatus(row.status).value,
            "commit": row.commit_sha,
            "path": None,
            "finished_at": iso(row.finished_at),
            "error": row.error,
        }
        for row in failed_runs
    ]
    latest = latest_runs(filters=filters).subquery("latest")
    unparsable = session.exec(
        select(Repository.full_name, latest.c.commit_sha, latest.c.finished_at, FileResult.path, FileResult.error)
        .join(latest, latest.c.id == FileResult.mining_run_id)
        .join(Repository, Repository.id == latest.c.repository_id)
        .where(FileResult.status == FileStatus.unparsable)
        .order_by(Repository.full_name, FileResult.path, FileResult.id)
    )
    rows += [
        {
            "kind": "file",
            "repository": row.full_name,
            "status": FileStatus.unparsable.value,
            "commit": row.commit_sha,
            "path": row.path,
            "finished_at": iso(row.finished_at),
            "error": row.error,
        }
        for row in unparsable
    ]
    return rows
