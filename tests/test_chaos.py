"""A crawl under fire: real Redis, real PostgreSQL, real Celery workers, processes killed at random.

36 repositories built by the test are served over git's smart HTTP (so clones run git and its
remote helper) to two `celery -A workers worker` processes. First a fault-free crawl gives the
reference findings and time. Then the same crawl again, while a killer sends `kill -9` every
couple of seconds to a random process of a random worker: its main process, its pool child, the
parser child or a git child; dead workers are replaced. Once, deterministically, a worker is
killed inside a store transaction: the test holds the row lock of the last repository handed
out, waits until a worker's save is blocked on it (pg_stat_activity), kills that worker's main
process and pool child (not the parser child: before the fix, that orphan kept the worker's
PostgreSQL socket and with it the transaction and its locks, and every redelivery waited on
them forever), then releases the lock.

The crawl must finish; every repository has exactly one ok run of its commit; the findings
are those of the fault-free crawl; nothing of a killed worker is left (by process group and by
an environment marker that git, in process groups of its own, inherits too); no PostgreSQL
session is idle in a transaction. What happened (kills by kind, redeliveries, runs replaced,
both crawl times) goes to test-artifacts/chaos-report.json.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import redis
from crawl_fixtures import TOPIC, GitHttpServer, build_corpus, crawl_env, crawl_row, register, run_rows, wait_for
from github_fake import FakeGithub
from processes import ROOT, Process, start_miner, start_worker
from proctree import children, descendants, in_group, info, is_alive, with_marker
from sqlalchemy.engine import make_url

REDIS_DB = 12
BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
CORPUS_SIZE = 36
KILL_INTERVAL_S = 2.0
MIN_RANDOM_KILLS = 6
CRAWL_BOUND_S = 240  # a hang fails the test instead of stalling CI
KINDS = ("main", "pool", "parser", "git")
MARKER = "MINER_CHAOS_WORKER"


@pytest.fixture
def broker() -> redis.Redis:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield client
    client.flushdb()


class Fleet:
    """The workers of one crawl, each marked in its environment; dead ones are replaced."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env, self.tmp = env, tmp
        self.workers: list[tuple[str, Process]] = []
        self.killed_workers: list[tuple[str, int]] = []  # (marker, process group)
        self._names = itertools.count(1)

    def start(self) -> Process:
        name = f"w{next(self._names)}"
        worker = start_worker(name, {**self.env, MARKER: name}, self.tmp)
        self.workers.append((name, worker))
        return worker

    def live(self) -> list[tuple[str, Process]]:
        return [(name, worker) for name, worker in self.workers if worker.alive()]

    def replace_dead(self) -> None:
        for name, worker in self.workers:
            if not worker.alive() and (name, worker.popen.pid) not in self.killed_workers:
                worker.popen.wait()
                self.killed_workers.append((name, worker.popen.pid))
                self.start()

    def logs(self) -> str:
        return "".join(worker.output() for _name, worker in self.workers)

    def stop(self) -> None:
        for _name, worker in self.workers:
            worker.stop()


def connect(database_url: str) -> psycopg.Connection:
    """A plain psycopg connection to the test's database (its SQLAlchemy URL without the driver)."""
    return psycopg.connect(make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False))


def pool_child(worker: Process) -> int | None:
    found = [p.pid for p in children(worker.popen.pid)]
    return found[0] if found else None


def helper_processes(pool_pid: int, kind: str) -> list[int]:
    """The parser child (a python fork of the pool child) or git processes below the pool child."""
    below = descendants(pool_pid)
    if kind == "git":
        return [p.pid for p in below if p.name.startswith("git")]
    return [p.pid for p in children(pool_pid) if not p.name.startswith(("git", "sh"))]


def find_victim(worker: Process, kind: str) -> int | None:
    if kind == "main":
        return worker.popen.pid
    pool = pool_child(worker)
    if pool is None:
        return None
    if kind == "pool":
        return pool
    found = helper_processes(pool, kind)
    return found[0] if found else None


def blocked_store(database_url: str) -> int | None:
    """The pid (from its application_name) of a live miner process whose session waits for a
    lock. A session of a worker killed meanwhile waits on too (the server notices the closed
    socket only when it answers, once the lock is granted): those are passed over."""
    with connect(database_url) as watcher:
        rows = watcher.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND application_name LIKE 'mlflow-miner pid %'"
        ).fetchall()
    live = [pid for pid in (int(name.rsplit(" ", 1)[1]) for (name,) in rows) if is_alive(pid)]
    return live[0] if live else None


def sessions_idle_in_transaction(database_url: str) -> list[tuple]:
    with connect(database_url) as watcher:
        return watcher.execute(
            "SELECT pid, application_name, state, query FROM pg_stat_activity "
            "WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
        ).fetchall()


