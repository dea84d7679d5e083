"""`miner version`: which tool, rules and detection spec produced the numbers."""

from __future__ import annotations

from typing import Annotated

import typer

from miner import __version__
from miner.cli.common import cli_settings
from miner.core.rules import load_rules
from miner.present.output import Format, render_document

app = typer.Typer()


@app.command()
def version(
    format: Annotated[Format, typer.Option("--format", "-f", help="table (one line), json or csv.")] = Format.table,
) -> None:
    """Print the tool version, the rules version and the detection spec version they follow."""
    settings = cli_settings()
    rules = load_rules(settings.rules)
    if format is Format.table:
        typer.echo(
            f"mlflow-miner {__version__}, rules {settings.rules} {rules.version} "
            f"(detection spec version {rules.spec_version})"
        )
        return
    info = {
        "tool": "mlflow-miner",
        "version": __version__,
        "rules": rules.name,
        "rules_version": rules.version,
        "spec_version": rules.spec_version,
    }
    render_document(info, format, [("version", [info])])
