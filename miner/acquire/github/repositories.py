"""What GitHub says about one repository: its search item as a typed object, and its branch head now."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from miner.acquire.github.client import GithubSession
from miner.acquire.github.queries import parse_timestamp
from miner.core.settings import GithubSettings


@dataclass(frozen=True)
class RepositoryMeta:
    full_name: str
    clone_url: str
    default_branch: str
    stars: int
    forks: int
    size_kb: int
    topics: tuple[str, ...]
    description: str | None
    fork: bool
    archived: bool
    created_at: datetime
    pushed_at: datetime | None
    html_url: str

    @classmethod
    def from_search_item(cls, item: dict[str, Any]) -> RepositoryMeta:
        return cls(
            full_name=item["full_name"],
            clone_url=item["clone_url"],
            default_branch=item.get("default_branch") or "main",
            stars=int(item.get("stargazers_count") or 0),
            forks=int(item.get("forks_count") or 0),
            size_kb=int(item.get("size") or 0),
            topics=tuple(item.get("topics") or ()),
            description=item.get("description"),
            fork=bool(item.get("fork")),
            archived=bool(item.get("archived")),
            created_at=parse_timestamp(item["created_at"]),
            pushed_at=parse_timestamp(item["pushed_at"]) if item.get("pushed_at") else None,
            html_url=item.get("html_url") or "",
        )


def branch_head(
    settings: GithubSettings,
    full_name: str,
    branch: str,
    on_progress: Callable[[str], None] | None = None,
) -> str:
    """The sha the branch points to now: an unchanged repository need not be cloned again."""
    session = GithubSession(settings, on_progress or (lambda message: None))
    return session.call(
        "core",
        f"branch {branch!r} of {full_name}",
        lambda gh: gh.get_repo(full_name).get_branch(branch).commit.sha,
    )
