"""What the repositories pages and their API show: the repository list sorted and paged with each
repository's last run, and one repository with its runs, failures and findings.

Built on `miner.present.repositories` and `miner.present.findings` (the same rows as `miner repos`,
the same findings as `miner findings`), so a page, the API and the CLI cannot disagree about a
repository.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, func, literal
from sqlmodel import Session, select

from miner.core.domain import Category, FileStatus, RunStatus
from miner.core.rules import Rules
from miner.present.findings import count_findings, finding_rows
from miner.present.repositories import repository_row, repository_rows, repository_statement
from miner.present.usage import usage_keys
from miner.present.web.links import file_url, with_urls
from schema.filters import Filters, repository_conditions
from schema.models import FileResult, MiningRun, Repository


class SortOrder(str, Enum):
    asc = "asc"
    desc = "desc"


# Every key of a repository row that orders: the name, the numbers, and one count per category.
RepositorySort = Enum(  # type: ignore[misc]
    "RepositorySort",
    [
        (key, key)
        for key in (
            "full_name",
            "stars",
            "findings",
            "headline",
            "mined_at",
            *(category.value for category in Category),
        )
    ],
    type=str,
)


def default_order(sort: RepositorySort) -> SortOrder:
    """Names A to Z; numbers, dates and flags largest first (what a person sorting wants)."""
    return SortOrder.asc if sort.value == "full_name" else SortOrder.desc


# ------------------------------------------------------------------------------ repositories


def _sort_key(sort: RepositorySort, latest: Any, per_run: Any) -> ColumnElement[Any]:
    if sort.value == "full_name":
        return Repository.full_name
    if sort.value == "stars":
        return func.coalesce(Repository.stars, -1)  # unknown stars below zero stars
    if sort.value == "mined_at":
        return latest.c.finished_at
    if sort.value == "headline":
        return latest.c.headline
    column = "findings" if sort.value == "findings" else f"count_{sort.value}"
    if column not in per_run.c:  # a category these rules never use
        return literal(0)
    return func.coalesce(per_run.c[column], 0)


def sorted_repository_rows(
    *,
    session: Session,
    rules: Rules,
    filters: Filters,
    uses: Sequence[str] = (),
    not_uses: Sequence[str] = (),
    sort: RepositorySort = RepositorySort.full_name,
    order: SortOrder | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """`repository_rows` in any order, ties by name, each row with its last run's status.

    By name A to Z (the default) only the page's repositories are counted; any other order
    needs every repository's counts first, one GROUP BY over their usage rows.
    """
    descending = (order or default_order(sort)) is SortOrder.desc
    if sort.value == "full_name" and not descending:
        rows = repository_rows(
            session=session, rules=rules, filters=filters, uses=uses, not_uses=not_uses, limit=limit, offset=offset
        )
        return with_last_runs(session=session, rows=rows, filters=filters)
    unknown = [key for key in (*uses, *not_uses) if key not in usage_keys(rules)]
    if unknown:
        raise ValueError(f"unknown api or category {', '.join(map(repr, unknown))}")
    statement, latest, per_run = repository_statement(rules, filters, uses, not_uses)
    key = _sort_key(sort, latest, per_run)
    statement = statement.order_by(key.desc() if descending else key.asc(), Repository.full_name)
    if limit is not None:
        statement = statement.limit(limit)
    if offset:
        statement = statement.offset(offset)
    rows = [repository_row(row, rules) for row in session.exec(statement).mappings()]
    return with_last_runs(session=session, rows=rows, filters=filters)


def with_last_runs(*, session: Session, rows: list[dict[str, Any]], filters: Filters) -> list[dict[str, Any]]:
    """Each row with `last_run_status` and `last_run_at`: the repository's last run of any
    status (within the crawl filter), which may be a failure newer than the run counted.

    One query for the page's repositories, not one subquery per row of the whole table.
    """
    names = [row["full_name"] for row in rows]
    last: dict[str, MiningRun] = {}
    if names:
        statement = (
            select(Repository.full_name, MiningRun)
            .join(MiningRun, MiningRun.repository_id == Repository.id)
            .where(Repository.full_name.in_(names))
            .order_by(Repository.full_name, MiningRun.finished_at.desc(), MiningRun.id.desc())
        )
        if filters.crawl_id is not None:
            statement = statement.where(MiningRun.crawl_id == filters.crawl_id)
        for full_name, run in session.exec(statement):
            last.setdefault(full_name, run)
    for row in rows:
        run = last.get(row["full_name"])
        row["last_run_status"] = run.status.value if run else None
        row["last_run_at"] = run.finished_at.isoformat() if run else None
    return rows


def repositories_without_ok_run(*, session: Session, filters: Filters, limit: int) -> tuple[list[str], int]:
    """Repositories that were mined (within the filters) but never successfully, which no
    usage row can show: up to `limit` names A to Z, and how many there are."""
    runs = select(MiningRun.id).where(MiningRun.repository_id == Repository.id)
    if filters.crawl_id is not None:
        runs = runs.where(MiningRun.crawl_id == filters.crawl_id)
    if filters.since is not None:
        runs = runs.where(MiningRun.finished_at >= filters.since)
    statement = select(Repository.full_name).where(
        *repository_conditions(filters),
        runs.exists(),
        ~runs.where(MiningRun.status == RunStatus.ok).exists(),
    )
    names = session.exec(statement.order_by(Repository.full_name).limit(limit)).all()
    count = session.exec(select(func.count()).select_from(statement.subquery())).one()
    return list(names), int(count)


# -------------------------------------------------------------------------- one repository


def usage_profile(findings: Sequence[dict[str, Any]], rules: Rules) -> dict[str, Any]:
    """One repository's counts per category and headline flag, from its latest findings.

    The same counting as `miner.present.usage`: a table category by api (fluent and client calls),
    `client` every client call, `other` findings of category other; the headline needs a
    headline api that is not a disabling call.
    """
    counts: Counter[str] = Counter()
    for finding in findings:
        category = rules.apis.get(finding["api"])
        if category is not None:
            counts[category.value] += 1
        if finding.get("via_client"):
            counts[rules.client_category.value] += 1
        if finding["category"] == rules.default_category.value:
            counts[rules.default_category.value] += 1
    headline = any(f["api"] in rules.headline_apis and not f["disabling"] for f in findings)
    return {
        **{category.value: counts.get(category.value, 0) for category in rules.categories},
        "findings": len(findings),
        "headline": headline,
    }


def repository_failures(*, session: Session, repository: Repository, web_url: str) -> list[dict[str, Any]]:
    """Its failed runs (newest first), then the files its latest successful run could not
    parse or skipped; the keys of `miner.present.failures.failure_rows`, plus a file's `url`."""
    runs = session.exec(
        select(MiningRun)
        .where(MiningRun.repository_id == repository.id, MiningRun.status != RunStatus.ok)
        .order_by(MiningRun.finished_at.desc(), MiningRun.id.desc())
    ).all()
    rows: list[dict[str, Any]] = [
        {
            "kind": "run",
            "repository": repository.full_name,
            "status": run.status.value,
            "commit": run.commit_sha,
            "path": None,
            "finished_at": run.finished_at.isoformat(),
            "error": run.error,
            "url": None,
        }
        for run in runs
    ]
    files = session.exec(
        select(FileResult, MiningRun.commit_sha, MiningRun.finished_at)
        .join(MiningRun, MiningRun.id == FileResult.mining_run_id)
        .where(
            MiningRun.repository_id == repository.id,
            MiningRun.latest == True,  # noqa: E712
            FileResult.status != FileStatus.ok,
        )
        .order_by(FileResult.path, FileResult.id)
    ).all()
    rows += [
        {
            "kind": "file",
            "repository": repository.full_name,
            "status": result.status.value,
            "commit": commit,
            "path": result.path,
            "finished_at": finished_at.isoformat(),
            "error": result.error,
            "url": file_url(web_url, repository.full_name, commit, result.path) if commit else None,
        }
        for result, commit, finished_at in files
    ]
    return rows


