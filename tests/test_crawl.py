"""`miner crawl` without a broker, end to end: the fake GitHub lists real repositories built in
tmp_path (file:// clone URLs), the CLI enumerates, plans, clones partially and mines in a local
pool, and SQLite holds the results.

One crawl history is played once per module, each step recorded, and each test reads one step:
first crawl, a second with nothing changed, one repository given a new commit, then a too-large
and an unreachable repository joining. Clones are observed where git serves them (a global
`uploadpack.packObjectsHook` logs every pack made for a client), not inferred.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from crawl_fixtures import (
    TOPIC,
    CloneCounter,
    CorpusRepo,
    allow_partial_clone,
    build_corpus,
    crawl_env,
    crawl_row,
    expected_stats,
    kinds_of,
    register,
    run_rows,
    stats_digest,
    stats_document,
)
from github_fake import FakeGithub
from gitrepos import make_repo
from leaks import blobs_containing, files_under
from sqlmodel import select
from typer.testing import CliRunner

from miner.cli import app

REPOSITORIES = 22
TOO_LARGE_KB = 5_000_000  # over the default max_repo_size_kb
TOKEN = "ghp_crawlTokenMustNeverBeWritten0123456"


@dataclass
class Step:
    """What one `miner crawl` left behind."""

    exit_code: int
    output: list[dict[str, Any]]  # the crawl's row as `--format json` printed it
    crawl: dict[str, Any]
    runs: list[Any]
    stats: dict[str, Any]
    clones: dict[Path, int]  # served repository (git dir) -> packs served so far
    stderr: str


@dataclass
class History:
    corpus: list[CorpusRepo]
    first_shas: dict[str, str]  # full name -> head at the first crawl
    changed: CorpusRepo
    too_large: CorpusRepo
    unreachable_url: str
    counter: CloneCounter
    steps: dict[str, Step]
    root: Path
    env: dict[str, str]
    authorizations: set[str | None]  # what the fake GitHub was sent


def _crawl(env: dict[str, str], database_url: str, counter: CloneCounter, log: Path) -> Step:
    result = CliRunner().invoke(app, ["crawl", "--topic", TOPIC, "--workers", "2", "--format", "json"], env=env)
    log.parent.mkdir(exist_ok=True)
    log.write_text(result.stdout + result.stderr)
    try:
        output = json.loads(result.stdout) if result.exit_code == 0 else []
    except ValueError:
        output = []
    return Step(
        exit_code=result.exit_code,
        output=output,
        crawl=crawl_row(database_url),
        runs=run_rows(database_url),
        stats=stats_document(database_url),
        clones=dict(counter.counts()),
        stderr=result.stderr + (repr(result.exception) if result.exception else ""),
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    root = tmp_path_factory.mktemp("crawl")
    corpus = build_corpus(root / "repos", REPOSITORIES)
    first_shas = {repo.full_name: repo.sha for repo in corpus}
    counter = CloneCounter(root / "counter")
    database_url = f"sqlite:///{root / 'miner.db'}"
    steps: dict[str, Step] = {}
    logs = root / "cli"
    with FakeGithub(valid_tokens={TOKEN}) as fake:
        register(fake, corpus)
        env = crawl_env(fake.url, database_url, root / "work", MINER_GITHUB__TOKEN=TOKEN, **counter.env)

        steps["first"] = _crawl(env, database_url, counter, logs / "first.txt")
        steps["unchanged"] = _crawl(env, database_url, counter, logs / "unchanged.txt")

        changed = next(repo for repo in corpus if repo.kind == "plain")
        changed.commit({"src/main.py": "import mlflow\n\nmlflow.autolog()\n"}, "start tracking")
        steps["one_changed"] = _crawl(env, database_url, counter, logs / "one_changed.txt")

        big = make_repo(root / "repos" / "huge", {"train.py": "import mlflow\nmlflow.log_param('a', 1)\n"})
        allow_partial_clone(big.path)
        too_large = CorpusRepo("owner9/huge", "tracking", big.path, big.sha)
        fake.add_repository(
            too_large.full_name, clone_url=too_large.url, topics=[TOPIC], head_sha=big.sha, size_kb=TOO_LARGE_KB
        )
        unreachable_url = (root / "repos" / "vanished").as_uri()
        fake.add_repository("owner9/vanished", clone_url=unreachable_url, topics=[TOPIC])
        steps["failures"] = _crawl(env, database_url, counter, logs / "failures.txt")
        authorizations = set(fake.authorizations)
    return History(corpus, first_shas, changed, too_large, unreachable_url, counter, steps, root, env, authorizations)


def _by_name(runs: list[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for run in runs:
        grouped.setdefault(run.full_name, []).append(run)
    return grouped


def test_first_crawl_mines_every_repository_once_with_the_expected_stats(history: History) -> None:
    step = history.steps["first"]
    assert step.exit_code == 0, step.stderr

    assert step.output == [step.crawl]
    assert step.crawl["status"] == "ok" and step.crawl["finished_at"] is not None
    assert (step.crawl["found"], step.crawl["enqueued"], step.crawl["unchanged"]) == (REPOSITORIES, REPOSITORIES, 0)
    assert (step.crawl["runs_done"], step.crawl["runs_ok"], step.crawl["runs_failed"]) == (
        REPOSITORIES,
        REPOSITORIES,
        0,
    )
    runs = _by_name(step.runs)
    assert {name: [(r.commit_sha, r.status) for r in rs] for name, rs in runs.items()} == {
        repo.full_name: [(history.first_shas[repo.full_name], "ok")] for repo in history.corpus
    }
    assert stats_digest(step.stats) == expected_stats(kinds_of(history.corpus))
    # each repository was cloned once: one pack for commit and trees, one for its source blobs
    assert {path: count for path, count in step.clones.items()} == {
        (repo.path / ".git").resolve(): 2 for repo in history.corpus
    }


def test_second_crawl_with_nothing_changed_enqueues_and_clones_nothing(history: History) -> None:
    first, second = history.steps["first"], history.steps["unchanged"]
    assert second.exit_code == 0, second.stderr

    assert second.crawl["id"] == first.crawl["id"] + 1
    assert (second.crawl["found"], second.crawl["enqueued"], second.crawl["unchanged"]) == (
        REPOSITORIES,
        0,
        REPOSITORIES,
    )
    assert second.crawl["status"] == "ok" and second.crawl["runs_done"] == 0
    assert second.runs == first.runs, "no run written, replaced or touched (ids, commits, started_at)"
    assert second.clones == first.clones, "no repository was served a single pack"
    assert second.stats == first.stats


def test_a_changed_repository_is_mined_alone(history: History) -> None:
    before, after = history.steps["unchanged"], history.steps["one_changed"]
    assert after.exit_code == 0, after.stderr

    assert (after.crawl["found"], after.crawl["enqueued"], after.crawl["unchanged"]) == (
        REPOSITORIES,
        1,
        REPOSITORIES - 1,
    )
    new_runs = [run for run in after.runs if run not in before.runs]
    assert [(run.full_name, run.commit_sha, run.status, run.crawl_id) for run in new_runs] == [
        (history.changed.full_name, history.changed.sha, "ok", after.crawl["id"])
    ]
    assert [run for run in after.runs if run in before.runs] == before.runs, "older runs stay as they were"
    changed_dir = (history.changed.path / ".git").resolve()
    assert {
        path: after.clones[path] - before.clones.get(path, 0)
        for path in after.clones
        if after.clones[path] != before.clones.get(path, 0)
    } == {changed_dir: 2}
    # the plain repository now calls autolog: one more autolog and headline repository
    kinds = kinds_of(history.corpus)
    expected = expected_stats(kinds)
    expected["headline_repositories"] += 1
    expected["apis"]["autolog"] = (kinds["notebook"] + 1, kinds["notebook"] + 1)
    assert stats_digest(after.stats) == expected


def test_too_large_and_unreachable_repositories_are_recorded_and_the_crawl_finishes(history: History) -> None:
    before, after = history.steps["one_changed"], history.steps["failures"]
    assert after.exit_code == 0, after.stderr

    crawl = after.crawl
    assert (crawl["found"], crawl["enqueued"], crawl["unchanged"]) == (REPOSITORIES + 2, 2, REPOSITORIES)
    assert (crawl["status"], crawl["runs_done"], crawl["runs_ok"], crawl["runs_failed"]) == ("ok", 2, 0, 2)
    new_runs = {run.full_name: run for run in after.runs if run not in before.runs}
    assert set(new_runs) == {"owner9/huge", "owner9/vanished"}
    huge, vanished = new_runs["owner9/huge"], new_runs["owner9/vanished"]
    assert (huge.status, huge.commit_sha) == ("too_large", None)
    assert str(TOO_LARGE_KB) in huge.error
    assert (vanished.status, vanished.commit_sha) == ("clone_failed", None)
    assert "clone failed" in vanished.error
    assert after.clones == before.clones, "the too-large repository was never cloned (nor anything else)"
    assert after.stats["failures"]["runs"] == {"clone_failed": 1, "too_large": 1, "timeout": 0, "error": 0}
    assert after.stats["repositories"] == REPOSITORIES


def test_with_a_broker_the_crawl_only_enqueues(tmp_path: Path) -> None:
    import redis

    broker_url = "redis://127.0.0.1:6379/12"
    queue = redis.Redis.from_url(broker_url)
    queue.flushdb()
    corpus = build_corpus(tmp_path / "repos", 3)
    counter = CloneCounter(tmp_path / "counter")
    database_url = f"sqlite:///{tmp_path / 'miner.db'}"
    try:
        with FakeGithub() as fake:
            register(fake, corpus)
            env = crawl_env(fake.url, database_url, tmp_path / "work", MINER_BROKER_URL=broker_url, **counter.env)
            result = CliRunner().invoke(app, ["crawl", "--topic", TOPIC, "--no-wait", "--format", "json"], env=env)
        assert result.exit_code == 0, result.stderr
        [row] = json.loads(result.stdout)
        assert (row["status"], row["found"], row["enqueued"], row["runs_done"]) == ("running", 3, 3, 0)
        assert queue.llen("celery") == 3, "one message per repository, on the broker the settings name"
        assert run_rows(database_url) == [] and counter.total() == 0, "nothing mined or cloned here"
    finally:
        queue.flushdb()


def test_an_unreachable_broker_fails_the_crawl_in_one_line(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path / "repos", 2)
    database_url = f"sqlite:///{tmp_path / 'miner.db'}"
    with FakeGithub() as fake:
        register(fake, corpus)
        env = crawl_env(fake.url, database_url, tmp_path / "work", MINER_BROKER_URL="redis://127.0.0.1:1/0")
        result = CliRunner().invoke(app, ["crawl", "--topic", TOPIC, "--format", "json"], env=env)
    assert result.exit_code == 1
    assert "broker unavailable" in result.stderr and "Traceback" not in result.stderr
    row = crawl_row(database_url)
    assert row["status"] == "failed" and "broker unavailable" in row["error"]


def test_the_plan_lists_the_largest_repositories_first(tmp_path: Path) -> None:
    """A pool finishes with its longest job: the big repositories go first, ties keep GitHub's order."""
    from miner.core.settings import Settings
    from miner.orchestrate.crawl import start_crawl
    from schema.db import open_session
    from schema.models import Repository

    corpus = build_corpus(tmp_path / "repos", 5)
    sizes = [5, 300, 40, 300, 7000]
    with FakeGithub() as fake:
        for index, (repo, size_kb) in enumerate(zip(corpus, sizes)):
            fake.add_repository(
                repo.full_name,
                clone_url=repo.url,
                topics=[TOPIC],
                head_sha=repo.sha,
                size_kb=size_kb,
                created_at=datetime(2021, 1, 1 + index, tzinfo=UTC),
            )
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'miner.db'}",
            work_dir=str(tmp_path / "work"),
            github=fake.github_settings(),
        )
        plan = start_crawl(settings, topics=[TOPIC])
    with open_session(settings) as session:
        names = {repository.id: repository.full_name for repository in session.exec(select(Repository))}
    enumeration_order = [repo.full_name for repo in corpus]
    assert [names[repository_id] for repository_id in plan.to_mine] == [
        enumeration_order[4],
        enumeration_order[1],
        enumeration_order[3],
        enumeration_order[2],
        enumeration_order[0],
    ]


