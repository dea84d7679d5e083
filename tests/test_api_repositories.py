"""The repositories list sorted and paged, one repository's failures and finding links, and the
HTML pages over them, on the corpus of usage_corpus.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from test_api import Seeded, api  # noqa: F401  (the seeded API fixture)
from usage_corpus import EVIL, EVIL_PATH, RULES, T0, N, mined, seed

from miner.core.domain import RunStatus
from miner.core.settings import load_settings
from miner.present.api import MAX_PER_PAGE, create_app
from miner.present.browse import RepositorySort, SortOrder
from schema.repositories import get_repository
from schema.runs import save_run

NAMES = ["acme/autolog-off", "acme/busy", "acme/client", "acme/config", "acme/params", "acme/sklearn", EVIL]
EVIL_PAGE = "/repositories/evil/" + quote("drop'; DROP TABLE finding; --", safe="")


def hrefs(page: str, css_class: str) -> list[str]:
    return [html.unescape(href) for href in re.findall(rf'<a class="{css_class}" href="([^"]*)"', page)]


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# ------------------------------------------------------------------------------ sorting


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("full_name", None, NAMES),
        ("full_name", "desc", NAMES[::-1]),
        (
            "stars",
            None,
            ["acme/sklearn", "acme/params", "acme/busy", "acme/client", "acme/config", EVIL, "acme/autolog-off"],
        ),
        (
            "stars",
            "asc",
            ["acme/autolog-off", EVIL, "acme/config", "acme/client", "acme/busy", "acme/params", "acme/sklearn"],
        ),
        # ties are broken by name, A to Z, in either order
        (
            "findings",
            None,
            ["acme/busy", "acme/sklearn", "acme/config", "acme/params", "acme/autolog-off", "acme/client", EVIL],
        ),
        (
            "findings",
            "asc",
            ["acme/autolog-off", "acme/client", EVIL, "acme/config", "acme/params", "acme/sklearn", "acme/busy"],
        ),
        (
            "metrics",
            None,
            ["acme/busy", "acme/client", "acme/autolog-off", "acme/config", "acme/params", "acme/sklearn", EVIL],
        ),
        ("mined_at", None, ["acme/busy", *[name for name in NAMES if name != "acme/busy"]]),
        (
            "headline",
            "asc",
            ["acme/autolog-off", "acme/config", "acme/busy", "acme/client", "acme/params", "acme/sklearn", EVIL],
        ),
        ("registry", None, NAMES),  # nobody: name order
    ],
)
def test_repositories_sorted(api: Seeded, sort: str, order: str | None, expected: list[str]) -> None:
    params = {"sort": sort, **({"order": order} if order else {})}

    assert api.names(**params) == expected
    assert api.get("/api/repositories", **params)["count"] == N


@pytest.mark.parametrize("order", list(SortOrder))
@pytest.mark.parametrize("sort", list(RepositorySort))
def test_sorted_pages_walk_every_repository_once(api: Seeded, sort: RepositorySort, order: SortOrder) -> None:
    everything = api.names(sort=sort.value, order=order.value, per_page=MAX_PER_PAGE)
    pages = [api.names(sort=sort.value, order=order.value, page=page, per_page=3) for page in (1, 2, 3, 4)]

    assert [len(page) for page in pages] == [3, 3, 1, 0]
    assert [name for page in pages for name in page] == everything
    assert sorted(everything) == NAMES


def test_sorting_keeps_the_filters(api: Seeded) -> None:
    body = api.get("/api/repositories", uses="params", min_stars=2, sort="findings")

    assert [row["full_name"] for row in body["data"]] == ["acme/busy", "acme/params"]
    assert body["count"] == 2
    assert api.names(not_uses="headline", sort="stars") == ["acme/config", "acme/autolog-off"]


def test_each_repository_carries_its_last_run(api: Seeded) -> None:
    """A failure after the counted run shows as the last run; the usage stays the counted run's."""
    busy = get_repository(session=api.session, full_name="acme/busy")
    save_run(
        session=api.session,
        repository=busy,
        result=mined("acme/busy", "b2", at=T0 + timedelta(days=4), status=RunStatus.timeout, error="mine timed out"),
        crawl_id=api.crawls["crawl2"],
        rules_version=RULES.version,
        tool_version="test",
    )

    for params in ({}, {"sort": "findings"}):
        rows = {row["full_name"]: row for row in api.get("/api/repositories", **params)["data"]}
        assert (rows["acme/busy"]["last_run_status"], rows["acme/busy"]["commit"]) == ("timeout", "b1")
        assert rows["acme/busy"]["findings"] == 33
        assert rows["acme/busy"]["last_run_at"].startswith("2026-03-05T12:00:05")
        assert rows["acme/params"]["last_run_status"] == "ok"

    in_crawl1 = api.get("/api/repositories", crawl=api.crawls["crawl1"])["data"]
    assert {(row["full_name"], row["commit"], row["last_run_status"]) for row in in_crawl1} == {
        ("acme/params", "p0", "ok"),
        ("acme/sklearn", "s0", "ok"),
        ("acme/config", "g0", "ok"),
    }
    assert all(row["last_run_at"].startswith("2026-03-01") for row in in_crawl1)