def repository_detail(
    *,
    session: Session,
    rules: Rules,
    full_name: str,
    web_url: str,
    limit: int | None = None,
    offset: int = 0,
) -> dict[str, Any] | None:
    """Profile, every run (newest first), failures, and a page of its latest findings (in
    file order, each with its GitHub `url`); None for a repository never seen."""
    from schema.repositories import get_repository

    repository = get_repository(session=session, full_name=full_name)
    if repository is None:
        return None
    runs = session.exec(
        select(MiningRun)
        .where(MiningRun.repository_id == repository.id)
        .order_by(MiningRun.finished_at.desc(), MiningRun.id.desc())
    ).all()
    findings = finding_rows(session=session, repo=full_name)
    page = findings[offset:] if limit is None else findings[offset : offset + limit]
    latest_ok = next((run.commit_sha for run in runs if run.status is RunStatus.ok), None)
    failures = repository_failures(session=session, repository=repository, web_url=web_url)
    return {
        "profile": {
            **repository.model_dump(),
            **usage_profile(findings, rules),
            "commit": findings[0]["commit"] if findings else latest_ok,
        },
        "runs": runs,
        "failures": {"data": failures, "count": len(failures)},
        "findings": {"data": with_urls(web_url, page), "count": count_findings(session=session, repo=full_name)},
    }
