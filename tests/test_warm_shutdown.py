"""Stopping a worker mid-task: SIGTERM (Celery's warm shutdown) lets the task finish, and SIGTERM
followed a second later by SIGKILL requeues it; either way the repository is mined exactly once
in the end and nothing the worker started is left running.

The task is held in the middle of its clone by the test's git HTTP server, so the signal
provably arrives while the worker is busy.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import redis
from crawl_fixtures import TOPIC, GitHttpServer, build_corpus, crawl_env, register, run_rows, wait_for
from github_fake import FakeGithub
from processes import ROOT, Process, start_miner, start_worker
from proctree import with_marker

REDIS_DB = 11
BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
CORPUS_SIZE = 4
MARKER = "MINER_SHUTDOWN_WORKER"


@pytest.fixture
def broker() -> redis.Redis:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()


def _stop_mid_task(tmp_path: Path, database_url: str, *, kill_after_s: float | None) -> None:
    http_root = tmp_path / "http"
    corpus = build_corpus(http_root, CORPUS_SIZE, prefix="stop")
    held = corpus[-1]
    processes: list[Process] = []
    with FakeGithub() as fake, GitHttpServer(http_root) as git_http:
        # the held repository is the smallest, so handed out last: the worker has mined the
        # others and its parser child is running when the signal comes
        register(fake, corpus[:-1], url_of=lambda repo: git_http.url_for(repo.path), size_kb=100)
        register(fake, [held], url_of=lambda repo: git_http.url_for(repo.path), size_kb=1)
        git_http.hold(held.path)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            **crawl_env(fake.url, database_url, tmp_path / "work"),
            "MINER_BROKER_URL": BROKER_URL,
            "MINER_BROKER_VISIBILITY_TIMEOUT_S": "5",
        }
        try:
            first = start_worker("first", {**env, MARKER: "first"}, tmp_path)
            processes.append(first)
            crawl = start_miner(
                ["crawl", "--topic", TOPIC, "--wait", "--format", "json"], env, tmp_path / "crawl.log", tmp_path
            )
            processes.append(crawl)
            wait_for(git_http.arrived.is_set, 120, "the held repository's clone to reach the server")
            assert len(with_marker(MARKER, "first")) >= 4, "main, pool child, parser child, git"

            os.kill(first.popen.pid, signal.SIGTERM)  # the worker's main process only
            if kill_after_s is None:
                time.sleep(1.5)
                assert first.alive(), "a warm shutdown waits for the running task"
                git_http.release()
                first.popen.wait(timeout=60)
                assert [run.status for run in run_rows(database_url) if run.full_name == held.full_name] == ["ok"]
            else:
                time.sleep(kill_after_s)
                os.kill(first.popen.pid, signal.SIGKILL)
                first.popen.wait(timeout=10)
                # still held: nothing but the mechanism can end the pool child, parser and git
                wait_for(
                    lambda: not with_marker(MARKER, "first"), 10, "every process the killed worker started to be gone"
                )
                assert not [run for run in run_rows(database_url) if run.full_name == held.full_name]
                git_http.release()
            wait_for(
                lambda: not with_marker(MARKER, "first"), 10, "every process the stopped worker started to be gone"
            )

            second = start_worker("second", {**env, MARKER: "second"}, tmp_path)
            processes.append(second)
            crawl.popen.wait(timeout=180)
            assert crawl.popen.returncode == 0, crawl.diagnostics()
            [printed] = json.loads(crawl.output())
            assert (printed["status"], printed["runs_ok"]) == ("ok", CORPUS_SIZE)
        finally:
            git_http.release()
            for process in processes:
                process.stop()
    runs = run_rows(database_url)
    assert sorted((run.full_name, run.commit_sha, run.status) for run in runs) == sorted(
        (repo.full_name, repo.sha, "ok") for repo in corpus
    )
    wait_for(lambda: not with_marker(MARKER, "second"), 10, "the second worker's processes to be gone")


def test_sigterm_mid_task_lets_the_task_finish_and_leaves_no_child(
    tmp_path: Path, broker: redis.Redis, empty_postgres: str
) -> None:
    _stop_mid_task(tmp_path, empty_postgres, kill_after_s=None)


def test_sigterm_then_sigkill_mid_task_requeues_it_and_leaves_no_child(
    tmp_path: Path, broker: redis.Redis, empty_postgres: str
) -> None:
    _stop_mid_task(tmp_path, empty_postgres, kill_after_s=1.0)
