"""Enumerate every repository under a set of topics, once each, past the 1,000-result search cap.

Each topic's date range is cut into slices by `SlicePlanner` and paged through `GithubSession`,
so every search request is counted. `SlicePlanner` is looked up in this module at call time, so a
benchmark can swap in its baseline planner here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from miner.acquire.github import client
from miner.acquire.github.client import GithubSession
from miner.acquire.github.queries import created_range, split_created_qualifier
from miner.acquire.github.repositories import RepositoryMeta
from miner.acquire.github.slices import SearchPage, SlicePlanner
from miner.core.settings import GithubSettings


@dataclass
class Enumeration:
    repositories: list[RepositoryMeta]
    slices: list[str]
    """The search query (`q`) of every slice that was paged, in the order paged."""
    requests: int
    """Search requests sent, including those answered by a rate limit or a fault and retried."""
    query: str
    """The per-topic queries, joined by "; "."""


def enumerate_repositories(
    settings: GithubSettings,
    topics: list[str],
    extra_query: str = "",
    limit: int | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> Enumeration:
    """Every repository tagged with one of `topics` (and matching `extra_query`), once each.

    Topics are enumerated one after the other; a repository under several topics is kept where it
    was first seen. `extra_query` holds further search qualifiers (`language:python stars:>=5`); a
    `created:` qualifier in it narrows the date range that is sliced.
    """
    progress = on_progress or (lambda message: None)
    session = GithubSession(settings, progress)
    extra, (start_s, end_s) = split_created_qualifier(extra_query, now_s=int(client.clock()))
    queries = [f"topic:{topic} {extra}".strip() for topic in topics]
    repositories: dict[str, RepositoryMeta] = {}
    slices: list[str] = []
    for query in queries:
        if limit is not None and len(repositories) >= limit:
            break

        def fetch(lo_s: int, hi_s: int, page: int, query: str = query) -> SearchPage:
            return session.search_page(f"{query} {created_range(lo_s, hi_s)}", page)

        planner = SlicePlanner(fetch, per_page=session.per_page, on_progress=progress)
        for item in planner.items(start_s, end_s):
            repository = RepositoryMeta.from_search_item(item)
            repositories.setdefault(repository.full_name.lower(), repository)  # names ignore case
            if limit is not None and len(repositories) >= limit:
                break
        slices += [f"{query} {created_range(lo_s, hi_s)}" for lo_s, hi_s in planner.slices]
        progress(f"{query}: {len(repositories)} repositories so far, {session.search_requests} search requests")
    return Enumeration(
        repositories=list(repositories.values()),
        slices=slices,
        requests=session.search_requests,
        query="; ".join(queries),
    )
