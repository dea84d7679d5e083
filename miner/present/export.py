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

This module runs the export; the tables are defined in export_tables, written by the writers
of export_formats, and described by the card of export_card.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from miner.present.export_card import crawl_records, write_card
from miner.present.export_formats import WRITERS, ExportFormat
from miner.present.export_tables import export_tables
from miner.present.figures import iso

if TYPE_CHECKING:  # the database modules load when an export runs, not with `miner --help`
    from sqlalchemy import Select
    from sqlmodel import Session

    from miner.core.rules import Rules
    from schema.filters import Filters

CHUNK_ROWS = 50_000
STATS = "stats.json"


def _stream(session: Session, statement: Select[Any], chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    """The statement's rows in lists of at most `chunk_rows` (server-side cursor on PostgreSQL)."""
    result = session.execute(statement.execution_options(yield_per=chunk_rows))
    for partition in result.partitions(chunk_rows):
        yield [tuple(row) for row in partition]


def _begin_snapshot(session: Session) -> None:
    """Read every table from one snapshot, so the files and stats.json agree under writers."""
    session.commit()  # store functions leave nothing pending; this only ends an idle transaction
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    else:  # pysqlite opens no transaction for reads; a deferred BEGIN pins the WAL snapshot
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
    generated_at = generated_at or datetime.now(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer_class = WRITERS[fmt]

    _begin_snapshot(session)
    try:
        tables = export_tables(rules, filters)
        written: dict[str, dict[str, Any]] = {}
        mined: list[dict[str, Any]] = []  # the card's repository list
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
                        mined.extend(
                            {"full_name": row[1], "commit": row[15], "mined_at": iso(row[16])} for row in chunk
                        )
                        run_dates.extend(row[16] for row in chunk if row[16] is not None)
                    elif table.name == "runs":
                        crawl_ids.update(row[3] for row in chunk if row[3] is not None)
            finally:
                writer.close()
            written[table.name] = {
                "file": path.name,
                "rows": rows_written,
                "columns": [name for name, _kind in table.columns],
            }
        stats = compute_stats(session=session, rules=rules, filters=filters)
        crawls = crawl_records(session, crawl_ids)
    finally:
        session.rollback()  # end the snapshot; nothing was written through this session

    (out_dir / STATS).write_text(json.dumps(stats, indent=2, default=str) + "\n", encoding="utf-8")
    return write_card(
        out_dir=out_dir,
        rules=rules,
        filters=filters,
        fmt=fmt,
        database=database,
        generated_at=generated_at,
        stats=stats,
        stats_file=STATS,
        written=written,
        crawls=crawls,
        mined=mined,
        run_dates=run_dates,
    )
