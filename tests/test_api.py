"""The read-only API on the hand-checked corpus of usage_corpus.py, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select
from usage_corpus import (
    CRAWL1_HEADLINE,
    CRAWL1_N,
    EVIL,
    EVIL_PATH,
    HEADLINE,
    RULES,
    SQL_ISH,
    N,
    seed,
)

from miner.core.domain import Category
from miner.core.settings import load_settings
from miner.present.api import MAX_PER_PAGE, create_app, read_only_session, usage_profile
from miner.present.figures import wilson_interval
from miner.present.findings import finding_rows
from miner.present.repositories import repository_rows
from miner.present.stats import compute_stats
from schema.db import open_session
from schema.models import FileResult, Finding, MiningRun, Repository

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LIST_ROUTES = ("/api/repositories", "/api/findings", "/api/crawls", "/api/trend")
ROUTES = (
    "/",
    "/api/stats",
    *LIST_ROUTES,
    "/api/repositories/acme/params",
    "/charts/headline.png",
    "/repositories",
    "/repositories/acme/params",
)


class Seeded:
    def __init__(self, client: TestClient, session: Session, url: str, crawls: dict[str, int]) -> None:
        self.client, self.session, self.url, self.crawls = client, session, url, crawls

    def get(self, path: str, **params: object) -> dict:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def names(self, **params: object) -> list[str]:
        return [row["full_name"] for row in self.get("/api/repositories", **params)["data"]]


@pytest.fixture
def api(session: Session, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeded]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINER_CONFIG", str(tmp_path / "absent.yaml"))
    crawls = seed(session)
    app = create_app(load_settings(database_url=database_url))
    with TestClient(app) as client:
        yield Seeded(client, session, database_url, crawls)


def table_counts(url: str) -> tuple[int, ...]:
    with open_session(url) as session:
        return tuple(
            session.exec(select(func.count()).select_from(table)).one()
            for table in (Repository, MiningRun, FileResult, Finding)
        )


# ------------------------------------------------------------------------------------ stats


def test_stats_is_the_stats_document(api: Seeded) -> None:
    stats = api.get("/api/stats")

    assert stats["repositories"] == N
    assert stats["headline"]["repositories"] == HEADLINE
    assert stats["headline"]["share"] == pytest.approx(HEADLINE / N)
    assert stats["headline"]["ci95"] == pytest.approx(list(wilson_interval(HEADLINE, N)))
    assert list(stats["apis"]) == list(RULES.apis)
    assert stats["apis"]["log_metric"]["repositories"] == 2  # client, busy
    assert stats["categories"]["autolog"]["repositories"] == 1  # the disabling one is not use
    assert stats["failures"]["runs"]["clone_failed"] == 1
    direct = compute_stats(session=api.session, rules=RULES)
    assert stats["headline"] == {**direct["headline"], "ci95": list(direct["headline"]["ci95"])}
    assert stats["apis"] == direct["apis"]


@pytest.mark.parametrize(
    ("params", "n", "headline"),
    [
        ({"exclude_forks": "true"}, N - 1, HEADLINE - 1),  # acme/client
        ({"exclude_archived": "true"}, N - 1, HEADLINE),  # acme/autolog-off
        ({"exclude_forks": "true", "exclude_archived": "true"}, N - 2, HEADLINE - 1),
        ({"min_stars": 50}, 2, 2),  # params, sklearn
        ({"topic": "vision"}, 1, 1),  # sklearn
        ({"since": "2026-03-03"}, 1, 1),  # busy, mined on 2026-03-04
        ({"since": "2026-03-03T00:00:00+00:00"}, 1, 1),
        ({"topic": SQL_ISH}, 0, 0),
    ],
)
def test_stats_filters(api: Seeded, params: dict, n: int, headline: int) -> None:
    stats = api.get("/api/stats", **params)

    assert (stats["repositories"], stats["headline"]["repositories"]) == (n, headline)


def test_stats_of_one_crawl(api: Seeded) -> None:
    stats = api.get("/api/stats", crawl=api.crawls["crawl1"])

    assert (stats["repositories"], stats["headline"]["repositories"]) == (CRAWL1_N, CRAWL1_HEADLINE)


def test_trend_has_one_point_per_crawl(api: Seeded) -> None:
    trend = api.get("/api/trend")

    assert trend["count"] == 2
    assert [(point["k"], point["n"]) for point in trend["data"]] == [(CRAWL1_HEADLINE, CRAWL1_N), (HEADLINE, N)]


# ----------------------------------------------------------------------------- repositories


def test_repositories_with_their_usage_profile(api: Seeded) -> None:
    body = api.get("/api/repositories")

    assert body["count"] == N == len(body["data"])
    rows = {row["full_name"]: row for row in body["data"]}
    assert "acme/broken" not in rows  # no successful run
    busy = rows["acme/busy"]
    assert (busy["findings"], busy["metrics"], busy["params"], busy["headline"]) == (33, 30, 3, True)
    assert (busy["stars"], busy["fork"], busy["archived"]) == (10, False, False)
    assert busy["topics"] == ["mlflow-projects"]
    assert busy["commit"] == "b1"
    assert rows["acme/client"]["fork"] is True and rows["acme/client"]["client"] == 1
    assert rows["acme/autolog-off"]["headline"] is False
    assert set(rows[EVIL]) >= {
        "full_name",
        "stars",
        "fork",
        "archived",
        "topics",
        "commit",
        "mined_at",
        "findings",
        "headline",
        *(category.value for category in RULES.categories),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"uses": "log_metric"}, {"acme/client", "acme/busy"}),
        ({"uses": ["log_metric", "params"]}, {"acme/busy"}),
        ({"uses": "log_metric", "not_uses": "client"}, {"acme/busy"}),
        ({"uses": "params"}, {"acme/params", "acme/busy", EVIL}),
        ({"uses": "params", "min_stars": 10}, {"acme/params", "acme/busy"}),
        ({"not_uses": "headline"}, {"acme/autolog-off", "acme/config"}),
        ({"uses": "config", "crawl": "crawl1"}, {"acme/config"}),
        ({"topic": "nlp"}, {"acme/params"}),
    ],
)
def test_repositories_filters(api: Seeded, params: dict, expected: set[str]) -> None:
    if params.get("crawl") == "crawl1":
        params = {**params, "crawl": api.crawls["crawl1"]}
    body = api.get("/api/repositories", **params)

    assert {row["full_name"] for row in body["data"]} == expected
    assert body["count"] == len(expected)


def test_pagination_walks_every_repository_once(api: Seeded) -> None:
    everything = api.names(per_page=MAX_PER_PAGE)
    pages = [api.get("/api/repositories", page=page, per_page=2) for page in range(1, 6)]

    assert all(page["count"] == N for page in pages)
    assert [len(page["data"]) for page in pages] == [2, 2, 2, 1, 0]
    assert [row["full_name"] for page in pages for row in page["data"]] == everything
    assert len(set(everything)) == N


@pytest.mark.parametrize("route", ["/api/repositories", "/api/findings"])
@pytest.mark.parametrize(
    "params",
    [
        {"per_page": 1_000_000},
        {"per_page": MAX_PER_PAGE + 1},
        {"per_page": 0},
        {"page": 0},
        {"page": -3},
        {"page": 10**30},
        {"per_page": "ten"},
    ],
)
def test_page_size_is_capped(api: Seeded, route: str, params: dict) -> None:
    response = api.client.get(route, params=params)

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_repository_detail(api: Seeded) -> None:
    detail = api.get("/api/repositories/acme/params")

    profile = detail["profile"]
    assert (profile["full_name"], profile["stars"], profile["topics"]) == (
        "acme/params",
        50,
        ["mlflow-projects", "nlp"],
    )
    assert (profile["params"], profile["metrics"], profile["findings"], profile["headline"]) == (2, 0, 2, True)
    assert profile["commit"] == profile["last_mined_sha"] == "p1"
    assert [(run["commit_sha"], run["status"]) for run in detail["runs"]] == [("p1", "ok"), ("p0", "ok")]
    assert detail["runs"][0]["files_unparsable"] == 1
    assert detail["findings"]["count"] == 2
    assert [(f["api"], f["line"]) for f in detail["findings"]["data"]] == [("log_param", 3), ("log_param", 9)]


def test_repository_detail_of_a_failed_and_an_unknown_repository(api: Seeded) -> None:
    broken = api.get("/api/repositories/acme/broken")
    assert [run["status"] for run in broken["runs"]] == ["clone_failed"]
    assert broken["runs"][0]["error"] == "clone failed: repository not found"
    assert broken["findings"] == {"data": [], "count": 0}
    assert (broken["profile"]["commit"], broken["profile"]["headline"]) == (None, False)

    for path in (
        "/api/repositories/acme/nope",
        "/api/repositories/nobody/params",
        "/api/repositories/" + quote(SQL_ISH, safe="") + "/x",
    ):
        response = api.client.get(path)
        assert response.status_code == 404, path
        assert "no repository" in response.json()["detail"]
    assert api.client.get("/api/repositories/acme/pa%00rams").status_code == 422


def test_profile_counts_like_the_repository_rows(api: Seeded) -> None:
    """The detail page counts one repository's findings; it must agree with `miner repos`."""
    rows = repository_rows(session=api.session, rules=RULES)
    assert len(rows) == N
    for row in rows:
        profile = usage_profile(finding_rows(session=api.session, repo=row["full_name"]), RULES)
        assert {key: row[key] for key in profile} == profile, row["full_name"]


