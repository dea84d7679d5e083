"""Thin tasks: load by id, call miner, store. Retries only for transient faults."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from miner import jobs
from miner.settings import load_settings
from workers.celery import app

try:  # the GitHub edge defines its transient error; fall back before it exists
    from miner.github import TransientGithubError
except ImportError:  # pragma: no cover
    class TransientGithubError(Exception):  # type: ignore[no-redef]
        pass

from schema.db import DatabaseUnavailable

TRANSIENT = (DatabaseUnavailable, OperationalError, TransientGithubError, ConnectionError)


@app.task(
    name="workers.tasks.mine_repo",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def mine_repo(repository_id: int, crawl_id: int | None = None) -> str:
    """Mine one stored repository's default branch HEAD and store the run."""
    return jobs.mine_repository(repository_id, crawl_id, load_settings()).value


@app.task(
    name="workers.tasks.crawl_topics",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=5,
)
def crawl_topics(topics: list[str], query: str = "", limit: int | None = None) -> int:
    """Enumerate topics, record the crawl and enqueue one mine_repo per changed repository."""
    from miner.crawl import start_crawl

    plan = start_crawl(load_settings(), topics=topics, query=query, limit=limit)
    for repository_id in plan.to_mine:
        mine_repo.delay(repository_id, plan.crawl_id)
    return plan.crawl_id