# ------------------------------------------------------------------------- one repository


def test_repository_detail_has_its_failures(api: Seeded) -> None:
    params = api.get("/api/repositories/acme/params")["failures"]
    assert params == {
        "count": 1,
        "data": [
            {
                "kind": "file",
                "repository": "acme/params",
                "status": "unparsable",
                "commit": "p1",
                "path": "broken.py",
                "finished_at": params["data"][0]["finished_at"],
                "error": "invalid syntax (line 4)",
                "url": "https://github.com/acme/params/blob/p1/broken.py",
            }
        ],
    }

    broken = api.get("/api/repositories/acme/broken")["failures"]["data"]
    assert [(f["kind"], f["status"], f["commit"], f["path"], f["url"]) for f in broken] == [
        ("run", "clone_failed", None, None, None)
    ]
    assert api.get("/api/repositories/acme/busy")["failures"] == {"data": [], "count": 0}


def test_findings_link_to_their_line_on_github(api: Seeded) -> None:
    params = api.get("/api/repositories/acme/params")["findings"]["data"]
    assert [f["url"] for f in params] == [
        "https://github.com/acme/params/blob/p1/train.py#L3",
        "https://github.com/acme/params/blob/p1/train.py#L9",
    ]
    sklearn = api.get("/api/repositories/acme/sklearn")["findings"]["data"]
    assert [(f["cell"], f["url"]) for f in sklearn] == [
        (2, "https://github.com/acme/sklearn/blob/s1/fit.ipynb"),
        (3, "https://github.com/acme/sklearn/blob/s1/fit.ipynb"),
        (None, "https://github.com/acme/sklearn/blob/s1/train.py#L2"),
    ]
    evil = api.get("/api/findings", repo=EVIL)["data"]
    assert [f["url"] for f in evil] == [
        "https://github.com/evil/drop%27%3B%20DROP%20TABLE%20finding%3B%20--/blob/e1/"
        "%3Cscript%3Ealert%281%29%3C/script%3E.py#L1"
    ]
    assert all(f["url"] for f in api.get("/api/findings", per_page=MAX_PER_PAGE)["data"])


def test_repository_findings_come_in_pages(api: Seeded) -> None:
    whole = api.get("/api/repositories/acme/busy")["findings"]
    assert whole["count"] == 33 == len(whole["data"])
    pages = [api.get("/api/repositories/acme/busy", page=page, per_page=10)["findings"] for page in (1, 2, 3, 4, 5)]
    assert [len(page["data"]) for page in pages] == [10, 10, 10, 3, 0]
    assert [f for page in pages for f in page["data"]] == whole["data"]
    assert all(page["count"] == 33 for page in pages)


