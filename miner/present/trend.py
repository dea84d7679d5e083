"""The headline share crawl by crawl: is MLflow use growing across the crawls we ran?

Each crawl is read from the runs stored for it, not from the latest runs overall, so a later
crawl never rewrites an earlier point of the trend.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from miner.core.domain import RunStatus
from miner.core.rules import Rules
from miner.present.figures import iso, share, wilson_interval
from miner.present.usage import HEADLINE, run_uses
from schema.models import Crawl, MiningRun


def crawl_trend(*, session: Session, rules: Rules) -> list[dict[str, Any]]:
    """The headline share of every crawl, oldest first, from the runs stored for that crawl.

    Within a crawl each repository counts once, by its latest successful run of that crawl;
    a crawl with no successful run has n = 0.
    """
    newer = aliased(MiningRun, name="newer_run")
    newer_in_crawl = select(newer.id).where(
        newer.repository_id == MiningRun.repository_id,
        newer.crawl_id == MiningRun.crawl_id,
        newer.status == RunStatus.ok,
        or_(
            newer.finished_at > MiningRun.finished_at,
            and_(newer.finished_at == MiningRun.finished_at, newer.id > MiningRun.id),
        ),
    )
    per_crawl = (
        select(
            MiningRun.crawl_id,
            func.count().label("n"),
            func.sum(case((run_uses(rules, HEADLINE), 1), else_=0)).label("k"),
        )
        .where(MiningRun.status == RunStatus.ok, MiningRun.crawl_id.is_not(None), ~newer_in_crawl.exists())
        .group_by(MiningRun.crawl_id)
        .subquery("per_crawl")
    )
    statement = (
        select(Crawl.id, Crawl.started_at, Crawl.finished_at, Crawl.status, Crawl.topics, per_crawl.c.n, per_crawl.c.k)
        .outerjoin(per_crawl, per_crawl.c.crawl_id == Crawl.id)
        .order_by(Crawl.started_at, Crawl.id)
    )
    trend = []
    for row in session.exec(statement):
        k, n = int(row.k or 0), int(row.n or 0)
        low, high = wilson_interval(k, n)
        trend.append(
            {
                "crawl_id": row.id,
                "started_at": iso(row.started_at),
                "finished_at": iso(row.finished_at),
                "status": getattr(row.status, "value", row.status),
                "topics": list(row.topics or []),
                "k": k,
                "n": n,
                "share": share(k, n),
                "ci95": [low, high],
            }
        )
    return trend
