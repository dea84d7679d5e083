"""The Alembic revisions build exactly the models' tables, and sessions migrate on first use."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from schema.db import (
    DatabaseUnavailable,
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    open_session,
    upgrade,
)

ROOT = Path(__file__).resolve().parent.parent


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    with make_engine(database_url).connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "target_metadata": SQLModel.metadata}
        )
        assert compare_metadata(context, SQLModel.metadata) == []
    assert current_revision(database_url) == head_revision() == "0004"


def test_upgrade_again_is_a_no_op(database_url: str) -> None:
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()


def test_a_first_session_migrates_an_empty_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with open_session(url) as session:
        tables = set(inspect(session.get_bind()).get_table_names())
    assert {"repository", "crawl", "miningrun", "fileresult", "finding", "alembic_version"} <= tables
    with make_engine(url).connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    make_engine(url).dispose()


def _migrate_in_processes(url: str, processes: int = 3) -> None:
    code = "import sys; from schema.db import upgrade; upgrade(sys.argv[1])"
    started = [
        subprocess.Popen([sys.executable, "-c", code, url], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    failures = [p.stderr.read() for p in started if p.wait() != 0]
    assert failures == []


def test_processes_starting_together_on_a_fresh_sqlite_file_migrate_it_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    _migrate_in_processes(url)
    assert current_revision(url) == head_revision()
    make_engine(url).dispose()


def test_processes_starting_together_on_a_fresh_postgres_database_migrate_it_once(
    postgres_url: str,
) -> None:
    name = f"miner_race_{uuid.uuid4().hex[:8]}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    with psycopg.connect(f"{admin}/{postgres_url.rsplit('/', 1)[1]}", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = postgres_url.rsplit("/", 1)[0] + "/" + name
        try:
            _migrate_in_processes(url)
            assert current_revision(url) == head_revision()
        finally:
            make_engine(url).dispose()
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_an_unreachable_database_is_one_clear_line_without_the_password() -> None:
    url = "postgresql://miner:s3cret-pw@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseUnavailable) as caught:
        with open_session(url):
            pass
    message = str(caught.value)
    assert "s3cret-pw" not in message and "\n" not in message
    assert message.startswith("database postgresql+psycopg://miner:***@127.0.0.1:1/nowhere")


def test_an_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="unable to open database file"):
        upgrade(f"sqlite:///{tmp_path / 'missing-dir' / 'miner.db'}")


def test_open_session_takes_settings(tmp_path: Path) -> None:
    from miner.core.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'settings.db'}")
    with open_session(settings) as session:
        assert "finding" in inspect(session.get_bind()).get_table_names()
    make_engine(settings.database_url).dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        yield url
        make_engine(url).dispose()
        return
    postgres_url = request.getfixturevalue("postgres_url")
    name = f"miner_old_{uuid.uuid4().hex[:8]}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = postgres_url.rsplit("/", 1)[0] + "/" + name
        try:
            yield url
        finally:
            make_engine(url).dispose()
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_upgrading_a_version_1_database_marks_its_findings_and_summaries_v1(empty_database_url: str) -> None:
    """Runs stored before 0004 were mined under spec version 1: every finding gets rule `v1`
    and the version 1 summaries equal the ones already stored, on both backends."""
    engine = make_engine(empty_database_url)
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), "0002")
        connection.commit()
        connection.execute(
            text(
                "INSERT INTO repository (id, full_name, topics, archived, fork, first_seen_at) "
                "VALUES (1, 'a/b', '[]', false, false, '2026-11-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO miningrun (id, repository_id, commit_sha, started_at, finished_at, status, "
                "files_seen, files_analysed, files_unparsable, files_skipped, bytes_analysed, duration_s, "
                "rules_version, tool_version, latest, apis_used, client_calls, other_calls) VALUES "
                "(1, 1, 'abc', '2026-11-01 00:00:00', '2026-11-01 00:01:00', 'ok', 1, 1, 0, 0, 10, 1.0, "
                "'2026.11-1', '0.1.0', true, 'log_param', 1, 0)"
            )
        )
        connection.execute(
            text(
                'INSERT INTO finding (mining_run_id, path, line, "column", api, category, qualified_name, '
                "disabling, via_client) VALUES (1, 't.py', 1, 1, 'log_param', 'params', 'mlflow.log_param', "
                "false, false), (1, 't.py', 2, 1, 'log_param', 'client', "
                "'mlflow.client.MlflowClient.log_param', false, true)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO runusage (mining_run_id, api, calls, client_calls, other_calls, used, latest) "
                "VALUES (1, 'log_param', 2, 1, 0, 1, true)"
            )
        )
        connection.commit()
    upgrade(empty_database_url)
    assert current_revision(empty_database_url) == head_revision()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT rule FROM finding ORDER BY line")).scalars().all() == ["v1", "v1"]
        assert connection.execute(
            text("SELECT calls_v1, client_calls_v1, other_calls_v1, used_v1 FROM runusage")
        ).one() == (2, 1, 0, 1)
        assert connection.execute(
            text("SELECT apis_used_v1, client_calls_v1, other_calls_v1 FROM miningrun")
        ).one() == ("log_param", 1, 0)
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "target_metadata": SQLModel.metadata}
        )
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()
