"""miner.present.stats and the row queries beside it on SQLite and PostgreSQL, against numbers
worked out by hand.

The corpus: five repositories mined successfully and one whose clone failed.

| repository          | latest successful run                        | headline? |
| ------------------- | -------------------------------------------- | --------- |
| acme/params         | mlflow.log_param twice (older run: log_metric)| yes       |
| acme/client         | MlflowClient().log_metric (a client call)    | yes       |
| acme/autolog-off    | mlflow.autolog(disable=True) only            | no        |
| acme/sklearn        | mlflow.sklearn.autolog() in a notebook cell  | yes       |
| acme/config         | mlflow.set_tracking_uri only                 | no        |
| acme/broken         | none: clone_failed                           | -         |
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from miner.core.domain import Category, FileKind, FileStatus, MiningResult, RunStatus
from miner.core.domain import FileResult as FileOutcome
from miner.core.domain import Finding as Call
from miner.core.rules import load_rules
from miner.present.figures import wilson_interval
from miner.present.findings import finding_rows
from miner.present.repositories import repository_usage
from miner.present.stats import compute_stats
from schema.repositories import upsert_repository
from schema.runs import save_run

RULES = load_rules()
T0 = datetime(2026, 3, 1, tzinfo=UTC)
ROW_KEYS = {
    "repository",
    "commit",
    "path",
    "cell",
    "line",
    "column",
    "api",
    "category",
    "qualified_name",
    "flavor",
    "disabling",
}


def fluent(
    api: str,
    *,
    path: str = "train.py",
    line: int = 1,
    column: int = 0,
    flavor: str | None = None,
    cell: int | None = None,
    disabling: bool = False,
) -> Call:
    qualified = f"mlflow.{flavor}.{api}" if flavor else f"mlflow.{api}"
    return Call(
        path=path,
        line=line,
        column=column,
        qualified_name=qualified,
        api=api,
        category=RULES.category_of(api),
        flavor=flavor,
        cell=cell,
        disabling=disabling,
    )


def client(api: str, *, path: str = "train.py", line: int = 1) -> Call:
    return Call(
        path=path,
        line=line,
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
    minutes: int = 0,
    status: RunStatus = RunStatus.ok,
    extra_files: list[FileOutcome] = (),
) -> MiningResult:
    started = T0 + timedelta(minutes=minutes)
    files = [
        FileOutcome(
            path=path,
            kind=FileKind.ipynb if path.endswith(".ipynb") else FileKind.py,
            status=FileStatus.ok,
            parsed=True,
        )
        for path in sorted({c.path for c in calls})
    ] + list(extra_files)
    return MiningResult(
        full_name=full_name,
        commit_sha=sha,
        status=status,
        started_at=started,
        finished_at=started + timedelta(seconds=5),
        files=files,
        findings=list(calls),
    )


def store_all(session: Session, *results: MiningResult) -> None:
    for result in results:
        repository = upsert_repository(session=session, full_name=result.full_name)
        save_run(
            session=session, repository=repository, result=result, rules_version=RULES.version, tool_version="test"
        )


@pytest.fixture
def corpus(session: Session) -> Session:
    store_all(
        session,
        mined("acme/params", "p0", fluent("log_metric"), minutes=0),  # superseded
        mined(
            "acme/params",
            "p1",
            fluent("log_param", line=3),
            fluent("log_param", line=9),
            minutes=10,
            extra_files=[
                FileOutcome(path="broken.py", kind=FileKind.py, status=FileStatus.unparsable, error="invalid syntax")
            ],
        ),
        mined("acme/client", "c1", client("log_metric"), minutes=1),
        mined("acme/autolog-off", "o1", fluent("autolog", disabling=True), minutes=2),
        mined(
            "acme/sklearn",
            "s1",
            fluent("autolog", flavor="sklearn", path="nb/fit.ipynb", cell=2, line=1),
            minutes=3,
            extra_files=[FileOutcome(path="node_modules/x.py", kind=FileKind.py, status=FileStatus.skipped)],
        ),
        mined("acme/config", "g1", fluent("set_tracking_uri"), minutes=4),
        mined("acme/broken", None, status=RunStatus.clone_failed, minutes=5),
    )
    return session


def test_wilson_interval_matches_a_hand_computation() -> None:
    # z = 1.959964, z^2 = 3.841459, n = 5, p = 0.6:
    # centre = (0.6 + z^2/10) / (1 + z^2/5) = 0.984146 / 1.768292 = 0.556547
    # half   = z * sqrt(0.6*0.4/5 + z^2/100) / 1.768292 = 1.959964 * 0.293964 / 1.768292 = 0.325828
    low, high = wilson_interval(3, 5)
    assert (round(low, 4), round(high, 4)) == (0.2307, 0.8824)
    assert wilson_interval(0, 0) == (0.0, 0.0)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0


def test_headline_share_and_interval(corpus: Session) -> None:
    stats = compute_stats(session=corpus, rules=RULES)

    assert stats["repositories"] == 5
    headline = stats["headline"]
    assert headline["repositories"] == 3  # params, client, sklearn
    assert headline["share"] == pytest.approx(0.6)
    assert [round(bound, 4) for bound in headline["ci95"]] == [0.2307, 0.8824]
    assert headline["apis"] == ["log_param", "log_params", "log_metric", "log_metrics", "autolog"]
    assert stats["rules_version"] == RULES.version
    json.dumps(stats)  # the shape is plain JSON


def test_every_api_of_the_rules_table_in_table_order(corpus: Session) -> None:
    apis = compute_stats(session=corpus, rules=RULES)["apis"]

    assert list(apis) == list(RULES.apis)
    assert apis["log_param"] == {"repositories": 1, "share": 0.2, "calls": 2, "fluent_calls": 2, "client_calls": 0}
    # the older run of acme/params logged a metric; only the client repository counts now
    assert apis["log_metric"] == {"repositories": 1, "share": 0.2, "calls": 1, "fluent_calls": 0, "client_calls": 1}
    # the disabling call is a call, but not usage
    assert apis["autolog"] == {"repositories": 1, "share": 0.2, "calls": 2, "fluent_calls": 2, "client_calls": 0}
    assert apis["set_tracking_uri"]["repositories"] == 1
    untouched = set(RULES.apis) - {"log_param", "log_metric", "autolog", "set_tracking_uri"}
    for api in untouched:
        assert apis[api] == {"repositories": 0, "share": 0.0, "calls": 0, "fluent_calls": 0, "client_calls": 0}, api


def test_categories_follow_the_api_and_count_client_calls_twice(corpus: Session) -> None:
    categories = compute_stats(session=corpus, rules=RULES)["categories"]

    assert list(categories) == [c.value for c in RULES.categories]
    assert list(categories)[-2:] == ["client", "other"]
    expected = {  # (repositories, calls)
        "params": (1, 2),
        "metrics": (1, 1),  # the client's log_metric logs metrics
        "autolog": (1, 2),
        "config": (1, 1),
        "client": (1, 1),
        "other": (0, 0),
    }
    for name, entry in categories.items():
        assert (entry["repositories"], entry["calls"]) == expected.get(name, (0, 0)), name
        assert entry["share"] == entry["repositories"] / 5


def test_failures(corpus: Session) -> None:
    failures = compute_stats(session=corpus, rules=RULES)["failures"]

    assert failures == {
        "runs": {"clone_failed": 1, "too_large": 0, "timeout": 0, "error": 0},
        "repositories_without_ok_run": 1,
        "unparsable_files": 1,
        "skipped_files": 1,
    }


def test_other_calls_and_an_autolog_that_is_also_switched_on(session: Session) -> None:
    store_all(
        session,
        mined(
            "acme/mixed",
            "m1",
            fluent("autolog", disabling=True, line=1),
            fluent("autolog", flavor="pytorch", line=2),
            fluent("search_runs", line=3),
            client("create_experiment", line=4),
        ),
    )

    stats = compute_stats(session=session, rules=RULES)

    assert stats["headline"]["repositories"] == 1
    assert stats["apis"]["autolog"]["repositories"] == 1
    assert stats["apis"]["create_experiment"] == {
        "repositories": 1,
        "share": 1.0,
        "calls": 1,
        "fluent_calls": 0,
        "client_calls": 1,
    }
    assert stats["categories"]["other"]["repositories"] == 1  # search_runs
    assert stats["categories"]["client"]["calls"] == 1
    assert stats["categories"]["config"]["repositories"] == 1  # through the client
    assert stats["failures"]["runs"] == {"clone_failed": 0, "too_large": 0, "timeout": 0, "error": 0}


def test_an_empty_database(session: Session) -> None:
    stats = compute_stats(session=session, rules=RULES)

    assert stats["repositories"] == 0
    assert stats["headline"] == {"repositories": 0, "share": 0.0, "ci95": [0.0, 0.0], "apis": list(RULES.headline_apis)}
    assert all(entry["share"] == 0.0 for entry in stats["apis"].values())
    assert stats["failures"]["repositories_without_ok_run"] == 0


def test_finding_rows_of_the_latest_runs_in_order(corpus: Session) -> None:
    rows = finding_rows(session=corpus)

    assert all(ROW_KEYS <= set(row) for row in rows)
    assert [(row["repository"], row["api"], row["line"]) for row in rows] == [
        ("acme/autolog-off", "autolog", 1),
        ("acme/client", "log_metric", 1),
        ("acme/config", "set_tracking_uri", 1),
        ("acme/params", "log_param", 3),
        ("acme/params", "log_param", 9),
        ("acme/sklearn", "autolog", 1),
    ]
    notebook = rows[-1]
    assert notebook == {
        "repository": "acme/sklearn",
        "commit": "s1",
        "path": "nb/fit.ipynb",
        "cell": 2,
        "line": 1,
        "column": 0,
        "api": "autolog",
        "category": "autolog",
        "qualified_name": "mlflow.sklearn.autolog",
        "flavor": "sklearn",
        "disabling": False,
        "via_client": False,
        "rule": "v1",
    }
    assert rows[0]["disabling"] is True
    json.dumps(rows)


def test_finding_rows_filtered_by_repository_and_api(corpus: Session) -> None:
    params = finding_rows(session=corpus, repo="acme/params")
    assert [(row["commit"], row["line"]) for row in params] == [("p1", 3), ("p1", 9)]

    metrics = finding_rows(session=corpus, api="log_metric")
    assert [(row["repository"], row["category"]) for row in metrics] == [("acme/client", "client")]

    assert finding_rows(session=corpus, repo="acme/params", api="log_metric") == []
    assert finding_rows(session=corpus, repo="acme/broken") == []


def test_finding_rows_order_cells_within_a_notebook(session: Session) -> None:
    store_all(
        session,
        mined(
            "acme/nb",
            "n1",
            fluent("log_param", path="a.ipynb", cell=3, line=1),
            fluent("log_param", path="a.ipynb", cell=0, line=7, column=8),
            fluent("log_param", path="a.ipynb", cell=0, line=7, column=2),
            fluent("log_param", path="a.py", line=2),
        ),
    )

    rows = finding_rows(session=session)

    assert [(r["path"], r["cell"], r["line"], r["column"]) for r in rows] == [
        ("a.ipynb", 0, 7, 2),
        ("a.ipynb", 0, 7, 8),
        ("a.ipynb", 3, 1, 0),
        ("a.py", None, 2, 0),
    ]


def test_repository_usage(corpus: Session) -> None:
    usage = {row["full_name"]: row for row in repository_usage(session=corpus, rules=RULES)}

    assert list(usage) == ["acme/autolog-off", "acme/client", "acme/config", "acme/params", "acme/sklearn"]
    assert usage["acme/params"]["commit"] == "p1"
    assert (usage["acme/params"]["params"], usage["acme/params"]["metrics"]) == (2, 0)
    assert (usage["acme/client"]["metrics"], usage["acme/client"]["client"]) == (1, 1)
    assert usage["acme/autolog-off"]["autolog"] == 1
    assert [usage[name]["headline"] for name in usage] == [False, True, False, True, True]
    assert all(set(row) >= {"full_name", "commit", *(c.value for c in RULES.categories)} for row in usage.values())
    assert math.isclose(sum(row["findings"] for row in usage.values()), 6)
