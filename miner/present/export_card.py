"""`dataset.json`, the export's card: where the numbers come from and how to get them again.

It names the crawls (query, topics, date slices), the dates, every repository with its commit,
the rules and tool versions, the spec version the figures count under, the filters, the
`miner export` command line that writes the same files, and each file's row count and checksum,
so a table found later can be traced back and checked.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from miner import __version__
from miner.core.domain import LATEST_SPEC
from miner.present.export_formats import ExportFormat
from miner.present.figures import iso

if TYPE_CHECKING:  # the database modules load when an export runs, not with `miner --help`
    from sqlmodel import Session

    from miner.core.rules import Rules
    from schema.filters import Filters

CARD = "dataset.json"


def write_card(
    *,
    out_dir: Path,
    rules: Rules,
    filters: Filters,
    fmt: ExportFormat,
    database: str,
    generated_at: datetime,
    stats: dict[str, Any],
    stats_file: str,
    written: dict[str, dict[str, Any]],
    crawls: list[dict[str, Any]],
    mined: list[dict[str, Any]],
    run_dates: list[datetime],
) -> dict[str, Any]:
    """Checksum the files already in `out_dir`, write dataset.json beside them; return the card.

    `written` is each table's file, rows and columns (its sha256 is added here); `mined` the
    repositories with their commit, `run_dates` their runs' finish times, as the export read them.
    """
    for entry in written.values():
        entry["sha256"] = sha256_of(out_dir / entry["file"])
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
        "reproduce": command_line(fmt, filters),
        "format": fmt.value,
        "crawls": crawls,
        "dates": {
            "generated_at": generated_at.isoformat(),
            "runs_finished_from": iso(min(run_dates)) if run_dates else None,
            "runs_finished_to": iso(max(run_dates)) if run_dates else None,
            "crawls_started_from": min((c["started_at"] for c in crawls), default=None),
            "crawls_started_to": max((c["started_at"] for c in crawls), default=None),
        },
        "counts": {
            "repositories": stats["repositories"],
            "headline_repositories": stats["headline"]["repositories"],
            **{name: entry["rows"] for name, entry in written.items()},
        },
        "tables": written,
        "stats": {"file": stats_file, "sha256": sha256_of(out_dir / stats_file)},
        "repositories": mined,
    }
    (out_dir / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return card


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read a megabyte at a time (tables can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def crawl_records(session: Session, crawl_ids: set[int]) -> list[dict[str, Any]]:
    """The crawls the exported runs came from, oldest first, with how many runs each stored."""
    from sqlalchemy import func, select

    from schema.models import Crawl, MiningRun

    if not crawl_ids:
        return []
    crawls = session.execute(
        select(Crawl).where(Crawl.id.in_(sorted(crawl_ids))).order_by(Crawl.started_at, Crawl.id)
    ).scalars()
    runs_per_crawl = dict(
        session.execute(
            select(MiningRun.crawl_id, func.count())
            .where(MiningRun.crawl_id.in_(sorted(crawl_ids)))
            .group_by(MiningRun.crawl_id)
        ).all()
    )
    return [
        {
            "id": crawl.id,
            "query": crawl.query,
            "topics": list(crawl.topics),
            "slices": list(crawl.slices),
            "started_at": iso(crawl.started_at),
            "finished_at": iso(crawl.finished_at),
            "status": getattr(crawl.status, "value", crawl.status),
            "repos_found": crawl.repos_found,
            "repos_enqueued": crawl.repos_enqueued,
            "repos_skipped_unchanged": crawl.repos_skipped_unchanged,
            "runs_stored": int(runs_per_crawl.get(crawl.id, 0)),
        }
        for crawl in crawls
    ]


def command_line(fmt: ExportFormat, filters: Filters) -> str:
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
