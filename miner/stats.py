"""Usage statistics: SQL over the latest successful run of each repository.

Spec ("Per-repository usage"): a repository uses api A when a finding of its latest successful
run, fluent or client (`client.log_metric` has api `log_metric`), has api A; it uses autolog
only through an autolog call that does not disable it. Categories follow the api through the
rules table; `client` is any client call and `other` any finding of category other.

Every number comes from the database in a few statements: the findings of the latest runs are
read through a covering index and folded to one row per (run, api); per-api and per-category
figures are aggregated from those rows in SQL, and Python only shapes the answer.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import CTE, ColumnElement, case, func, literal, select, union_all
from sqlmodel import Session

from miner.detect.rules import Rules
from miner.domain import Category, RunStatus
from schema.models import Finding, MiningRun, Repository
from schema.store import latest_runs

Z_95 = 1.959964   # two-sided 95 % normal quantile
HEADLINE = "headline"


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
    """Findings of the latest successful runs folded to one row per (run, api).

    `used` is 0 when every call of the api in that run disables it (autolog(disable=True));
    `client_calls` and `other_calls` carry what the `client` and `other` categories need.
    The IN form walks the covering index ix_finding_run_usage run by run, so the grouping
    streams on SQLite instead of sorting a million rows.
    """
    latest_ids = latest_runs(crawl_id=crawl_id).with_only_columns(MiningRun.id)
    return (
        select(
            Finding.mining_run_id.label("run_id"),
            Finding.api,
            func.count().label("calls"),
            func.sum(case((Finding.via_client.is_(True), 1), else_=0)).label("client_calls"),
            func.sum(case((Finding.category == Category.other, 1), else_=0)).label("other_calls"),
            func.max(case((Finding.disabling.is_(True), 0), else_=1)).label("used"),
        )
        .where(Finding.mining_run_id.in_(latest_ids))
        .group_by(Finding.mining_run_id, Finding.api)
        .cte("usage")
    )


def _category_flags(usage: CTE, rules: Rules) -> dict[str, ColumnElement[Any]]:
    """Per (run, api) row: 1 where the row makes its repository use the category (or headline)."""
    flags: dict[str, ColumnElement[Any]] = {}
    for category in rules.categories:
        if category is rules.client_category:
            flags[category.value] = case((usage.c.client_calls > 0, 1), else_=0)
        elif category is rules.default_category:
            flags[category.value] = case((usage.c.other_calls > 0, 1), else_=0)
        else:
            flags[category.value] = case(
                (usage.c.api.in_(rules.apis_of(category)), usage.c.used), else_=0
            )
    flags[HEADLINE] = case((usage.c.api.in_(list(rules.headline_apis)), usage.c.used), else_=0)
    return flags



def _share(repositories: int, total: int) -> float:
    return repositories / total if total else 0.0


def _entry(repositories: int, calls: int, client_calls: int, total: int) -> dict[str, Any]:
    return {
        "repositories": repositories,
        "share": _share(repositories, total),
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
    # Two aggregates over the (run, api) rows, one statement: per api (usage, calls), and per
    # run the category flags, summed over runs. No COUNT(DISTINCT) anywhere.
    per_api = select(
        literal("api").label("kind"),
        usage.c.api.label("key"),
        func.sum(usage.c.used).label("repositories"),
        func.sum(usage.c.calls).label("calls"),
        func.sum(usage.c.client_calls).label("client_calls"),
        func.sum(usage.c.other_calls).label("other_calls"),
    ).group_by(usage.c.api)
    flags = _category_flags(usage, rules)
    per_run = (   # a CTE: read by every branch below, computed once
        select(*(func.max(flag).label(name) for name, flag in flags.items()))
        .group_by(usage.c.run_id)
        .cte("per_run")
    )
    statement = union_all(
        per_api,
        *(
            select(
                literal("category").label("kind"),
                literal(name).label("key"),
                func.coalesce(func.sum(per_run.c[name]), 0),
                literal(0), literal(0), literal(0),
            )
            for name in flags
        ),
    )
    rows = session.exec(statement).all()
    api_rows = {row.key: row for row in rows if row.kind == "api"}
    category_repositories = {row.key: int(row.repositories) for row in rows if row.kind == "category"}

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
        select(MiningRun.rules_version)
        .distinct()
        .join(latest, MiningRun.id == latest.c.id)
        .order_by(MiningRun.rules_version)
    ).scalars().all()

    def api_entry(api: str) -> dict[str, Any]:
        row = api_rows.get(api)
        if row is None:
            return _entry(0, 0, 0, total)
        return _entry(int(row.repositories), int(row.calls), int(row.client_calls), total)

    apis = {api: api_entry(api) for api in rules.apis}

    def category_entry(category: Category) -> dict[str, Any]:
        # calls add up from the per-api rows (a few dozen aggregates, not findings)
        if category is rules.client_category:
            calls = client_calls = sum(int(row.client_calls) for row in api_rows.values())
        elif category is rules.default_category:
            calls = sum(int(row.other_calls) for row in api_rows.values())
            client_calls = 0
        else:
            members = [apis[api] for api in rules.apis_of(category)]
            calls = sum(entry["calls"] for entry in members)
            client_calls = sum(entry["client_calls"] for entry in members)
        return _entry(category_repositories.get(category.value, 0), calls, client_calls, total)

    headline_repositories = category_repositories.get(HEADLINE, 0)
    low, high = wilson_interval(headline_repositories, total)
    return {
        "repositories": total,
        "headline": {
            "repositories": headline_repositories,
            "share": _share(headline_repositories, total),
            "ci95": [low, high],
            "apis": list(rules.headline_apis),
        },
        "apis": apis,
        "categories": {category.value: category_entry(category) for category in rules.categories},
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
    columns = []
    for category in rules.categories:
        if category is rules.client_category:
            calls = usage.c.client_calls
        elif category is rules.default_category:
            calls = usage.c.other_calls
        else:
            calls = case((usage.c.api.in_(rules.apis_of(category)), usage.c.calls), else_=0)
        columns.append(func.sum(calls).label(f"count_{category.value}"))
    headline = _category_flags(usage, rules)[HEADLINE]
    per_run = (
        select(
            usage.c.run_id,
            func.sum(usage.c.calls).label("findings"),
            func.max(headline).label("headline"),
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
            "mined_at": row["finished_at"].isoformat(),
            "findings": int(row["findings"] or 0),
            "headline": bool(row["headline"]),
        }
        for category in rules.categories:
            item[category.value] = int(row[f"count_{category.value}"] or 0)
        result.append(item)
    return result
