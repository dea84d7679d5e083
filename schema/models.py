"""SQLModel tables: repositories, crawls, one MiningRun per (repository, commit), and its results.

Tables come from the Alembic revisions in `schema/migrations`, never from `create_all`; a test
compares these models with the migrated database so the two cannot drift apart.

Statuses, kinds and categories are the str Enums of `miner.core.domain`, stored as plain VARCHAR
(not native database enums): a new status is then a code change, not an ALTER TYPE migration.
Timestamps are stored as UTC and always read back timezone-aware, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from miner.core.domain import RULE_V1, Category, FileKind, FileStatus, RunStatus

# Constraint names are part of the schema (batch migrations on SQLite drop constraints by
# name), so every constraint gets a predictable one. Set before any table is declared.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ENUM_LENGTH = 32


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A naive datetime is taken to be UTC already (that is what SQLite hands back)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """TIMESTAMP WITH TIME ZONE on PostgreSQL, DATETIME on SQLite; aware UTC in Python either way."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        # SQLite's DATETIME drops the offset silently; store the UTC wall time explicitly.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class EnumString(sa.TypeDecorator[Enum]):
    """A str Enum stored as its value in a VARCHAR, read back as the Enum member."""

    impl = sa.String(ENUM_LENGTH)
    cache_ok = True

    def __init__(self, enum_class: type[Enum]) -> None:
        super().__init__()
        self.enum_class = enum_class

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.enum_class(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> Enum | None:
        return None if value is None else self.enum_class(value)

    @property
    def python_type(self) -> type[Enum]:
        return self.enum_class


class CrawlStatus(str, Enum):
    running = "running"
    ok = "ok"
    failed = "failed"


class Repository(SQLModel, table=True):
    """A GitHub repository as the last search saw it, and what was last mined of it."""

    id: int | None = Field(default=None, primary_key=True)
    full_name: str = Field(unique=True, index=True)  # "owner/name"
    clone_url: str | None = None
    default_branch: str | None = None
    topics: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    description: str | None = Field(default=None, sa_type=sa.Text)
    stars: int | None = None
    forks: int | None = None
    size_kb: int | None = None
    created_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pushed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    archived: bool = False
    fork: bool = False
    first_seen_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    last_mined_sha: str | None = None
    last_mined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_seen_crawl_id: int | None = Field(default=None, foreign_key="crawl.id", ondelete="SET NULL")


class Crawl(SQLModel, table=True):
    """One enumeration of GitHub topics, and how many repositories it queued for mining."""

    id: int | None = Field(default=None, primary_key=True)
    topics: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    query: str | None = None
    slices: list[Any] = Field(default_factory=list, sa_type=sa.JSON)  # creation-date slices
    started_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    repos_found: int = 0
    repos_enqueued: int = 0
    repos_skipped_unchanged: int = 0
    # repository ids handed out, in order; those without a run in this crawl are in flight
    enqueued_ids: list[int] = Field(default_factory=list, sa_type=sa.JSON, sa_column_kwargs={"server_default": "[]"})
    status: CrawlStatus = Field(default=CrawlStatus.running, sa_type=EnumString(CrawlStatus))
    error: str | None = Field(default=None, sa_type=sa.Text)


class MiningRun(SQLModel, table=True):
    """One mine of one (repository, commit); mining the same commit again replaces this row.

    `commit_sha` is None when the clone failed before a commit was known; NULLs are distinct in
    the unique constraint, so the store itself keeps those from piling up (see `schema.runs.save_run`).
    """

    __table_args__ = (
        sa.UniqueConstraint("repository_id", "commit_sha"),
        # latest successful run per repository (window over repository, ordered by finish)
        sa.Index("ix_miningrun_repository_status_finished", "repository_id", "status", "finished_at"),
        # the latest runs' usage profiles, grouped by the statistics without a sort
        sa.Index("ix_miningrun_latest_profile", "latest", "apis_used", "client_calls", "other_calls", "repository_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = Field(foreign_key="repository.id", ondelete="CASCADE")
    crawl_id: int | None = Field(default=None, foreign_key="crawl.id", ondelete="SET NULL", index=True)
    commit_sha: str | None = None
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime = Field(sa_type=UTCDateTime)
    status: RunStatus = Field(sa_type=EnumString(RunStatus))
    error: str | None = Field(default=None, sa_type=sa.Text)
    files_seen: int = 0
    files_analysed: int = 0
    files_unparsable: int = 0
    files_skipped: int = 0
    bytes_analysed: int = Field(default=0, sa_type=sa.BigInteger)
    duration_s: float = 0.0
    rules_version: str
    tool_version: str
    # The repository's latest successful run (greatest finished_at, then id): kept by
    # `schema.runs.save_run` for every run of the repository, so statistics need no anti-join.
    latest: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # The run's usage profile, folded from its findings by `schema.runs.save_run`: the apis it
    # uses (sorted, comma-separated; an autolog that only disables is no use), and its calls
    # through an MlflowClient and of category other. Rules-independent: categories are
    # applied to the distinct profiles at query time.
    apis_used: str = Field(default="", sa_column_kwargs={"server_default": ""})
    client_calls: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    other_calls: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The same profile counting only the findings of spec version 1 (rule `v1`), for figures
    # reported under that version (`miner stats --spec 1`).
    apis_used_v1: str = Field(default="", sa_column_kwargs={"server_default": ""})
    client_calls_v1: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    other_calls_v1: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class FileResult(SQLModel, table=True):
    """What happened to one file of a run: analysed, unparsable (with the message) or skipped."""

    id: int | None = Field(default=None, primary_key=True)
    mining_run_id: int = Field(foreign_key="miningrun.id", ondelete="CASCADE", index=True)
    path: str
    kind: FileKind = Field(sa_type=EnumString(FileKind))
    status: FileStatus = Field(sa_type=EnumString(FileStatus))
    error: str | None = Field(default=None, sa_type=sa.Text)
    size_bytes: int = Field(default=0, sa_type=sa.BigInteger)
    parsed: bool = False
    unparsable_cells: list[int] = Field(default_factory=list, sa_type=sa.JSON)


class Finding(SQLModel, table=True):
    """One call into the tracker's API at one place of one file (or notebook cell) of a run."""

    __table_args__ = (
        # Covers the stats queries: findings of the latest runs grouped by api without touching
        # the table itself (an index-only scan), and serves as the index of the foreign key.
        sa.Index(
            "ix_finding_run_usage",
            "mining_run_id",
            "api",
            "category",
            "via_client",
            "disabling",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    mining_run_id: int = Field(foreign_key="miningrun.id", ondelete="CASCADE")
    path: str
    line: int
    column: int
    cell: int | None = None  # notebooks: 0-based cell index
    api: str = Field(index=True)  # e.g. log_params
    category: Category = Field(sa_type=EnumString(Category), index=True)
    qualified_name: str = Field(index=True)  # e.g. mlflow.sklearn.autolog
    flavor: str | None = None
    disabling: bool = False  # autolog(disable=True)
    via_client: bool = False  # a method call on an MlflowClient
    # `v1`, or the spec version 2 kind it was found through (`%%writefile`, `assignment-alias`)
    rule: str = Field(default=RULE_V1, sa_column_kwargs={"server_default": RULE_V1})


class RunUsage(SQLModel, table=True):
    """One run's findings folded per api, written by `schema.runs.save_run` with the findings.

    Statistics read these (a handful of rows per repository) instead of every finding: on
    100,000 repositories with 2,000,000 findings that is what keeps `miner stats` under a
    second. Categories are not stored: they follow the api through the rules at query time.
    `latest` copies the run's flag. On SQLite the table is WITHOUT ROWID, i.e. clustered on
    (mining_run_id, api), so per-run aggregates stream without a sort.
    """

    __table_args__ = (
        # per-api figures of the latest runs stream from this index in api order (no sort)
        sa.Index("ix_runusage_latest_api", "latest", "api", "used", "calls", "client_calls", "other_calls"),
        {"sqlite_with_rowid": False},
    )

    mining_run_id: int = Field(foreign_key="miningrun.id", ondelete="CASCADE", primary_key=True)
    api: str = Field(primary_key=True)
    calls: int  # findings of this api
    client_calls: int = 0  # of those, via an MlflowClient
    other_calls: int = 0  # of those, of category other
    used: int = 0  # 1 unless every call disables it
    # the same four counting only findings of spec version 1 (rule `v1`)
    calls_v1: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    client_calls_v1: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    other_calls_v1: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    used_v1: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    latest: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
