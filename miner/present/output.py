"""One output path for every command: rows in, table / JSON / CSV out on stdout; messages on stderr."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(stderr=True)  # progress and messages; stdout carries data only


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def render_rows(rows: list[dict], fmt: Format, *, title: str | None = None) -> None:
    """Print a list of flat records; an empty JSON result is `[]`, never prose."""
    if fmt is Format.json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    if fmt is Format.csv:
        if not rows:
            return
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) if isinstance(v, (list, tuple)) else v for k, v in row.items()})
        return
    table = Table(title=title, show_lines=False)
    for key in rows[0].keys() if rows else ["(no rows)"]:
        table.add_column(str(key), overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    Console(soft_wrap=False, width=max(160, Console().width)).print(table)


def render_document(document: dict, fmt: Format, table_sections: list[tuple[str, list[dict]]]) -> None:
    """A nested JSON document, or (table / csv) its sections as successive tables."""
    if fmt is Format.json:
        json.dump(document, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    for index, (title, rows) in enumerate(table_sections):
        if fmt is Format.csv:
            if index:
                sys.stdout.write("\n")
            sys.stdout.write(f"# {title}\n")
        render_rows(rows, fmt, title=title)
