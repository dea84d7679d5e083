"""Idempotent writes and the basic reads, shared by the CLI, the tasks, the API and the tests.

Like the FastAPI template's crud.py: every function takes a keyword-only `session` and never
opens one itself. Writing functions commit, because `save_run` must own its transaction (it
rolls back and retries on a concurrent insert), and the others follow it for one rule: a store
function returns with its work committed. Call them on a session with nothing else pending.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, delete, false, func, insert, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from miner.core import domain
from schema.filters import Filters, has_repository_conditions, merge_crawl, repository_conditions
from schema.models import (
    Crawl,
    CrawlStatus,
    FileResult,
    Finding,
    MiningRun,
    Repository,
    RunUsage,
    as_utc,
    utc_now,
)

log = logging.getLogger(__name__)

# Attempts at the replace when a concurrent writer inserted the same (repository, commit) first.
SAVE_ATTEMPTS = 3

_REPOSITORY_METADATA = frozenset(Repository.model_fields) - {"id", "full_name"}


# ---------------------------------------------------------------------------------- repositories

def upsert_repository(
    *,
    session: Session,
    full_name: str,
    clone_url: str | None = None,
    default_branch: str | None = None,
    **metadata: Any,
) -> Repository:
    """The repository called `full_name`, created if new; fields given as None stay as they are.

    Safe against a concurrent upsert of the same name: the row is created with
    INSERT .. ON CONFLICT DO NOTHING, then read and updated.
    """
    unknown = set(metadata) - _REPOSITORY_METADATA
    if unknown:
        raise TypeError(f"unknown Repository fields: {', '.join(sorted(unknown))}")
    values = {"clone_url": clone_url, "default_branch": default_branch, **metadata}
    values = {key: value for key, value in values.items() if value is not None}

    _insert_ignore(
        session,
        Repository,
        {"full_name": full_name, "topics": [], "archived": False, "fork": False,
         "first_seen_at": utc_now(), **values},
        conflict_columns=["full_name"],
    )
    repository = session.exec(
        select(Repository).where(Repository.full_name == full_name)
        .execution_options(populate_existing=True)
    ).one()
    for key, value in values.items():
        setattr(repository, key, value)
    session.add(repository)
    session.commit()
    return repository


def _insert_ignore(
    session: Session, table: type, row: dict[str, Any], *, conflict_columns: list[str]
) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = postgresql.insert(table).values(row)
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(row)
    else:   # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"no upsert for {dialect}")
    session.exec(statement.on_conflict_do_nothing(index_elements=conflict_columns))


def get_repository(*, session: Session, full_name: str) -> Repository | None:
    return session.exec(
        select(Repository).where(Repository.full_name == full_name)
        .execution_options(populate_existing=True)
    ).one_or_none()


def load_repository(*, session: Session, repository_id: int) -> Repository:
    """By id, as tasks receive it; a missing id is a bug in the caller, hence LookupError."""
    repository = session.get(Repository, repository_id, populate_existing=True)
    if repository is None:
        raise LookupError(f"no repository with id {repository_id}")
    return repository


# ------------------------------------------------------------------------------------------- runs

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
                session, repository_id, result,
                crawl_id=crawl_id, rules_version=rules_version, tool_version=tool_version,
            )
            session.commit()
            return run
        except IntegrityError:
            session.rollback()
            if attempt == SAVE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")   # pragma: no cover


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
        select(Repository).where(Repository.id == repository_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one()

    if result.commit_sha is not None:
        replaced = (MiningRun.repository_id == repository_id) & (
            MiningRun.commit_sha == result.commit_sha
        )
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
        log.info("replacing run %s of repository %d (commit %s)",
                 ", ".join(map(str, replaced_ids)), repository_id, result.commit_sha or "none")
        _delete_runs(session, select(MiningRun.id).where(MiningRun.id.in_(replaced_ids)))

    usage = _usage_rows(result.findings)
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
        **_profile(usage),
    )
    session.add(run)
    session.flush()     # the unique (repository_id, commit_sha) is checked here

    # Core executemany on the tables, skipping the ORM's per-row bookkeeping: a large
    # repository has tens of thousands of findings (20,000 take about a second).
    connection = session.connection()
    if result.files:
        connection.execute(insert(FileResult.__table__), list(_file_rows(run.id, result.files)))
    if result.findings:
        connection.execute(insert(Finding.__table__), list(_finding_rows(run.id, result.findings)))
        connection.execute(insert(RunUsage.__table__),
                           [{"mining_run_id": run.id, **row} for row in usage])

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
        .where(RunUsage.mining_run_id.in_(
            select(MiningRun.id).where(MiningRun.repository_id == repository_id)
        ))
        .values(latest=run_latest.scalar_subquery()),
        execution_options=no_sync,
    )


def _delete_runs(session: Session, run_ids: Select[Any]) -> None:
    """Children first: correct without ON DELETE CASCADE (SQLite with foreign keys off)."""
    ids = run_ids.scalar_subquery()
    no_sync = {"synchronize_session": False}
    session.exec(delete(RunUsage).where(RunUsage.mining_run_id.in_(ids)), execution_options=no_sync)
    session.exec(delete(Finding).where(Finding.mining_run_id.in_(ids)), execution_options=no_sync)
    session.exec(
        delete(FileResult).where(FileResult.mining_run_id.in_(ids)), execution_options=no_sync
    )
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


_USAGE_COUNTS = ("calls", "client_calls", "other_calls", "used")


def _usage_rows(findings: Iterable[domain.Finding]) -> list[dict[str, Any]]:
    """A run's findings folded per api: its RunUsage rows (without the run id).

    Each count twice: over every finding, and (`*_v1`) over the findings of spec version 1.
    """
    folded: dict[str, list[int]] = {}
    for finding in findings:
        counts = folded.get(finding.api)
        if counts is None:
            counts = folded[finding.api] = [0, 0, 0, 0, 0, 0, 0, 0]
        for offset in (0, 4) if finding.rule == domain.RULE_V1 else (0,):
            counts[offset] += 1
            if finding.via_client:
                counts[offset + 1] += 1
            if finding.category == domain.Category.other:
                counts[offset + 2] += 1
            if not finding.disabling:
                counts[offset + 3] = 1
    return [
        {"api": api,
         **dict(zip(_USAGE_COUNTS, counts[:4])),
         **dict(zip((f"{name}_v1" for name in _USAGE_COUNTS), counts[4:]))}
        for api, counts in folded.items()
    ]


def _profile(usage: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's usage profile from its RunUsage rows: the MiningRun columns of that name."""
    profile: dict[str, Any] = {}
    for suffix in ("", "_v1"):
        profile[f"apis_used{suffix}"] = ",".join(
            sorted(row["api"] for row in usage if row[f"used{suffix}"]))
        profile[f"client_calls{suffix}"] = sum(row[f"client_calls{suffix}"] for row in usage)
        profile[f"other_calls{suffix}"] = sum(row[f"other_calls{suffix}"] for row in usage)
    return profile


