"""The Celery app, configured from Settings (broker from MINER_BROKER_URL or config.yaml)."""

from __future__ import annotations

import multiprocessing
import os

from celery import Celery
from celery.signals import worker_process_init

from miner.core.lifeline import die_with_parent
from miner.core.settings import Settings, load_settings
from workers.schedule import beat_schedule


def visibility_timeout_s(settings: Settings) -> int:
    """Longer than any task may run, or a slow task would be handed to a second worker."""
    if settings.broker_visibility_timeout_s is not None:
        return settings.broker_visibility_timeout_s
    return settings.limits.mine_timeout_s + 300


def transport_options(settings: Settings) -> dict[str, int]:
    """Redis hands a task whose worker died unacknowledged (kill -9, lost machine) to another
    worker once it is older than the visibility timeout; workers look for such tasks every
    `unacked_restore_interval` seconds (kombu's default sweep is every 100 s)."""
    timeout_s = visibility_timeout_s(settings)
    return {
        "visibility_timeout": timeout_s,
        "unacked_restore_interval": max(1, min(10, timeout_s // 2)),
        "unacked_restore_throttle": 1,
    }


settings = load_settings()

app = Celery("workers", broker=settings.broker_url or "redis://127.0.0.1:6379/0", include=["workers.tasks"])
app.conf.update(
    # Results live in our database; no result backend.
    task_ignore_result=True,
    # A task is acknowledged only after it finished, and re-queued if its worker dies: safe
    # because storing a (repository, commit) run replaces, never duplicates.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_soft_time_limit=settings.limits.mine_timeout_s,
    task_time_limit=settings.limits.mine_timeout_s + 60,
    broker_connection_retry_on_startup=True,
    # When the broker connection drops, a running task finishes and stores its run; its ack is
    # lost with the connection, so Redis redelivers it and storing again replaces, not doubles.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    broker_transport_options=transport_options(settings),
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    enable_utc=True,
    beat_schedule=beat_schedule(settings),
    worker_hijack_root_logger=False,
)


@worker_process_init.connect
def _pool_child_dies_with_worker(**_: object) -> None:
    """A pool child outlives a worker killed with `kill -9` (billiard notices only between
    tasks), still mining and holding its database connection: the kernel kills it with the
    worker instead, its task is redelivered, and its parser child and git helpers die with it
    (miner.core.lifeline). Pool children are also daemonic, which would stop a local process pool
    from starting in one; the flag only guards against orphans, which this makes impossible."""
    die_with_parent(os.getppid())
    multiprocessing.current_process()._config["daemon"] = False  # type: ignore[attr-defined]
