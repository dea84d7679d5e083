"""A rules-version change is a change: the next crawl mines again every repository whose latest
successful run was mined under other rules, even though its default branch did not move."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from crawl_fixtures import build_corpus, crawl_env, crawl_row, register, run_rows
from github_fake import FakeGithub
from sqlmodel import select
from typer.testing import CliRunner

from miner.cli import app
from miner.core.rules import load_rules
from schema.db import open_session
from schema.models import MiningRun

REPOSITORIES = 4
TOPIC = "mlflow-projects"
TOKEN = "ghp_rulesVersionTokenNeverWritten0123456"


def _crawl(env: dict[str, str]) -> dict:
    result = CliRunner().invoke(app, ["crawl", "--topic", TOPIC, "--workers", "1", "--format", "json"], env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)[0]


def _rules_versions(database_url: str) -> dict[str, str]:
    with open_session(database_url) as session:
        return {run.commit_sha: run.rules_version for run in session.exec(select(MiningRun))}


def test_new_rules_mine_unchanged_repositories_again(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path / "repos", REPOSITORIES)
    database_url = f"sqlite:///{tmp_path / 'miner.db'}"
    shipped = load_rules().version
    newer_rules = tmp_path / "rules-next.yaml"
    text = resources.files("miner.core").joinpath("rules", "mlflow.yaml").read_text("utf-8")
    newer_rules.write_text(text.replace(f'version: "{shipped}"', 'version: "2099.01-1"'))
    with FakeGithub(valid_tokens={TOKEN}) as fake:
        register(fake, corpus)
        env = crawl_env(fake.url, database_url, tmp_path / "work", MINER_GITHUB__TOKEN=TOKEN)

        first = _crawl(env)
        assert (first["enqueued"], first["unchanged"]) == (REPOSITORIES, 0)
        again = _crawl(env)
        assert (again["enqueued"], again["unchanged"]) == (0, REPOSITORIES)
        runs_before = run_rows(database_url)
        assert set(_rules_versions(database_url).values()) == {shipped}

        env_next = {**env, "MINER_RULES": str(newer_rules)}
        remined = _crawl(env_next)
        assert (remined["enqueued"], remined["unchanged"], remined["runs_ok"]) == (REPOSITORIES, 0, REPOSITORIES)
        # the same commits, mined again: each run replaced, none added
        assert sorted(r.commit_sha for r in run_rows(database_url)) == sorted(r.commit_sha for r in runs_before)
        assert set(_rules_versions(database_url).values()) == {"2099.01-1"}

        settled = _crawl(env_next)
        assert (settled["enqueued"], settled["unchanged"]) == (0, REPOSITORIES)
        assert crawl_row(database_url)["id"] == settled["id"]
