"""Thin tasks: load by id, call miner, store. Retries only for transient faults.

A repository's own failures (clone failed, too large, timed out, unparsable files) are recorded
outcomes inside `miner.orchestrate.jobs.mine_repository`, never exceptions here; what reaches Celery is a
database that cannot be reached or GitHub failing past its own retries, and only those retry.
"""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from miner.acquire.github.errors import TransientGithubError
from miner.core.settings import load_settings
from miner.orchestrate import jobs
from miner.orchestrate.crawl import CrawlPlan
from schema.db import DatabaseUnavailable
from workers.celery import app

TRANSIENT = (DatabaseUnavailable, OperationalError, TransientGithubError, ConnectionError)


@app.task(
    name="workers.tasks.mine_repo",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=600,
    # A database outage is waited out, not turned into a lost repository: with the backoff capped
    # at 10 minutes (jittered), 24 retries span a few hours.
    max_retries=24,
)
def mine_repo(repository_id: int, crawl_id: int | None = None) -> str:
    """Mine one stored repository's default branch HEAD and store the run (replacing a run of
    the same commit, so a redelivered task is harmless)."""
    return jobs.mine_repository(repository_id, crawl_id, load_settings()).value


@app.task(
    name="workers.tasks.crawl_topics",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=5,
)
def crawl_topics(topics: list[str], query: str = "", limit: int | None = None) -> int:
    """Enumerate topics, record the crawl and enqueue one mine_repo per changed repository.

    The nightly beat entry sends this; `miner crawl` with a broker does the same in the CLI.
    """
    from miner.orchestrate.crawl import start_crawl

    plan = start_crawl(load_settings(), topics=topics, query=query, limit=limit)
    enqueue_plan(plan)
    return plan.crawl_id


def enqueue_plan(plan: CrawlPlan, broker_url: str | None = None) -> int:
    """One mine_repo message per repository to mine, on `broker_url` (default: the app's);
    returns how many were sent. The CLI passes the broker of the settings it was given, which
    need not be the environment this module was first imported under."""
    with app.connection_for_write(broker_url or app.conf.broker_url) as connection:
        for repository_id in plan.to_mine:
            mine_repo.apply_async((repository_id, plan.crawl_id), connection=connection)
    return len(plan.to_mine)
