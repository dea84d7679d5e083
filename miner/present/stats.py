"""Usage statistics: SQL over the latest successful run of each repository.

Spec ("Per-repository usage"): a repository uses api A when a finding of its latest successful
run, fluent or client (`client.log_metric` has api `log_metric`), has api A; it uses autolog
only through an autolog call that does not disable it. Categories follow the api through the
rules table; `client` is any client call and `other` any finding of category other.

No statistic reads the findings themselves. `store.save_run` writes, with a run's findings,
what the statistics need of them: one RunUsage row per (run, api) (calls, client calls, other
calls, used), the run's usage profile (`apis_used`, the sorted apis it uses; its client and
other calls) and the `latest` flag of each repository's latest successful run. On 100,000
repositories with 2,000,000 findings `compute_stats` then runs four statements:

- per api: RunUsage rows of the latest runs summed by api (an index in api order);
- per category: latest runs counted per distinct usage profile; the rules' api -> category
  table is applied to those distinct profiles (a few thousand rows) here, so the rules stay
  data that may change after mining, as before;
- runs, files and rules versions: one aggregate over the latest runs;
- failures: the failed runs (a few percent) checked for a newer run of their repository.

Every query takes the same `Filters` (schema.filters), applied in SQL by `store.latest_runs`.
Findings are read only where they are listed: `finding_rows` and the export.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    String,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session

from miner.core.rules import Rules
from miner.core.domain import LATEST_SPEC, Category, FileStatus, RunStatus
from schema.filters import Filters, has_repository_conditions, merge_crawl, repository_conditions
from schema.models import Crawl, FileResult, Finding, MiningRun, Repository, RunUsage
from schema.spec import spec_columns
from schema.latest import latest_runs

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


# ------------------------------------------------------------------------------ building blocks

def _usage_rows(condition: ColumnElement[bool], name: str = "usage",
                spec: int | None = None) -> FromClause:
    """The per-(run, api) usage rows (RunUsage, written by `save_run`) meeting `condition`.

    Columns: run_id, api, calls, client_calls, other_calls and `used`, which is 0 when every
    call of the api in that run disables it (autolog(disable=True)); counted under `spec`.
    """
    columns = spec_columns(spec)
    return (
        select(
            RunUsage.mining_run_id.label("run_id"),
            RunUsage.api,
            columns.calls.label("calls"),
            columns.client_calls.label("client_calls"),
            columns.other_calls.label("other_calls"),
            columns.used.label("used"),
        )
        .where(condition)
        .subquery(name)
    )


def _of_latest_runs(filters: Filters) -> ColumnElement[bool]:
    """RunUsage rows of the latest successful runs under `filters`."""
    return RunUsage.mining_run_id.in_(latest_runs(filters=filters).with_only_columns(MiningRun.id))


def _category_calls(usage: FromClause, rules: Rules) -> dict[str, ColumnElement[Any]]:
    """Per (run, api) row: the calls it adds to each category's count (as `miner repos` shows)."""
    calls: dict[str, ColumnElement[Any]] = {}
    for category in rules.categories:
        if category is rules.client_category:
            calls[category.value] = usage.c.client_calls
        elif category is rules.default_category:
            calls[category.value] = usage.c.other_calls
        else:
            calls[category.value] = case(
                (usage.c.api.in_(rules.apis_of(category)), usage.c.calls), else_=0
            )
    return calls


def _table_categories(rules: Rules) -> dict[str, str]:
    """api -> category for the categories that follow the api (not `client`, not `other`)."""
    special = (rules.client_category, rules.default_category)
    return {api: category.value for api, category in rules.apis.items() if category not in special}


def usage_keys(rules: Rules) -> list[str]:
    """What `uses` / `not_uses` accept: the rules' apis, their categories, and `headline`."""
    keys = list(rules.apis)
    keys += [category.value for category in rules.categories if category.value not in keys]
    return [*keys, HEADLINE]


def _check_usage_keys(keys: Iterable[str], rules: Rules) -> list[str]:
    known = usage_keys(rules)
    keys = list(keys)
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise ValueError(
            f"unknown api or category {', '.join(map(repr, unknown))}; "
            f"valid names: {', '.join(known)}"
        )
    return keys