@pytest.fixture
def elsewhere(
    session: Session, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The API of a GitHub that lives somewhere else (web_url with a path and a slash)."""
    monkeypatch.setenv("MINER_CONFIG", str(tmp_path / "absent.yaml"))
    seed(session)
    settings = load_settings(database_url=database_url, github={"web_url": "http://127.0.0.1:9/git hub/"})
    with TestClient(create_app(settings)) as client:
        yield client


def test_links_follow_the_web_url_setting(elsewhere: TestClient) -> None:
    detail = elsewhere.get("/api/repositories/acme/params").json()

    assert detail["findings"]["data"][0]["url"] == "http://127.0.0.1:9/git hub/acme/params/blob/p1/train.py#L3"
    page = elsewhere.get("/repositories/acme/params").text
    assert hrefs(page, "finding-link")[0] == "http://127.0.0.1:9/git hub/acme/params/blob/p1/train.py#L3"


# ------------------------------------------------------------------------------- the pages


def test_repositories_page_lists_and_links_every_repository(api: Seeded) -> None:
    response = api.client.get("/repositories")

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    links = hrefs(page, "repository-link")
    assert links[:N] == [
        "/repositories/" + "/".join(quote(part, safe="") for part in name.split("/")) for name in NAMES
    ]
    assert links[N:] == ["/repositories/acme/broken"]  # mined, never successfully
    assert ">evil/drop&#39;; DROP TABLE finding; --</a>" in page
    assert f"{N} repositories" in page and 'id="page-next"' not in page


def test_repositories_page_sort_and_page_links_keep_the_filters(api: Seeded) -> None:
    page = api.client.get(
        "/repositories", params={"min_stars": 1, "uses": "headline", "sort": "stars", "per_page": 2}
    ).text
    sort_links = dict(re.findall(r'<a class="sort" id="sort-(\w+)" href="([^"]*)"', page))

    assert query_of(html.unescape(sort_links["findings"])) == {
        "min_stars": ["1"],
        "uses": ["headline"],
        "per_page": ["2"],
        "sort": ["findings"],
    }
    assert query_of(html.unescape(sort_links["stars"]))["order"] == ["asc"]  # flips the sorted column
    assert "sort" not in query_of(html.unescape(sort_links["full_name"]))

    # follow "next" to the end: the filtered, sorted list, each repository once
    names, url = [], "/repositories?" + urlsplit(html.unescape(sort_links["findings"])).query
    while url:
        page = api.client.get(url).text
        names += [
            html.unescape(name)
            for name in re.findall(
                r'<a class="repository-link" href="/repositories/[^"]*">([^<]*)</a>', page.split('id="unmined"')[0]
            )
        ]
        following = re.search(r'<a href="([^"]*)" id="page-next"', page)
        url = html.unescape(following.group(1)) if following else ""
        if url:
            assert query_of(url)["uses"] == ["headline"] and query_of(url)["per_page"] == ["2"]
    assert names == ["acme/busy", "acme/sklearn", "acme/params", "acme/client", EVIL]


def test_repository_page_shows_findings_by_file_with_links(api: Seeded) -> None:
    page = api.client.get("/repositories/acme/sklearn").text

    assert hrefs(page, "file-link") == [
        "https://github.com/acme/sklearn/blob/s1/fit.ipynb",
        "https://github.com/acme/sklearn/blob/s1/train.py",
    ]
    links = re.findall(r'<a class="finding-link" href="([^"]*)">([^<]*)</a>', page)
    assert links == [
        ("https://github.com/acme/sklearn/blob/s1/fit.ipynb", "cell 2, line 1"),
        ("https://github.com/acme/sklearn/blob/s1/fit.ipynb", "cell 3, line 1"),
        ("https://github.com/acme/sklearn/blob/s1/train.py#L2", "line 2"),
    ]
    assert 'href="/api/repositories/acme/sklearn" id="api-link"' in page
    assert 'id="github-link"' in page and 'href="https://github.com/acme/sklearn"' in page

    broken = api.client.get("/repositories/acme/params").text
    assert "invalid syntax (line 4)" in broken and "broken.py" in broken


def test_repository_pages_escape_what_repositories_contain(api: Seeded) -> None:
    page = api.client.get(EVIL_PAGE).text

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.py" in page
    assert hrefs(page, "finding-link") == [
        "https://github.com/evil/drop%27%3B%20DROP%20TABLE%20finding%3B%20--/blob/e1/"
        "%3Cscript%3Ealert%281%29%3C/script%3E.py#L1"
    ]
    assert EVIL_PATH not in page

    missing = api.client.get("/repositories/acme/" + quote("<b>x", safe=""))
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "acme/&lt;b&gt;x" in missing.text and "<b>x" not in missing.text


def test_dashboard_links_to_the_repositories_page_with_its_filters(api: Seeded) -> None:
    page = api.client.get("/", params={"exclude_forks": "true"}).text

    assert 'href="/repositories?exclude_forks=true" id="nav-repositories"' in page