# --------------------------------------------------------------------------------- findings


def test_findings_filtered_and_paged(api: Seeded) -> None:
    log_param = api.get("/api/findings", api="log_param")
    assert log_param["count"] == 3
    assert [(f["repository"], f["line"]) for f in log_param["data"]] == [
        ("acme/params", 3),
        ("acme/params", 9),
        (EVIL, 1),
    ]
    assert log_param["data"][2]["path"] == EVIL_PATH

    busy = api.get("/api/findings", repo="acme/busy", per_page=10, page=2)
    assert busy["count"] == 33 and len(busy["data"]) == 10
    assert {f["repository"] for f in busy["data"]} == {"acme/busy"}

    crawl1 = api.get("/api/findings", crawl=api.crawls["crawl1"])
    assert {(f["repository"], f["commit"]) for f in crawl1["data"]} == {
        ("acme/params", "p0"),
        ("acme/sklearn", "s0"),
        ("acme/config", "g0"),
    }

    # an api outside the rules table is known once the database holds it (category other)
    other = api.get("/api/findings", api="search_runs")
    assert [(f["repository"], f["category"]) for f in other["data"]] == [("acme/config", "other")]


@pytest.mark.parametrize(
    ("route", "params", "field"),
    [
        ("/api/findings", {"api": "log_everything"}, "api"),
        ("/api/findings", {"api": SQL_ISH}, "api"),
        ("/api/repositories", {"uses": "log_everything"}, "uses"),
        ("/api/repositories", {"uses": ["params", SQL_ISH]}, "uses"),
        ("/api/repositories", {"not_uses": "nope"}, "not_uses"),
        ("/api/stats", {"since": "yesterday"}, "since"),
        ("/api/stats", {"since": "2026-13-01"}, "since"),
        ("/api/repositories", {"since": "2026-02-30"}, "since"),
        ("/api/findings", {"since": SQL_ISH}, "since"),
        ("/api/stats", {"since": "1"}, "since"),  # not an epoch timestamp
        ("/api/stats", {"since": "0001-01-01T00:00:00+01:00"}, "since"),  # before year 1 in UTC
        ("/api/stats", {"since": "9999-12-31T23:59:59-10:00"}, "since"),
        ("/api/stats", {"topic": "mlflow\x00projects"}, "topic"),  # PostgreSQL refuses NUL
        ("/api/findings", {"repo": "acme/\x00"}, "repo"),
        ("/api/findings", {"api": "log_param\x00"}, "api"),
        ("/api/stats", {"crawl": "latest"}, "crawl"),
        ("/api/stats", {"crawl": 999}, "crawl"),
        ("/api/findings", {"crawl": 2**40}, "crawl"),
        ("/api/stats", {"min_stars": -1}, "min_stars"),
        ("/api/stats", {"exclude_forks": "maybe"}, "exclude_forks"),
        ("/", {"since": "soon"}, "since"),
        ("/charts/headline.png", {"since": "soon"}, "since"),
        ("/api/repositories", {"sort": "popularity"}, "sort"),
        ("/api/repositories", {"sort": SQL_ISH}, "sort"),
        ("/api/repositories", {"order": "up"}, "order"),
        ("/api/repositories/acme/busy", {"per_page": 0}, "per_page"),
        ("/api/repositories/acme/busy", {"page": "two"}, "page"),
        ("/repositories", {"sort": "popularity"}, "sort"),
        ("/repositories", {"order": "sideways"}, "order"),
        ("/repositories", {"page": 0}, "page"),
        ("/repositories", {"per_page": MAX_PER_PAGE + 1}, "per_page"),
        ("/repositories", {"uses": "log_everything"}, "uses"),
        ("/repositories", {"min_stars": "many"}, "min_stars"),
        ("/repositories/acme/busy", {"page": -1}, "page"),
    ],
)
def test_bad_input_is_a_422(api: Seeded, route: str, params: dict, field: str) -> None:
    response = api.client.get(route, params=params)

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_sql_ish_strings_are_just_data(api: Seeded) -> None:
    before = table_counts(api.url)

    assert api.get("/api/findings", repo=SQL_ISH) == {"data": [], "count": 0}
    assert api.get("/api/repositories", topic=SQL_ISH) == {"data": [], "count": 0}
    assert api.client.get("/api/findings", params={"api": SQL_ISH}).status_code == 422
    owner, name = EVIL.split("/")
    detail = api.get(f"/api/repositories/{quote(owner)}/{quote(name, safe='')}")
    assert detail["profile"]["full_name"] == EVIL
    assert [f["path"] for f in detail["findings"]["data"]] == [EVIL_PATH]
    assert api.get("/api/findings", repo=EVIL)["count"] == 1

    assert table_counts(api.url) == before
    assert before[3] > 0  # the finding table is still there


