"""The read-only HTTP API and the dashboard: `miner serve` runs `create_app(settings)`.

Every route is a GET over the same queries as the CLI (`miner.present.stats`, `schema.crawls`), with the
same filters; lists answer `{"data": [...], "count": N}` with `count` the total before paging.
Nothing here writes: there are no other methods (FastAPI answers 405), and each request's
session is read-only in the database itself (PostgreSQL `SET TRANSACTION READ ONLY`, SQLite
`PRAGMA query_only`), so even a bug in a query cannot change the results.

The response models are in `miner.present.api_models`. The repository routes live in
`miner.present.api_repositories` and the dashboard's evidence pages in `miner.present.web.pages`;
both use the dependencies defined here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlmodel import Session, select

from miner import __version__
from miner.core.domain import LATEST_SPEC, SPEC_VERSIONS
from miner.core.rules import Rules, load_rules
from miner.core.settings import Settings, load_settings
from miner.present.api_models import CrawlsPublic, FindingsPublic, StatsPublic, TrendPublic
from miner.present.browse import usage_profile as usage_profile  # its older home; callers import it here
from miner.present.charts import Chart, chart_card, render_charts
from miner.present.web import templates
from miner.present.web.links import with_urls
from schema.filters import Filters, parse_since
from schema.models import Crawl, Finding

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
MAX_PAGE = 1_000_000  # keeps OFFSET far from integer overflow on either database
# PostgreSQL refuses NUL in text: such input is a 422 here, not a driver error later.
NO_NUL = r"^[^\x00]*$"

# ------------------------------------------------------------------------- dependencies


@contextmanager
def read_only_session(settings_or_url: Settings | str) -> Iterator[Session]:
    """A session that the database refuses to write through (migrations happen before it)."""
    from schema.db import open_session

    with open_session(settings_or_url) as session:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            session.exec(text("SET TRANSACTION READ ONLY"))
            yield session
            return
        # SQLite: query_only belongs to the pooled connection, so switch it back off after.
        session.exec(text("PRAGMA query_only = ON"))
        try:
            yield session
        finally:
            session.rollback()
            session.exec(text("PRAGMA query_only = OFF"))
            session.commit()


def get_session(request: Request) -> Iterator[Session]:
    with read_only_session(request.app.state.settings) as session:
        yield session


def get_rules(request: Request) -> Rules:
    return request.app.state.rules


SessionDep = Annotated[Session, Depends(get_session)]
RulesDep = Annotated[Rules, Depends(get_rules)]


def invalid_query(field: str, value: Any, message: str) -> RequestValidationError:
    """The 422 body FastAPI gives its own validation errors, for checks that need the rules."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}])


def _since(text: str | None) -> datetime | None:
    """The CLI's --since rules (ISO date or datetime, UTC unless an offset is given)."""
    if text is None or text == "":
        return None
    try:
        return parse_since(text)
    except (ValueError, OverflowError) as exc:  # OverflowError: an offset past year 1 or 9999
        raise invalid_query(
            "since", text, str(exc) if isinstance(exc, ValueError) else f"date {text!r} is out of range"
        ) from None


def get_filters(
    session: SessionDep,
    topic: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="Repositories with this GitHub topic.")
    ] = None,
    min_stars: Annotated[int | None, Query(ge=0, le=10**9, description="At least this many stars.")] = None,
    exclude_forks: Annotated[bool, Query(description="Leave forks out.")] = False,
    exclude_archived: Annotated[bool, Query(description="Leave archived repositories out.")] = False,
    crawl: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Latest successful run within this crawl.")
    ] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Runs finished at or after this ISO date or datetime (UTC unless an offset is given).",
            examples=["2026-03-01", "2026-03-01T12:00:00+02:00"],
        ),
    ] = None,
    spec: Annotated[
        int,
        Query(
            ge=SPEC_VERSIONS[0],
            le=LATEST_SPEC,
            description="Count findings under this version of the detection spec (1 leaves out what version 2 added).",
        ),
    ] = LATEST_SPEC,
) -> Filters:
    """The shared filters; a crawl that does not exist is an error, not an empty answer."""
    if crawl is not None and session.get(Crawl, crawl) is None:
        raise invalid_query("crawl", crawl, f"no crawl with id {crawl} (see /api/crawls)")
    return Filters(
        topic=topic or None,
        min_stars=min_stars,
        exclude_forks=exclude_forks,
        exclude_archived=exclude_archived,
        crawl_id=crawl,
        since=_since(since),
        spec=spec,
    )


FiltersDep = Annotated[Filters, Depends(get_filters)]


class Page(BaseModel):
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def get_page(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number.")] = 1,
    per_page: Annotated[
        int, Query(ge=1, le=MAX_PER_PAGE, description=f"Rows per page, at most {MAX_PER_PAGE}.")
    ] = DEFAULT_PER_PAGE,
) -> Page:
    return Page(page=page, per_page=per_page)


