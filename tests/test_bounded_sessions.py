"""Database sessions that cannot hang a crawl, and crawls whose stall is visible.

Real PostgreSQL: a lock held by the test makes a save wait past `database_lock_timeout_s` (it
fails as a lock time-out and the job's store retries once the lock is gone); a session left idle
inside a transaction is ended by the server; `miner crawls`, the API and `miner doctor` name a
stalled crawl's repositories in flight and sessions idle in a transaction.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from typer.testing import CliRunner

from miner.cli import app
from miner.core.domain import MiningResult, RunStatus
from miner.core.settings import load_settings
from miner.orchestrate.jobs import store_result
from schema.crawls import create_crawl, record_plan
from schema.db import SessionLimits, is_lock_timeout, make_engine, open_session
from schema.models import Crawl
from schema.repositories import upsert_repository


def _psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _result(name: str, sha: str = "a" * 40) -> MiningResult:
    now = datetime.now(UTC)
    return MiningResult(name, sha, RunStatus.ok, now, now)


def test_sessions_carry_the_configured_limits_and_name_their_process(empty_postgres: str) -> None:
    limits = SessionLimits(lock_timeout_s=2.5, idle_in_transaction_timeout_s=7)
    with make_engine(empty_postgres, limits).connect() as connection:
        assert connection.execute(text("SHOW lock_timeout")).scalar() == "2500ms"
        assert connection.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "7s"
        name = connection.execute(text("SELECT current_setting('application_name')")).scalar()
        assert name.startswith("mlflow-miner pid ")


def test_a_save_waits_at_most_the_lock_timeout_then_succeeds_once_the_lock_is_gone(empty_postgres: str) -> None:
    settings = load_settings(database_url=empty_postgres, database_lock_timeout_s=1)
    with open_session(settings) as session:
        upsert_repository(session=session, full_name="o/locked")
    holder = psycopg.connect(_psycopg_url(empty_postgres))
    holder.execute("SELECT id FROM repository WHERE full_name = 'o/locked' FOR UPDATE")
    try:
        started = time.monotonic()
        with open_session(settings) as session, pytest.raises(OperationalError) as caught:
            store_result(session=session, result=_result("o/locked"), settings=settings)
        assert is_lock_timeout(caught.value)
        assert time.monotonic() - started < 20
    finally:
        holder.rollback()
        holder.close()
    with open_session(settings) as session:
        run = store_result(session=session, result=_result("o/locked"), settings=settings)
        assert run.status is RunStatus.ok


def test_a_session_idle_in_a_transaction_is_ended_by_the_server(empty_postgres: str) -> None:
    limits = SessionLimits(idle_in_transaction_timeout_s=1)
    connection = make_engine(empty_postgres, limits).connect()
    try:
        connection.execute(text("SELECT 1"))  # a transaction begins, then nothing comes
        time.sleep(2.5)
        with pytest.raises(DBAPIError, match="idle-in-transaction timeout"):
            connection.execute(text("SELECT 1"))
    finally:
        connection.invalidate()
        connection.close()


def _stalled_crawl(settings) -> int:  # noqa: ANN001
    with open_session(settings) as session:
        ids = [upsert_repository(session=session, full_name=f"o/repo-{index}").id for index in range(3)]
        crawl = create_crawl(session=session, topics=["mlflow-projects"])
        record_plan(session=session, crawl_id=crawl.id, found=3, enqueued_ids=ids, skipped_unchanged=0, slices=[])
        store_result(session=session, result=_result("o/repo-1"), settings=settings, crawl_id=crawl.id)
        long_ago = datetime.now(UTC) - timedelta(hours=2)
        session.exec(update(Crawl).where(Crawl.id == crawl.id).values(started_at=long_ago))
        session.exec(text("UPDATE miningrun SET finished_at = :at"), params={"at": long_ago})
        session.commit()
        return crawl.id


def test_a_crawl_without_progress_is_stalled_and_names_what_is_in_flight(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINER_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("MINER_DATABASE_URL", database_url)
    settings = load_settings()
    crawl_id = _stalled_crawl(settings)
    runner = CliRunner()

    outcome = runner.invoke(app, ["crawls", "--format", "json"])
    assert outcome.exit_code == 0, outcome.output
    [row] = json.loads(outcome.stdout)
    assert (row["id"], row["status"], row["runs_done"]) == (crawl_id, "stalled", 1)
    assert row["in_flight"] == ["o/repo-0", "o/repo-2"]

    monkeypatch.setenv("MINER_CRAWL_STALL_AFTER_S", str(3 * 3600))
    [row] = json.loads(runner.invoke(app, ["crawls", "--format", "json"]).stdout)
    assert (row["status"], row["in_flight"]) == ("running", ["o/repo-0", "o/repo-2"])

    monkeypatch.delenv("MINER_CRAWL_STALL_AFTER_S")
    doctor = runner.invoke(app, ["doctor", "--format", "json"])
    checks = {check["check"]: check for check in json.loads(doctor.stdout)}
    assert checks["crawls"]["verdict"] == "warn"
    assert f"crawl {crawl_id} stored nothing since" in checks["crawls"]["detail"]
    assert "in flight: o/repo-0, o/repo-2" in checks["crawls"]["detail"]

    from fastapi.testclient import TestClient

    from miner.present.api import create_app

    [api_row] = TestClient(create_app(load_settings())).get("/api/crawls").json()["data"]
    assert (api_row["status"], api_row["in_flight"]) == ("stalled", ["o/repo-0", "o/repo-2"])


def test_doctor_names_a_postgresql_session_idle_in_a_transaction(
    empty_postgres: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINER_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("MINER_DATABASE_URL", empty_postgres)
    monkeypatch.setenv("MINER_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_S", "1")
    stuck = psycopg.connect(_psycopg_url(empty_postgres), application_name="a hung client")
    stuck.execute("SELECT count(*) FROM repository")  # BEGIN, then silence
    try:
        time.sleep(1.5)
        outcome = CliRunner().invoke(app, ["doctor", "--format", "json"])
        checks = {check["check"]: check for check in json.loads(outcome.stdout)}
        assert outcome.exit_code == 1
        assert checks["database sessions"]["verdict"] == "fail"
        assert f"pid {stuck.info.backend_pid} " in checks["database sessions"]["detail"]
        assert "SELECT count(*) FROM repository" in checks["database sessions"]["detail"]
    finally:
        stuck.close()
    healthy = CliRunner().invoke(app, ["doctor", "--format", "json"])
    checks = {check["check"]: check for check in json.loads(healthy.stdout)}
    assert checks["database sessions"]["verdict"] == "ok"