# ------------------------------------------------------------------------------ read-only


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_nothing_but_get(api: Seeded, method: str) -> None:
    before = table_counts(api.url)

    for route in ROUTES:
        response = api.client.request(method, route, json={"full_name": "x/y"})
        assert response.status_code == 405, (method, route)

    assert table_counts(api.url) == before


def test_openapi_lists_only_get_operations(api: Seeded) -> None:
    assert api.client.get("/docs").status_code == 200
    schema = api.get("/openapi.json")

    assert {
        "/api/stats",
        "/api/repositories",
        "/api/repositories/{owner}/{name}",
        "/api/findings",
        "/api/crawls",
    } <= set(schema["paths"])
    methods = {method for operations in schema["paths"].values() for method in operations}
    assert methods == {"get"}
    components = schema["components"]["schemas"]
    assert {
        "RepositoryPublic",
        "FindingPublic",
        "RepositoriesPublic",
        "StatsPublic",
        "FailurePublic",
        "FailuresPublic",
    } <= set(components)
    assert components["RepositorySort"]["enum"] == [
        "full_name",
        "stars",
        "findings",
        "headline",
        "mined_at",
        *(category.value for category in Category),
    ]
    assert components["SortOrder"]["enum"] == ["asc", "desc"]


def test_the_api_session_cannot_write(api: Seeded) -> None:
    before = table_counts(api.url)

    with pytest.raises(DBAPIError), read_only_session(api.url) as session:
        session.exec(text("DELETE FROM finding"))
        session.commit()

    assert table_counts(api.url) == before
    # the pooled connection is writable again for everyone else (SQLite's query_only is sticky)
    with open_session(api.url) as session:
        session.exec(text("UPDATE repository SET stars = stars WHERE id < 0"))
        session.commit()


