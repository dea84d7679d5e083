"""Filters, `miner repos` and the query functions behind them, on SQLite and PostgreSQL.

A hand-built dataset; every expectation below is read off this table. Days are in March 2026.

| repository     | stars | fork/archived | topics                      | runs (crawl, day): usage                               |
| -------------- | ----- | ------------- | --------------------------- | ------------------------------------------------------ |
| a/nlp-big      | 100   |               | mlflow-projects, nlp        | (1, 1): log_metric; (2, 2): log_param x2 - latest      |
| a/vision-fork  | 5     | fork          | mlflow-projects, vision     | (1, 1): sklearn autolog                                |
| a/archived     | 50    | archived      | mlflow-projects             | (2, 2): MlflowClient().log_metric                      |
| a/plain        | 0     |               | (none)                      | (-, 3): set_tracking_uri, autolog(disable=True)        |
| a/sqlish       | 10    |               | x' OR '1'='1, mlflow-projects | (2, 2): log_metric                                   |
| a/regressed    | 20    |               | nlp                         | (1, 1): log_params; (2, 2): timeout                    |
| a/failed       | 1     |               | mlflow-projects             | (2, 2): clone_failed                                   |

Headline (log_param(s) / log_metric(s) / autolog that is not disabled): every mined one but
a/plain.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import case, func, inspect, select
from sqlmodel import Session
from typer.testing import CliRunner

from miner.cli import app
from miner.core.domain import Category, FileKind, FileStatus, MiningResult, RunStatus
from miner.core.domain import FileResult as FileOutcome
from miner.core.domain import Finding as Call
from miner.core.rules import load_rules
from miner.present.failures import failure_rows
from miner.present.findings import count_findings, finding_rows
from miner.present.repositories import count_repositories, repository_rows
from miner.present.stats import compute_stats
from miner.present.trend import crawl_trend
from schema.crawls import create_crawl
from schema.db import alembic_config, make_engine
from schema.filters import Filters, parse_since
from schema.latest import latest_runs
from schema.models import Finding, MiningRun, RunUsage
from schema.repositories import get_repository, upsert_repository
from schema.runs import save_run
from schema.summaries import rebuild_summaries

RULES = load_rules()
MARCH = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # day 1
SQLISH_TOPIC = "x' OR '1'='1"
MINED = {"a/nlp-big", "a/vision-fork", "a/archived", "a/plain", "a/sqlish", "a/regressed"}
RUNNER = CliRunner()


def day(number: int) -> datetime:
    return MARCH + timedelta(days=number - 1)


def fluent(api: str, *, line: int = 1, flavor: str | None = None, disabling: bool = False) -> Call:
    qualified = f"mlflow.{flavor}.{api}" if flavor else f"mlflow.{api}"
    return Call(
        path="train.py",
        line=line,
        column=0,
        qualified_name=qualified,
        api=api,
        category=RULES.category_of(api),
        flavor=flavor,
        disabling=disabling,
    )


def client(api: str) -> Call:
    return Call(
        path="track.py",
        line=3,
        column=4,
        qualified_name=f"mlflow.client.MlflowClient.{api}",
        api=api,
        category=Category.client,
        via_client=True,
    )


def mined(
    full_name: str,
    sha: str | None,
    *calls: Call,
    on: int,
    status: RunStatus = RunStatus.ok,
    unparsable: str | None = None,
) -> MiningResult:
    files = [
        FileOutcome(path=path, kind=FileKind.py, status=FileStatus.ok, parsed=True)
        for path in sorted({call.path for call in calls})
    ]
    if unparsable:
        files.append(
            FileOutcome(path=unparsable, kind=FileKind.py, status=FileStatus.unparsable, error="invalid syntax")
        )
    return MiningResult(
        full_name=full_name,
        commit_sha=sha,
        status=status,
        started_at=day(on),
        finished_at=day(on) + timedelta(seconds=5),
        files=files,
        findings=list(calls),
        error=None if status is RunStatus.ok else status.value,
    )


REPOSITORIES = {
    "a/nlp-big": {"stars": 100, "topics": ["mlflow-projects", "nlp"]},
    "a/vision-fork": {"stars": 5, "fork": True, "topics": ["mlflow-projects", "vision"]},
    "a/archived": {"stars": 50, "archived": True, "topics": ["mlflow-projects"]},
    "a/plain": {"stars": 0, "topics": []},
    "a/sqlish": {"stars": 10, "topics": [SQLISH_TOPIC, "mlflow-projects"]},
    "a/regressed": {"stars": 20, "topics": ["nlp"]},
    "a/failed": {"stars": 1, "topics": ["mlflow-projects"]},
}


def seed_dataset(session: Session) -> dict[str, int]:
    """Store the table of the module docstring; returns the crawl ids {1: id, 2: id}."""
    crawls = {
        number: create_crawl(
            session=session,
            topics=["mlflow-projects"],
            query="topic:mlflow-projects",
            slices=[f"created:2026-0{number}"],
        ).id
        for number in (1, 2)
    }
    runs = [
        (1, mined("a/nlp-big", "n1", fluent("log_metric"), on=1)),
        (
            2,
            mined(
                "a/nlp-big",
                "n2",
                fluent("log_param", line=3),
                fluent("log_param", line=9),
                on=2,
                unparsable="broken.py",
            ),
        ),
        (1, mined("a/vision-fork", "v1", fluent("autolog", flavor="sklearn"), on=1)),
        (2, mined("a/archived", "r1", client("log_metric"), on=2)),
        (None, mined("a/plain", "p1", fluent("set_tracking_uri"), fluent("autolog", line=2, disabling=True), on=3)),
        (2, mined("a/sqlish", "s1", fluent("log_metric"), on=2)),
        (1, mined("a/regressed", "g1", fluent("log_params"), on=1)),
        (2, mined("a/regressed", "g2", on=2, status=RunStatus.timeout)),
        (2, mined("a/failed", None, on=2, status=RunStatus.clone_failed)),
    ]
    for crawl, result in runs:
        repository = upsert_repository(session=session, full_name=result.full_name, **REPOSITORIES[result.full_name])
        save_run(
            session=session,
            repository=repository,
            result=result,
            crawl_id=crawls[crawl] if crawl else None,
            rules_version=RULES.version,
            tool_version="test",
        )
    return crawls


@pytest.fixture
def dataset(session: Session) -> dict[str, int]:
    return seed_dataset(session)


def names(session: Session, filters: Filters | None = None, **usage: list[str]) -> set[str]:
    rows = repository_rows(session=session, rules=RULES, filters=filters, **usage)
    assert count_repositories(session=session, rules=RULES, filters=filters, **usage) == len(rows)
    return {row["full_name"] for row in rows}


# ------------------------------------------------------------------------------- the filters

FILTER_CASES = [
    (Filters(), MINED),
    (Filters(topic="nlp"), {"a/nlp-big", "a/regressed"}),
    (Filters(topic="mlflow-projects"), {"a/nlp-big", "a/vision-fork", "a/archived", "a/sqlish"}),
    (Filters(topic="ml"), set()),  # an element, not a substring
    (Filters(topic="%"), set()),  # no LIKE semantics either
    (Filters(topic=SQLISH_TOPIC), {"a/sqlish"}),
    (Filters(topic="' OR 1=1 --"), set()),
    (Filters(topic='"]'), set()),
    (Filters(min_stars=20), {"a/nlp-big", "a/archived", "a/regressed"}),
    (Filters(min_stars=0), MINED),
    (Filters(exclude_forks=True), MINED - {"a/vision-fork"}),
    (Filters(exclude_archived=True), MINED - {"a/archived"}),
    (Filters(since=day(2)), {"a/nlp-big", "a/archived", "a/plain", "a/sqlish"}),
    (Filters(since=day(3)), {"a/plain"}),
    (Filters(since=day(9)), set()),
    (Filters(topic="nlp", since=day(2)), {"a/nlp-big"}),
    (Filters(topic="mlflow-projects", min_stars=10, exclude_archived=True), {"a/nlp-big", "a/sqlish"}),
]


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES)
def test_each_filter_selects_the_repositories_it_says(
    session: Session, dataset: dict[str, int], filters: Filters, expected: set[str]
) -> None:
    assert names(session, filters) == expected
    stats = compute_stats(session=session, rules=RULES, filters=filters)
    assert stats["repositories"] == len(expected)
    assert stats["headline"]["repositories"] == len(expected - {"a/plain"})
    assert stats["filters"] == filters.as_dict()
    findings = finding_rows(session=session, filters=filters)
    assert {row["repository"] for row in findings} == expected
    assert count_findings(session=session, filters=filters) == len(findings)


@pytest.mark.parametrize(
    ("crawl", "expected", "apis"),
    [
        (1, {"a/nlp-big", "a/vision-fork", "a/regressed"}, {"log_metric", "autolog", "log_params"}),
        (2, {"a/nlp-big", "a/archived", "a/sqlish"}, {"log_param", "log_metric"}),
    ],
)
def test_a_crawl_counts_the_latest_run_within_it(
    session: Session, dataset: dict[str, int], crawl: int, expected: set[str], apis: set[str]
) -> None:
    filters = Filters(crawl_id=dataset[crawl])
    assert names(session, filters) == expected
    stats = compute_stats(session=session, rules=RULES, filters=filters)
    assert stats["crawl_id"] == dataset[crawl]
    assert {api for api, entry in stats["apis"].items() if entry["repositories"]} == apis
    # the keyword of the older signature means the same
    assert compute_stats(session=session, rules=RULES, crawl_id=dataset[crawl]) == stats
    assert {row["api"] for row in finding_rows(session=session, filters=filters)} == apis


def test_stats_numbers_follow_the_filters(session: Session, dataset: dict[str, int]) -> None:
    everything = compute_stats(session=session, rules=RULES)
    assert everything["apis"]["log_metric"] == {
        "repositories": 2,
        "share": 2 / 6,
        "calls": 2,
        "fluent_calls": 1,
        "client_calls": 1,
    }
    assert everything["apis"]["autolog"]["repositories"] == 1  # the disabled one is no use
    assert everything["categories"]["params"]["repositories"] == 2  # nlp-big, regressed
    assert everything["files"]["unparsable"] == 1

    no_forks = compute_stats(session=session, rules=RULES, filters=Filters(exclude_forks=True))
    assert no_forks["apis"]["autolog"]["repositories"] == 0
    assert no_forks["apis"]["autolog"]["calls"] == 1  # a/plain's disabling call
    nlp = compute_stats(session=session, rules=RULES, filters=Filters(topic="nlp"))
    assert (nlp["apis"]["log_param"]["calls"], nlp["apis"]["log_params"]["calls"]) == (2, 1)
    assert nlp["files"]["unparsable"] == 1


def test_failures_follow_the_filters(session: Session, dataset: dict[str, int]) -> None:
    def failures(filters: Filters | None = None) -> tuple[dict[str, int], int]:
        document = compute_stats(session=session, rules=RULES, filters=filters)["failures"]
        return ({k: v for k, v in document["runs"].items() if v}, document["repositories_without_ok_run"])

    # a/regressed: its last run timed out, but an older run counts; a/failed never worked
    assert failures() == ({"clone_failed": 1, "timeout": 1}, 1)
    assert failures(Filters(crawl_id=dataset[2])) == ({"clone_failed": 1, "timeout": 1}, 2)
    assert failures(Filters(crawl_id=dataset[1])) == ({}, 0)
    assert failures(Filters(topic="nlp")) == ({"timeout": 1}, 0)
    assert failures(Filters(since=day(3))) == ({}, 0)

    rows = failure_rows(session=session)
    assert [(row["kind"], row["repository"], row["status"], row["path"]) for row in rows] == [
        ("run", "a/failed", "clone_failed", None),
        ("run", "a/regressed", "timeout", None),
        ("file", "a/nlp-big", "unparsable", "broken.py"),
    ]
    assert all(set(row) == {"kind", "repository", "status", "commit", "path", "finished_at", "error"} for row in rows)
    assert [row["repository"] for row in failure_rows(session=session, filters=Filters(min_stars=5))] == [
        "a/regressed",
        "a/nlp-big",
    ]
    json.dumps(rows)


def test_the_trend_has_one_point_per_crawl(session: Session, dataset: dict[str, int]) -> None:
    trend = crawl_trend(session=session, rules=RULES)

    assert [(point["crawl_id"], point["k"], point["n"]) for point in trend] == [(dataset[1], 3, 3), (dataset[2], 3, 3)]
    assert trend[0]["share"] == 1.0 and trend[0]["ci95"][1] == 1.0
    json.dumps(trend)


# ------------------------------------------------------------------------- repository rows


def test_repository_rows_carry_the_profile(session: Session, dataset: dict[str, int]) -> None:
    rows = {row["full_name"]: row for row in repository_rows(session=session, rules=RULES)}

    assert list(rows) == sorted(MINED)
    big = rows["a/nlp-big"]
    assert {
        key: big[key]
        for key in ("stars", "fork", "archived", "topics", "commit", "findings", "headline", "params", "metrics")
    } == {
        "stars": 100,
        "fork": False,
        "archived": False,
        "topics": ["mlflow-projects", "nlp"],
        "commit": "n2",
        "findings": 2,
        "headline": True,
        "params": 2,
        "metrics": 0,
    }
    assert datetime.fromisoformat(big["mined_at"]) == day(2) + timedelta(seconds=5)
    assert (rows["a/archived"]["metrics"], rows["a/archived"]["client"]) == (1, 1)
    assert (rows["a/plain"]["autolog"], rows["a/plain"]["headline"]) == (1, False)
    assert rows["a/vision-fork"]["fork"] is True
    assert set(big) == {
        "full_name",
        "stars",
        "fork",
        "archived",
        "topics",
        "commit",
        "mined_at",
        "findings",
        "headline",
        *(c.value for c in RULES.categories),
    }
    json.dumps(list(rows.values()))


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"uses": ["log_param"]}, {"a/nlp-big"}),
        ({"uses": ["params"]}, {"a/nlp-big", "a/regressed"}),
        ({"uses": ["metrics"]}, {"a/archived", "a/sqlish"}),  # the client call counts
        ({"uses": ["autolog"]}, {"a/vision-fork"}),  # a disabled one does not
        ({"uses": ["client"]}, {"a/archived"}),
        ({"uses": ["config"]}, {"a/plain"}),
        ({"uses": ["headline"]}, MINED - {"a/plain"}),
        ({"uses": ["params", "metrics"]}, set()),  # all of them
        ({"uses": ["metrics"], "not_uses": ["client"]}, {"a/sqlish"}),
        ({"not_uses": ["autolog"]}, MINED - {"a/vision-fork"}),
        ({"not_uses": ["headline"]}, {"a/plain"}),
        ({"not_uses": ["params", "metrics"]}, {"a/vision-fork", "a/plain"}),
        ({"uses": ["log_model"]}, set()),
    ],
)
def test_uses_and_not_uses(session: Session, dataset: dict[str, int], usage: dict, expected: set[str]) -> None:
    assert names(session, **usage) == expected


def test_uses_with_filters(session: Session, dataset: dict[str, int]) -> None:
    assert names(session, Filters(exclude_archived=True), uses=["metrics"]) == {"a/sqlish"}
    assert names(session, Filters(crawl_id=dataset[1]), uses=["metrics"]) == {"a/nlp-big"}


def test_unknown_usage_names_are_a_value_error_listing_the_valid_ones(
    session: Session, dataset: dict[str, int]
) -> None:
    with pytest.raises(ValueError, match=r"unknown api or category 'log_everything'.*log_param"):
        repository_rows(session=session, rules=RULES, uses=["log_everything"])
    with pytest.raises(ValueError, match="'nope'"):
        count_repositories(session=session, rules=RULES, not_uses=["nope"])


def test_pages_walk_the_same_order(session: Session, dataset: dict[str, int]) -> None:
    whole = repository_rows(session=session, rules=RULES)
    pages = [repository_rows(session=session, rules=RULES, limit=4, offset=offset) for offset in (0, 4, 8)]
    assert pages[0] + pages[1] == whole and pages[2] == []
    findings = finding_rows(session=session)
    assert finding_rows(session=session, limit=3, offset=2) == findings[2:5]
    metric_page = repository_rows(session=session, rules=RULES, uses=["metrics"], limit=1, offset=1)
    assert [row["full_name"] for row in metric_page] == ["a/sqlish"]


# ----------------------------------------------------------------- the usage summary rows


def test_save_run_keeps_the_usage_rows_and_the_latest_flag(session: Session, dataset: dict[str, int]) -> None:
    """RunUsage is the findings folded per (run, api), and `latest` follows the definition."""
    folded = select(
        Finding.mining_run_id,
        Finding.api,
        func.count(),
        func.sum(case((Finding.via_client.is_(True), 1), else_=0)),
    ).group_by(Finding.mining_run_id, Finding.api)
    expected = {(run, api): (calls, client) for run, api, calls, client in session.exec(folded)}
    stored = {
        (row.mining_run_id, row.api): (row.calls, row.client_calls) for row in session.exec(select(RunUsage)).scalars()
    }
    assert stored == expected

    latest = {row.repository_id: row.id for row in session.exec(latest_runs())}
    flagged = session.exec(select(MiningRun.repository_id, MiningRun.id).where(MiningRun.latest)).all()
    assert dict(flagged) == latest and len(flagged) == len(MINED)
    usage_flags = session.exec(select(RunUsage.mining_run_id, RunUsage.latest)).all()
    assert all(flag == (run in latest.values()) for run, flag in usage_flags)

    # mining an older commit again (finished earlier) does not take the flag away
    repository = get_repository(session=session, full_name="a/nlp-big")
    again = save_run(
        session=session,
        repository=repository,
        result=mined("a/nlp-big", "n1", fluent("log_params"), on=1),
        rules_version=RULES.version,
        tool_version="test",
    )
    assert again.latest is False
    assert finding_rows(session=session, repo="a/nlp-big")[0]["commit"] == "n2"
    # a newer run takes it
    newer = save_run(
        session=session,
        repository=repository,
        result=mined("a/nlp-big", "n3", fluent("autolog"), on=5),
        rules_version=RULES.version,
        tool_version="test",
    )
    assert newer.latest is True
    flags = dict(
        session.exec(
            select(MiningRun.commit_sha, MiningRun.latest).where(MiningRun.repository_id == repository.id)
        ).all()
    )
    assert flags == {"n1": False, "n2": False, "n3": True}
    assert compute_stats(session=session, rules=RULES)["apis"]["autolog"]["repositories"] == 2


def _summaries(session: Session) -> tuple[Any, ...]:
    """Everything derived from the findings: usage rows, profiles, flags, and the stats."""
    usage = sorted(
        tuple(row)
        for row in session.exec(
            select(
                RunUsage.mining_run_id,
                RunUsage.api,
                RunUsage.calls,
                RunUsage.client_calls,
                RunUsage.other_calls,
                RunUsage.used,
                RunUsage.latest,
            )
        ).all()
    )
    runs = sorted(
        tuple(row)
        for row in session.exec(
            select(MiningRun.id, MiningRun.latest, MiningRun.apis_used, MiningRun.client_calls, MiningRun.other_calls)
        ).all()
    )
    return usage, runs, compute_stats(session=session, rules=RULES)


def test_rebuilding_the_summaries_gives_what_save_run_wrote(session: Session, dataset: dict[str, int]) -> None:
    written = _summaries(session)
    assert ("a/plain", "autolog,set_tracking_uri") not in written[1]
    assert {row[2] for row in written[1]} >= {"log_param", "autolog", "set_tracking_uri", ""}

    rebuild_summaries(session=session)

    assert _summaries(session) == written


def test_the_migration_fills_what_save_run_writes(session: Session, dataset: dict[str, int], database_url: str) -> None:
    """Runs stored before revision 0002 get the same usage rows, profiles and flags."""
    written = _summaries(session)
    findings = session.exec(select(func.count()).select_from(Finding)).one()[0]
    session.close()
    engine = make_engine(database_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001")
        assert "runusage" not in inspect(connection).get_table_names()
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    with Session(engine) as fresh:
        assert _summaries(fresh) == written
        # the columns were added in place: no table copy, no cascade through the findings
        assert fresh.exec(select(func.count()).select_from(Finding)).one()[0] == findings == 9


# ------------------------------------------------------------------------------ the CLI


@pytest.fixture
def cli_env(dataset: dict[str, int], database_url: str, tmp_path, monkeypatch) -> dict[str, int]:  # noqa: ANN001
    monkeypatch.setenv("MINER_DATABASE_URL", database_url)
    monkeypatch.setenv("MINER_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.chdir(tmp_path)
    return dataset


def invoke(*args: str) -> tuple[int, str, str]:
    result = RUNNER.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_repos_command(cli_env: dict[str, int]) -> None:
    code, out, _ = invoke("repos", "--format", "json")
    assert code == 0
    assert {row["full_name"] for row in json.loads(out)} == MINED

    code, out, _ = invoke("repos", "--uses", "metrics", "--not-uses", "client", "-f", "json")
    assert code == 0 and [row["full_name"] for row in json.loads(out)] == ["a/sqlish"]

    code, out, _ = invoke(
        "repos", "--uses", "log_param", "--uses", "params", "--topic", "nlp", "--min-stars", "50", "-f", "csv"
    )
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("full_name,stars,fork,archived,topics,commit,mined_at,findings,headline,params")
    assert len(lines) == 2 and lines[1].startswith("a/nlp-big,100,")

    code, out, _ = invoke("repos", "--uses", "autolog", "-f", "json")
    assert [row["full_name"] for row in json.loads(out)] == ["a/vision-fork"]
    code, out, _ = invoke("repos", "--uses", "autolog", "--exclude-forks", "-f", "json")
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["repos", "--uses", "log_everything"], "unknown api or category 'log_everything'"),
        (["repos", "--not-uses", "DROP TABLE finding"], "unknown api or category 'DROP TABLE finding'"),
        (["stats", "--since", "yesterday"], "--since: invalid date 'yesterday'"),
        (["findings", "--since", "2026-02-30"], "--since: invalid date '2026-02-30'"),
        (["repos", "--since", "2026-03-01T25:00"], "--since: invalid date"),
        (["export", "--out", "x", "--since", "03/01/2026"], "--since: invalid date"),
        (["stats", "--crawl", "999"], "--crawl: no crawl with id 999"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_1(cli_env: dict[str, int], args: list[str], message: str) -> None:
    code, out, err = invoke(*args)
    assert code == 1
    assert out == ""
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_query_commands_take_the_same_filters(cli_env: dict[str, int]) -> None:
    filters = [
        "--topic",
        "mlflow-projects",
        "--min-stars",
        "1",
        "--exclude-forks",
        "--exclude-archived",
        "--crawl",
        str(cli_env[2]),
        "--since",
        "2026-03-02",
    ]
    code, out, _ = invoke("stats", *filters, "-f", "json")
    assert code == 0
    stats = json.loads(out)
    assert (stats["repositories"], stats["filters"]["crawl_id"]) == (2, cli_env[2])
    assert stats["filters"]["since"] == "2026-03-02T00:00:00+00:00"
    code, out, _ = invoke("findings", *filters, "-f", "json")
    assert code == 0 and {row["repository"] for row in json.loads(out)} == {"a/nlp-big", "a/sqlish"}
    code, out, _ = invoke("repos", *filters, "-f", "json")
    assert code == 0 and [row["full_name"] for row in json.loads(out)] == ["a/nlp-big", "a/sqlish"]
    for command in ("stats", "findings", "repos", "export"):
        code, out, _ = invoke(command, "--help")
        assert code == 0
        for option in ("--topic", "--min-stars", "--exclude-forks", "--exclude-archived", "--crawl", "--since"):
            assert option in out, (command, option)


def test_sql_ish_topics_are_just_data(cli_env: dict[str, int], session: Session) -> None:
    code, out, _ = invoke("repos", "--topic", SQLISH_TOPIC, "-f", "json")
    assert code == 0 and [row["full_name"] for row in json.loads(out)] == ["a/sqlish"]
    for topic in ("' OR 1=1 --", "nlp'; DROP TABLE finding; --", '") OR ("1"="1'):
        code, out, _ = invoke("stats", "--topic", topic, "-f", "json")
        assert code == 0 and json.loads(out)["repositories"] == 0
    assert session.exec(select(func.count()).select_from(Finding)).one()[0] > 0


def test_findings_command_limit(cli_env: dict[str, int]) -> None:
    code, out, _ = invoke("findings", "--limit", "2", "-f", "json")
    assert code == 0 and len(json.loads(out)) == 2


# --------------------------------------------------------------------------- parse_since


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02", datetime(2026, 3, 2, tzinfo=UTC)),
        ("2026-03-02T10:30", datetime(2026, 3, 2, 10, 30, tzinfo=UTC)),
        ("2026-03-02T10:30:00Z", datetime(2026, 3, 2, 10, 30, tzinfo=UTC)),
        ("2026-03-02T12:30:00+02:00", datetime(2026, 3, 2, 10, 30, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-3-2", "2026-02-30", "02/03/2026", "1' OR 1=1"])
def test_parse_since_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="use YYYY-MM-DD"):
        parse_since(text)
