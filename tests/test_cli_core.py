"""`miner mine`, `stats`, `findings` and `eval` end to end on repositories built in tmp_path."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from gitrepos import make_repo
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from miner.cli import app
from schema.db import open_session
from schema.models import Finding, MiningRun, Repository

RUNNER = CliRunner()

REPOSITORIES = {
    # name: files; the expected usage is worked out by hand in the tests below
    "params": {"train.py": "import mlflow\nmlflow.log_param('lr', 0.1)\nmlflow.log_param('k', 2)\n"},
    "client": {
        "track.py": (
            "from mlflow.tracking import MlflowClient\nclient = MlflowClient()\nclient.log_metric('run', 'acc', 0.9)\n"
        )
    },
    "disabled": {"setup.py": "import mlflow\nmlflow.sklearn.autolog(disable=True)\n"},
    "autolog": {"fit.py": "import mlflow.sklearn as mls\nmls.autolog()\n"},
    "config-only": {"serve.py": "import mlflow\nmlflow.set_tracking_uri('http://x')\n# mlflow.log_param('a', 1)\n"},
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("MINER_DATABASE_URL", database_url)
    monkeypatch.setenv("MINER_WORKERS", "2")
    monkeypatch.chdir(tmp_path)
    return database_url


@pytest.fixture
def built(tmp_path: Path) -> dict[str, Path]:
    return {name: make_repo(tmp_path / "repos" / name, files).path for name, files in REPOSITORIES.items()}


def invoke(*args: str) -> tuple[int, str]:
    result = RUNNER.invoke(app, list(args))
    return result.exit_code, result.stdout


def test_mine_stats_findings_on_a_small_corpus(env: str, built: dict[str, Path]) -> None:
    code, out = invoke("mine", *[str(p) for p in built.values()], "--format", "json")
    assert code == 0, out
    rows = {row["repository"]: row for row in json.loads(out)}
    assert set(rows) == set(REPOSITORIES)  # no origin remote: named after the folder
    assert rows["params"]["by_category"] == {"params": 2}
    assert rows["client"]["by_category"] == {"client": 1}
    assert rows["config-only"]["by_category"] == {"config": 1}  # the comment does not count

    code, out = invoke("stats", "--format", "json")
    assert code == 0, out
    stats = json.loads(out)
    assert stats["repositories"] == 5
    # params (log_param), client (client.log_metric counts as log_metric), autolog; not the
    # disabling autolog nor the config-only repository: 3 of 5.
    assert stats["headline"]["repositories"] == 3
    assert stats["headline"]["share"] == pytest.approx(0.6)
    assert stats["headline"]["ci95"] == pytest.approx([0.2307, 0.8824], abs=1e-4)
    assert stats["apis"]["log_param"] == {**stats["apis"]["log_param"], "repositories": 1, "calls": 2}
    assert stats["apis"]["log_metric"]["repositories"] == 1
    assert stats["apis"]["autolog"]["repositories"] == 1  # the disabling call does not count
    assert stats["apis"]["autolog"]["calls"] == 2  # but it is still a call
    assert stats["categories"]["config"]["repositories"] == 1
    assert stats["categories"]["client"]["repositories"] == 1

    code, out = invoke("findings", "--api", "autolog", "--format", "json")
    assert code == 0, out
    records = sorted(json.loads(out), key=lambda r: r["repository"])
    assert [(r["repository"], r["path"], r["line"], r["cell"], r["flavor"], r["disabling"]) for r in records] == [
        ("autolog", "fit.py", 2, None, "sklearn", False),
        ("disabled", "setup.py", 2, None, "sklearn", True),
    ]
    expected_keys = {
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
    assert expected_keys <= set(records[0])


def test_mining_the_same_commit_again_leaves_one_run(env: str, built: dict[str, Path]) -> None:
    target = str(built["params"])
    for _ in range(3):
        code, out = invoke("mine", target, "--format", "json")
        assert code == 0, out
    with open_session(env) as session:
        runs = session.exec(select(MiningRun)).all()
        findings = session.exec(select(func.count()).select_from(Finding)).one()
    assert len(runs) == 1 and findings == 2


def test_local_repository_is_named_after_its_origin_remote(env: str, tmp_path: Path) -> None:
    path = make_repo(tmp_path / "checkout", REPOSITORIES["params"]).path
    subprocess.run(
        ["git", "-C", str(path), "remote", "add", "origin", "https://github.com/acme/train-it.git"], check=True
    )
    code, out = invoke("mine", str(path), "--format", "json")
    assert code == 0, out
    assert json.loads(out)[0]["repository"] == "acme/train-it"
    code, out = invoke("mine", str(path), "--name", "other/name", "--format", "json")
    assert json.loads(out)[0]["repository"] == "other/name"
    with open_session(env) as session:
        names = sorted(session.exec(select(Repository.full_name)).all())
    assert names == ["acme/train-it", "other/name"]


def test_mine_fails_only_for_targets_that_cannot_be_mined(env: str, built: dict[str, Path], tmp_path: Path) -> None:
    unknown = RUNNER.invoke(app, ["mine", str(built["params"]), str(tmp_path / "no" / "such" / "thing")])
    assert unknown.exit_code == 1
    assert "neither a local path, a clone URL nor owner/name" in unknown.stderr
    missing_rev = RUNNER.invoke(app, ["mine", str(built["params"]), "--rev", "no-such-rev", "--format", "json"])
    assert missing_rev.exit_code == 1
    row = json.loads(missing_rev.stdout)[0]
    assert row["status"] == "error" and "no-such-rev" in row["error"]


def test_eval_scores_against_labels_and_lists_disagreements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "mirror"
    source = make_repo(
        tmp_path / "src",
        {
            "a.py": "import mlflow\nmlflow.log_param('a', 1)\nmlflow.log_metric('m', 1)\n",
            "b.ipynb": json.dumps(
                {
                    "nbformat": 4,
                    "nbformat_minor": 5,
                    "metadata": {},
                    "cells": [
                        {"cell_type": "markdown", "metadata": {}, "source": "# hi"},
                        {
                            "cell_type": "code",
                            "metadata": {},
                            "outputs": [],
                            "execution_count": None,
                            "source": ["import mlflow\n", "mlflow.autolog()\n"],
                        },
                    ],
                }
            ),
        },
    )
    subprocess.run(["git", "clone", "--bare", "-q", str(source.path), str(root / "acme+demo" / "repo")], check=True)
    corpus = {
        "format": 1,
        "repositories": [
            {
                "repo": "acme/demo",
                "commit": source.sha,
                "uses": ["log_param", "autolog", "log_params"],
                "calls": [
                    {
                        "path": "a.py",
                        "cell": None,
                        "line": 2,
                        "name_line": 2,
                        "api": "log_param",
                        "category": "params",
                        "qualified_name": "mlflow.log_param",
                    },
                    {
                        "path": "b.ipynb",
                        "cell": 1,
                        "line": 2,
                        "name_line": 2,
                        "api": "autolog",
                        "category": "autolog",
                        "qualified_name": "mlflow.autolog",
                    },
                    {
                        "path": "a.py",
                        "cell": None,
                        "line": 9,
                        "name_line": 9,
                        "api": "log_params",
                        "category": "params",
                        "qualified_name": "mlflow.log_params",
                    },
                ],
            },
            {"repo": "acme/absent", "commit": "0" * 40, "uses": [], "calls": []},
        ],
    }
    corpus_path = tmp_path / "corpus.json"
    corpus_path.write_text(json.dumps(corpus))
    result = RUNNER.invoke(
        app, ["eval", str(corpus_path), "--repos-root", str(root), "--format", "json", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["repositories"] == 1 and report["missing"] == ["acme/absent"]
    # found log_param, log_metric, autolog; labelled log_param, autolog, log_params
    assert report["calls"] == {"tp": 2, "fp": 1, "fn": 1, "precision": 0.6667, "recall": 0.6667, "f1": 0.6667}
    assert report["repo_level"]["log_metric"] == {"tp": 0, "fp": 1, "fn": 0, "precision": 0.0, "recall": 1.0, "f1": 0.0}
    assert report["repo_level"]["log_params"]["fn"] == 1
    assert sorted((d["kind"], d["path"], d["line"], d["api"]) for d in report["disagreements"]) == [
        ("extra", "a.py", 3, "log_metric"),
        ("missed", "a.py", 9, "log_params"),
    ]


def test_eval_reports_recall_per_spec_kind_and_rule_agreement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "mirror"
    source = make_repo(
        tmp_path / "src",
        {
            "a.py": "import mlflow\nm = mlflow\nm.log_param('a', 1)\nmlflow.log_metric('m', 1)\n",
            "b.ipynb": json.dumps(
                {
                    "nbformat": 4,
                    "nbformat_minor": 5,
                    "metadata": {},
                    "cells": [
                        {
                            "cell_type": "code",
                            "metadata": {},
                            "outputs": [],
                            "execution_count": None,
                            "source": ["%%writefile train.py\n", "import mlflow\n", "mlflow.autolog()\n"],
                        }
                    ],
                }
            ),
        },
    )
    subprocess.run(["git", "clone", "--bare", "-q", str(source.path), str(root / "acme+demo" / "repo")], check=True)

    def label(path: str, cell: int | None, line: int, api: str, category: str, **kind: str) -> dict:
        return {
            "path": path,
            "cell": cell,
            "line": line,
            "name_line": line,
            "api": api,
            "category": category,
            "qualified_name": f"mlflow.{api}",
            **kind,
        }

    corpus = {
        "format": 1,
        "spec_version": 2,
        "repositories": [
            {
                "repo": "acme/demo",
                "commit": source.sha,
                "uses": ["log_param", "log_metric", "autolog"],
                "calls": [
                    label("a.py", None, 3, "log_param", "params", spec_v2="assignment-alias"),
                    label("a.py", None, 4, "log_metric", "metrics", spec_v2="getattr-dynamic"),  # labelled wrongly
                    label("b.ipynb", 0, 3, "autolog", "autolog", spec_v2="%%writefile"),
                    label("a.py", None, 9, "set_tag", "tags", spec_v2="annotated-client-param"),  # not there
                ],
            },
        ],
    }
    corpus_path = tmp_path / "corpus.json"
    corpus_path.write_text(json.dumps(corpus))
    result = RUNNER.invoke(
        app, ["eval", str(corpus_path), "--repos-root", str(root), "--format", "json", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {kind: (c["tp"], c["fn"], c["fp"]) for kind, c in report["calls_by_kind"].items()} == {
        "assignment-alias": (1, 0, 0),
        "getattr-dynamic": (1, 0, 0),
        "%%writefile": (1, 0, 0),
        "annotated-client-param": (0, 1, 0),
    }
    assert [(row["kind"], row["recall"]) for row in report["kinds"]] == [
        ("%%writefile", 1.0),
        ("annotated-client-param", 0.0),
        ("assignment-alias", 1.0),
        ("getattr-dynamic", 1.0),
    ]
    assert report["rule_mismatches"] == [
        {
            "repo": "acme/demo",
            "path": "a.py",
            "cell": None,
            "line": 4,
            "api": "log_metric",
            "label": "getattr-dynamic",
            "found": "v1",
        }
    ]
    table = RUNNER.invoke(app, ["eval", str(corpus_path), "--repos-root", str(root), "--workers", "1"])
    assert table.exit_code == 0 and "per detection spec kind" in table.stdout


def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from schema.db import current_revision, head_revision

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("MINER_DATABASE_URL", url)
    for _ in range(2):
        result = RUNNER.invoke(app, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
    assert current_revision(url) == head_revision()
    monkeypatch.setenv("MINER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    failed = RUNNER.invoke(app, ["db", "upgrade"])
    assert failed.exit_code == 1 and "unavailable" in failed.stderr