def rebuild_summaries(*, session: Session) -> None:
    """Recompute every run's derived rows from its findings, as `save_run` writes them.

    RunUsage, the usage profile columns and the latest flags: for databases filled other
    than through `save_run` (bulk loads, benchmarks) and for repairs. One transaction.
    """
    connection = session.connection()
    connection.execute(delete(RunUsage))
    is_v1 = Finding.rule == domain.RULE_V1

    def counted(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    folded = select(
        Finding.mining_run_id, Finding.api, func.count(),
        counted(Finding.via_client.is_(True)),
        counted(Finding.category == domain.Category.other),
        func.max(case((Finding.disabling.is_(True), 0), else_=1)),
        counted(is_v1),
        counted(and_(is_v1, Finding.via_client.is_(True))),
        counted(and_(is_v1, Finding.category == domain.Category.other)),
        func.max(case((and_(is_v1, Finding.disabling.is_(False)), 1), else_=0)),
    ).group_by(Finding.mining_run_id, Finding.api)
    counts = [*_USAGE_COUNTS, *(f"{name}_v1" for name in _USAGE_COUNTS)]
    connection.execute(insert(RunUsage).from_select(["mining_run_id", "api", *counts], folded))

    profiles: dict[int, list[dict[str, Any]]] = {}
    for run_id, api, *values in connection.execute(
        select(RunUsage.mining_run_id, RunUsage.api, *(getattr(RunUsage, name) for name in counts))
    ).all():
        profiles.setdefault(run_id, []).append({"api": api, **dict(zip(counts, values))})
    empty = _profile([])
    connection.execute(update(MiningRun).values(**empty))
    if profiles:
        table = MiningRun.__table__
        connection.execute(
            update(table).where(table.c.id == bindparam("run_id"))
            .values(**{name: bindparam(f"new_{name}") for name in empty}),
            [{"run_id": run_id, **{f"new_{name}": value for name, value in _profile(rows).items()}}
             for run_id, rows in profiles.items()],
        )

    newer = aliased(MiningRun, name="newer_run")
    newer_ok = select(newer.id).where(
        newer.repository_id == MiningRun.repository_id,
        newer.status == domain.RunStatus.ok,
        or_(newer.finished_at > MiningRun.finished_at,
            and_(newer.finished_at == MiningRun.finished_at, newer.id > MiningRun.id)),
    )
    is_latest = and_(MiningRun.status == domain.RunStatus.ok, ~newer_ok.exists())
    connection.execute(update(MiningRun).values(latest=case((is_latest, True), else_=False)))
    connection.execute(update(RunUsage).values(
        latest=select(MiningRun.latest).where(MiningRun.id == RunUsage.mining_run_id)
        .scalar_subquery()))
    session.commit()


def latest_runs(
    *,
    session: Session | None = None,
    crawl_id: int | None = None,
    filters: Filters | None = None,
) -> Select[Any]:
    """The latest successful run of each repository (or of each repository within one crawl).

    A SELECT of `id, repository_id, commit_sha, finished_at, crawl_id`; execute it, or use
    `.subquery()` to join the findings of exactly one run per repository. "Latest" is the
    greatest finished_at, ties broken by the greater id. Overall, that is the `latest` flag
    `save_run` maintains; within a crawl it is written as "no newer successful run of that
    crawl exists" rather than a window function: PostgreSQL estimates the anti-join well,
    which keeps its plans sane. `session` is accepted for symmetry; none is needed.

    `filters` (schema.filters.Filters) narrows the set: `crawl_id` as the argument of that
    name (which it overrides), `since` keeps a repository only when that latest run finished
    at or after it, and the repository filters (topic, stars, forks, archived) drop whole
    repositories.
    """
    filters = merge_crawl(filters, crawl_id)
    crawl_id = filters.crawl_id
    columns = (MiningRun.id, MiningRun.repository_id, MiningRun.commit_sha,
               MiningRun.finished_at, MiningRun.crawl_id)
    if crawl_id is None:
        # `save_run` keeps the flag (see _refresh_latest): a filter, not an anti-join. Written
        # `<> false`: nine runs in ten are latest, and SQLite (no statistics) would otherwise
        # fetch each through the flag's index instead of scanning the table once.
        statement = select(*columns).where(MiningRun.latest != False)  # noqa: E712
        return _narrowed(statement, filters)
    newer = aliased(MiningRun, name="newer_run")
    newer_exists = (
        select(newer.id)
        .where(
            newer.repository_id == MiningRun.repository_id,
            newer.status == domain.RunStatus.ok,
            or_(
                newer.finished_at > MiningRun.finished_at,
                and_(newer.finished_at == MiningRun.finished_at, newer.id > MiningRun.id),
            ),
        )
    )
    statement = (
        select(*columns)
        .where(MiningRun.status == domain.RunStatus.ok, MiningRun.crawl_id == crawl_id)
        .where(~newer_exists.where(newer.crawl_id == crawl_id).exists())
    )
    return _narrowed(statement, filters)


def _narrowed(statement: Select[Any], filters: Filters) -> Select[Any]:
    """The `since` and repository filters on a SELECT of latest runs."""
    if filters.since is not None:
        # the latest run finished since then exactly when any run of the set did
        statement = statement.where(MiningRun.finished_at >= filters.since)
    if has_repository_conditions(filters):
        statement = statement.where(
            MiningRun.repository_id.in_(
                select(Repository.id).where(*repository_conditions(filters))
            )
        )
    return statement


# ----------------------------------------------------------------------------------------- crawls

def create_crawl(
    *,
    session: Session,
    topics: list[str],
    query: str | None = None,
    slices: list[Any] | None = None,
) -> Crawl:
    crawl = Crawl(topics=list(topics), query=query or None, slices=list(slices or []))
    session.add(crawl)
    session.commit()
    return crawl


def finish_crawl(
    *,
    session: Session,
    crawl: Crawl | int,
    status: CrawlStatus = CrawlStatus.ok,
    error: str | None = None,
    repos_found: int | None = None,
    repos_enqueued: int | None = None,
    repos_skipped_unchanged: int | None = None,
    slices: list[Any] | None = None,
    finished_at: datetime | None = None,
) -> Crawl:
    """Record a crawl's counts (None keeps a count as it is) and its status.

    A crawl whose repositories are still being mined stays `running` (no finished_at): the
    last mining task closes it through `close_crawl_if_done`. Any other status is final and
    gets finished_at (now unless given).
    """
    crawl_id = crawl if isinstance(crawl, int) else crawl.id
    status = CrawlStatus(status)
    if finished_at is None and status is not CrawlStatus.running:
        finished_at = utc_now()
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": finished_at}
    for key, value in (
        ("repos_found", repos_found),
        ("repos_enqueued", repos_enqueued),
        ("repos_skipped_unchanged", repos_skipped_unchanged),
        ("slices", slices),
    ):
        if value is not None:
            values[key] = value
    session.exec(
        update(Crawl).where(Crawl.id == crawl_id).values(**values),
        execution_options={"synchronize_session": False},
    )
    session.commit()
    loaded = session.get(Crawl, crawl_id, populate_existing=True)
    if loaded is None:
        raise LookupError(f"no crawl with id {crawl_id}")
    return loaded
