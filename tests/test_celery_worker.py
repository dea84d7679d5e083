"""Crawls at scale: real Redis, real `celery -A workers worker` processes, real PostgreSQL.

A crawl of 21 real repositories is enqueued by `miner crawl --wait`; one of them is served over
HTTP by a server that holds its fetch, so the worker is provably in the middle of that task when
its whole process group gets `kill -9`. A second worker picks the unacknowledged task up again
(Redis redelivers it after the visibility timeout, set small for this test) and the crawl ends
with exactly one successful run per repository and commit. Then the nightly task, sent by name
as beat sends it, is retried past a GitHub outage (a transient error) and crawls again cloning
nothing; beat itself starts; and the embedded default
(no broker, SQLite, local pool) mines the same crawl to identical stats.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from crawl_fixtures import (
    TOPIC,
    CloneCounter,
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
from leaks import blobs_containing, files_under, postgres_dump
from processes import ROOT, Process, start_miner, start_worker

REDIS_DB = 13
BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
VISIBILITY_TIMEOUT_S = 6
CORPUS_SIZE = 20
SLOW_POSITION = 10  # the held repository is the 11th task of the crawl
TOKEN = "ghp_" + "celeryW0rkerT0kenNeverL0gged000000000"[:36]


@pytest.fixture
def broker() -> redis.Redis:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()


def test_killed_worker_loses_and_duplicates_nothing(tmp_path: Path, broker: redis.Redis, empty_postgres: str) -> None:
    database_url = empty_postgres
    corpus = build_corpus(tmp_path / "repos", CORPUS_SIZE)
    http_root = tmp_path / "http"
    slow_built = make_repo(http_root / "slow", {"train.py": "import mlflow\nmlflow.log_metric('m', 1)\n"})
    allow_partial_clone(slow_built.path)
    slow = CorpusRepo("owner9/slow", "tracking", slow_built.path, slow_built.sha)
    everything = [*corpus[:SLOW_POSITION], slow, *corpus[SLOW_POSITION:]]
    counter = CloneCounter(tmp_path / "counter")
    processes: list[Process] = []

    with FakeGithub(valid_tokens={TOKEN}) as fake, GitHttpServer(http_root) as git_http:
        git_http.hold(slow.path)
        register(fake, everything, url_of=lambda repo: git_http.url_for(repo.path) if repo is slow else repo.url)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            **crawl_env(fake.url, database_url, tmp_path / "work", **counter.env),
            "MINER_BROKER_URL": BROKER_URL,
            "MINER_BROKER_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
            "MINER_GITHUB__MAX_RETRIES": "1",
            "MINER_GITHUB__BACKOFF_BASE_S": "0.01",
            "MINER_GITHUB__TOKEN": TOKEN,
        }
        try:
            first = start_worker("first", env, tmp_path)
            processes.append(first)
            crawl = start_miner(
                ["crawl", "--topic", TOPIC, "--wait", "--format", "json"], env, tmp_path / "crawl.log", tmp_path
            )
            processes.append(crawl)

            # the worker is inside the slow repository's task: its clone is being served, held
            wait_for(git_http.arrived.is_set, 120, "the slow repository's clone to reach the server")
            progress = crawl_row(database_url)
            assert (progress["enqueued"], progress["runs_done"]) == (CORPUS_SIZE + 1, SLOW_POSITION)
            first.kill_group()
            assert not [run for run in run_rows(database_url) if run.full_name == slow.full_name]

            # a second worker gets the task again once Redis restores it, and is killed at the
            # same point: two losses in a row
            git_http.arrived.clear()
            second = start_worker("second", env, tmp_path)
            processes.append(second)
            wait_for(git_http.arrived.is_set, 120, "the redelivered task's clone to reach the server")
            second.kill_group()
            assert not [run for run in run_rows(database_url) if run.full_name == slow.full_name]

            git_http.release()
            third = start_worker("third", env, tmp_path)
            processes.append(third)
            crawl.popen.wait(timeout=180)
            assert crawl.popen.returncode == 0, crawl.diagnostics()
            [printed] = json.loads(crawl.output())

            # every repository: exactly one run, successful, of the commit that was served
            runs = run_rows(database_url)
            assert sorted((run.full_name, run.commit_sha, run.status) for run in runs) == sorted(
                (repo.full_name, repo.sha, "ok") for repo in everything
            ), {run.error for run in runs}
            # two clones killed while held; after the second redelivery: the clone, then the blob batch
            assert git_http.fetches_of(slow.path) == 1 + 1 + 2, "killed mid-clone twice, then mined"
            assert (printed["status"], printed["runs_done"], printed["runs_ok"]) == (
                "ok",
                CORPUS_SIZE + 1,
                CORPUS_SIZE + 1,
            )
            assert "workers.tasks.mine_repo" in third.output() and "succeeded" in third.output()

            # the nightly task, sent by name as beat sends it, meets GitHub failing (two 502s are
            # more than the client's one retry): a transient error, so Celery retries the task.
            # Then nothing changed, and nothing is cloned.
            clones_before = counter.counts()
            fake.fail_at(1, "server_error", times=2)
            Celery(broker=BROKER_URL).send_task("workers.tasks.crawl_topics", kwargs={"topics": [TOPIC], "query": ""})
            nightly = wait_for(
                lambda: (
                    (row := crawl_row(database_url))["id"] == printed["id"] + 2 and row["status"] != "running" and row
                ),
                60,
                "the nightly crawl to finish after its retry",
            )
            failed_attempt = crawl_row(database_url, printed["id"] + 1)
            assert failed_attempt["status"] == "failed" and "502" in failed_attempt["error"]
            assert "Retry in" in third.output()
            assert (nightly["status"], nightly["found"], nightly["enqueued"], nightly["unchanged"]) == (
                "ok",
                CORPUS_SIZE + 1,
                0,
                CORPUS_SIZE + 1,
            )
            assert run_rows(database_url) == runs
            assert counter.counts() == clones_before and git_http.fetches_of(slow.path) == 4
            assert fake.authorizations and set(fake.authorizations) == {f"token {TOKEN}"}
        finally:
            for process in processes:
                process.stop()
            git_http.release()

        # the embedded default: no broker, SQLite, the local pool; the same crawl, the same stats
        sqlite_url = f"sqlite:///{tmp_path / 'embedded.db'}"
        embedded_env = {key: value for key, value in env.items() if key != "MINER_BROKER_URL"}
        embedded_env["MINER_DATABASE_URL"] = sqlite_url
        local = start_miner(
            ["crawl", "--topic", TOPIC, "--workers", "2", "--format", "json"],
            embedded_env,
            tmp_path / "embedded.log",
            tmp_path,
        )
        local.popen.wait(timeout=180)
        assert local.popen.returncode == 0, local.diagnostics()
    embedded = crawl_row(sqlite_url)
    assert (embedded["status"], embedded["found"], embedded["enqueued"], embedded["runs_ok"]) == (
        "ok",
        CORPUS_SIZE + 1,
        CORPUS_SIZE + 1,
        CORPUS_SIZE + 1,
    )
    assert stats_document(sqlite_url) == stats_document(database_url)
    assert stats_document(sqlite_url)["repositories"] == CORPUS_SIZE + 1

    # the token reached GitHub and nothing else: not the worker or CLI logs, nor either database
    assert blobs_containing(TOKEN, [("control", f"Authorization: token {TOKEN}".encode())]) == ["control"]
    everything_written = [*files_under(tmp_path), postgres_dump(database_url)]
    assert len(everything_written) > 100 and blobs_containing(TOKEN, everything_written) == []


def test_beat_starts_and_schedules_the_crawl_task_workers_run(tmp_path: Path, broker: redis.Redis) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MINER_CONFIG": str(tmp_path / "no-config.yaml"),
        "MINER_BROKER_URL": BROKER_URL,
        "MINER_SCHEDULE__NIGHTLY_CRON": "30 3 * * 1-5",
        "MINER_SCHEDULE__TOPICS": '["mlflow-projects", "mlops"]',
    }
    beat = Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers",
            "beat",
            "--loglevel",
            "DEBUG",
            "-s",
            str(tmp_path / "beat-schedule"),
        ],
        env,
        tmp_path / "beat.log",
        tmp_path,
    )
    try:
        wait_for(lambda: "beat: Starting..." in beat.output() or not beat.alive(), 60, "beat to start")
        time.sleep(1.0)
        assert beat.alive(), beat.output()
    finally:
        beat.stop()
    # the schedule beat loaded: the cron and topics from the settings, a task the workers register
    inspect = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from workers import app; import workers.tasks; entry = app.conf.beat_schedule['nightly-crawl'];"
            "print(json.dumps({'task': entry['task'], 'registered': entry['task'] in app.tasks,"
            "'cron': str(entry['schedule']), 'kwargs': entry['kwargs'], 'broker': app.conf.broker_url}))",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    schedule = json.loads(inspect.stdout)
    assert schedule == {
        "task": "workers.tasks.crawl_topics",
        "registered": True,
        "cron": "<crontab: 30 3 * * 1-5 (m/h/dM/MY/d)>",
        "kwargs": {"topics": ["mlflow-projects", "mlops"], "query": ""},
        "broker": BROKER_URL,
    }
