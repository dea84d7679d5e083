"""The response models of the read-only API: the JSON shapes its OpenAPI document names.

`miner.present.api` and `miner.present.api_repositories` answer with these; the fields mirror
what the CLI prints with `--format json` (a repository row carries one count per Category).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from miner.core.domain import RULE_V1, Category, RunStatus


class UsagePublic(BaseModel):
    """One api's or category's usage: repositories using it, their share, and the calls."""

    model_config = ConfigDict(extra="allow")
    repositories: int
    share: float
    calls: int
    fluent_calls: int = 0
    client_calls: int = 0


class HeadlinePublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    repositories: int
    share: float
    ci95: tuple[float, float]
    apis: list[str] = Field(default_factory=list)


class StatsPublic(BaseModel):
    """`miner stats --format json`, the same document."""

    model_config = ConfigDict(extra="allow")
    repositories: int
    headline: HeadlinePublic
    apis: dict[str, UsagePublic]
    categories: dict[str, UsagePublic]
    failures: dict[str, Any]


# One count per category, fields named after the Category values (what `miner repos` prints).
CategoryCounts = create_model(  # type: ignore[call-overload]
    "CategoryCounts", **{category.value: (int, 0) for category in Category}
)


class RepositoryPublic(CategoryCounts):  # type: ignore[misc, valid-type]
    """A repository with its latest successful run's usage profile (a `miner repos` row)."""

    model_config = ConfigDict(extra="allow")
    full_name: str
    stars: int | None = None
    fork: bool = False
    archived: bool = False
    topics: list[str] = Field(default_factory=list)
    commit: str | None = None
    mined_at: datetime | str | None = None
    findings: int = 0
    headline: bool = False
    last_run_status: RunStatus | None = None  # its last run of any status: may be a failure
    last_run_at: datetime | str | None = None


class RepositoriesPublic(BaseModel):
    data: list[RepositoryPublic]
    count: int


class FindingPublic(BaseModel):
    repository: str
    commit: str | None
    path: str
    cell: int | None
    line: int
    column: int
    api: str
    category: str
    qualified_name: str
    flavor: str | None
    disabling: bool
    via_client: bool = False
    rule: str = RULE_V1  # `v1`, or the detection spec version 2 kind it was found through
    url: str | None = None  # the line at the commit on GitHub (a notebook: the file)


class FindingsPublic(BaseModel):
    data: list[FindingPublic]
    count: int


class RunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    crawl_id: int | None
    commit_sha: str | None
    status: RunStatus
    error: str | None
    started_at: datetime
    finished_at: datetime
    files_seen: int
    files_analysed: int
    files_unparsable: int
    files_skipped: int
    bytes_analysed: int
    duration_s: float
    rules_version: str
    tool_version: str


class ProfilePublic(CategoryCounts):  # type: ignore[misc, valid-type]
    """The repository as the last search saw it, and what its latest successful run found."""

    full_name: str
    clone_url: str | None
    default_branch: str | None
    description: str | None
    topics: list[str]
    stars: int | None
    forks: int | None
    size_kb: int | None
    created_at: datetime | None
    pushed_at: datetime | None
    archived: bool
    fork: bool
    first_seen_at: datetime
    last_mined_sha: str | None
    last_mined_at: datetime | None
    commit: str | None = None  # of the latest successful run
    findings: int = 0
    headline: bool = False


class FailurePublic(BaseModel):
    """A failed run of the repository, or a file its latest successful run could not use."""

    kind: Literal["run", "file"]
    repository: str
    status: str
    commit: str | None
    path: str | None
    finished_at: datetime | str | None
    error: str | None
    url: str | None = None  # a file's: the file at the commit on GitHub


class FailuresPublic(BaseModel):
    data: list[FailurePublic]
    count: int


class RepositoryDetail(BaseModel):
    profile: ProfilePublic
    runs: list[RunPublic]
    findings: FindingsPublic
    failures: FailuresPublic


class CrawlPublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    topics: list[str]
    query: str | None
    status: str
    started_at: str | None
    finished_at: str | None
    found: int
    enqueued: int
    unchanged: int
    runs_done: int
    runs_ok: int
    runs_failed: int
    in_flight: list[str] = []  # repositories handed out without a stored run yet
    last_progress_at: str | None = None
    error: str | None


class CrawlsPublic(BaseModel):
    data: list[CrawlPublic]
    count: int


class TrendPointPublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    k: int
    n: int
    share: float
    ci95: tuple[float, float]


class TrendPublic(BaseModel):
    data: list[TrendPointPublic]
    count: int
