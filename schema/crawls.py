"""Crawl bookkeeping: creating a crawl, counts while it runs, progress from stored runs, finishing it.

Store conventions: keyword-only `session`, never opened here; writing functions commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, update
from sqlmodel import Session, select

from miner.core.domain import RunStatus
from schema.models import Crawl, CrawlStatus, MiningRun, Repository, as_utc, utc_now


def create_crawl(
    *,
    session: Session,
    topics: list[str],
    query: str | None = None,
    slices: list[Any] | None = None,
) -> Crawl:
    crawl = Crawl(topics=list(topics), query=query or None, slices=list(slices or []))
    session.add(crawl)
    session.commit()
    return crawl


def finish_crawl(
    *,
    session: Session,
    crawl: Crawl | int,
    status: CrawlStatus = CrawlStatus.ok,
    error: str | None = None,
    repos_found: int | None = None,
    repos_enqueued: int | None = None,
    repos_skipped_unchanged: int | None = None,
    slices: list[Any] | None = None,
    finished_at: datetime | None = None,
) -> Crawl:
    """Record a crawl's counts (None keeps a count as it is) and its status.

    A crawl whose repositories are still being mined stays `running` (no finished_at): the
    last mining task closes it through `close_crawl_if_done`. Any other status is final and
    gets finished_at (now unless given).
    """
    crawl_id = crawl if isinstance(crawl, int) else crawl.id
    status = CrawlStatus(status)
    if finished_at is None and status is not CrawlStatus.running:
        finished_at = utc_now()
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": finished_at}
    for key, value in (
        ("repos_found", repos_found),
        ("repos_enqueued", repos_enqueued),
        ("repos_skipped_unchanged", repos_skipped_unchanged),
        ("slices", slices),
    ):
        if value is not None:
            values[key] = value
    session.exec(
        update(Crawl).where(Crawl.id == crawl_id).values(**values),
        execution_options={"synchronize_session": False},
    )
    session.commit()
    loaded = session.get(Crawl, crawl_id, populate_existing=True)
    if loaded is None:
        raise LookupError(f"no crawl with id {crawl_id}")
    return loaded


def record_plan(
    *,
    session: Session,
    crawl_id: int,
    found: int,
    enqueued_ids: list[int],
    skipped_unchanged: int,
    slices: list[Any],
) -> None:
    """Store what enumeration found and queued; the crawl stays running until its runs are stored."""
    enqueued = len(enqueued_ids)
    status = CrawlStatus.running if enqueued else CrawlStatus.ok
    values: dict[str, Any] = {
        "repos_found": found,
        "repos_enqueued": enqueued,
        "enqueued_ids": list(enqueued_ids),
        "repos_skipped_unchanged": skipped_unchanged,
        "slices": slices,
        "status": status,
    }
    if not enqueued:
        values["finished_at"] = utc_now()
    session.exec(update(Crawl).where(Crawl.id == crawl_id).values(**values))  # type: ignore[call-overload]
    session.commit()


def latest_rules_versions(*, session: Session, crawl_id: int) -> dict[int, str]:
    """Repository id -> rules version of its latest successful run, for the repositories this
    crawl saw (`last_seen_crawl_id`); a repository never mined successfully is absent."""
    rows = session.exec(  # type: ignore[call-overload]
        select(MiningRun.repository_id, MiningRun.rules_version)
        .join(Repository, Repository.id == MiningRun.repository_id)
        .where(Repository.last_seen_crawl_id == crawl_id, MiningRun.latest == True)  # noqa: E712
    ).all()
    return {repository_id: rules_version for repository_id, rules_version in rows}


def crawl_progress(*, session: Session, crawl_id: int) -> dict[str, int]:
    """Repositories with a stored run in this crawl, and how many of those runs succeeded."""
    done, ok = session.exec(  # type: ignore[call-overload]
        select(
            func.count(func.distinct(MiningRun.repository_id)),
            func.count(func.distinct(case((MiningRun.status == RunStatus.ok.value, MiningRun.repository_id)))),
        ).where(MiningRun.crawl_id == crawl_id)
    ).one()
    return {"runs_done": int(done or 0), "runs_ok": int(ok or 0), "runs_failed": int(done or 0) - int(ok or 0)}


def close_crawl_if_done(*, session: Session, crawl_id: int) -> bool:
    """Mark a running crawl ok once every enqueued repository has a stored run; idempotent."""
    crawl = session.get(Crawl, crawl_id, populate_existing=True)
    if crawl is None or crawl.status is not CrawlStatus.running:
        return False
    if crawl_progress(session=session, crawl_id=crawl_id)["runs_done"] < crawl.repos_enqueued:
        return False
    session.exec(  # type: ignore[call-overload]
        update(Crawl)
        .where(Crawl.id == crawl_id, Crawl.status == CrawlStatus.running.value)
        .values(status=CrawlStatus.ok, finished_at=utc_now())
    )
    session.commit()
    return True


def last_progress(*, session: Session, crawl: Crawl) -> datetime:
    """When the crawl last moved: its newest stored run, else its start."""
    newest = session.exec(  # type: ignore[call-overload]
        select(func.max(MiningRun.finished_at)).where(MiningRun.crawl_id == crawl.id)
    ).one()
    newest = newest[0] if isinstance(newest, tuple) else newest
    moments = [as_utc(crawl.started_at)] + ([as_utc(newest)] if newest is not None else [])
    return max(moments)


def in_flight(*, session: Session, crawl: Crawl) -> list[str]:
    """Names of the repositories the crawl handed out that have no run stored in it yet."""
    if not crawl.enqueued_ids:
        return []
    done = set(session.exec(select(MiningRun.repository_id).where(MiningRun.crawl_id == crawl.id)).all())
    waiting = [repository_id for repository_id in crawl.enqueued_ids if repository_id not in done]
    if not waiting:
        return []
    names = dict(
        session.exec(  # type: ignore[call-overload]
            select(Repository.id, Repository.full_name).where(Repository.id.in_(waiting))  # type: ignore[union-attr]
        ).all()
    )
    return [names.get(repository_id, f"#{repository_id}") for repository_id in waiting]


def is_stalled(*, session: Session, crawl: Crawl, stall_after_s: float, now: datetime | None = None) -> bool:
    """A running crawl that stored no run for `stall_after_s` seconds."""
    if crawl.status is not CrawlStatus.running:
        return False
    quiet_s = ((now or utc_now()) - last_progress(session=session, crawl=crawl)).total_seconds()
    return quiet_s > stall_after_s


def crawl_rows(
    *, session: Session, crawl_id: int | None = None, stall_after_s: float | None = None
) -> list[dict[str, Any]]:
    """One record per crawl, newest first, with progress computed from stored runs.

    With `stall_after_s`, a running crawl that stored no run for that long has status
    `stalled`; every running crawl names its repositories still in flight (`in_flight`).
    """
    query = select(Crawl).order_by(Crawl.id.desc())  # type: ignore[union-attr]
    if crawl_id is not None:
        query = query.where(Crawl.id == crawl_id)
    rows = []
    for crawl in session.exec(query).all():
        assert crawl.id is not None
        status = crawl.status.value if hasattr(crawl.status, "value") else crawl.status
        running = crawl.status is CrawlStatus.running
        if stall_after_s is not None and is_stalled(session=session, crawl=crawl, stall_after_s=stall_after_s):
            status = "stalled"
        rows.append(
            {
                "id": crawl.id,
                "topics": list(crawl.topics),
                "query": crawl.query,
                "status": status,
                "started_at": crawl.started_at.isoformat(timespec="seconds") if crawl.started_at else None,
                "finished_at": crawl.finished_at.isoformat(timespec="seconds") if crawl.finished_at else None,
                "found": crawl.repos_found,
                "enqueued": crawl.repos_enqueued,
                "unchanged": crawl.repos_skipped_unchanged,
                **crawl_progress(session=session, crawl_id=crawl.id),
                "in_flight": in_flight(session=session, crawl=crawl) if running else [],
                "last_progress_at": last_progress(session=session, crawl=crawl).isoformat(timespec="seconds"),
                "error": crawl.error,
            }
        )
    return rows