def _uses(rules: Rules, key: str, spec: int | None = None) -> ColumnElement[bool]:
    """The MiningRun of the query uses `key` (an api, a category or `headline`), per its profile.

    The same rule as `compute_stats`: an api is used when the run calls it other than only to
    disable it; a category when one of its apis is used; `client` / `other` on any such call.
    Counted under spec version `spec` (default: the latest).
    """
    profile = spec_columns(spec)
    if key in rules.apis:
        apis = [key]
    elif key == HEADLINE:
        apis = list(rules.headline_apis)
    elif key == rules.client_category.value:
        return profile.run_client_calls > 0
    elif key == rules.default_category.value:
        return profile.run_other_calls > 0
    else:
        apis = [api for api, category in _table_categories(rules).items() if category == key]
    padded = literal(",", String).concat(profile.apis_used).concat(",")
    return or_(false(), *(padded.contains(f",{api},", autoescape=True) for api in apis))


def _run_filters(filters: Filters) -> list[ColumnElement[bool]]:
    """The filters as conditions on MiningRun rows of any status (failures, not usage)."""
    conditions: list[ColumnElement[bool]] = []
    if filters.crawl_id is not None:
        conditions.append(MiningRun.crawl_id == filters.crawl_id)
    if filters.since is not None:
        conditions.append(MiningRun.finished_at >= filters.since)
    if has_repository_conditions(filters):
        conditions.append(
            MiningRun.repository_id.in_(select(Repository.id).where(*repository_conditions(filters)))
        )
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
    return select(MiningRun.id).where(
        MiningRun.status != RunStatus.ok, *_run_filters(filters), ~newer_run.exists()
    )


def _ok_run_exists(filters: Filters) -> ColumnElement[bool]:
    """For the MiningRun in the enclosing query: its repository has a successful run in scope."""
    ok_run = aliased(MiningRun, name="ok_run")
    exists = select(ok_run.id).where(
        ok_run.repository_id == MiningRun.repository_id, ok_run.status == RunStatus.ok
    )
    if filters.crawl_id is not None:
        exists = exists.where(ok_run.crawl_id == filters.crawl_id)
    if filters.since is not None:
        exists = exists.where(ok_run.finished_at >= filters.since)
    return exists.exists()


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


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# ---------------------------------------------------------------------------------------- stats

def compute_stats(
    *,
    session: Session,
    rules: Rules,
    filters: Filters | None = None,
    crawl_id: int | None = None,
) -> dict[str, Any]:
    """The headline share with its 95 % Wilson interval, every api and category, and failures.

    `filters` narrows the repositories and runs (see schema.filters); `crawl_id` is the older
    spelling of `Filters(crawl_id=...)`: the latest successful run of each repository within
    that crawl. Failures count each repository once, by the status of its latest run of any
    status; `repositories_without_ok_run` are repositories mined but never successfully;
    unparsable and skipped files are those of the latest successful runs.
    """
    filters = merge_crawl(filters, crawl_id)
    latest_select = latest_runs(filters=filters)
    of_latest = _of_latest_runs(filters)
    counted = spec_columns(filters.spec)   # the summaries of the spec version asked for

    # Per api, over the usage rows of the latest runs. Without a crawl filter the rows carry
    # the latest flag, and the (latest, api, ...) index hands them over in api order.
    by_api = of_latest
    if filters.crawl_id is None:
        by_api = RunUsage.latest == True  # noqa: E712
        if filters.since is not None or has_repository_conditions(filters):
            by_api = and_(by_api, of_latest)
    api_rows = {
        row.api: row
        for row in session.exec(
            select(
                RunUsage.api,
                func.sum(counted.used).label("repositories"),
                func.sum(counted.calls).label("calls"),
                func.sum(counted.client_calls).label("client_calls"),
                func.sum(counted.other_calls).label("other_calls"),
            ).where(by_api).group_by(RunUsage.api)
        )
    }

    # Per category: latest runs counted per distinct usage profile (the sorted apis a run
    # uses, stored by `save_run`), then the rules map each distinct profile to categories.
    # Profiles repeat across repositories, so this is a few thousand rows, not one per run.
    profile_select = latest_select
    if filters.crawl_id is None:   # the same runs; `= true` lets SQLite group in index order
        profile_select = latest_select.where(MiningRun.latest == True)  # noqa: E712
    profiles = session.connection().execute(
        profile_select.with_only_columns(
            counted.apis_used,
            func.count(),
            func.sum(case((counted.run_client_calls > 0, 1), else_=0)),
            func.sum(case((counted.run_other_calls > 0, 1), else_=0)),
        ).group_by(counted.apis_used)
    ).all()
    category_repositories = _category_repositories(profiles, rules)

    # Runs and files of the latest runs, and the rules versions they were mined with.
    *files, oldest, newest = session.exec(
        latest_select.with_only_columns(
            func.count(),
            func.sum(MiningRun.files_seen),
            func.sum(MiningRun.files_analysed),
            func.sum(MiningRun.files_unparsable),
            func.sum(MiningRun.files_skipped),
            func.sum(MiningRun.bytes_analysed),
            func.min(MiningRun.rules_version),
            func.max(MiningRun.rules_version),
        )
    ).one()
    total, *files = (int(value or 0) for value in files)
    rules_versions = sorted({version for version in (oldest, newest) if version is not None})
    if len(rules_versions) > 1:   # then there may be more than two: list them all
        rules_versions = sorted(session.exec(
            latest_select.with_only_columns(MiningRun.rules_version).distinct()
        ).scalars())

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
        "failures": _failures(session, filters=filters,
                              unparsable_files=files[2], skipped_files=files[3]),
        "files": {
            "seen": files[0],
            "analysed": files[1],
            "unparsable": files[2],
            "skipped": files[3],
            "bytes_analysed": files[4],
        },
        "rules": rules.name,
        "rules_version": rules.version,
        "mined_with_rules_versions": list(rules_versions),
        "spec": filters.spec,
        "crawl_id": filters.crawl_id,
        "filters": filters.as_dict(),
    }


