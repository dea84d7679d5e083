"""Usage statistics: SQL over the latest successful run of each repository.

Spec ("Per-repository usage"): a repository uses api A when a finding of its latest successful
run, fluent or client (`client.log_metric` has api `log_metric`), has api A; it uses autolog
only through an autolog call that does not disable it. Categories follow the api through the
rules table; `client` is any client call and `other` any finding of category other.

Every number comes from the database in a few statements: findings are first grouped per
(run, api, category, client, disabling), a few thousand rows for millions of findings, read
through a covering index, and everything else is aggregated from that; Python only shapes
the answer.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    and_,
    case,
    distinct,
    func,
    literal,
    select,
    union_all,
)
from sqlmodel import Session

from miner.detect.rules import Rules
from miner.domain import Category, RunStatus
from schema.models import Finding, MiningRun, Repository
from schema.store import latest_runs

Z_95 = 1.959964   # two-sided 95 % normal quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a share: sensible for small samples and shares near 0 or 1."""
    if trials <= 0:
        return (0.0, 0.0)
    share = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (share + z2 / (2 * trials)) / denominator
    half_width = z * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half_width), min(1.0, centre + half_width))


def _usage_cte(crawl_id: int | None) -> CTE:
    """Findings of the latest successful runs, counted per (run, api, category, client, off)."""
    latest = latest_runs(crawl_id=crawl_id).subquery("latest")
    return (
        select(
            Finding.mining_run_id.label("run_id"),
            Finding.api,
            Finding.category,
            Finding.via_client,
            Finding.disabling,
            func.count().label("calls"),
        )
        .join(latest, Finding.mining_run_id == latest.c.id)
        .group_by(
            Finding.mining_run_id, Finding.api, Finding.category,
            Finding.via_client, Finding.disabling,
        )
        .cte("usage")
    )


def _category_of_api(usage: CTE, rules: Rules) -> ColumnElement[Any]:
    """The rules table as a CASE: api -> category name, NULL for apis outside the table."""
    return case({api: category.value for api, category in rules.apis.items()}, value=usage.c.api)


def _counts(usage: CTE, kind: str, key: ColumnElement[Any] | str, where: ColumnElement[bool]):
    """One row per key: repositories using it, calls, and client calls among them."""
    key_column = literal(key) if isinstance(key, str) else key
    select_ = select(
        literal(kind).label("kind"),
        key_column.label("key"),
        func.count(distinct(case((usage.c.disabling.is_(False), usage.c.run_id)))).label("repositories"),
        func.coalesce(func.sum(usage.c.calls), 0).label("calls"),
        func.coalesce(
            func.sum(case((usage.c.via_client.is_(True), usage.c.calls), else_=0)), 0
        ).label("client_calls"),
    ).where(where)
    return select_ if isinstance(key, str) else select_.group_by(key_column)


def _entry(repositories: int, calls: int, client_calls: int, total: int) -> dict[str, Any]:
    return {
        "repositories": repositories,
        "share": repositories / total if total else 0.0,
        "calls": calls,
        "fluent_calls": calls - client_calls,
        "client_calls": client_calls,
    }


def compute_stats(*, session: Session, rules: Rules, crawl_id: int | None = None) -> dict[str, Any]:
    """The headline share with its 95 % Wilson interval, every api and category, and failures.

    `crawl_id` narrows everything to the runs of one crawl (the latest successful run of each
    repository within it). Failures count each repository once, by the status of its latest
    run of any status; `repositories_without_ok_run` are repositories mined but never
    successfully; unparsable and skipped files are those of the latest successful runs.
    """
    usage = _usage_cte(crawl_id)
    table_apis = list(rules.apis)
    headline_apis = list(rules.headline_apis)
    statement = union_all(
        _counts(usage, "api", usage.c.api, usage.c.api.in_(table_apis)),
        _counts(usage, "category", _category_of_api(usage, rules), usage.c.api.in_(table_apis)),
        _counts(usage, "category", rules.client_category.value, usage.c.via_client.is_(True)),
        _counts(
            usage, "category", rules.default_category.value,
            usage.c.category == rules.default_category,
        ),
        _counts(usage, "headline", "headline", usage.c.api.in_(headline_apis)),
    )
    rows = session.exec(statement).all()

    latest = latest_runs(crawl_id=crawl_id).subquery("latest")
    files = session.exec(
        select(
            func.count(MiningRun.id),
            func.coalesce(func.sum(MiningRun.files_seen), 0),
            func.coalesce(func.sum(MiningRun.files_analysed), 0),
            func.coalesce(func.sum(MiningRun.files_unparsable), 0),
            func.coalesce(func.sum(MiningRun.files_skipped), 0),
            func.coalesce(func.sum(MiningRun.bytes_analysed), 0),
        ).join(latest, MiningRun.id == latest.c.id)
    ).one()
    total = int(files[0])
    rules_versions = session.exec(
        select(distinct(MiningRun.rules_version))
        .join(latest, MiningRun.id == latest.c.id)
        .order_by(MiningRun.rules_version)
    ).scalars().all()

    found = {(row.kind, row.key): row for row in rows}

    def entry(kind: str, key: str) -> dict[str, Any]:
        row = found.get((kind, key))
        if row is None:
            return _entry(0, 0, 0, total)
        return _entry(int(row.repositories), int(row.calls), int(row.client_calls), total)

    headline = entry("headline", "headline")
    low, high = wilson_interval(headline["repositories"], total)
    return {
        "repositories": total,
        "headline": {
            "repositories": headline["repositories"],
            "share": headline["share"],
            "ci95": [low, high],
            "apis": headline_apis,
        },
        "apis": {api: entry("api", api) for api in table_apis},
        "categories": {category.value: entry("category", category.value) for category in rules.categories},
        "failures": _failures(session, crawl_id=crawl_id, repositories_ok=total,
                              unparsable_files=int(files[3]), skipped_files=int(files[4])),
        "files": {
            "seen": int(files[1]),
            "analysed": int(files[2]),
            "unparsable": int(files[3]),
            "skipped": int(files[4]),
            "bytes_analysed": int(files[5]),
        },
        "rules": rules.name,
        "rules_version": rules.version,
        "mined_with_rules_versions": list(rules_versions),
        "crawl_id": crawl_id,
    }


