"""Engines and sessions from a database URL, and the migrations that make its tables.

One engine per URL per process (forked children drop the parent's pooled connections), and the
first session of a process brings the database to the newest Alembic revision, so an empty
SQLite file or an older PostgreSQL schema just works. Tables never come from `create_all`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

if TYPE_CHECKING:
    from miner.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant works; it only has to be the same in every process migrating this database.
_MIGRATION_LOCK_KEY = 0x6D696E6572   # "miner"


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or opened; the message is one line and has no password."""


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// URLs get the psycopg 3 driver we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def safe_url(engine_or_url: Engine | str) -> str:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.render_as_string(hide_password=True)


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:   # noqa: ANN001 (DBAPI objects)
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers (stats, the API) run while a worker writes; the busy timeout makes a
        # second writer wait for the first instead of failing with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_upgrade_lock = threading.Lock()
_upgraded: set[Engine] = set()


def make_engine(url: str) -> Engine:
    """The process's one engine for `url` (cached: pools are per engine, not per call)."""
    url = normalise_url(url)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create_engine(url)
        return engine


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            # an in-memory database lives in its connection: share that one connection
            **({"poolclass": StaticPool} if in_memory else {}),
        )
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _drop_inherited_pools() -> None:
    """A forked child must not reuse the parent's sockets: dispose of the pools, close nothing."""
    for engine in list(_engines.values()):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_pools)


def _engine(engine_or_url: Engine | str) -> Engine:
    return engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)


def _connect(engine: Engine) -> Connection:
    try:
        return engine.connect()
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        password = engine.url.password
        if password:
            reason = reason.replace(str(password), "***")
        raise DatabaseUnavailable(f"database {safe_url(engine)} is unavailable: {reason}") from None


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config built in code: no alembic.ini needed in the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine_or_url: Engine | str) -> str | None:
    with _connect(_engine(engine_or_url)) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _take_migration_lock(connection: Connection) -> None:
    """Two processes starting on a fresh database must not both create the tables."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # The write lock up front; DDL and the version row then commit (or not) together.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(engine_or_url: Engine | str) -> None:
    """Apply every Alembic migration up to head, in one transaction where the database allows."""
    engine = _engine(engine_or_url)
    with _connect(engine) as connection:
        if MigrationContext.configure(connection).get_current_revision() == head_revision():
            return
        connection.rollback()
        _take_migration_lock(connection)
        command.upgrade(alembic_config(connection), "head")
        connection.commit()


def ensure_schema(engine_or_url: Engine | str) -> Engine:
    """Upgrade once per process and engine; later calls cost a set lookup."""
    engine = _engine(engine_or_url)
    if engine in _upgraded:
        return engine
    with _upgrade_lock:
        if engine not in _upgraded:
            upgrade(engine)
            _upgraded.add(engine)
    return engine


def _url_of(settings_or_url: Settings | Engine | str) -> Engine | str:
    if isinstance(settings_or_url, (Engine, str)):
        return settings_or_url
    return settings_or_url.database_url


@contextmanager
def open_session(settings_or_url: Settings | Engine | str) -> Iterator[Session]:
    """A Session on an up-to-date schema; store functions decide when to commit.

    Objects stay readable after commit (`expire_on_commit=False`) because the CLI and the
    tasks use what a store function returned after the session is gone.
    """
    engine = ensure_schema(_url_of(settings_or_url))
    with Session(engine, expire_on_commit=False) as session:
        yield session
