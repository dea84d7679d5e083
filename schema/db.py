"""Engines and sessions from a database URL, and the migrations that make its tables.

One engine per URL per process (forked children drop the parent's pooled connections), and the
first session of a process brings the database to the newest Alembic revision, so an empty
SQLite file or an older PostgreSQL schema just works. Tables never come from `create_all`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from miner.core.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same in every process migrating this database.
_MIGRATION_LOCK_KEY = 0x6D696E6572  # "miner"


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or opened; the message is one line and has no password."""


def is_lock_timeout(exc: DBAPIError) -> bool:
    """A lock wait that ran past its limit: PostgreSQL's lock_not_available (55P03), SQLite's
    "database is locked" after its busy time-out. Transient: the other writer finishes."""
    original = exc.orig
    if getattr(original, "sqlstate", None) == "55P03":
        return True
    return "database is locked" in str(original)


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// URLs get the psycopg 3 driver we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def safe_url(engine_or_url: Engine | str) -> str:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.render_as_string(hide_password=True)


@dataclass(frozen=True)
class SessionLimits:
    """How long a database session may wait or idle, so that no session can hang a crawl.

    A lock wait past `lock_timeout_s` fails (OperationalError, retried like any transient
    database error) instead of queueing behind a stuck writer forever; on PostgreSQL a session
    left idle inside a transaction (its client hung or gone) for `idle_in_transaction_timeout_s`
    is ended by the server, which releases its row locks. SQLite waits `lock_timeout_s` for
    the write lock (its busy time-out).
    """

    lock_timeout_s: float = 30.0
    idle_in_transaction_timeout_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionLimits:
        return cls(settings.database_lock_timeout_s, settings.database_idle_in_transaction_timeout_s)

    def postgres_options(self) -> str:
        return (
            f"-c lock_timeout={int(self.lock_timeout_s * 1000)} "
            f"-c idle_in_transaction_session_timeout={int(self.idle_in_transaction_timeout_s * 1000)}"
        )


DEFAULT_LIMITS = SessionLimits()


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        _set_sqlite_pragmas(dbapi_connection, busy_timeout_ms)

    return set_pragmas


def _set_sqlite_pragmas(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers (stats, the API) run while a worker writes; the busy timeout makes a
        # second writer wait for the first instead of failing with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


_engines: dict[tuple[str, SessionLimits], Engine] = {}
_engines_lock = threading.Lock()
_upgrade_lock = threading.Lock()
_upgraded: set[Engine] = set()


def make_engine(url: str, limits: SessionLimits = DEFAULT_LIMITS) -> Engine:
    """The process's one engine for `url` and these limits (cached: pools are per engine)."""
    key = (normalise_url(url), limits)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create_engine(*key)
        return engine


def _create_engine(url: str, limits: SessionLimits) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": limits.lock_timeout_s},
            # an in-memory database lives in its connection: share that one connection
            **({"poolclass": StaticPool} if in_memory else {}),
        )
        event.listen(engine, "connect", _sqlite_pragmas(int(limits.lock_timeout_s * 1000)))
        return engine
    options = limits.postgres_options()
    if parsed.query.get("options"):  # the URL's own options come after ours, so they win
        options = f"{options} {parsed.query['options']}"
        url = parsed.difference_update_query(["options"]).render_as_string(hide_password=False)
    engine = create_engine(url, pool_pre_ping=True, connect_args={"options": options})
    event.listen(engine, "do_connect", _name_the_session)
    return engine


def _name_the_session(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
    """pg_stat_activity then says which process holds a session (`miner doctor` shows it, an
    operator can find the process); read at each connect, so a forked child gets its own pid."""
    params.setdefault("application_name", f"mlflow-miner pid {os.getpid()}")


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
    return make_engine(settings_or_url.database_url, SessionLimits.from_settings(settings_or_url))


@contextmanager
def open_session(settings_or_url: Settings | Engine | str) -> Iterator[Session]:
    """A Session on an up-to-date schema; store functions decide when to commit.

    Objects stay readable after commit (`expire_on_commit=False`) because the CLI and the
    tasks use what a store function returned after the session is gone.
    """
    engine = ensure_schema(_url_of(settings_or_url))
    with Session(engine, expire_on_commit=False) as session:
        yield session
