"""Mine targets end to end (clone if needed, then the pipeline), one or many processes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime
from typing import TypeVar

from miner.acquire.clone import CloneError
from miner.acquire.targets import Target, materialise
from miner.analyse.pipeline import mine_commit
from miner.core.domain import MiningResult, RunStatus
from miner.core.lifeline import HelperProcessKilled, die_with_parent
from miner.core.rules import load_rules
from miner.core.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


HELPER_ATTEMPTS = 3


def mine_target(target: Target, settings: Settings, rev: str | None = None) -> MiningResult:
    """Clone (when remote) and mine one target; every failure becomes the result's status.

    A git helper killed from outside (the OOM killer, an operator) says nothing about the
    repository: the whole mine is tried again, up to HELPER_ATTEMPTS times, before the run is
    recorded as an error naming the signal.
    """
    for attempt in range(1, HELPER_ATTEMPTS + 1):
        try:
            return _mine_once(target, settings, rev)
        except HelperProcessKilled as exc:
            log.warning("%s: %s; mining it again (attempt %d of %d)", target.full_name, exc, attempt, HELPER_ATTEMPTS)
            if attempt == HELPER_ATTEMPTS:
                now = datetime.now(UTC)
                result = MiningResult(
                    target.full_name, None, RunStatus.error, now, now, error=f"{exc} ({HELPER_ATTEMPTS} attempts)"
                )
                result.clone_url = target.clone_url
                return result
    raise AssertionError("unreachable")  # pragma: no cover


def _mine_once(target: Target, settings: Settings, rev: str | None) -> MiningResult:
    started = datetime.now(UTC)
    try:
        with materialise(target, settings, rev) as git_dir:
            result = mine_commit(
                git_dir,
                full_name=target.full_name,
                rules=load_rules(settings.rules),
                limits=settings.limits,
                rev=rev,
            )
    except HelperProcessKilled:
        raise
    except CloneError as exc:
        result = MiningResult(target.full_name, None, exc.status, started, datetime.now(UTC), error=str(exc))
    except Exception as exc:  # recorded, never lost: one bad repository must not end a crawl
        result = MiningResult(
            target.full_name, None, RunStatus.error, started, datetime.now(UTC), error=f"{type(exc).__name__}: {exc}"
        )
    result.clone_url = target.clone_url
    return result


def run_parallel(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[tuple[T, R]]:
    """Apply `function` to each item, across `workers` processes when more than one; yields as done."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        for item in items:
            yield item, function(item)
        return
    with ProcessPoolExecutor(
        max_workers=min(workers, len(items)), initializer=die_with_parent, initargs=(os.getpid(),)
    ) as pool:
        futures = {pool.submit(function, item): item for item in items}
        for future in as_completed(futures):
            yield futures[future], future.result()
