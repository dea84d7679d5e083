"""The nightly crawl: a cron string and topics from config.yaml, enqueueing the crawl task."""

from __future__ import annotations

from celery.schedules import crontab

from miner.core.settings import Settings


def parse_cron(expression: str) -> crontab:
    """`m h dom mon dow` (UTC) -> Celery crontab; ValueError on anything else."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron needs 5 fields (minute hour day month weekday), got {expression!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    return crontab(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
    )


def beat_schedule(settings: Settings) -> dict:
    return {
        "nightly-crawl": {
            "task": "workers.tasks.crawl_topics",
            "schedule": parse_cron(settings.schedule.nightly_cron),
            "kwargs": {"topics": list(settings.schedule.topics), "query": settings.schedule.query},
        }
    }