def _category_repositories(profiles: Sequence[Any], rules: Rules) -> dict[str, int]:
    """Repositories per category (and headline) from (apis_used, runs, client, other) rows.

    Each api stands for a bit per category it counts for (its table category, headline);
    a profile's bits are OR-ed once and runs added up per distinct set of bits, so the work
    per profile is a split and a few integer operations.
    """
    keys = [*sorted(set(_table_categories(rules).values())), HEADLINE]
    bit = {key: 1 << index for index, key in enumerate(keys)}
    bits_of = {api: bit[category] for api, category in _table_categories(rules).items()}
    for api in rules.headline_apis:
        bits_of[api] = bits_of.get(api, 0) | bit[HEADLINE]
    runs_per_mask: dict[int, int] = {}
    with_client = with_other = 0
    for apis_used, runs, client_runs, other_runs in profiles:
        with_client += client_runs or 0
        with_other += other_runs or 0
        mask = 0
        if apis_used:
            for api in apis_used.split(","):
                mask |= bits_of.get(api, 0)
        runs_per_mask[mask] = runs_per_mask.get(mask, 0) + runs
    counts = dict.fromkeys([*(category.value for category in rules.categories), HEADLINE], 0)
    for mask, runs in runs_per_mask.items():
        for key, key_bit in bit.items():
            if mask & key_bit:
                counts[key] += int(runs)
    counts[rules.client_category.value] += int(with_client)
    counts[rules.default_category.value] += int(with_other)
    return counts


def _failures(
    session: Session,
    *,
    filters: Filters,
    unparsable_files: int,
    skipped_files: int,
) -> dict[str, Any]:
    statement = failed_last_runs(filters).with_only_columns(
        MiningRun.status,
        func.count(),
        func.sum(case((~_ok_run_exists(filters), 1), else_=0)),
    ).group_by(MiningRun.status)
    counted = session.exec(statement).all()
    by_status = {RunStatus(row[0]): int(row[1]) for row in counted}
    without_ok_run = sum(int(row[2] or 0) for row in counted)
    return {
        "runs": {
            status.value: int(by_status.get(status, 0))
            for status in RunStatus
            if status is not RunStatus.ok
        },
        "repositories_without_ok_run": without_ok_run,
        "unparsable_files": unparsable_files,
        "skipped_files": skipped_files,
    }


# ------------------------------------------------------------------------------------- findings

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
        Repository.full_name, Finding.path, func.coalesce(Finding.cell, -1),
        Finding.line, Finding.column, Finding.id,
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


