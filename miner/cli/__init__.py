"""The `miner` command line: one root Typer app, one module per command group.

mining (mine, crawl, crawls), queries (stats, findings, repos), outputs (export, report,
serve), evaluate (eval), doctor and version add their commands at the top level; `db` is a
group of its own (`miner db upgrade`). What they share is in `common`.
"""

from __future__ import annotations

import typer

from miner.cli import db, doctor, evaluate, mining, outputs, queries, version

app = typer.Typer(
    help="Mine GitHub repositories for how they use the MLflow tracking API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for group in (mining, queries, outputs, evaluate, doctor, version):
    app.add_typer(group.app)
app.add_typer(db.app, name="db")

__all__ = ["app"]
