"""Filters shared by every query command and the read API: which repositories and runs count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Filters:
    """Default (all None/False): the latest successful run of every repository.

    topic: the repository carries this GitHub topic; min_stars: at least this many stars;
    exclude_forks / exclude_archived: drop those repositories; crawl_id: the latest successful
    run within that crawl instead of overall; since: only runs finished at or after this time.
    """

    topic: str | None = None
    min_stars: int | None = None
    exclude_forks: bool = False
    exclude_archived: bool = False
    crawl_id: int | None = None
    since: datetime | None = None
