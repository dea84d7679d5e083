"""Database fixtures: every store and stats test runs on SQLite and on real PostgreSQL.

PostgreSQL: one fresh, uniquely named database per test session on 127.0.0.1:5432, created
through a maintenance database (`test`, else `postgres`) and dropped at teardown; each test
starts from empty tables. When PostgreSQL cannot be reached the tests FAIL, they do not skip:
a green run must mean both backends were exercised. `MINER_TEST_POSTGRES_URL` (a URL of the
maintenance database) points the tests at another server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from schema.db import make_engine, open_session, upgrade

MAINTENANCE_URLS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
)


def _maintenance_connection() -> psycopg.Connection:
    candidates = (
        [os.environ["MINER_TEST_POSTGRES_URL"]] if os.environ.get("MINER_TEST_POSTGRES_URL") else list(MAINTENANCE_URLS)
    )
    errors = []
    for url in candidates:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            errors.append(f"{make_url(url).render_as_string(hide_password=True)}: {str(exc).strip().splitlines()[0]}")
    pytest.fail(
        "PostgreSQL is not reachable, so the PostgreSQL half of the tests cannot run "
        "(start it with `pg_ctlcluster --skip-systemctl-redirect <version> main start`): " + "; ".join(errors),
        pytrace=False,
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this test session, migrated to head once."""
    maintenance = _maintenance_connection()
    name = f"miner_test_{uuid.uuid4().hex[:12]}"
    maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = maintenance.info
    url = f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{name}"
    if info.password:
        url = f"postgresql+psycopg://{info.user}:{info.password}@{info.host}:{info.port}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        make_engine(url).dispose()
        maintenance.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        maintenance.close()


def _empty_tables(url: str) -> None:
    tables = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    with make_engine(url).begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """A migrated, empty database: a new SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'miner.db'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("postgres_url")
        _empty_tables(url)
    try:
        yield url
    finally:
        if request.param == "sqlite":
            make_engine(url).dispose()


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    with open_session(database_url) as session:
        yield session


@pytest.fixture
def empty_postgres(postgres_url: str) -> str:
    """The session's PostgreSQL database with empty tables, for tests that need PostgreSQL only."""
    _empty_tables(postgres_url)
    return postgres_url