PageDep = Annotated[Page, Depends(get_page)]


def _check_api(session: Session, rules: Rules, api: str | None) -> str | None:
    """An api of the rules table, or one the database holds findings of (category other)."""
    if api is None or api in rules.apis:
        return api
    if session.exec(select(Finding.id).where(Finding.api == api).limit(1)).first() is None:
        raise invalid_query("api", api, f"unknown api {api!r}")
    return api


def _query_string(request: Request) -> str:
    """The request's filters, re-encoded for the chart URLs of the dashboard."""
    pairs = [
        (key, value)
        for key, value in request.query_params.multi_items()
        if key in {"topic", "min_stars", "exclude_forks", "exclude_archived", "crawl", "since", "spec"} and value != ""
    ]
    return "?" + urlencode(pairs) if pairs else ""


# ------------------------------------------------------------------------------- the app


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over `settings.database_url`; the schema is brought up to date on first use."""
    settings = settings or load_settings()
    app = FastAPI(
        title="mlflow-miner",
        version=__version__,
        summary="Read-only access to mined MLflow API usage: statistics, repositories, findings, crawls.",
    )
    app.state.settings = settings
    app.state.rules = load_rules(settings.rules)

    @app.get("/api/stats", response_model=StatsPublic, tags=["stats"])
    def read_stats(session: SessionDep, rules: RulesDep, filters: FiltersDep) -> dict[str, Any]:
        """The headline share with its 95 % interval, per api and category usage, failures."""
        from miner.present.stats import compute_stats

        return compute_stats(session=session, rules=rules, filters=filters)

    @app.get("/api/trend", response_model=TrendPublic, tags=["stats"])
    def read_trend(session: SessionDep, rules: RulesDep) -> dict[str, Any]:
        """The headline share of each crawl, oldest first."""
        from miner.present.trend import crawl_trend

        rows = crawl_trend(session=session, rules=rules)
        return {"data": rows, "count": len(rows)}

    @app.get("/api/findings", response_model=FindingsPublic, tags=["findings"])
    def read_findings(
        request: Request,
        session: SessionDep,
        rules: RulesDep,
        filters: FiltersDep,
        page: PageDep,
        api: Annotated[
            str | None, Query(max_length=100, pattern=NO_NUL, description="Only this api, e.g. log_param.")
        ] = None,
        repo: Annotated[str | None, Query(max_length=300, pattern=NO_NUL, description="Only this OWNER/NAME.")] = None,
    ) -> dict[str, Any]:
        """Findings of the latest successful run of each repository."""
        from miner.present.findings import count_findings, finding_rows

        api = _check_api(session, rules, api)
        rows = finding_rows(
            session=session, repo=repo, api=api, filters=filters, limit=page.per_page, offset=page.offset
        )
        count = count_findings(session=session, repo=repo, api=api, filters=filters)
        return {"data": with_urls(request.app.state.settings.github.web_url, rows), "count": count}

    @app.get("/api/crawls", response_model=CrawlsPublic, tags=["crawls"])
    def read_crawls(session: SessionDep) -> dict[str, Any]:
        """Every crawl, newest first, with its progress from the stored runs; a running crawl
        that stored nothing for `crawl_stall_after_s` is `stalled`, its repositories in flight named."""
        from schema.crawls import crawl_rows

        rows = crawl_rows(session=session, stall_after_s=app.state.settings.crawl_stall_after_s)
        return {"data": rows, "count": len(rows)}

    @app.get(
        "/charts/{chart}.png",
        tags=["dashboard"],
        responses={200: {"content": {"image/png": {}}, "description": "A PNG chart"}},
        response_class=Response,
    )
    def read_chart(session: SessionDep, rules: RulesDep, filters: FiltersDep, chart: Chart) -> Response:
        """The report's charts, drawn on request from the current data."""
        png = render_charts(session=session, rules=rules, filters=filters, charts=[chart])[chart]
        return Response(content=png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/", response_class=HTMLResponse, tags=["dashboard"])
    def dashboard(request: Request, session: SessionDep, rules: RulesDep, filters: FiltersDep) -> HTMLResponse:
        """The headline number and the report's charts, with the same filters as the API."""
        from miner.present.stats import compute_stats

        stats = compute_stats(session=session, rules=rules, filters=filters)
        page = templates.get_template("dashboard.html.j2").render(
            stats=stats,
            filters=filters,
            query=_query_string(request),
            charts=[chart_card(chart) for chart in Chart],
        )
        return HTMLResponse(page)

    # routes in their own modules, which import this module's dependencies
    from miner.present.api_repositories import router as repositories
    from miner.present.web.pages import router as pages

    app.include_router(repositories)
    app.include_router(pages)
    return app