def findings_of(database_url: str) -> list[tuple]:
    with connect(database_url) as reader:
        return reader.execute(
            'SELECT r.full_name, f.path, f.cell, f.line, f."column", f.api, f.qualified_name '
            "FROM finding f JOIN miningrun m ON m.id = f.mining_run_id JOIN repository r ON r.id = m.repository_id "
            "ORDER BY 1, 2, 3, 4, 5, 6"
        ).fetchall()


def file_outcomes(database_url: str) -> list[tuple]:
    with connect(database_url) as reader:
        return reader.execute(
            "SELECT r.full_name, f.path, f.status, f.error FROM fileresult f "
            "JOIN miningrun m ON m.id = f.mining_run_id JOIN repository r ON r.id = m.repository_id ORDER BY 1, 2"
        ).fetchall()


def empty_everything(database_url: str, broker: redis.Redis) -> None:
    with connect(database_url) as admin:
        admin.execute("TRUNCATE runusage, finding, fileresult, miningrun, repository, crawl RESTART IDENTITY CASCADE")
    broker.flushdb()


def run_crawl(env: dict[str, str], tmp: Path, label: str) -> Process:
    return start_miner(["crawl", "--topic", TOPIC, "--wait", "--format", "json"], env, tmp / f"{label}.log", tmp)


def test_a_crawl_survives_random_kill_9_of_every_kind_of_worker_process(
    tmp_path: Path, broker: redis.Redis, empty_postgres: str
) -> None:
    database_url = empty_postgres
    rng = random.Random(20261203)
    http_root = tmp_path / "http"
    corpus = build_corpus(http_root, CORPUS_SIZE, prefix="chaos")
    report: dict = {"repositories": CORPUS_SIZE}

    with FakeGithub() as fake, GitHttpServer(http_root) as git_http:
        register(fake, corpus, url_of=lambda repo: git_http.url_for(repo.path))
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            **crawl_env(fake.url, database_url, tmp_path / "work"),
            "MINER_BROKER_URL": BROKER_URL,
            "MINER_BROKER_VISIBILITY_TIMEOUT_S": "6",
            # the server-side backstop set far off: what must free a dead worker's locks here is
            # that no orphan holds its socket
            "MINER_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_S": "3600",
        }

        # 1. fault-free reference
        fleet = Fleet(env, tmp_path)
        try:
            fleet.start(), fleet.start()
            started = time.monotonic()
            crawl = run_crawl(env, tmp_path, "reference")
            crawl.popen.wait(timeout=CRAWL_BOUND_S)
            report["fault_free_crawl_s"] = round(time.monotonic() - started, 1)
            assert crawl.popen.returncode == 0, crawl.diagnostics()
        finally:
            fleet.stop()
        reference = findings_of(database_url)
        reference_files = file_outcomes(database_url)
        assert len(reference) > CORPUS_SIZE
        empty_everything(database_url, broker)

        # 2. the same crawl under kill -9
        fleet = Fleet(env, tmp_path)
        kills: Counter[str] = Counter()
        killed_pids: list[int] = []
        holder: psycopg.Connection | None = None
        store_kill: dict = {}
        try:
            fleet.start(), fleet.start()
            started = time.monotonic()
            crawl = run_crawl(env, tmp_path, "chaos")
            plan = wait_for(
                lambda: (row := _crawl_or_none(database_url)) and row["enqueued"] and row,
                60,
                "the crawl to hand its repositories out",
            )
            last = _last_handed_out(database_url, plan["id"])
            holder = connect(database_url)
            holder.execute("SELECT id FROM repository WHERE id = %s FOR UPDATE", (last,))
            kinds = itertools.cycle(rng.sample(KINDS, len(KINDS)))
            next_kill = time.monotonic() + KILL_INTERVAL_S
            while crawl.alive():
                assert time.monotonic() - started < CRAWL_BOUND_S, "the crawl hangs: " + _diagnose(database_url, fleet)
                fleet.replace_dead()
                # the held lock keeps the crawl from ending: the store-transaction kill (which
                # releases it) waits until the random kills are done, however fast the machine
                if holder is not None and sum(kills.values()) >= MIN_RANDOM_KILLS:
                    blocked = blocked_store(database_url)
                    if blocked is not None:
                        store_kill = _kill_inside_the_store(blocked, fleet)
                        killed_pids += [store_kill["main"], store_kill["pool"]]
                        kills["main+pool inside a store transaction"] += 1
                        holder.rollback()
                        holder.close()
                        holder = None
                        continue
                if time.monotonic() >= next_kill and fleet.live():
                    victim_kind, victim = _pick_victim(fleet, kinds, rng)
                    if victim is not None:
                        _kill(victim)
                        kills[victim_kind] += 1
                        killed_pids.append(victim)
                    next_kill = time.monotonic() + KILL_INTERVAL_S
                time.sleep(0.2)
            report["chaos_crawl_s"] = round(time.monotonic() - started, 1)
            assert crawl.popen.returncode == 0, crawl.diagnostics()
            [printed] = json.loads(crawl.output())
            fleet.replace_dead()
            logs = fleet.logs()
        finally:
            if holder is not None:
                holder.close()
            fleet.stop()

    report["kills"] = dict(kills)
    received = Counter(re.findall(r"Task workers\.tasks\.mine_repo\[([0-9a-f-]+)\] received", logs))
    report["tasks_received"] = sum(received.values())
    report["redeliveries"] = sum(count - 1 for count in received.values())
    report["runs_replaced"] = len(re.findall(r"replacing run \d+", logs))
    report["mines_retried_after_a_helper_died"] = len(re.findall(r"killed by signal|ended mid-read", logs))
    report["workers_started"] = len(fleet.workers)
    assert report["tasks_received"] >= CORPUS_SIZE, "the worker logs are not what this test reads"
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "chaos-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))

    assert store_kill, "no save ever waited on the held lock: the store-transaction kill did not happen"
    assert store_kill["parser_died"], "the killed pool child's parser child outlived it"
    assert sum(kills.values()) - 1 >= MIN_RANDOM_KILLS, report
    assert {"main", "pool", "parser", "git"} <= set(kills), report
    assert (printed["status"], printed["runs_done"], printed["runs_ok"]) == ("ok", CORPUS_SIZE, CORPUS_SIZE)

    runs = run_rows(database_url)
    assert sorted((run.full_name, run.commit_sha, run.status) for run in runs) == sorted(
        (repo.full_name, repo.sha, "ok") for repo in corpus
    ), {run.error for run in runs}
    assert findings_of(database_url) == reference
    assert file_outcomes(database_url) == reference_files

    # nothing of a killed worker is left, by process group and by environment marker
    for name, group in fleet.killed_workers:
        wait_for(
            lambda: not in_group(group) and not with_marker(MARKER, name),
            10,
            f"every process of killed worker {name} to be gone",
        )
    for pid in killed_pids:
        assert not is_alive(pid) or info(pid).name == "", pid
    # ... nor of any worker once all were stopped (SIGTERM, then SIGKILL)
    wait_for(
        lambda: not [p for name, _ in fleet.workers for p in with_marker(MARKER, name)],
        10,
        "every worker process and child to be gone after the stop",
    )
    assert sessions_idle_in_transaction(database_url) == []


