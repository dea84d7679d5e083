"""The usage rule in SQL, shared by the summary, the repository rows and the trend.

Spec ("Per-repository usage"): a repository uses api A when a finding of its latest successful
run, fluent or client, has api A; it uses autolog only through an autolog call that does not
disable it. Categories follow the api through the rules table; `client` is any client call and
`other` any finding of category other. Every statistic reads that rule from here, so `miner
stats`, `miner repos --uses` and the trend cannot count usage differently.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, FromClause, String, case, false, literal, or_, select

from miner.core.rules import Rules
from schema.filters import Filters
from schema.latest import latest_runs
from schema.models import MiningRun, RunUsage
from schema.spec import spec_columns

HEADLINE = "headline"


def usage_rows(condition: ColumnElement[bool], name: str = "usage", spec: int | None = None) -> FromClause:
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


def of_latest_runs(filters: Filters) -> ColumnElement[bool]:
    """RunUsage rows of the latest successful runs under `filters`."""
    return RunUsage.mining_run_id.in_(latest_runs(filters=filters).with_only_columns(MiningRun.id))


def category_calls(usage: FromClause, rules: Rules) -> dict[str, ColumnElement[Any]]:
    """Per (run, api) row: the calls it adds to each category's count (as `miner repos` shows)."""
    calls: dict[str, ColumnElement[Any]] = {}
    for category in rules.categories:
        if category is rules.client_category:
            calls[category.value] = usage.c.client_calls
        elif category is rules.default_category:
            calls[category.value] = usage.c.other_calls
        else:
            calls[category.value] = case((usage.c.api.in_(rules.apis_of(category)), usage.c.calls), else_=0)
    return calls


def table_categories(rules: Rules) -> dict[str, str]:
    """api -> category for the categories that follow the api (not `client`, not `other`)."""
    special = (rules.client_category, rules.default_category)
    return {api: category.value for api, category in rules.apis.items() if category not in special}


def usage_keys(rules: Rules) -> list[str]:
    """What `uses` / `not_uses` accept: the rules' apis, their categories, and `headline`."""
    keys = list(rules.apis)
    keys += [category.value for category in rules.categories if category.value not in keys]
    return [*keys, HEADLINE]


def check_usage_keys(keys: Iterable[str], rules: Rules) -> list[str]:
    """`keys` as a list, or ValueError naming the unknown ones and every valid name."""
    known = usage_keys(rules)
    keys = list(keys)
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise ValueError(f"unknown api or category {', '.join(map(repr, unknown))}; valid names: {', '.join(known)}")
    return keys


def run_uses(rules: Rules, key: str, spec: int | None = None) -> ColumnElement[bool]:
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
        apis = [api for api, category in table_categories(rules).items() if category == key]
    padded = literal(",", String).concat(profile.apis_used).concat(",")
    return or_(false(), *(padded.contains(f",{api},", autoescape=True) for api in apis))