# --------------------------------------------------------------------------------- repositories

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
        case((_uses(rules, HEADLINE, filters.spec), 1), else_=0).label("headline")
    )
    for key in uses:
        selected = selected.where(_uses(rules, key, filters.spec))
    for key in not_uses:
        selected = selected.where(~_uses(rules, key, filters.spec))
    latest = selected.subquery("latest")
    run_ids = select(latest.c.id)
    if limit is not None or offset:
        page = selected.subquery("page")
        run_ids = (
            select(page.c.id).join(Repository, Repository.id == page.c.repository_id)
            .order_by(Repository.full_name).limit(limit).offset(offset)
        )
    usage = _usage_rows(RunUsage.mining_run_id.in_(run_ids), spec=filters.spec)
    per_run = (
        select(
            usage.c.run_id,
            func.sum(usage.c.calls).label("findings"),
            *(func.sum(calls).label(f"count_{name}")
              for name, calls in _category_calls(usage, rules).items()),
        )
        .group_by(usage.c.run_id)
        .subquery("per_run")
    )
    statement = (
        select(
            Repository.full_name, Repository.stars, Repository.fork, Repository.archived,
            Repository.topics, latest.c.commit_sha, latest.c.finished_at, latest.c.headline,
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
        "mined_at": _iso(row["finished_at"]),
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
    uses = _check_usage_keys(uses, rules)
    not_uses = _check_usage_keys(not_uses, rules)
    statement, _latest, _per_run = repository_statement(
        rules, filters, uses, not_uses, limit=limit, offset=offset)
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
    uses = _check_usage_keys(uses, rules)
    not_uses = _check_usage_keys(not_uses, rules)
    selected = latest_runs(filters=filters).with_only_columns(func.count())
    for key in uses:
        selected = selected.where(_uses(rules, key, filters.spec))
    for key in not_uses:
        selected = selected.where(~_uses(rules, key, filters.spec))
    return int(session.exec(selected).one()[0])


def repository_usage(
    *, session: Session, rules: Rules, crawl_id: int | None = None
) -> list[dict[str, Any]]:
    """The older name of `repository_rows` (every repository, no usage filter)."""
    return repository_rows(session=session, rules=rules, crawl_id=crawl_id)


# ---------------------------------------------------------------------------------------- trend

def crawl_trend(*, session: Session, rules: Rules) -> list[dict[str, Any]]:
    """The headline share of every crawl, oldest first, from the runs stored for that crawl.

    Within a crawl each repository counts once, by its latest successful run of that crawl;
    a crawl with no successful run has n = 0.
    """
    newer = aliased(MiningRun, name="newer_run")
    newer_in_crawl = select(newer.id).where(
        newer.repository_id == MiningRun.repository_id,
        newer.crawl_id == MiningRun.crawl_id,
        newer.status == RunStatus.ok,
        or_(
            newer.finished_at > MiningRun.finished_at,
            and_(newer.finished_at == MiningRun.finished_at, newer.id > MiningRun.id),
        ),
    )
    per_crawl = (
        select(
            MiningRun.crawl_id,
            func.count().label("n"),
            func.sum(case((_uses(rules, HEADLINE), 1), else_=0)).label("k"),
        )
        .where(MiningRun.status == RunStatus.ok, MiningRun.crawl_id.is_not(None),
               ~newer_in_crawl.exists())
        .group_by(MiningRun.crawl_id)
        .subquery("per_crawl")
    )
    statement = (
        select(Crawl.id, Crawl.started_at, Crawl.finished_at, Crawl.status, Crawl.topics,
               per_crawl.c.n, per_crawl.c.k)
        .outerjoin(per_crawl, per_crawl.c.crawl_id == Crawl.id)
        .order_by(Crawl.started_at, Crawl.id)
    )
    trend = []
    for row in session.exec(statement):
        k, n = int(row.k or 0), int(row.n or 0)
        low, high = wilson_interval(k, n)
        trend.append({
            "crawl_id": row.id,
            "started_at": _iso(row.started_at),
            "finished_at": _iso(row.finished_at),
            "status": getattr(row.status, "value", row.status),
            "topics": list(row.topics or []),
            "k": k,
            "n": n,
            "share": _share(k, n),
            "ci95": [low, high],
        })
    return trend


# ------------------------------------------------------------------------------------- failures

def failure_rows(*, session: Session, filters: Filters | None = None) -> list[dict[str, Any]]:
    """What went wrong, for people to look at: failed runs first, then unparsable files.

    Runs: each repository whose latest run (of any status, within the filters) failed.
    Files: the unparsable files of the latest successful runs. Every row has the same keys
    (kind, repository, status, commit, path, finished_at, error); a run row has no path.
    """
    filters = merge_crawl(filters, None)
    failed_runs = session.exec(
        failed_last_runs(filters).with_only_columns(
            Repository.full_name, MiningRun.status, MiningRun.commit_sha,
            MiningRun.finished_at, MiningRun.error,
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
            "finished_at": _iso(row.finished_at),
            "error": row.error,
        }
        for row in failed_runs
    ]
    latest = latest_runs(filters=filters).subquery("latest")
    unparsable = session.exec(
        select(Repository.full_name, latest.c.commit_sha, latest.c.finished_at,
               FileResult.path, FileResult.error)
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
            "finished_at": _iso(row.finished_at),
            "error": row.error,
        }
        for row in unparsable
    ]
    return rows
