"""`miner export`: the tables behind `miner stats`, as files for notebooks, plus a dataset card.

What is written is exactly what the statistics are computed from, under the same filters:
the repositories counted (one row each, with the commit mined and the usage profile), their
latest successful runs and each repository's latest run when it failed, the file results and
findings of the latest successful runs, `stats.json` (the `miner stats --format json`
document), and `dataset.json`, which says where the numbers come from: the crawls (query,
topics, date slices), dates, every repository with its commit, rules and tool versions, the
spec version the figures count under, the filters, row counts and checksums. With `--spec 1`
the findings and counts are those of the spec's version 1 rules only.

Tables stream from the database in chunks (a server-side cursor on PostgreSQL) and are written
chunk by chunk, so two million findings never sit in one Python list. Everything is read in
one transaction (a snapshot), so the tables and stats.json describe the same data.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from miner import __version__
from miner.core.domain import LATEST_SPEC

if TYPE_CHECKING:   # the database modules load when an export runs, not with `miner --help`
    from sqlalchemy import Select
    from sqlmodel import Session

    from miner.core.rules import Rules
    from schema.filters import Filters

CHUNK_ROWS = 50_000
CARD = "dataset.json"
STATS = "stats.json"


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


# Column kinds: how a value is typed in Parquet and spelled in CSV / JSON.
INT, STR, BOOL, FLOAT, TIME, STR_LIST, INT_LIST = (
    "int", "str", "bool", "float", "time", "str_list", "int_list"
)


@dataclass(frozen=True)
class ExportTable:
    name: str
    columns: Sequence[tuple[str, str]]     # (name, kind), in the order the statement selects
    statement: Select[Any]


# ---------------------------------------------------------------------------------- the tables

def _plain(column: Any) -> Any:
    """A stored Enum column read as its text: no per-row conversion to Enum members."""
    from sqlalchemy import String, type_coerce

    return type_coerce(column, String)


def _repositories_table(rules: Rules, filters: Filters) -> ExportTable:
    from sqlalchemy import func

    from miner.present.stats import repository_statement
    from schema.models import Repository

    statement, latest, per_run = repository_statement(rules, filters, (), ())
    categories = [category.value for category in rules.categories]
    statement = statement.with_only_columns(
        Repository.id, Repository.full_name, Repository.stars, Repository.forks, Repository.fork,
        Repository.archived, Repository.topics, Repository.description, Repository.clone_url,
        Repository.default_branch, Repository.size_kb, Repository.created_at,
        Repository.pushed_at, Repository.first_seen_at, latest.c.id, latest.c.commit_sha,
        latest.c.finished_at, func.coalesce(per_run.c.findings, 0), latest.c.headline == 1,
        *(func.coalesce(per_run.c[f"count_{name}"], 0) for name in categories),
    ).order_by(Repository.full_name)
    columns = [
        ("repository_id", INT), ("full_name", STR), ("stars", INT), ("forks", INT),
        ("fork", BOOL), ("archived", BOOL), ("topics", STR_LIST), ("description", STR),
        ("clone_url", STR), ("default_branch", STR), ("size_kb", INT), ("created_at", TIME),
        ("pushed_at", TIME), ("first_seen_at", TIME), ("run_id", INT), ("commit", STR),
        ("mined_at", TIME), ("findings", INT), ("headline", BOOL),
        *((name, INT) for name in categories),
    ]
    return ExportTable("repositories", columns, statement)


def _runs_table(filters: Filters) -> ExportTable:
    from sqlalchemy import case, select

    from miner.present.stats import failed_last_runs
    from schema.models import MiningRun, Repository
    from schema.latest import latest_runs

    latest = select(latest_runs(filters=filters).subquery("latest").c.id)
    last_failed = failed_last_runs(filters)
    statement = (
        select(
            MiningRun.id, MiningRun.repository_id, Repository.full_name, MiningRun.crawl_id,
            MiningRun.commit_sha, _plain(MiningRun.status),
            case((MiningRun.id.in_(latest), "latest_ok"), else_="latest_failed"),
            MiningRun.error, MiningRun.started_at, MiningRun.finished_at, MiningRun.files_seen,
            MiningRun.files_analysed, MiningRun.files_unparsable, MiningRun.files_skipped,
            MiningRun.bytes_analysed, MiningRun.duration_s, MiningRun.rules_version,
            MiningRun.tool_version,
        )
        .join(Repository, Repository.id == MiningRun.repository_id)
        .where(MiningRun.id.in_(latest) | MiningRun.id.in_(last_failed))
        .order_by(Repository.full_name, MiningRun.finished_at, MiningRun.id)
    )
    columns = [
        ("run_id", INT), ("repository_id", INT), ("repository", STR), ("crawl_id", INT),
        ("commit", STR), ("status", STR), ("role", STR), ("error", STR), ("started_at", TIME),
        ("finished_at", TIME), ("files_seen", INT), ("files_analysed", INT),
        ("files_unparsable", INT), ("files_skipped", INT), ("bytes_analysed", INT),
        ("duration_s", FLOAT), ("rules_version", STR), ("tool_version", STR),
    ]
    return ExportTable("runs", columns, statement)


def _file_results_table(filters: Filters) -> ExportTable:
    from sqlalchemy import select

    from schema.models import FileResult, Repository
    from schema.latest import latest_runs

    latest = latest_runs(filters=filters).subquery("latest")
    statement = (
        select(
            FileResult.id, FileResult.mining_run_id, Repository.full_name, latest.c.commit_sha,
            FileResult.path, _plain(FileResult.kind), _plain(FileResult.status), FileResult.error,
            FileResult.size_bytes, FileResult.parsed, FileResult.unparsable_cells,
        )
        .join(latest, latest.c.id == FileResult.mining_run_id)
        .join(Repository, Repository.id == latest.c.repository_id)
        .order_by(Repository.full_name, FileResult.path, FileResult.id)
    )
    columns = [
        ("file_id", INT), ("run_id", INT), ("repository", STR), ("commit", STR), ("path", STR),
        ("kind", STR), ("status", STR), ("error", STR), ("size_bytes", INT), ("parsed", BOOL),
        ("unparsable_cells", INT_LIST),
    ]
    return ExportTable("file_results", columns, statement)


def _findings_table(filters: Filters) -> ExportTable:
    from sqlalchemy import select

    from schema.models import Finding, Repository
    from schema.spec import spec_columns
    from schema.latest import latest_runs

    latest = latest_runs(filters=filters).subquery("latest")
    statement = (
        select(
            Finding.id, Finding.mining_run_id, Repository.full_name, latest.c.commit_sha,
            Finding.path, Finding.cell, Finding.line, Finding.column, Finding.api,
            _plain(Finding.category), Finding.qualified_name, Finding.flavor, Finding.disabling,
            Finding.via_client, Finding.rule,
        )
        .join(latest, latest.c.id == Finding.mining_run_id)
        .join(Repository, Repository.id == latest.c.repository_id)
        # the run's own order: by run, then as stored (file by file, line by line)
        .order_by(Finding.mining_run_id, Finding.id)
    )
    if filters.spec < LATEST_SPEC:   # only the findings counted under that spec version
        statement = statement.where(spec_columns(filters.spec).findings)
    columns = [
        ("finding_id", INT), ("run_id", INT), ("repository", STR), ("commit", STR),
        ("path", STR), ("cell", INT), ("line", INT), ("column", INT), ("api", STR),
        ("category", STR), ("qualified_name", STR), ("flavor", STR), ("disabling", BOOL),
        ("via_client", BOOL), ("rule", STR),
    ]
    return ExportTable("findings", columns, statement)


# --------------------------------------------------------------------------------- the writers

def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _json_list(value: Any) -> str:
    return json.dumps(list(value or []))


class _TableWriter:
    """Receives a table chunk by chunk (lists of row tuples)."""

    suffix = ""

    def __init__(self, path: Path, columns: Sequence[tuple[str, str]]) -> None:
        self.path, self.columns = path, list(columns)

    def write(self, rows: list[tuple[Any, ...]]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _converters(self, kinds: dict[str, Callable[[Any], Any]]) -> list[tuple[int, Callable[[Any], Any]]]:
        return [(index, kinds[kind]) for index, (_name, kind) in enumerate(self.columns)
                if kind in kinds]

    @staticmethod
    def _convert(rows: list[tuple[Any, ...]],
                 converters: list[tuple[int, Callable[[Any], Any]]]) -> Iterator[list[Any]]:
        for row in rows:
            values = list(row)
            for index, convert in converters:
                values[index] = convert(values[index])
            yield values


class _CsvWriter(_TableWriter):
    """RFC 4180 CSV with a header; times in ISO 8601, lists as JSON arrays, empty for NULL."""

    def __init__(self, path: Path, columns: Sequence[tuple[str, str]]) -> None:
        super().__init__(path, columns)
        self.handle = path.open("w", encoding="utf-8", newline="")
        self.writer = csv.writer(self.handle, lineterminator="\n")
        self.writer.writerow([name for name, _kind in self.columns])
        self.converters = self._converters({TIME: _iso, STR_LIST: _json_list, INT_LIST: _json_list})

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self.writer.writerows(self._convert(rows, self.converters))

    def close(self) -> None:
        self.handle.close()


class _JsonWriter(_TableWriter):
    """One JSON array of records, written record by record; times in ISO 8601."""

    def __init__(self, path: Path, columns: Sequence[tuple[str, str]]) -> None:
        super().__init__(path, columns)
        self.handle = path.open("w", encoding="utf-8")
        self.handle.write("[")
        self.first = True
        self.names = [name for name, _kind in self.columns]
        self.converters = self._converters({TIME: _iso, BOOL: lambda v: None if v is None else bool(v)})

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        for values in self._convert(rows, self.converters):
            self.handle.write("\n" if self.first else ",\n")
            self.handle.write(json.dumps(dict(zip(self.names, values)), ensure_ascii=False))
            self.first = False

    def close(self) -> None:
        self.handle.write("\n]\n")
        self.handle.close()


class _ParquetWriter(_TableWriter):
    """A typed Parquet file, one row group per chunk (times as UTC microsecond timestamps)."""

    def __init__(self, path: Path, columns: Sequence[tuple[str, str]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(path, columns)
        types = {
            INT: pa.int64(), STR: pa.string(), BOOL: pa.bool_(), FLOAT: pa.float64(),
            TIME: pa.timestamp("us", tz="UTC"), STR_LIST: pa.list_(pa.string()),
            INT_LIST: pa.list_(pa.int64()),
        }
        self.pa = pa
        self.schema = pa.schema([(name, types[kind]) for name, kind in self.columns])
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        columns = list(zip(*rows)) if rows else [() for _ in self.columns]
        arrays = [self.pa.array(values, type=field.type)
                  for values, field in zip(columns, self.schema)]
        self.writer.write_batch(self.pa.RecordBatch.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


WRITERS: dict[ExportFormat, type[_TableWriter]] = {
    ExportFormat.csv: _CsvWriter,
    ExportFormat.json: _JsonWriter,
    ExportFormat.parquet: _ParquetWriter,
}


def _stream(session: Session, statement: Select[Any], chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    """The statement's rows in lists of at most `chunk_rows` (server-side cursor on PostgreSQL)."""
    result = session.execute(statement.execution_options(yield_per=chunk_rows))
    for partition in result.partitions(chunk_rows):
        yield [tuple(row) for row in partition]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _begin_snapshot(session: Session) -> None:
    """Read every table from one snapshot, so the files and stats.json agree under writers."""
    session.commit()   # store functions leave nothing pending; this only ends an idle transaction
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    else:   # pysqlite opens no transaction for reads; a deferred BEGIN pins the WAL snapshot
        session.connection().exec_driver_sql("BEGIN")


