"""The units of work a Celery task or the in-process pool runs: load by id, mine, store.

Both modes call exactly these functions, so a crawl gives the same results with or without a
broker. Each opens its own database session: it runs in a worker process.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError

from miner import __version__
from miner.acquire.targets import Target
from miner.core.domain import MiningResult, RunStatus
from miner.core.rules import load_rules
from miner.core.settings import Settings
from miner.orchestrate.mining import mine_target

log = logging.getLogger(__name__)
STORE_ATTEMPTS = 3


def store_result(*, session, result: MiningResult, settings: Settings, crawl_id: int | None = None):  # noqa: ANN001, ANN201
    """Upsert the repository and save its run (replacing a run of the same commit)."""
    from schema.repositories import upsert_repository
    from schema.runs import save_run

    repository = upsert_repository(
        session=session,
        full_name=result.full_name,
        clone_url=result.clone_url,
        default_branch=result.default_branch,
    )
    return save_run(
        session=session,
        repository=repository,
        result=result,
        crawl_id=crawl_id,
        rules_version=load_rules(settings.rules).version,
        tool_version=__version__,
    )


def mine_repository(repository_id: int, crawl_id: int | None, settings: Settings) -> RunStatus:
    """Mine a stored repository's default branch HEAD and store the run; returns its status.

    A repository larger than the configured limit is recorded as too_large without cloning.
    Database faults propagate (the Celery task retries them); repository faults are recorded.
    """
    from schema.db import open_session
    from schema.repositories import load_repository

    with open_session(settings) as session:
        repository = load_repository(session=session, repository_id=repository_id)
        full_name, clone_url, size_kb = repository.full_name, repository.clone_url, repository.size_kb
        default_branch = repository.default_branch
    now = datetime.now(UTC)
    if size_kb is not None and size_kb > settings.limits.max_repo_size_kb:
        result = MiningResult(
            full_name,
            None,
            RunStatus.too_large,
            now,
            now,
            error=f"size {size_kb} kB exceeds the limit of {settings.limits.max_repo_size_kb} kB",
        )
    elif not clone_url:
        result = MiningResult(full_name, None, RunStatus.clone_failed, now, now, error="no clone URL known")
    else:
        result = mine_target(Target(full_name, full_name, clone_url, None), settings)
    result.clone_url = clone_url
    result.default_branch = default_branch
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            _store_and_close(result, crawl_id, settings)
            break
        except OperationalError as exc:
            from schema.db import is_lock_timeout

            # A lock wait past the limit (another save holds the repository row): wait a little
            # and try again; anything else, or the last attempt, goes to the caller's retry.
            if attempt == STORE_ATTEMPTS or not is_lock_timeout(exc):
                raise
            log.warning("storing %s: %s; attempt %d of %d", full_name, exc.orig, attempt, STORE_ATTEMPTS)
            time.sleep(2**attempt)
    return result.status


def _store_and_close(result: MiningResult, crawl_id: int | None, settings: Settings) -> None:
    from schema.db import open_session

    with open_session(settings) as session:
        store_result(session=session, result=result, settings=settings, crawl_id=crawl_id)
        if crawl_id is not None:
            from schema.crawls import close_crawl_if_done

            close_crawl_if_done(session=session, crawl_id=crawl_id)