def _failures(
    session: Session,
    *,
    crawl_id: int | None,
    repositories_ok: int,
    unparsable_files: int,
    skipped_files: int,
) -> dict[str, Any]:
    rank = func.row_number().over(
        partition_by=MiningRun.repository_id,
        order_by=(MiningRun.finished_at.desc(), MiningRun.id.desc()),
    )
    ranked = select(MiningRun.repository_id, MiningRun.status, rank.label("rank"))
    if crawl_id is not None:
        ranked = ranked.where(MiningRun.crawl_id == crawl_id)
    last = ranked.subquery("last_run")
    by_status = dict(
        session.exec(
            select(last.c.status, func.count()).where(last.c.rank == 1).group_by(last.c.status)
        ).all()
    )
    repositories_mined = sum(by_status.values())
    return {
        "runs": {
            status.value: int(by_status.get(status, 0))
            for status in RunStatus
            if status is not RunStatus.ok
        },
        "repositories_without_ok_run": repositories_mined - repositories_ok,
        "unparsable_files": unparsable_files,
        "skipped_files": skipped_files,
    }


def finding_rows(
    *,
    session: Session,
    repo: str | None = None,
    api: str | None = None,
    crawl_id: int | None = None,
) -> list[dict[str, Any]]:
    """Every finding of the latest successful runs, optionally of one repository or one api."""
    latest = latest_runs(crawl_id=crawl_id).subquery("latest")
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
        )
        .join(latest, Finding.mining_run_id == latest.c.id)
        .join(Repository, Repository.id == latest.c.repository_id)
        # NULL cells (plain .py files) first on both backends, which order NULLs differently
        .order_by(
            Repository.full_name, Finding.path, func.coalesce(Finding.cell, -1),
            Finding.line, Finding.column, Finding.id,
        )
    )
    if repo is not None:
        statement = statement.where(Repository.full_name == repo)
    if api is not None:
        statement = statement.where(Finding.api == api)
    return [
        {
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
        }
        for row in session.exec(statement)
    ]


def repository_usage(
    *, session: Session, rules: Rules, crawl_id: int | None = None
) -> list[dict[str, Any]]:
    """Per repository (latest successful run): finding counts per category, and the headline flag.

    Category counts follow `compute_stats`: table categories by api (fluent and client calls),
    `client` every client call, `other` findings of category other. Repositories whose run
    found nothing are listed with zeros.
    """
    usage = _usage_cte(crawl_id)
    category_of_api = _category_of_api(usage, rules)

    def calls_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, usage.c.calls), else_=0)), 0)

    columns = []
    for category in rules.categories:
        if category is rules.client_category:
            condition = usage.c.via_client.is_(True)
        elif category is rules.default_category:
            condition = usage.c.category == rules.default_category
        else:
            condition = category_of_api == category.value
        columns.append(calls_where(condition).label(f"count_{category.value}"))
    headline = func.max(
        case(
            (and_(usage.c.api.in_(list(rules.headline_apis)), usage.c.disabling.is_(False)), 1),
            else_=0,
        )
    )
    per_run = (
        select(
            usage.c.run_id,
            func.coalesce(func.sum(usage.c.calls), 0).label("findings"),
            headline.label("headline"),
            *columns,
        )
        .group_by(usage.c.run_id)
        .subquery("per_run")
    )
    latest = latest_runs(crawl_id=crawl_id).subquery("latest")
    statement = (
        select(Repository.full_name, latest.c.commit_sha, latest.c.finished_at, per_run)
        .select_from(latest)
        .join(Repository, Repository.id == latest.c.repository_id)
        .outerjoin(per_run, per_run.c.run_id == latest.c.id)
        .order_by(Repository.full_name)
    )
    result = []
    for row in session.exec(statement).mappings():
        item: dict[str, Any] = {
            "full_name": row["full_name"],
            "commit": row["commit_sha"],
            "mined_at": row["finished_at"],
            "findings": int(row["findings"] or 0),
            "headline": bool(row["headline"]),
        }
        for category in rules.categories:
            item[category.value] = int(row[f"count_{category.value}"] or 0)
        result.append(item)
    return result
