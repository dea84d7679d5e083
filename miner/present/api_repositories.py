"""`/api/repositories` and `/api/repositories/{owner}/{name}`, and what their pages share.

The repository list is sorted and paged in SQL (`sort`, `order`, `page`, `per_page`) under the
shared filters plus `uses` / `not_uses`; one repository comes with its runs, failures and a page
of findings, each finding with its link on GitHub. The HTML pages (`miner.present.web.pages`) call the
same functions with the same dependencies, so a page and its JSON are one answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel
from sqlmodel import Session

from miner.core.rules import Rules
from miner.present.api import (
    MAX_PAGE,
    MAX_PER_PAGE,
    NO_NUL,
    FiltersDep,
    Page,
    PageDep,
    RulesDep,
    SessionDep,
    invalid_query,
)
from miner.present.api_models import RepositoriesPublic, RepositoryDetail, RunPublic
from miner.present.browse import RepositorySort, SortOrder
from schema.filters import Filters

DETAIL_FINDINGS = 500  # a repository's findings per page (its page and its API)

router = APIRouter(tags=["repositories"])


# ------------------------------------------------------------------------- dependencies


def _check_usage(field: str, values: Sequence[str], rules: Rules) -> tuple[str, ...]:
    from miner.present.usage import usage_keys

    known = usage_keys(rules)
    for value in values:
        if value not in known:
            raise invalid_query(field, value, f"unknown api or category {value!r}; one of: {', '.join(known)}")
    return tuple(values)


class Usage(BaseModel):
    uses: tuple[str, ...] = ()
    not_uses: tuple[str, ...] = ()


def get_usage(
    rules: RulesDep,
    uses: Annotated[
        list[str], Query(max_length=50, description="Uses this api or category (repeatable; all must hold).")
    ] = [],
    not_uses: Annotated[
        list[str], Query(max_length=50, description="Does not use this api or category (repeatable).")
    ] = [],
) -> Usage:
    return Usage(uses=_check_usage("uses", uses, rules), not_uses=_check_usage("not_uses", not_uses, rules))


UsageDep = Annotated[Usage, Depends(get_usage)]


class Sort(BaseModel):
    key: RepositorySort
    order: SortOrder | None


def get_sort(
    sort: Annotated[
        RepositorySort, Query(description="Order by this key of the rows; ties by name.")
    ] = RepositorySort.full_name,
    order: Annotated[
        SortOrder | None, Query(description="asc or desc; default asc for full_name, desc for the others.")
    ] = None,
) -> Sort:
    return Sort(key=sort, order=order)


SortDep = Annotated[Sort, Depends(get_sort)]


def get_findings_page(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page of the findings.")] = 1,
    per_page: Annotated[
        int, Query(ge=1, le=MAX_PER_PAGE, description=f"Findings per page, at most {MAX_PER_PAGE}.")
    ] = DETAIL_FINDINGS,
) -> Page:
    """A repository's findings come in pages of 500 unless told (the list's default is 50)."""
    return Page(page=page, per_page=per_page)


FindingsPageDep = Annotated[Page, Depends(get_findings_page)]
OwnerPath = Annotated[str, Path(max_length=100, pattern=NO_NUL)]
NamePath = Annotated[str, Path(max_length=200, pattern=NO_NUL)]


# ------------------------------------------------------------------------------ answers


def repository_list(
    session: Session, rules: Rules, filters: Filters, page: Page, usage: Usage, sort: Sort
) -> dict[str, Any]:
    """A page of repository rows and their total."""
    from miner.present.browse import sorted_repository_rows
    from miner.present.repositories import count_repositories

    rows = sorted_repository_rows(
        session=session,
        rules=rules,
        filters=filters,
        uses=usage.uses,
        not_uses=usage.not_uses,
        sort=sort.key,
        order=sort.order,
        limit=page.per_page,
        offset=page.offset,
    )
    count = count_repositories(session=session, rules=rules, filters=filters, uses=usage.uses, not_uses=usage.not_uses)
    return {"data": rows, "count": count}


def repository_answer(
    request: Request, session: Session, rules: Rules, full_name: str, page: Page
) -> dict[str, Any] | None:
    """One repository's detail document, or None when it was never seen."""
    from miner.present.browse import repository_detail

    detail = repository_detail(
        session=session,
        rules=rules,
        full_name=full_name,
        web_url=request.app.state.settings.github.web_url,
        limit=page.per_page,
        offset=page.offset,
    )
    if detail is None:
        return None
    return {**detail, "runs": [RunPublic.model_validate(run) for run in detail["runs"]]}


# ------------------------------------------------------------------------------- routes


@router.get("/api/repositories", response_model=RepositoriesPublic)
def read_repositories(
    session: SessionDep, rules: RulesDep, filters: FiltersDep, page: PageDep, usage: UsageDep, sort: SortDep
) -> dict[str, Any]:
    """Repositories with their usage profile (one count per category, as `miner repos`) and
    the status of their last run, sorted (by name unless told) and paged."""
    return repository_list(session, rules, filters, page, usage, sort)


@router.get(
    "/api/repositories/{owner}/{name}",
    response_model=RepositoryDetail,
    responses={404: {"description": "No such repository"}},
)
def read_repository(
    request: Request, session: SessionDep, rules: RulesDep, owner: OwnerPath, name: NamePath, page: FindingsPageDep
) -> dict[str, Any]:
    """One repository: its profile, every run (newest first), its failures, and a page of its
    latest findings in file order, each with its `url` on GitHub."""
    full_name = f"{owner}/{name}"
    answer = repository_answer(request, session, rules, full_name, page)
    if answer is None:
        raise HTTPException(status_code=404, detail=f"no repository {full_name}")
    return answer
