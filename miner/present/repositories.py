"""One row per repository: its latest successful run and usage profile (`miner repos`, the API,
the repository pages and the export's repositories table).

The per-category counts come from the RunUsage rows (`save_run` writes them), never from the
findings, and `uses` / `not_uses` select by the stored profile with the same rule as the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlmodel import Session

from miner.core.rules import Rules
from miner.present.figures import iso
from miner.present.usage import HEADLINE, category_calls, check_usage_keys, run_uses, usage_rows
from schema.filters import Filters, merge_crawl
from schema.latest import latest_runs
from schema.models import Repository, RunUsage


def repository_statement(
    rules: Rules,
    filters: Filters,
    uses: Sequence[str] = (),
    not_uses: Sequence[str] = (),
    *,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[Select[Any], Any, Any]:
    """Repositories with their latest run and usage profile (for `repository_rows` and the
    export), unordered, with its `latest` subquery (id, repository_id, commit_sha,
    finished_at, crawl_id, headline) and `per_run` subquery (run_id, findings, count_<category>)
    for callers that pick their own columns.

    `uses` / `not_uses` select runs by their stored profile. With `limit` / `offset` the
    per-category counts are computed for that page of repositories (by name) only.
    """
    selected = latest_runs(filters=filters).add_columns(
        case((run_uses(rules, HEADLINE, filters.spec), 1), else_=0).label("headline")
    )
    for key in uses:
        selected = selected.where(run_uses(rules, key, filters.spec))
    for key in not_uses:
        selected = selected.where(~run_uses(rules, key, filters.spec))
    latest = selected.subquery("latest")
    run_ids = select(latest.c.id)
    if limit is not None or offset:
        page = selected.subquery("page")
        run_ids = (
            select(page.c.id)
            .join(Repository, Repository.id == page.c.repository_id)
            .order_by(Repository.full_name)
            .limit(limit)
            .offset(offset)
        )
    usage = usage_rows(RunUsage.mining_run_id.in_(run_ids), spec=filters.spec)
    per_run = (
        select(
            usage.c.run_id,
            func.sum(usage.c.calls).label("findings"),
            *(func.sum(calls).label(f"count_{name}") for name, calls in category_calls(usage, rules).items()),
        )
        .group_by(usage.c.run_id)
        .subquery("per_run")
    )
    statement = (
        select(
            Repository.full_name,
            Repository.stars,
            Repository.fork,
            Repository.archived,
            Repository.topics,
            latest.c.commit_sha,
            latest.c.finished_at,
            latest.c.headline,
            per_run,
        )
        .select_from(latest)
        .join(Repository, Repository.id == latest.c.repository_id)
        .outerjoin(per_run, per_run.c.run_id == latest.c.id)
    )
    return statement, latest, per_run


def repository_row(row: Any, rules: Rules) -> dict[str, Any]:
    """A row of `repository_statement` (its own columns) as `repository_rows` gives it."""
    item: dict[str, Any] = {
        "full_name": row["full_name"],
        "stars": row["stars"],
        "fork": bool(row["fork"]),
        "archived": bool(row["archived"]),
        "topics": list(row["topics"] or []),
        "commit": row["commit_sha"],
        "mined_at": iso(row["finished_at"]),
        "findings": int(row["findings"] or 0),
        "headline": bool(row["headline"]),
    }
    for category in rules.categories:
        item[category.value] = int(row[f"count_{category.value}"] or 0)
    return item


def repository_rows(
    *,
    session: Session,
    rules: Rules,
    filters: Filters | None = None,
    uses: Sequence[str] = (),
    not_uses: Sequence[str] = (),
    limit: int | None = None,
    offset: int = 0,
    crawl_id: int | None = None,
) -> list[dict[str, Any]]:
    """Repositories (latest successful run) with their usage profile, ordered by name.

    Each row: full_name, stars, fork, archived, topics, commit, mined_at, findings, headline,
    and one count per category (table categories by api, fluent and client calls; `client`
    every client call; `other` findings of category other). `uses` keeps repositories that
    use every api or category named (as `compute_stats` counts usage: a disabling autolog is
    not usage), `not_uses` those that use none; names are checked against the rules
    (ValueError listing the valid ones).
    """
    filters = merge_crawl(filters, crawl_id)
    uses = check_usage_keys(uses, rules)
    not_uses = check_usage_keys(not_uses, rules)
    statement, _latest, _per_run = repository_statement(rules, filters, uses, not_uses, limit=limit, offset=offset)
    statement = statement.order_by(Repository.full_name)
    if limit is not None:
        statement = statement.limit(limit)
    if offset:
        statement = statement.offset(offset)
    return [repository_row(row, rules) for row in session.exec(statement).mappings()]


def count_repositories(
    *,
    session: Session,
    rules: Rules,
    filters: Filters | None = None,
    uses: Sequence[str] = (),
    not_uses: Sequence[str] = (),
) -> int:
    """How many rows `repository_rows` gives without a limit."""
    filters = merge_crawl(filters, None)
    uses = check_usage_keys(uses, rules)
    not_uses = check_usage_keys(not_uses, rules)
    selected = latest_runs(filters=filters).with_only_columns(func.count())
    for key in uses:
        selected = selected.where(run_uses(rules, key, filters.spec))
    for key in not_uses:
        selected = selected.where(~run_uses(rules, key, filters.spec))
    return int(session.exec(selected).one()[0])


def repository_usage(*, session: Session, rules: Rules, crawl_id: int | None = None) -> list[dict[str, Any]]:
    """The older name of `repository_rows` (every repository, no usage filter)."""
    return repository_rows(session=session, rules=rules, crawl_id=crawl_id)
