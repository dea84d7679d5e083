"""Filters shared by every query command and the read API: which repositories and runs count.

The conditions are SQL, built here once for `schema.latest.latest_runs` and every query over it. A
topic is matched as an element of the JSON list in `repository.topics`, always as a bound
parameter, so a topic such as `x' OR 1=1 --` is just a topic nobody has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Boolean, ColumnElement, String, cast
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from miner.core.domain import LATEST_SPEC, SPEC_VERSIONS

# GitHub's topic names: lowercase letters, digits and hyphens (no LIKE wildcard among them).
GITHUB_TOPIC = re.compile(r"[a-z0-9][a-z0-9-]{0,49}")


@dataclass(frozen=True)
class Filters:
    """Default (all None/False): the latest successful run of every repository.

    topic: the repository carries this GitHub topic; min_stars: at least this many stars;
    exclude_forks / exclude_archived: drop those repositories; crawl_id: the latest successful
    run within that crawl instead of overall; since: only runs finished at or after this time;
    spec: count the findings of this version of docs/detection.md (1: only those made
    by its version 1 rules; default: the latest, every finding).
    """

    topic: str | None = None
    min_stars: int | None = None
    exclude_forks: bool = False
    exclude_archived: bool = False
    crawl_id: int | None = None
    since: datetime | None = None
    spec: int = LATEST_SPEC

    def __post_init__(self) -> None:
        if self.spec not in SPEC_VERSIONS:
            raise ValueError(f"unknown spec version {self.spec}; one of {', '.join(map(str, SPEC_VERSIONS))}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for dataset cards and reports (`since` as ISO 8601)."""
        return {
            "topic": self.topic,
            "min_stars": self.min_stars,
            "exclude_forks": self.exclude_forks,
            "exclude_archived": self.exclude_archived,
            "crawl_id": self.crawl_id,
            "since": self.since.isoformat() if self.since else None,
            "spec": self.spec,
        }


def merge_crawl(filters: Filters | None, crawl_id: int | None) -> Filters:
    """`crawl_id=` of the older signatures is `Filters(crawl_id=...)`; an explicit filter wins."""
    filters = filters or Filters()
    if crawl_id is not None and filters.crawl_id is None:
        return replace(filters, crawl_id=crawl_id)
    return filters


def parse_since(text: str) -> datetime:
    """An ISO date (midnight UTC) or datetime (UTC unless it carries an offset).

    Raises ValueError with a message naming the accepted forms.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.min, tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"invalid date {text!r}: use YYYY-MM-DD or an ISO datetime such as 2026-03-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class json_list_contains(FunctionElement[bool]):  # noqa: N801 (an SQL function, named like one)
    """`json_list_contains(column, value)`: the JSON array in `column` has the string `value`.

    SQLite walks the array with json_each; PostgreSQL tests containment on the jsonb form.
    """

    type = Boolean()
    name = "json_list_contains"
    inherit_cache = True


@compiles(json_list_contains, "sqlite")
def _json_list_contains_sqlite(element: json_list_contains, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = list(element.clauses)
    return (
        f"EXISTS (SELECT 1 FROM json_each({compiler.process(column, **kw)}) AS topic_element "
        f"WHERE topic_element.value = {compiler.process(value, **kw)})"
    )


@compiles(json_list_contains, "postgresql")
def _json_list_contains_postgresql(element: json_list_contains, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = list(element.clauses)
    return f"(CAST({compiler.process(column, **kw)} AS JSONB) @> jsonb_build_array({compiler.process(value, **kw)}))"


def repository_conditions(filters: Filters | None) -> list[ColumnElement[bool]]:
    """WHERE conditions on `repository` for the topic, stars, fork and archived filters."""
    from schema.models import Repository

    if filters is None:
        return []
    conditions: list[ColumnElement[bool]] = []
    if filters.topic is not None:
        if GITHUB_TOPIC.fullmatch(filters.topic):
            # A GitHub topic needs no JSON escaping, so its element is the text "topic" in the
            # stored array: a cheap necessary condition, tested before the exact one.
            conditions.append(cast(Repository.topics, String).like(f'%"{filters.topic}"%'))
        conditions.append(json_list_contains(Repository.topics, cast(filters.topic, String)))
    if filters.min_stars is not None:
        conditions.append(Repository.stars >= filters.min_stars)
    if filters.exclude_forks:
        conditions.append(Repository.fork.is_(False))
    if filters.exclude_archived:
        conditions.append(Repository.archived.is_(False))
    return conditions


def has_repository_conditions(filters: Filters | None) -> bool:
    return filters is not None and bool(
        filters.topic is not None or filters.min_stars is not None or filters.exclude_forks or filters.exclude_archived
    )