# ------------------------------------------------------------------------- crawls, dashboard


def test_crawls_newest_first(api: Seeded) -> None:
    crawls = api.get("/api/crawls")

    assert crawls["count"] == 2
    assert [crawl["id"] for crawl in crawls["data"]] == [api.crawls["crawl2"], api.crawls["crawl1"]]
    assert crawls["data"][1]["runs_ok"] == 3
    assert crawls["data"][0]["runs_failed"] == 1


def test_chart_endpoints_serve_pngs(api: Seeded) -> None:
    for chart in ("headline", "apis", "categories", "autolog_flavors", "findings_per_repository", "trend"):
        response = api.client.get(f"/charts/{chart}.png", params={"exclude_forks": "true"})
        assert response.status_code == 200, chart
        assert response.headers["content-type"] == "image/png"
        assert response.content.startswith(PNG_SIGNATURE) and len(response.content) > 2000

    assert api.client.get("/charts/passwords.png").status_code == 422


def test_dashboard_page(api: Seeded) -> None:
    response = api.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'id="headline-share">71.4 %<' in page
    assert "n = 7" in page
    assert page.count('<img class="chart"') == 6
    assert 'src="/charts/trend.png"' in page

    filtered = api.client.get("/", params={"exclude_forks": "true", "topic": "a&b"}).text
    assert 'id="headline-share">0.0 %<' in filtered
    assert (
        'src="/charts/headline.png?topic=a%26b&amp;exclude_forks=true"' in filtered
        or 'src="/charts/headline.png?exclude_forks=true&amp;topic=a%26b"' in filtered
    )
