"""`miner doctor`: the checks live in miner.orchestrate.doctor; this prints their verdicts."""

from __future__ import annotations

import typer

from miner.cli.common import FormatOption, cli_settings
from miner.present.output import Format, render_rows

app = typer.Typer()


@app.command()
def doctor(format: FormatOption = Format.table) -> None:
    """Check settings, database, broker, git and GitHub access; say what is missing."""
    from miner.orchestrate.doctor import Verdict, run_checks

    checks = run_checks(cli_settings())
    render_rows([c.as_row() for c in checks], format, title="doctor")
    if any(c.verdict is Verdict.fail for c in checks):
        raise typer.Exit(code=1)
