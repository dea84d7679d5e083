"""The broker or the database restarts in the middle of a crawl, and nothing is lost or doubled.

Each test runs a real crawl (`miner crawl --wait`) of built repositories through a real
`celery worker` on a private Redis, storing into PostgreSQL. One repository's clone is held by
the test's git server, so the restart provably happens while a task is in flight and others
wait in the queue. Afterwards every repository has exactly one successful run of the commit that
was served, the crawl is closed as ok, and the stats are those of the same crawl run without
any fault (the embedded mode on SQLite).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crawl_fixtures import (
    TOPIC,
    CorpusRepo,
    GitHttpServer,
    allow_partial_clone,
    build_corpus,
    crawl_env,
    crawl_row,
    register,
    run_rows,
    stats_document,
    wait_for,
)
from github_fake import FakeGithub
from gitrepos import make_repo
from processes import ROOT, Process, start_miner, start_worker
from services import PrivatePostgres, PrivateRedis

CORPUS_SIZE = 8
SLOW_POSITION = 4
VISIBILITY_TIMEOUT_S = 6


@dataclass
class HeldCorpus:
    """Built repositories in crawl order; `slow` is served over HTTP by a server that holds it."""

    everything: list[CorpusRepo]
    slow: CorpusRepo
    http_root: Path


def _held_corpus(tmp_path: Path) -> HeldCorpus:
    corpus = build_corpus(tmp_path / "repos", CORPUS_SIZE)
    http_root = tmp_path / "http"
    slow_built = make_repo(http_root / "slow", {"train.py": "import mlflow\nmlflow.log_metric('m', 1)\n"})
    allow_partial_clone(slow_built.path)
    slow = CorpusRepo("owner9/slow", "tracking", slow_built.path, slow_built.sha)
    return HeldCorpus([*corpus[:SLOW_POSITION], slow, *corpus[SLOW_POSITION:]], slow, http_root)


def _env(tmp_path: Path, fake: FakeGithub, database_url: str, redis_server: PrivateRedis) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        **crawl_env(fake.url, database_url, tmp_path / "work"),
        "MINER_BROKER_URL": redis_server.url,
        "MINER_BROKER_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
    }


def _reference_crawl(tmp_path: Path, env: dict[str, str]) -> str:
    """The same crawl without any fault: no broker, SQLite, the local pool; returns its database."""
    sqlite_url = f"sqlite:///{tmp_path / 'reference.db'}"
    reference_env = {key: value for key, value in env.items() if key != "MINER_BROKER_URL"}
    reference_env["MINER_DATABASE_URL"] = sqlite_url
    reference = start_miner(
        ["crawl", "--topic", TOPIC, "--workers", "1"], reference_env, tmp_path / "reference.log", tmp_path
    )
    reference.popen.wait(timeout=180)
    assert reference.popen.returncode == 0, reference.diagnostics()
    return sqlite_url


def _crawl_through(
    tmp_path: Path, database_url: str, redis_server: PrivateRedis, fault: Callable[[Callable[[], None]], None]
) -> tuple[list[CorpusRepo], Process]:
    """Crawl with one worker; while the held repository's clone is in flight, call
    `fault(release)`, where `release` lets the clone go on. Returns the corpus and the worker
    (its log tells how it lived through the fault)."""
    held = _held_corpus(tmp_path)
    processes: list[Process] = []
    with FakeGithub() as fake, GitHttpServer(held.http_root) as git_http:
        git_http.hold(held.slow.path)
        register(
            fake, held.everything, url_of=lambda repo: git_http.url_for(repo.path) if repo is held.slow else repo.url
        )
        env = _env(tmp_path, fake, database_url, redis_server)
        try:
            worker = start_worker("restarts", env, tmp_path)
            processes.append(worker)
            crawl = start_miner(
                ["crawl", "--topic", TOPIC, "--wait", "--format", "json"], env, tmp_path / "crawl.log", tmp_path
            )
            processes.append(crawl)
            wait_for(git_http.arrived.is_set, 120, "the slow repository's clone to reach the server")
            fault(git_http.release)
            git_http.release()
            crawl.popen.wait(timeout=300)
            assert crawl.popen.returncode == 0, crawl.diagnostics() + worker.output()
            assert worker.alive(), worker.output()
        finally:
            for process in processes:
                process.stop()
            git_http.release()
        sqlite_url = _reference_crawl(tmp_path, env)
    _assert_one_ok_run_each_and_same_stats(database_url, held.everything, sqlite_url)
    return held.everything, worker


def _assert_one_ok_run_each_and_same_stats(database_url: str, everything: list[CorpusRepo], reference_url: str) -> None:
    runs = run_rows(database_url)
    assert sorted((run.full_name, run.commit_sha, run.status) for run in runs) == sorted(
        (repo.full_name, repo.sha, "ok") for repo in everything
    ), {run.error for run in runs}
    crawl = crawl_row(database_url)
    assert (crawl["status"], crawl["found"], crawl["enqueued"], crawl["runs_done"], crawl["runs_ok"]) == (
        "ok",
        len(everything),
        len(everything),
        len(everything),
        len(everything),
    )
    assert stats_document(database_url) == stats_document(reference_url)


def test_redis_restarted_mid_crawl_the_crawl_finishes_with_the_same_runs(tmp_path: Path, empty_postgres: str) -> None:
    with PrivateRedis(tmp_path / "redis") as redis_server:
        queued_before: list[int] = []

        def restart_redis(release: Callable[[], None]) -> None:
            queued_before.append(redis_server.queue_length("celery"))
            redis_server.kill()  # kill -9: what survives is what the AOF holds
            release()  # the task in flight ends while the broker is gone
            time.sleep(3.0)
            redis_server.start()

        _everything, worker = _crawl_through(tmp_path, empty_postgres, redis_server, restart_redis)
    # tasks were waiting in the queue when Redis died, and the worker had to reconnect
    assert queued_before[0] >= CORPUS_SIZE - SLOW_POSITION - 1, queued_before
    assert "Connection to broker lost" in worker.output()


def test_postgresql_restarted_mid_crawl_tasks_retry_and_the_store_stays_consistent(tmp_path: Path) -> None:
    with PrivateRedis(tmp_path / "redis") as redis_server, PrivatePostgres() as postgres:
        database_url = postgres.url

        def restart_postgres(release: Callable[[], None]) -> None:
            postgres.stop("immediate")  # connections cut as in a crash; recovery on start
            assert not postgres.answers()
            release()  # the task in flight mines, then cannot store;
            time.sleep(5.0)  # the next ones cannot even load their repository
            postgres.start()

        _everything, worker = _crawl_through(tmp_path, database_url, redis_server, restart_postgres)
        log = worker.output()
    assert "Retry in" in log and "OperationalError" in log, log[-3000:]


def test_a_broker_that_forgot_its_queue_is_resumed_by_crawling_again(tmp_path: Path, empty_postgres: str) -> None:
    """A Redis without persistence loses the queued tasks when it restarts. Nothing recorded is
    lost, and the next crawl enqueues exactly the repositories that have no run yet."""
    database_url = empty_postgres
    held = _held_corpus(tmp_path)
    with (
        PrivateRedis(tmp_path / "redis", persistent=False) as redis_server,
        FakeGithub() as fake,
        GitHttpServer(held.http_root) as git_http,
    ):
        git_http.hold(held.slow.path)
        register(
            fake, held.everything, url_of=lambda repo: git_http.url_for(repo.path) if repo is held.slow else repo.url
        )
        env = _env(tmp_path, fake, database_url, redis_server)
        worker = start_worker("forgetful", env, tmp_path)
        try:
            first = start_miner(["crawl", "--topic", TOPIC, "--format", "json"], env, tmp_path / "first.log", tmp_path)
            first.popen.wait(timeout=120)
            assert first.popen.returncode == 0, first.diagnostics()
            wait_for(git_http.arrived.is_set, 120, "the slow repository's clone to reach the server")
            queued = redis_server.queue_length("celery")
            redis_server.kill()
            redis_server.start()  # empty: the queued tasks are gone
            git_http.release()  # the task in flight still stores its run
            wait_for(lambda: len(run_rows(database_url)) == SLOW_POSITION + 1, 120, "the task in flight to store")
            assert queued == CORPUS_SIZE - SLOW_POSITION and redis_server.queue_length("celery") == 0
            lost = {repo.full_name for repo in held.everything[SLOW_POSITION + 1 :]}
            assert lost.isdisjoint(run.full_name for run in run_rows(database_url))
            assert crawl_row(database_url)["status"] == "running"  # its lost tasks never report

            again = start_miner(
                ["crawl", "--topic", TOPIC, "--wait", "--format", "json"], env, tmp_path / "again.log", tmp_path
            )
            again.popen.wait(timeout=180)
            assert again.popen.returncode == 0, again.diagnostics() + worker.output()
        finally:
            worker.stop()
        second = crawl_row(database_url)
        assert (second["found"], second["enqueued"], second["unchanged"], second["runs_ok"], second["status"]) == (
            CORPUS_SIZE + 1,
            len(lost),
            SLOW_POSITION + 1,
            len(lost),
            "ok",
        )
        sqlite_url = _reference_crawl(tmp_path, env)
    runs = run_rows(database_url)
    assert sorted((run.full_name, run.commit_sha, run.status) for run in runs) == sorted(
        (repo.full_name, repo.sha, "ok") for repo in held.everything
    )
    assert stats_document(database_url) == stats_document(sqlite_url)
