"""`miner stats`: the summary figures (headline share with its interval, every api and category,
failures, files), SQL over the latest successful run of each repository.

What counts as usage (the spec's "Per-repository usage") is written once, in miner.present.usage;
the row listings beside this module (repositories, findings, failures, trend) use the same rule.

No statistic reads the findings themselves. `schema.runs.save_run` writes, with a run's findings,
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

Every query takes the same `Filters` (schema.filters), applied in SQL by `schema.latest.latest_runs`.
Findings are read only where they are listed: `finding_rows` (miner.present.findings) and
the export.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlmodel import Session

from miner.core.domain import Category
from miner.core.rules import Rules
from miner.present.failures import failure_counts
from miner.present.figures import share, wilson_interval
from miner.present.usage import HEADLINE, of_latest_runs, table_categories
from schema.filters import Filters, has_repository_conditions, merge_crawl
from schema.latest import latest_runs
from schema.models import MiningRun, RunUsage
from schema.spec import spec_columns


def _entry(repositories: int, calls: int, client_calls: int, total: int) -> dict[str, Any]:
    """One api's or category's figures; fluent calls are what the client calls leave over."""
    return {
        "repositories": repositories,
        "share": share(repositories, total),
        "calls": calls,
        "fluent_calls": calls - client_calls,
        "client_calls": client_calls,
    }


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
    of_latest = of_latest_runs(filters)
    counted = spec_columns(filters.spec)  # the summaries of the spec version asked for

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
            )
            .where(by_api)
            .group_by(RunUsage.api)
        )
    }

    # Per category: latest runs counted per distinct usage profile (the sorted apis a run
    # uses, stored by `save_run`), then the rules map each distinct profile to categories.
    # Profiles repeat across repositories, so this is a few thousand rows, not one per run.
    profile_select = latest_select
    if filters.crawl_id is None:  # the same runs; `= true` lets SQLite group in index order
        profile_select = latest_select.where(MiningRun.latest == True)  # noqa: E712
    profiles = (
        session.connection()
        .execute(
            profile_select.with_only_columns(
                counted.apis_used,
                func.count(),
                func.sum(case((counted.run_client_calls > 0, 1), else_=0)),
                func.sum(case((counted.run_other_calls > 0, 1), else_=0)),
            ).group_by(counted.apis_used)
        )
        .all()
    )
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
    if len(rules_versions) > 1:  # then there may be more than two: list them all
        rules_versions = sorted(
            session.exec(latest_select.with_only_columns(MiningRun.rules_version).distinct()).scalars()
        )

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
            "share": share(headline_repositories, total),
            "ci95": [low, high],
            "apis": list(rules.headline_apis),
        },
        "apis": apis,
        "categories": {category.value: category_entry(category) for category in rules.categories},
        "failures": failure_counts(session, filters=filters, unparsable_files=files[2], skipped_files=files[3]),
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
    keys = [*sorted(set(table_categories(rules).values())), HEADLINE]
    bit = {key: 1 << index for index, key in enumerate(keys)}
    bits_of = {api: bit[category] for api, category in table_categories(rules).items()}
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