def _crawl_or_none(database_url: str) -> dict | None:
    try:
        return crawl_row(database_url)
    except AssertionError:
        return None


def _last_handed_out(database_url: str, crawl_id: int) -> int:
    with connect(database_url) as reader:
        [enqueued] = reader.execute("SELECT enqueued_ids FROM crawl WHERE id = %s", (crawl_id,)).fetchone()
    return enqueued[-1]


def _pick_victim(fleet: Fleet, kinds, rng: random.Random) -> tuple[str, int | None]:  # noqa: ANN001
    """The next kind in the cycle, in a random live worker; a kind not running right now (git
    between clones) is waited for a little, then the next kind is tried."""
    for _ in range(len(KINDS)):
        kind = next(kinds)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            live = fleet.live()
            if not live:
                return kind, None
            _name, worker = rng.choice(live)
            victim = find_victim(worker, kind)
            if victim is not None:
                return kind, victim
            time.sleep(0.05)
    return "none", None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_inside_the_store(pool_pid: int, fleet: Fleet) -> dict:
    """kill -9 the main process and the pool child of the worker whose save waits on the lock,
    as an operator or the OOM killer would; its parser child is left to the mechanism."""
    pool = info(pool_pid)
    assert pool is not None
    parsers = helper_processes(pool_pid, "parser")
    _kill(pool.ppid)
    _kill(pool_pid)
    parser_died = True
    try:
        wait_for(lambda: not any(is_alive(pid) for pid in parsers), 10, "the parser child to die")
    except AssertionError:
        parser_died = False
    return {"main": pool.ppid, "pool": pool_pid, "parsers": parsers, "parser_died": parser_died}


def _diagnose(database_url: str, fleet: Fleet) -> str:
    with connect(database_url) as watcher:
        sessions = watcher.execute(
            "SELECT pid, application_name, state, wait_event_type, wait_event, left(query, 60) "
            "FROM pg_stat_activity WHERE datname = current_database()"
        ).fetchall()
    return f"sessions={sessions} workers={[(n, w.alive()) for n, w in fleet.workers]}"
