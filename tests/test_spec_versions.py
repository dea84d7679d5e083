"""Figures under either version of the detection spec (`--spec 1|2`), on SQLite and PostgreSQL.

The corpus: five repositories whose findings were made through version 1 rules or through a
version 2 rule (the `rule` each finding records). Worked out by hand:

| repository       | findings (rule)                                              | headline v2 / v1 |
| ---------------- | ------------------------------------------------------------ | ---------------- |
| acme/plain       | log_param (v1)                                               | yes / yes        |
| acme/annotated   | client.search_runs (annotated-client-param), set_tracking_uri | no / no          |
| acme/magic       | log_metric, autolog (%%writefile)                             | yes / no         |
| acme/mixed       | log_param (v1), log_param (assignment-alias), autolog         | yes / yes        |
|                  | (disable=True, v1), getattr(mlflow, f).autolog() (getattr)    |                  |
| acme/config      | set_experiment (v1)                                          | no / no          |
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from miner import __version__
from miner.cli import app
from miner.core.domain import Category, FileKind, FileResult, FileStatus, Finding, MiningResult, RunStatus
from miner.core.rules import load_rules
from miner.core.settings import load_settings
from miner.present.api import create_app
from miner.present.findings import finding_rows
from miner.present.repositories import count_repositories, repository_rows
from miner.present.stats import compute_stats
from schema.filters import Filters
from schema.models import MiningRun, RunUsage
from schema.repositories import upsert_repository
from schema.runs import save_run
from schema.summaries import rebuild_summaries

RULES = load_rules()
T0 = datetime(2026, 12, 1, tzinfo=UTC)
ALIAS, GETATTR, ANNOTATED = "assignment-alias", "getattr-dynamic", "annotated-client-param"


def call(api: str, rule: str = "v1", *, line: int = 1, flavor: str | None = None, disabling: bool = False) -> Finding:
    qualified = f"mlflow.{flavor}.{api}" if flavor else f"mlflow.{api}"
    return Finding(
        path="train.py",
        line=line,
        column=1,
        qualified_name=qualified,
        api=api,
        category=RULES.category_of(api),
        flavor=flavor,
        disabling=disabling,
        rule=rule,
    )


def client_call(api: str, rule: str = "v1") -> Finding:
    return Finding(
        path="train.py",
        line=9,
        column=5,
        qualified_name=f"mlflow.client.MlflowClient.{api}",
        api=api,
        category=Category.client,
        via_client=True,
        rule=rule,
    )


CORPUS = {
    "acme/plain": [call("log_param")],
    "acme/annotated": [client_call("search_runs", ANNOTATED), call("set_tracking_uri", line=2)],
    "acme/magic": [call("log_metric", "%%writefile"), call("autolog", "%%writefile", line=2)],
    "acme/mixed": [
        call("log_param"),
        call("log_param", ALIAS, line=2),
        call("autolog", line=3, disabling=True),
        call("autolog", GETATTR, line=4, flavor="<dynamic>"),
    ],
    "acme/config": [call("set_experiment")],
}


@pytest.fixture
def corpus(session: Session) -> Session:
    for minutes, (name, findings) in enumerate(CORPUS.items()):
        started = T0 + timedelta(minutes=minutes)
        result = MiningResult(
            name,
            f"sha-{minutes}",
            RunStatus.ok,
            started,
            started + timedelta(seconds=3),
            files=[FileResult("train.py", FileKind.py, FileStatus.ok, parsed=True)],
            findings=list(findings),
        )
        repository = upsert_repository(session=session, full_name=name)
        save_run(
            session=session, repository=repository, result=result, rules_version=RULES.version, tool_version="test"
        )
    return session


def figures(stats: dict) -> dict:
    return {
        "spec": stats["spec"],
        "headline": stats["headline"]["repositories"],
        "log_param": (stats["apis"]["log_param"]["repositories"], stats["apis"]["log_param"]["calls"]),
        "log_metric": (stats["apis"]["log_metric"]["repositories"], stats["apis"]["log_metric"]["calls"]),
        "autolog": (stats["apis"]["autolog"]["repositories"], stats["apis"]["autolog"]["calls"]),
        "client": stats["categories"]["client"]["repositories"],
        "autolog_category": stats["categories"]["autolog"]["repositories"],
        "other": stats["categories"]["other"]["repositories"],
    }


SPEC_2 = {
    "spec": 2,
    "headline": 3,
    "log_param": (2, 3),
    "log_metric": (1, 1),
    "autolog": (2, 3),
    "client": 1,
    "autolog_category": 2,
    "other": 0,
}
SPEC_1 = {
    "spec": 1,
    "headline": 2,
    "log_param": (2, 2),
    "log_metric": (0, 0),
    "autolog": (0, 1),
    "client": 0,
    "autolog_category": 0,
    "other": 0,
}


def test_save_run_folds_the_version_1_findings_apart(corpus: Session) -> None:
    runs = {run.commit_sha: run for run in corpus.exec(select(MiningRun))}
    mixed = runs["sha-3"]
    assert (mixed.apis_used, mixed.apis_used_v1) == ("autolog,log_param", "log_param")
    annotated = runs["sha-1"]
    assert (annotated.client_calls, annotated.client_calls_v1) == (1, 0)
    usage = {row.api: row for row in corpus.exec(select(RunUsage).where(RunUsage.mining_run_id == mixed.id))}
    autolog = usage["autolog"]
    assert (autolog.calls, autolog.used, autolog.calls_v1, autolog.used_v1) == (2, 1, 1, 0)


def test_stats_under_each_spec_version(corpus: Session) -> None:
    assert figures(compute_stats(session=corpus, rules=RULES)) == SPEC_2
    assert figures(compute_stats(session=corpus, rules=RULES, filters=Filters(spec=2))) == SPEC_2
    assert figures(compute_stats(session=corpus, rules=RULES, filters=Filters(spec=1))) == SPEC_1


def test_rebuilt_summaries_give_the_same_figures(corpus: Session) -> None:
    rebuild_summaries(session=corpus)
    assert figures(compute_stats(session=corpus, rules=RULES)) == SPEC_2
    assert figures(compute_stats(session=corpus, rules=RULES, filters=Filters(spec=1))) == SPEC_1


def test_findings_and_repositories_under_spec_1(corpus: Session) -> None:
    every = finding_rows(session=corpus)
    assert [row["rule"] for row in every if row["repository"] == "acme/mixed"] == ["v1", ALIAS, "v1", GETATTR]
    version_1 = finding_rows(session=corpus, filters=Filters(spec=1))
    assert {row["rule"] for row in version_1} == {"v1"} and len(version_1) == 5
    headline_2 = [row["full_name"] for row in repository_rows(session=corpus, rules=RULES, uses=["headline"])]
    headline_1 = [
        row["full_name"]
        for row in repository_rows(session=corpus, rules=RULES, uses=["headline"], filters=Filters(spec=1))
    ]
    assert (headline_2, headline_1) == (["acme/magic", "acme/mixed", "acme/plain"], ["acme/mixed", "acme/plain"])
    assert count_repositories(session=corpus, rules=RULES, uses=["client"], filters=Filters(spec=1)) == 0
    rows = {row["full_name"]: row for row in repository_rows(session=corpus, rules=RULES, filters=Filters(spec=1))}
    assert (rows["acme/mixed"]["findings"], rows["acme/mixed"]["params"], rows["acme/magic"]["findings"]) == (2, 1, 0)


def test_an_unknown_spec_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown spec version 3"):
        Filters(spec=3)


def test_cli_stats_findings_and_export_take_spec(
    corpus: Session, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINER_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("MINER_DATABASE_URL", database_url)
    runner = CliRunner()
    default = runner.invoke(app, ["stats", "--format", "json"])
    version_1 = runner.invoke(app, ["stats", "--spec", "1", "--format", "json"])
    assert (default.exit_code, version_1.exit_code) == (0, 0), default.stdout + version_1.stdout
    assert figures(json.loads(default.stdout)) == SPEC_2
    assert figures(json.loads(version_1.stdout)) == SPEC_1
    assert runner.invoke(app, ["stats", "--spec", "3"]).exit_code != 0

    found = runner.invoke(app, ["findings", "--spec", "1", "--format", "json"])
    assert found.exit_code == 0 and {row["rule"] for row in json.loads(found.stdout)} == {"v1"}

    exported = runner.invoke(app, ["export", "--spec", "1", "--format", "json", "--out", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.stdout
    card = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert card["rules"]["version"] == RULES.version
    assert (card["rules"]["spec_version"], card["rules"]["spec"], card["filters"]["spec"]) == (2, 1, 1)
    assert card["reproduce"].endswith("--spec 1")
    assert figures(json.loads((tmp_path / "out" / "stats.json").read_text())) == SPEC_1
    findings = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert len(findings) == 5 and {row["rule"] for row in findings} == {"v1"}


def test_api_takes_spec(corpus: Session, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINER_CONFIG", str(tmp_path / "absent.yaml"))
    with TestClient(create_app(load_settings(database_url=database_url))) as client:
        assert figures(client.get("/api/stats").json()) == SPEC_2
        assert figures(client.get("/api/stats", params={"spec": 1}).json()) == SPEC_1
        assert client.get("/api/stats", params={"spec": 3}).status_code == 422
        findings = client.get("/api/findings", params={"repo": "acme/mixed"}).json()["data"]
        assert [row["rule"] for row in findings] == ["v1", ALIAS, "v1", GETATTR]
        assert client.get("/api/findings", params={"spec": 1}).json()["count"] == 5
        assert client.get("/api/repositories", params={"spec": 1, "uses": "headline"}).json()["count"] == 2


def test_version_names_the_rules_and_spec_versions() -> None:
    result = CliRunner().invoke(app, ["version", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "tool": "mlflow-miner",
        "version": __version__,
        "rules": "mlflow",
        "rules_version": RULES.version,
        "spec_version": 2,
    }
    assert "detection spec version 2" in CliRunner().invoke(app, ["version"]).stdout
