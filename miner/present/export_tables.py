"""What `miner export` writes: the four tables (repositories, runs, file results, findings), each
a SELECT with its columns and their kinds, built on the same queries as the statistics.

The database modules load when an export runs, not with `miner --help`, hence the imports
inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from miner.core.domain import LATEST_SPEC
from miner.present.export_formats import BOOL, FLOAT, INT, INT_LIST, STR, STR_LIST, TIME

if TYPE_CHECKING:
    from sqlalchemy import Select

    from miner.core.rules import Rules
    from schema.filters import Filters


@dataclass(frozen=True)
class ExportTable:
    """One exported file: its name, its columns with their kinds, and the SELECT that fills it."""

    name: str
    columns: Sequence[tuple[str, str]]  # (name, kind), in the order the statement selects
    statement: Select[Any]


def export_tables(rules: Rules, filters: Filters) -> list[ExportTable]:
    """The tables in the order they are written; the card reads the first two as they stream."""
    return [
        repositories_table(rules, filters),
        runs_table(filters),
        file_results_table(filters),
        findings_table(filters),
    ]


def _plain(column: Any) -> Any:
    """A stored Enum column read as its text: no per-row conversion to Enum members."""
    from sqlalchemy import String, type_coerce

    return type_coerce(column, String)


def repositories_table(rules: Rules, filters: Filters) -> ExportTable:
    from sqlalchemy import func

    from miner.present.repositories import repository_statement
    from schema.models import Repository

    statement, latest, per_run = repository_statement(rules, filters, (), ())
    categories = [category.value for category in rules.categories]
    statement = statement.with_only_columns(
        Repository.id,
        Repository.full_name,
        Repository.stars,
        Repository.forks,
        Repository.fork,
        Repository.archived,
        Repository.topics,
        Repository.description,
        Repository.clone_url,
        Repository.default_branch,
        Repository.size_kb,
        Repository.created_at,
        Repository.pushed_at,
        Repository.first_seen_at,
        latest.c.id,
        latest.c.commit_sha,
        latest.c.finished_at,
        func.coalesce(per_run.c.findings, 0),
        latest.c.headline == 1,
        *(func.coalesce(per_run.c[f"count_{name}"], 0) for name in categories),
    ).order_by(Repository.full_name)
    columns = [
        ("repository_id", INT),
        ("full_name", STR),
        ("stars", INT),
        ("forks", INT),
        ("fork", BOOL),
        ("archived", BOOL),
        ("topics", STR_LIST),
        ("description", STR),
        ("clone_url", STR),
        ("default_branch", STR),
        ("size_kb", INT),
        ("created_at", TIME),
        ("pushed_at", TIME),
        ("first_seen_at", TIME),
        ("run_id", INT),
        ("commit", STR),
        ("mined_at", TIME),
        ("findings", INT),
        ("headline", BOOL),
        *((name, INT) for name in categories),
    ]
    return ExportTable("repositories", columns, statement)


def runs_table(filters: Filters) -> ExportTable:
    from sqlalchemy import case, select

    from miner.present.failures import failed_last_runs
    from schema.latest import latest_runs
    from schema.models import MiningRun, Repository

    latest = select(latest_runs(filters=filters).subquery("latest").c.id)
    last_failed = failed_last_runs(filters)
    statement = (
        select(
            MiningRun.id,
            MiningRun.repository_id,
            Repository.full_name,
            MiningRun.crawl_id,
            MiningRun.commit_sha,
            _plain(MiningRun.status),
            case((MiningRun.id.in_(latest), "latest_ok"), else_="latest_failed"),
            MiningRun.error,
            MiningRun.started_at,
            MiningRun.finished_at,
            MiningRun.files_seen,
            MiningRun.files_analysed,
            MiningRun.files_unparsable,
            MiningRun.files_skipped,
            MiningRun.bytes_analysed,
            MiningRun.duration_s,
            MiningRun.rules_version,
            MiningRun.tool_version,
        )
        .join(Repository, Repository.id == MiningRun.repository_id)
        .where(MiningRun.id.in_(latest) | MiningRun.id.in_(last_failed))
        .order_by(Repository.full_name, MiningRun.finished_at, MiningRun.id)
    )
    columns = [
        ("run_id", INT),
        ("repository_id", INT),
        ("repository", STR),
        ("crawl_id", INT),
        ("commit", STR),
        ("status", STR),
        ("role", STR),
        ("error", STR),
        ("started_at", TIME),
        ("finished_at", TIME),
        ("files_seen", INT),
        ("files_analysed", INT),
        ("files_unparsable", INT),
        ("files_skipped", INT),
        ("bytes_analysed", INT),
        ("duration_s", FLOAT),
        ("rules_version", STR),
        ("tool_version", STR),
    ]
    return ExportTable("runs", columns, statement)


def file_results_table(filters: Filters) -> ExportTable:
    from sqlalchemy import select

    from schema.latest import latest_runs
    from schema.models import FileResult, Repository

    latest = latest_runs(filters=filters).subquery("latest")
    statement = (
        select(
            FileResult.id,
            FileResult.mining_run_id,
            Repository.full_name,
            latest.c.commit_sha,
            FileResult.path,
            _plain(FileResult.kind),
            _plain(FileResult.status),
            FileResult.error,
            FileResult.size_bytes,
            FileResult.parsed,
            FileResult.unparsable_cells,
        )
        .join(latest, latest.c.id == FileResult.mining_run_id)
        .join(Repository, Repository.id == latest.c.repository_id)
        .order_by(Repository.full_name, FileResult.path, FileResult.id)
    )
    columns = [
        ("file_id", INT),
        ("run_id", INT),
        ("repository", STR),
        ("commit", STR),
        ("path", STR),
        ("kind", STR),
        ("status", STR),
        ("error", STR),
        ("size_bytes", INT),
        ("parsed", BOOL),
        ("unparsable_cells", INT_LIST),
    ]
    return ExportTable("file_results", columns, statement)


def findings_table(filters: Filters) -> ExportTable:
    from sqlalchemy import select

    from schema.latest import latest_runs
    from schema.models import Finding, Repository
    from schema.spec import spec_columns

    latest = latest_runs(filters=filters).subquery("latest")
    statement = (
        select(
            Finding.id,
            Finding.mining_run_id,
            Repository.full_name,
            latest.c.commit_sha,
            Finding.path,
            Finding.cell,
            Finding.line,
            Finding.column,
            Finding.api,
            _plain(Finding.category),
            Finding.qualified_name,
            Finding.flavor,
            Finding.disabling,
            Finding.via_client,
            Finding.rule,
        )
        .join(latest, latest.c.id == Finding.mining_run_id)
        .join(Repository, Repository.id == latest.c.repository_id)
        # the run's own order: by run, then as stored (file by file, line by line)
        .order_by(Finding.mining_run_id, Finding.id)
    )
    if filters.spec < LATEST_SPEC:  # only the findings counted under that spec version
        statement = statement.where(spec_columns(filters.spec).findings)
    columns = [
        ("finding_id", INT),
        ("run_id", INT),
        ("repository", STR),
        ("commit", STR),
        ("path", STR),
        ("cell", INT),
        ("line", INT),
        ("column", INT),
        ("api", STR),
        ("category", STR),
        ("qualified_name", STR),
        ("flavor", STR),
        ("disabling", BOOL),
        ("via_client", BOOL),
        ("rule", STR),
    ]
    return ExportTable("findings", columns, statement)