# ----------------------------------------------------------------------------------- the export

def write_export(
    *,
    session: Session,
    rules: Rules,
    out_dir: Path,
    fmt: ExportFormat | str = ExportFormat.parquet,
    filters: Filters | None = None,
    database: str = "",
    chunk_rows: int = CHUNK_ROWS,
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """Write the four tables in `fmt`, stats.json and dataset.json into `out_dir`; return the card."""
    from miner.present.stats import compute_stats
    from schema.filters import merge_crawl

    fmt = ExportFormat(fmt)
    filters = merge_crawl(filters, None)
    generated_at = generated_at or datetime.now(timezone.utc)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer_class = WRITERS[fmt]

    _begin_snapshot(session)
    try:
        tables = [
            _repositories_table(rules, filters),
            _runs_table(filters),
            _file_results_table(filters),
            _findings_table(filters),
        ]
        written: dict[str, dict[str, Any]] = {}
        mined: list[dict[str, Any]] = []          # the card's repository list
        crawl_ids: set[int] = set()
        run_dates: list[datetime] = []
        for table in tables:
            path = out_dir / f"{table.name}.{fmt.value}"
            writer = writer_class(path, table.columns)
            rows_written = 0
            try:
                for chunk in _stream(session, table.statement, chunk_rows):
                    writer.write(chunk)
                    rows_written += len(chunk)
                    if table.name == "repositories":
                        mined.extend({"full_name": row[1], "commit": row[15],
                                      "mined_at": _iso(row[16])} for row in chunk)
                        run_dates.extend(row[16] for row in chunk if row[16] is not None)
                    elif table.name == "runs":
                        crawl_ids.update(row[3] for row in chunk if row[3] is not None)
            finally:
                writer.close()
            written[table.name] = {"file": path.name, "rows": rows_written,
                                   "columns": [name for name, _kind in table.columns]}
        stats = compute_stats(session=session, rules=rules, filters=filters)
        crawls = _crawl_records(session, crawl_ids)
    finally:
        session.rollback()   # end the snapshot; nothing was written through this session

    (out_dir / STATS).write_text(json.dumps(stats, indent=2, default=str) + "\n", encoding="utf-8")
    for entry in written.values():
        entry["sha256"] = _sha256(out_dir / entry["file"])
    card = {
        "title": f"{rules.name} API usage mined by mlflow-miner",
        "generated_at": generated_at.isoformat(),
        "tool": {"name": "mlflow-miner", "version": __version__},
        "rules": {
            "name": rules.name,
            "version": rules.version,
            "mined_with_versions": stats["mined_with_rules_versions"],
            "headline_apis": list(rules.headline_apis),
            # the spec version the rules follow, and the one the figures and tables count under
            "spec_version": rules.spec_version,
            "spec": filters.spec,
        },
        "database": database,
        "filters": filters.as_dict(),
        "reproduce": _command_line(fmt, filters),
        "format": fmt.value,
        "crawls": crawls,
        "dates": {
            "generated_at": generated_at.isoformat(),
            "runs_finished_from": _iso(min(run_dates)) if run_dates else None,
            "runs_finished_to": _iso(max(run_dates)) if run_dates else None,
            "crawls_started_from": min((c["started_at"] for c in crawls), default=None),
            "crawls_started_to": max((c["started_at"] for c in crawls), default=None),
        },
        "counts": {
            "repositories": stats["repositories"],
            "headline_repositories": stats["headline"]["repositories"],
            **{name: entry["rows"] for name, entry in written.items()},
        },
        "tables": written,
        "stats": {"file": STATS, "sha256": _sha256(out_dir / STATS)},
        "repositories": mined,
    }
    (out_dir / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n",
                                encoding="utf-8")
    return card


def _crawl_records(session: Session, crawl_ids: set[int]) -> list[dict[str, Any]]:
    from sqlalchemy import func, select

    from schema.models import Crawl, MiningRun

    if not crawl_ids:
        return []
    crawls = session.execute(
        select(Crawl).where(Crawl.id.in_(sorted(crawl_ids))).order_by(Crawl.started_at, Crawl.id)
    ).scalars()
    runs_per_crawl = dict(session.execute(
        select(MiningRun.crawl_id, func.count())
        .where(MiningRun.crawl_id.in_(sorted(crawl_ids)))
        .group_by(MiningRun.crawl_id)
    ).all())
    return [
        {
            "id": crawl.id,
            "query": crawl.query,
            "topics": list(crawl.topics),
            "slices": list(crawl.slices),
            "started_at": _iso(crawl.started_at),
            "finished_at": _iso(crawl.finished_at),
            "status": getattr(crawl.status, "value", crawl.status),
            "repos_found": crawl.repos_found,
            "repos_enqueued": crawl.repos_enqueued,
            "repos_skipped_unchanged": crawl.repos_skipped_unchanged,
            "runs_stored": int(runs_per_crawl.get(crawl.id, 0)),
        }
        for crawl in crawls
    ]


def _command_line(fmt: ExportFormat, filters: Filters) -> str:
    """The `miner export` call that writes these files again from the same database."""
    parts = ["miner", "export", "--format", fmt.value, "--out", "DIR"]
    if filters.topic is not None:
        parts += ["--topic", json.dumps(filters.topic)]
    if filters.min_stars is not None:
        parts += ["--min-stars", str(filters.min_stars)]
    if filters.exclude_forks:
        parts.append("--exclude-forks")
    if filters.exclude_archived:
        parts.append("--exclude-archived")
    if filters.crawl_id is not None:
        parts += ["--crawl", str(filters.crawl_id)]
    if filters.since is not None:
        parts += ["--since", filters.since.isoformat()]
    if filters.spec != LATEST_SPEC:
        parts += ["--spec", str(filters.spec)]
    return " ".join(parts)
