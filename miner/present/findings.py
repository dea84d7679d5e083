"""The findings behind the figures, one row per call: `miner findings`, the API and the charts.

Only the latest successful run of each repository counts, as in the statistics; under an older
spec version only the findings that version's rules would have made.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlmodel import Session

from miner.core.domain import LATEST_SPEC, Category
from schema.filters import Filters, merge_crawl
from schema.latest import latest_runs
from schema.models import Finding, Repository
from schema.spec import spec_columns


def findings_query(
    *,
    repo: str | None = None,
    api: str | None = None,
    filters: Filters | None = None,
) -> Select[Any]:
    """Findings of the latest successful runs with their repository and commit, unordered."""
    latest = latest_runs(filters=filters).subquery("latest")
    statement = (
        select(
            Repository.full_name,
            latest.c.commit_sha,
            Finding.path,
            Finding.cell,
            Finding.line,
            Finding.column,
            Finding.api,
            Finding.category,
            Finding.qualified_name,
            Finding.flavor,
            Finding.disabling,
            Finding.via_client,
            Finding.rule,
        )
        .join(latest, Finding.mining_run_id == latest.c.id)
        .join(Repository, Repository.id == latest.c.repository_id)
    )
    if filters is not None and filters.spec < LATEST_SPEC:
        statement = statement.where(spec_columns(filters.spec).findings)
    if repo is not None:
        statement = statement.where(Repository.full_name == repo)
    if api is not None:
        statement = statement.where(Finding.api == api)
    return statement


def finding_row(row: Any) -> dict[str, Any]:
    """A row of `findings_query` as `finding_rows` gives it (the JSON keys of `miner findings`)."""
    return {
        "repository": row.full_name,
        "commit": row.commit_sha,
        "path": row.path,
        "cell": row.cell,
        "line": row.line,
        "column": row.column,
        "api": row.api,
        "category": Category(row.category).value,
        "qualified_name": row.qualified_name,
        "flavor": row.flavor,
        "disabling": bool(row.disabling),
        "via_client": bool(row.via_client),
        "rule": row.rule,
    }


def finding_rows(
    *,
    session: Session,
    repo: str | None = None,
    api: str | None = None,
    filters: Filters | None = None,
    limit: int | None = None,
    offset: int = 0,
    crawl_id: int | None = None,
) -> list[dict[str, Any]]:
    """Findings of the latest successful runs, optionally of one repository or one api, in order.

    Ordered by repository, path, cell, line, column; `limit`/`offset` page through that order.
    """
    statement = findings_query(repo=repo, api=api, filters=merge_crawl(filters, crawl_id))
    # NULL cells (plain .py files) first on both backends, which order NULLs differently
    statement = statement.order_by(
        Repository.full_name,
        Finding.path,
        func.coalesce(Finding.cell, -1),
        Finding.line,
        Finding.column,
        Finding.id,
    )
    if limit is not None:
        statement = statement.limit(limit)
    if offset:
        statement = statement.offset(offset)
    return [finding_row(row) for row in session.exec(statement)]


def count_findings(
    *,
    session: Session,
    repo: str | None = None,
    api: str | None = None,
    filters: Filters | None = None,
) -> int:
    """How many rows `finding_rows` gives without a limit."""
    inner = findings_query(repo=repo, api=api, filters=filters).subquery("findings")
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)
