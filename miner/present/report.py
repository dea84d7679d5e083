"""`miner report --out DIR`: one self-contained HTML page, the same charts as PNG files, the stats.

The page embeds every chart as a base64 data URI and inlines its CSS, so `index.html` alone can
be mailed or archived; the PNGs beside it are for slides and papers, and `stats.json` is the
document the numbers came from.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from miner import __version__
from miner.core.domain import LATEST_SPEC
from miner.core.rules import Rules
from miner.present.charts import Chart, chart_card, render_charts
from miner.present.web import templates
from schema.filters import Filters

INDEX = "index.html"
STATS = "stats.json"
# Columns of the failures table first in this order; any further ones follow as given.
FAILURE_COLUMNS = ("repository", "full_name", "status", "kind", "path", "commit", "finished_at", "error")
MAX_FAILURE_ROWS = 1000


@dataclass
class ReportFiles:
    """What `write_report` wrote, for the CLI to print."""

    index: Path
    charts: dict[str, Path] = field(default_factory=dict)
    stats: Path | None = None


def describe_filters(filters: Filters | None) -> str:
    """`topic=nlp, min_stars=10` or `none`, for the page's header."""
    if filters is None:
        return "none"
    parts = [
        f"{name}={value}"
        for name, value in filters.as_dict().items()
        if value not in (None, False) and not (name == "spec" and value == LATEST_SPEC)
    ]
    return ", ".join(parts) or "none"


def _failure_columns(rows: list[dict[str, Any]]) -> list[str]:
    present: dict[str, None] = {}
    for row in rows:
        present.update(dict.fromkeys(row))
    ordered = [column for column in FAILURE_COLUMNS if column in present]
    return ordered + [column for column in present if column not in ordered]


def _flatten(mapping: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    flat: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.extend(_flatten(value, f"{prefix}{key}."))
        else:
            flat.append((f"{prefix}{key}", value))
    return flat


def write_report(
    *,
    session: Session,
    rules: Rules,
    out_dir: Path,
    filters: Filters | None = None,
    database: str = "",
    generated_at: datetime | None = None,
) -> ReportFiles:
    """Query, draw and write `index.html`, one PNG per chart and `stats.json` into `out_dir`."""
    from miner.present.failures import failure_rows
    from miner.present.stats import compute_stats

    generated_at = generated_at or datetime.now(UTC)
    stats = compute_stats(session=session, rules=rules, filters=filters)
    pngs = render_charts(session=session, rules=rules, filters=filters, stats=stats)
    failures = failure_rows(session=session, filters=filters)

    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(index=out_dir / INDEX, stats=out_dir / STATS)
    charts = []
    for chart in Chart:
        path = out_dir / f"{chart.value}.png"
        path.write_bytes(pngs[chart])
        files.charts[chart.value] = path
        charts.append(
            {
                **chart_card(chart),
                "file": path.name,
                "base64": base64.b64encode(pngs[chart]).decode("ascii"),
            }
        )
    page = templates.get_template("report.html.j2").render(
        stats=stats,
        charts=charts,
        failure_summary=_flatten(stats["failures"]),
        failures=failures[:MAX_FAILURE_ROWS],
        failure_columns=_failure_columns(failures),
        generated_at=generated_at.isoformat(timespec="seconds"),
        tool_version=__version__,
        filter_text=describe_filters(filters),
        database=database,
    )
    files.index.write_text(page, encoding="utf-8")
    files.stats.write_text(json.dumps(stats, indent=2, default=str) + "\n", encoding="utf-8")
    return files