def test_the_token_reaches_github_and_is_written_nowhere(history: History) -> None:
    """Not in the crawls' output, the database, any export, the report or the query commands."""
    readers = history.root / "readers"
    readers.mkdir()
    commands = [
        ["export", "--format", "csv", "--out", str(readers / "csv")],
        ["export", "--format", "json", "--out", str(readers / "json")],
        ["export", "--format", "parquet", "--out", str(readers / "parquet")],
        ["report", "--out", str(readers / "report")],
        ["findings", "--format", "json"],
        ["repos", "--format", "json"],
        ["crawls", "--format", "json"],
        ["stats", "--format", "json"],
        ["doctor", "--format", "json"],
    ]
    for index, args in enumerate(commands):
        result = CliRunner().invoke(app, args, env=history.env)
        assert result.exit_code == 0 or args[0] == "doctor", (args, result.output)
        (readers / f"{index}-{args[0]}.txt").write_text(result.stdout + result.stderr)
    assert history.authorizations == {f"token {TOKEN}"}, "every GitHub request carried the token"

    written = list(files_under(history.root))
    names = {Path(name).name for name, _ in written}
    assert {"miner.db", "index.html", "dataset.json", "findings.parquet", "first.txt", "failures.txt"} <= names, names
    assert blobs_containing(TOKEN, [("control", f"Authorization: token {TOKEN}".encode())]) == ["control"]
    assert blobs_containing(TOKEN, written) == []
