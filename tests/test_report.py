"""`miner report --out DIR` on the corpus of usage_corpus.py, on SQLite and PostgreSQL; the charts."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import matplotlib.image
import pytest
from sqlmodel import Session
from typer.testing import CliRunner
from usage_corpus import (
    BROKEN_ERROR,
    CRAWL1_HEADLINE,
    CRAWL1_N,
    EVIL,
    HEADLINE,
    RULES,
    seed,
)

from miner.cli import app
from miner.present.charts import (
    GENERIC_AUTOLOG,
    Chart,
    autolog_flavor_counts,
    findings_buckets,
    render_charts,
)
from miner.present.findings import finding_rows
from miner.present.report import write_report
from miner.present.stats import compute_stats
from schema.filters import Filters

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUNNER = CliRunner()


def assert_png(data: bytes, path: Path) -> None:
    assert data.startswith(PNG_SIGNATURE), path
    assert len(data) > 2000, path
    pixels = matplotlib.image.imread(path)
    height, width = pixels.shape[:2]
    assert width >= 400 and height >= 250, (path, pixels.shape)
    assert pixels[..., :3].std() > 0.02, f"{path} is blank"


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MINER_DATABASE_URL", database_url)
    monkeypatch.setenv("MINER_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.chdir(tmp_path)
    return database_url


def test_report_command_writes_a_self_contained_page_and_pngs(session: Session, cli_env: str, tmp_path: Path) -> None:
    seed(session)
    out = tmp_path / "report"

    result = RUNNER.invoke(app, ["report", "--out", str(out)])

    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text("utf-8")
    # the headline share, its n and its interval, as computed by hand (5 of 7; Wilson 35.9-91.8 %)
    assert 'id="headline-share">71.4 %<' in page
    assert "n = 7" in page and f'<strong id="headline-count">{HEADLINE}</strong>' in page
    assert "35.9 %" in page and "91.8 %" in page
    # every chart embedded and written, the same bytes
    embedded = dict(re.findall(r'id="chart-(\w+)" alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page))
    assert set(embedded) == {chart.value for chart in Chart}
    for chart in Chart:
        path = out / f"{chart.value}.png"
        data = path.read_bytes()
        assert base64.b64decode(embedded[chart.value]) == data
        assert_png(data, path)
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r'(?:src|href)="(?!data:|#|[\w.-]+\.png")', page)
    assert "<link" not in page and "@import" not in page
    # failures: the clone that failed and the file that did not parse
    assert "acme/broken" in page and BROKEN_ERROR in page
    assert "clone_failed" in page
    assert json.loads((out / "stats.json").read_text())["headline"]["repositories"] == HEADLINE


def test_report_escapes_what_repositories_contain(session: Session, tmp_path: Path) -> None:
    seed(session)

    files = write_report(session=session, rules=RULES, out_dir=tmp_path / "r")

    page = files.index.read_text("utf-8")
    assert "<script>" not in page
    assert EVIL not in page or "&#39;" in page


def test_report_command_takes_the_shared_filters(session: Session, cli_env: str, tmp_path: Path) -> None:
    seed(session)

    result = RUNNER.invoke(app, ["report", "--out", str(tmp_path / "r"), "--exclude-forks", "--min-stars", "1"])

    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "index.html").read_text("utf-8")
    # without acme/client (a fork) and acme/autolog-off (0 stars): 4 of 5
    assert 'id="headline-share">80.0 %<' in page and "n = 5" in page
    assert "exclude_forks=True" in page and "min_stars=1" in page

    for bad, message in ((["--since", "soon"], "--since"), (["--crawl", "999"], "no crawl")):
        result = RUNNER.invoke(app, ["report", "--out", str(tmp_path / "bad"), *bad])
        assert result.exit_code == 1 and message in result.output, result.output
        assert not (tmp_path / "bad" / "index.html").exists()


def test_report_with_filters(session: Session, tmp_path: Path) -> None:
    crawls = seed(session)

    files = write_report(
        session=session, rules=RULES, out_dir=tmp_path / "crawl1", filters=Filters(crawl_id=crawls["crawl1"])
    )

    page = files.index.read_text("utf-8")
    share = 100 * CRAWL1_HEADLINE / CRAWL1_N
    assert f'id="headline-share">{share:.1f} %<' in page
    assert f"n = {CRAWL1_N}" in page
    assert f"crawl_id={crawls['crawl1']}" in page


def test_report_of_an_empty_database(session: Session, cli_env: str, tmp_path: Path) -> None:
    result = RUNNER.invoke(app, ["report", "--out", str(tmp_path / "empty")])

    assert result.exit_code == 0, result.output
    page = (tmp_path / "empty" / "index.html").read_text("utf-8")
    assert 'id="headline-share">0.0 %<' in page and "n = 0" in page
    for chart in Chart:
        path = tmp_path / "empty" / f"{chart.value}.png"
        assert_png(path.read_bytes(), path)


def test_report_into_an_unwritable_place_is_one_line(session: Session, cli_env: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    result = RUNNER.invoke(app, ["report", "--out", str(blocker / "report")])

    assert result.exit_code == 1
    assert "cannot write the report" in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------- chart data


def test_autolog_by_flavor_counts_repositories_that_switch_it_on(session: Session) -> None:
    seed(session)

    counts = autolog_flavor_counts(finding_rows(session=session, api="autolog"))

    # acme/sklearn: sklearn, pytorch and a plain mlflow.autolog(); acme/autolog-off disables it
    assert counts == {"sklearn": 1, "pytorch": 1, GENERIC_AUTOLOG: 1}


def test_findings_per_repository_buckets() -> None:
    buckets = findings_buckets([0, 1, 1, 2, 3, 5, 6, 33, 500, 501, 10_000])

    assert buckets == {
        "0": 1,
        "1": 2,
        "2": 1,
        "3-5": 2,
        "6-10": 1,
        "11-20": 0,
        "21-50": 1,
        "51-100": 0,
        "101-200": 0,
        "201-500": 1,
        ">500": 2,
    }
    assert sum(findings_buckets([]).values()) == 0


def test_charts_follow_the_data(session: Session) -> None:
    """A chart drawn from other numbers is another picture (the charts are not canned)."""
    empty = render_charts(session=session, rules=RULES)
    seed(session)
    full = render_charts(session=session, rules=RULES)
    again = render_charts(session=session, rules=RULES, stats=compute_stats(session=session, rules=RULES))

    assert set(full) == set(Chart)
    assert all(empty[chart] != full[chart] for chart in Chart)
    assert full == again  # deterministic bytes
    assert render_charts(session=session, rules=RULES, charts=[Chart.trend]).keys() == {Chart.trend}
