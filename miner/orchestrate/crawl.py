"""A topic crawl: enumerate, record, and pick the repositories whose default branch moved."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from miner.acquire.clone import CloneError, remote_head
from miner.core.lifeline import HelperProcessKilled
from miner.core.settings import Settings


@dataclass
class CrawlPlan:
    crawl_id: int
    found: int
    to_mine: list[int] = field(default_factory=list)
    skipped_unchanged: int = 0
    slices: list[str] = field(default_factory=list)


def _head_or_none(url: str | None, branch: str | None, timeout_s: float) -> str | None:
    if not url:
        return None
    try:
        return remote_head(url, branch, timeout_s)
    except (CloneError, HelperProcessKilled):
        return None  # unknown: mine it, and the mine records why it fails


def start_crawl(
    settings: Settings,
    *,
    topics: list[str],
    query: str = "",
    limit: int | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> CrawlPlan:
    """Record a Crawl, upsert every repository found, and list those to mine.

    A repository is skipped as unchanged when its default-branch HEAD (read with `git ls-remote`,
    no clone) equals the commit of its last successful run and that run was mined with the
    current rules version: new rules are a change too, so runs mined under older rules are
    mined again by the next crawl.
    """
    from miner.acquire.github.topics import enumerate_repositories
    from miner.core.rules import load_rules
    from schema.crawls import create_crawl, finish_crawl, latest_rules_versions, record_plan
    from schema.db import open_session
    from schema.models import CrawlStatus
    from schema.repositories import upsert_repository

    notify = on_progress or (lambda _message: None)
    with open_session(settings) as session:
        crawl = create_crawl(session=session, topics=topics, query=query)
        crawl_id = crawl.id
    assert crawl_id is not None
    try:
        enumeration = enumerate_repositories(settings.github, topics, query, limit=limit, on_progress=notify)
    except Exception as exc:
        with open_session(settings) as session:
            finish_crawl(session=session, crawl=crawl_id, status=CrawlStatus.failed, error=str(exc))
        raise
    plan = CrawlPlan(crawl_id=crawl_id, found=len(enumeration.repositories), slices=list(enumeration.slices))
    stored: list[tuple[int, str | None, str | None, str | None]] = []
    sizes: dict[int, int] = {}
    with open_session(settings) as session:
        for meta in enumeration.repositories:
            repository = upsert_repository(
                session=session,
                full_name=meta.full_name,
                clone_url=meta.clone_url,
                default_branch=meta.default_branch,
                stars=meta.stars,
                forks=meta.forks,
                size_kb=meta.size_kb,
                topics=list(meta.topics),
                description=meta.description,
                fork=meta.fork,
                archived=meta.archived,
                created_at=meta.created_at,
                pushed_at=meta.pushed_at,
                last_seen_crawl_id=crawl_id,
            )
            assert repository.id is not None
            stored.append((repository.id, repository.clone_url, repository.default_branch, repository.last_mined_sha))
            sizes[repository.id] = repository.size_kb or 0
        mined_with = latest_rules_versions(session=session, crawl_id=crawl_id)
    rules_version = load_rules(settings.rules).version
    notify(f"checking {len(stored)} remote heads")
    with ThreadPoolExecutor(max_workers=8) as pool:
        heads = list(pool.map(lambda row: _head_or_none(row[1], row[2], 60), stored))
    for (repository_id, _url, _branch, last_sha), head in zip(stored, heads):
        current = mined_with.get(repository_id) == rules_version
        if last_sha is not None and head is not None and head == last_sha and current:
            plan.skipped_unchanged += 1
        else:
            plan.to_mine.append(repository_id)
    # Largest first (GitHub's size): a pool of workers finishes when its longest job does, so
    # starting the big repositories first keeps every worker busy until the end. Stable: equal
    # sizes keep the enumeration order.
    plan.to_mine.sort(key=lambda repository_id: -sizes[repository_id])
    with open_session(settings) as session:
        record_plan(
            session=session,
            crawl_id=crawl_id,
            found=plan.found,
            enqueued_ids=plan.to_mine,
            skipped_unchanged=plan.skipped_unchanged,
            slices=plan.slices,
        )
    return plan
