"""The Celery app, configured from Settings (broker from MINER_BROKER_URL or config.yaml)."""

from __future__ import annotations

from celery import Celery

from miner.settings import load_settings
from workers.schedule import beat_schedule

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
    broker_transport_options={"visibility_timeout": settings.limits.mine_timeout_s + 300},
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    enable_utc=True,
    beat_schedule=beat_schedule(settings),
    worker_hijack_root_logger=False,
)
