"""`miner db ...`: results database maintenance, a group of its own."""

from __future__ import annotations

import typer

from miner.cli.common import cli_settings, fail
from miner.present.output import console

app = typer.Typer(help="Results database maintenance.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to the configured database (idempotent)."""
    from schema.db import DatabaseUnavailable, current_revision, safe_url, upgrade

    settings = cli_settings()
    try:
        upgrade(settings.database_url)
        revision = current_revision(settings.database_url)
    except DatabaseUnavailable as exc:
        fail(str(exc))
    console.print(f"{safe_url(settings.database_url)} is at schema revision {revision}")
