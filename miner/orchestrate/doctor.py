"""`miner doctor`: check what a run needs and say in plain words what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from miner.core.settings import Settings


class Verdict(str, Enum):
    ok = "ok"
    warn = "warn"
    fail = "fail"


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str

    def as_row(self) -> dict:
        return {"check": self.name, "verdict": self.verdict.value, "detail": self.detail}


def check_config() -> Check:
    path = Path(os.environ.get("MINER_CONFIG", "config.yaml"))
    if path.is_file():
        return Check("settings", Verdict.ok, f"read {path}, then MINER_* environment variables")
    return Check("settings", Verdict.warn, f"no {path} here: using defaults and MINER_* environment variables")


def check_git() -> Check:
    git = shutil.which("git")
    if git is None:
        return Check("git", Verdict.fail, "git is not installed: install it (e.g. apt-get install git)")
    version = subprocess.run([git, "--version"], capture_output=True, text=True).stdout.strip()
    return Check("git", Verdict.ok, version)


def check_database(settings: Settings) -> Check:
    from schema.db import DatabaseUnavailable, current_revision, head_revision, open_session, safe_url

    try:
        with open_session(settings):
            pass
        revision = current_revision(settings.database_url)
    except DatabaseUnavailable as exc:
        return Check("database", Verdict.fail, f"{exc}. Start the server or fix MINER_DATABASE_URL.")
    except Exception as exc:  # a file in a read-only folder, a bad URL
        return Check("database", Verdict.fail, f"{type(exc).__name__}: {exc}")
    state = "up to date" if revision == head_revision() else f"at {revision}, head is {head_revision()}"
    return Check("database", Verdict.ok, f"{safe_url(settings.database_url)} (schema {state})")


def check_broker(settings: Settings) -> Check:
    if not settings.broker_url:
        return Check("broker", Verdict.ok, "none configured: `miner crawl` mines in this process")
    from kombu import Connection

    connection = Connection(settings.broker_url, connect_timeout=3)
    shown = connection.as_uri()  # kombu masks the password
    try:
        connection.ensure_connection(max_retries=0)
    except Exception as exc:
        return Check(
            "broker", Verdict.fail, f"cannot reach the broker at {shown} ({exc}); start Redis or unset MINER_BROKER_URL"
        )
    finally:
        connection.release()
    return Check("broker", Verdict.ok, "reachable; start workers with `celery -A workers worker`")


def check_github(settings: Settings) -> Check:
    if settings.github.all_tokens():
        return Check("github token", Verdict.ok, "configured (5,000 requests an hour, 30 searches a minute)")
    return Check(
        "github token", Verdict.warn, "none: crawls work but GitHub allows 60 requests an hour; set MINER_GITHUB__TOKEN"
    )


def check_work_dir(settings: Settings) -> Check:
    folder = Path(settings.work_dir or tempfile.gettempdir())
    try:
        with tempfile.TemporaryDirectory(dir=folder):
            pass
    except OSError as exc:
        return Check("work dir", Verdict.fail, f"cannot create temporary clones in {folder}: {exc}")
    free_gb = shutil.disk_usage(folder).free / 1e9
    verdict = Verdict.ok if free_gb >= 2 else Verdict.warn
    return Check("work dir", verdict, f"{folder}: {free_gb:.1f} GB free")


IN_FLIGHT_SHOWN = 5


def check_crawls(settings: Settings) -> Check:
    """Running crawls that stored no run for `crawl_stall_after_s`, with what is in flight."""
    from schema.crawls import crawl_rows
    from schema.db import open_session

    try:
        with open_session(settings) as session:
            rows = crawl_rows(session=session, stall_after_s=settings.crawl_stall_after_s)
    except Exception:  # the database check says why
        return Check("crawls", Verdict.warn, "not checked: the database is unavailable")
    stalled = [row for row in rows if row["status"] == "stalled"]
    if not stalled:
        running = sum(row["status"] == "running" for row in rows)
        return Check("crawls", Verdict.ok, f"none stalled ({running} running)")
    parts = []
    for row in stalled:
        names = row["in_flight"]
        shown = ", ".join(names[:IN_FLIGHT_SHOWN]) + (
            f" and {len(names) - IN_FLIGHT_SHOWN} more" if len(names) > IN_FLIGHT_SHOWN else ""
        )
        parts.append(
            f"crawl {row['id']} stored nothing since {row['last_progress_at']}"
            + (f", in flight: {shown}" if names else "")
        )
    return Check(
        "crawls",
        Verdict.warn,
        "; ".join(parts) + ". Are workers running (`celery -A workers worker`)? "
        "Re-running `miner crawl` enqueues the repositories that have no run.",
    )


def check_stuck_sessions(settings: Settings) -> Check | None:
    """PostgreSQL sessions idle inside a transaction for longer than the configured limit: a
    client that hung or died with its socket still open holds its row locks. None where there
    is nothing to check (SQLite, or a database that cannot be reached)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    if make_url(settings.database_url).get_backend_name() != "postgresql":
        return None
    from schema.db import open_session

    limit_s = settings.database_idle_in_transaction_timeout_s
    try:
        with open_session(settings) as session:
            rows = session.execute(
                text(
                    "SELECT pid, usename, application_name, client_addr::text, "
                    "EXTRACT(EPOCH FROM now() - state_change) AS idle_s, left(query, 80) "
                    "FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%' AND now() - state_change > make_interval(secs => :limit)"
                ),
                {"limit": limit_s},
            ).all()
    except Exception:  # the database check already says why
        return None
    if not rows:
        return Check("database sessions", Verdict.ok, f"none idle in a transaction for more than {limit_s:g} s")
    described = "; ".join(
        f"pid {pid} ({user}@{addr or 'local'}) idle {idle:.0f} s after {query!r}"
        for pid, user, _app, addr, idle, query in rows
    )
    return Check(
        "database sessions",
        Verdict.fail,
        f"{len(rows)} idle in a transaction past {limit_s:g} s, holding locks: {described}. "
        "End them with pg_terminate_backend(pid) and look for orphaned worker processes.",
    )


def run_checks(settings: Settings) -> list[Check]:
    checks = [
        check_config(),
        check_git(),
        check_database(settings),
        check_broker(settings),
        check_github(settings),
        check_work_dir(settings),
        check_crawls(settings),
    ]
    sessions = check_stuck_sessions(settings)
    return checks + ([sessions] if sessions is not None else [])
