"""Output commands: `export` (tables and a dataset card), `report` (HTML with charts) and
`serve` (the read-only API and dashboard)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from miner.cli.common import cli_settings, fail, query_session, with_filters
from miner.core.rules import load_rules
from miner.present.export_formats import ExportFormat
from miner.present.output import console

if TYPE_CHECKING:
    from schema.filters import Filters

app = typer.Typer()


@app.command()
@with_filters
def export(
    format: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="File format of the tables.")
    ] = ExportFormat.parquet,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into (created if missing).")] = Path(
        "export"
    ),
    *,
    filters: Filters,
) -> None:
    """Write repositories, runs, file results, findings, stats.json and a dataset.json card to DIR."""
    from miner.present.export import write_export
    from schema.db import safe_url

    settings = cli_settings()
    rules = load_rules(settings.rules)
    try:
        with query_session(settings, filters) as session, console.status(f"exporting to {out}"):
            card = write_export(
                session=session,
                rules=rules,
                out_dir=out,
                fmt=format,
                filters=filters,
                database=safe_url(settings.database_url),
            )
    except OSError as exc:
        fail(f"cannot write the export to {out}: {exc}")
    counts = ", ".join(f"{name} {table['rows']}" for name, table in card["tables"].items())
    console.print(f"exported to {out}: {counts}")


@app.command()
@with_filters
def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for index.html, the chart PNGs and stats.json.")],
    *,
    filters: Filters,
) -> None:
    """Write a self-contained HTML report with charts (also as PNG files) and the failures."""
    from miner.present.report import write_report
    from schema.db import safe_url

    settings = cli_settings()
    rules = load_rules(settings.rules)
    try:
        with query_session(settings, filters) as session:
            files = write_report(
                session=session, rules=rules, out_dir=out, filters=filters, database=safe_url(settings.database_url)
            )
    except OSError as exc:
        fail(f"cannot write the report to {out}: {exc}")
    console.print(f"report written to {files.index} ({len(files.charts)} charts)")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the read-only API (OpenAPI at /docs) and the dashboard (/) with uvicorn."""
    import uvicorn

    from miner.present.api import create_app

    settings = cli_settings()
    with query_session(settings):  # migrate and fail now, in one line, not on the first request
        pass
    console.print(f"serving on http://{host}:{port}/ (API docs at /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
