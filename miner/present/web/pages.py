"""The dashboard's evidence pages: the repositories table and one repository's page.

Both render what the API answers (`miner.present.api_repositories`), with the same filters, sorting and
paging; every link keeps the query it came from. Repository names and paths reach the HTML
only through Jinja's autoescaping and, inside URLs, percent-quoting.
"""

from __future__ import annotations

import math
from itertools import groupby
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from miner.core.rules import Rules
from miner.present.api import FiltersDep, Page, PageDep, RulesDep, SessionDep
from miner.present.api_repositories import (
    FindingsPageDep,
    NamePath,
    OwnerPath,
    SortDep,
    UsageDep,
    repository_answer,
    repository_list,
)
from miner.present.browse import RepositorySort, default_order
from miner.present.usage import HEADLINE
from miner.present.web import templates
from miner.present.web.links import commit_url, file_url, is_notebook, location, repository_url

router = APIRouter(tags=["dashboard"])

UNMINED_SHOWN = 50  # repositories without a successful run named under the table
FILTER_KEYS = ("topic", "min_stars", "exclude_forks", "exclude_archived", "crawl", "since")


def page_path(full_name: str) -> str:
    """`/repositories/{owner}/{name}`, each part quoted (names are data, never markup)."""
    owner, _, name = full_name.partition("/")
    return f"/repositories/{quote(owner, safe='')}/{quote(name, safe='')}"


def with_query(request: Request, path: str, keep: tuple[str, ...] | None = None, **changes: Any) -> str:
    """`path` with the request's query (only the `keep` keys if given), `changes` applied:
    a value replaces that key, None drops it."""
    pairs = [
        (key, value)
        for key, value in request.query_params.multi_items()
        if value != "" and key not in changes and (keep is None or key in keep)
    ]
    pairs += [(key, str(value)) for key, value in changes.items() if value is not None]
    return path + ("?" + urlencode(pairs) if pairs else "")


def _page_count(count: int, page: Page) -> int:
    return max(1, math.ceil(count / page.per_page))


def _usage_choices(rules: Rules) -> list[tuple[str, list[str]]]:
    categories = [category.value for category in rules.categories]
    return [("headline", [HEADLINE]), ("categories", categories), ("apis", list(rules.apis))]


def _render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status_code)


@router.get("/repositories", response_class=HTMLResponse)
def repositories_page(
    request: Request,
    session: SessionDep,
    rules: RulesDep,
    filters: FiltersDep,
    page: PageDep,
    usage: UsageDep,
    sort: SortDep,
) -> HTMLResponse:
    """Repositories with their usage profile and last run: sortable, filterable, paged."""
    from miner.present.browse import repositories_without_ok_run

    answer = repository_list(session, rules, filters, page, usage, sort)
    unmined, unmined_count = repositories_without_ok_run(session=session, filters=filters, limit=UNMINED_SHOWN)
    current_order = (sort.order or default_order(sort.key)).value

    def sort_url(key: str) -> str:
        """Sorting by a column starts at page 1; the sorted column's link flips its order."""
        column = RepositorySort(key)
        if column is sort.key:
            flipped = "asc" if current_order == "desc" else "desc"
            order = None if flipped == default_order(column).value else flipped
        else:
            order = None
        return with_query(request, "/repositories", sort=None if key == "full_name" else key, order=order, page=None)

    return _render(
        "repositories.html.j2",
        rows=answer["data"],
        count=answer["count"],
        page=page,
        unmined=unmined,
        unmined_count=unmined_count,
        pages=_page_count(answer["count"], page),
        page_url=lambda number: with_query(request, "/repositories", page=number),
        sort_url=sort_url,
        sort=sort.key.value,
        order=current_order,
        categories=[category.value for category in rules.categories],
        filters=filters,
        usage=usage,
        usage_choices=_usage_choices(rules),
        sort_param=request.query_params.get("sort", ""),
        order_param=request.query_params.get("order", ""),
        per_page_param=request.query_params.get("per_page", ""),
        api_url=with_query(request, "/api/repositories"),
        nav_query=with_query(request, "", keep=FILTER_KEYS),
        page_path=page_path,
    )


def _files(findings: list[dict[str, Any]], web_url: str) -> list[dict[str, Any]]:
    """The page's findings grouped by file, in file order (the findings come in that order)."""
    files = []
    for path, group in groupby(findings, key=lambda finding: finding["path"]):
        items = list(group)
        first = items[0]
        files.append(
            {
                "path": path,
                "notebook": is_notebook(path, first["cell"]),
                "url": file_url(web_url, first["repository"], first["commit"], path) if first["commit"] else None,
                "findings": [{**item, "location": location(item)} for item in items],
            }
        )
    return files


@router.get(
    "/repositories/{owner}/{name}", response_class=HTMLResponse, responses={404: {"description": "No such repository"}}
)
def repository_page(
    request: Request, session: SessionDep, rules: RulesDep, owner: OwnerPath, name: NamePath, page: FindingsPageDep
) -> HTMLResponse:
    """One repository: profile, runs, failures, findings by file with their GitHub links."""
    full_name = f"{owner}/{name}"
    answer = repository_answer(request, session, rules, full_name, page)
    if answer is None:
        return _render(
            "message.html.j2",
            status_code=404,
            title="No such repository",
            message=f"No repository {full_name} has been seen by a crawl or a mine.",
        )
    web_url = request.app.state.settings.github.web_url
    profile = answer["profile"]
    findings = answer["findings"]
    api_path = "/api" + page_path(full_name)
    return _render(
        "repository.html.j2",
        profile=profile,
        runs=answer["runs"],
        failures=answer["failures"]["data"],
        files=_files(findings["data"], web_url),
        findings_count=findings["count"],
        findings_shown=len(findings["data"]),
        page=page,
        pages=_page_count(findings["count"], page),
        page_url=lambda number: with_query(request, page_path(full_name), page=number),
        categories=[category.value for category in rules.categories],
        github_url=repository_url(web_url, full_name),
        commit_url=lambda commit: commit_url(web_url, full_name, commit),
        api_url=with_query(request, api_path, keep=("page", "per_page")),
        findings_api_url="/api/findings?" + urlencode({"repo": full_name}),
    )
