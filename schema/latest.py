"""Which run of each repository counts: the latest successful one, overall or within one crawl.

Every statistic, export and page reads findings through this one definition, so they agree on
what "the current state of a repository" means.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from miner.core import domain
from schema.filters import Filters, has_repository_conditions, merge_crawl, repository_conditions
from schema.models import MiningRun, Repository


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
    columns = (MiningRun.id, MiningRun.repository_id, MiningRun.commit_sha, MiningRun.finished_at, MiningRun.crawl_id)
    if crawl_id is None:
        # `save_run` keeps the flag (see _refresh_latest): a filter, not an anti-join. Written
        # `<> false`: nine runs in ten are latest, and SQLite (no statistics) would otherwise
        # fetch each through the flag's index instead of scanning the table once.
        statement = select(*columns).where(MiningRun.latest != False)  # noqa: E712
        return _narrowed(statement, filters)
    newer = aliased(MiningRun, name="newer_run")
    newer_exists = select(newer.id).where(
        newer.repository_id == MiningRun.repository_id,
        newer.status == domain.RunStatus.ok,
        or_(
            newer.finished_at > MiningRun.finished_at,
            and_(newer.finished_at == MiningRun.finished_at, newer.id > MiningRun.id),
        ),
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
            MiningRun.repository_id.in_(select(Repository.id).where(*repository_conditions(filters)))
        )
    return statement
