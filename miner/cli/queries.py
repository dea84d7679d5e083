"""Query commands over the latest successful run of each repository: `stats`, `findings`, `repos`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from miner.cli.common import FormatOption, cli_settings, fail, query_session, with_filters
from miner.core.rules import load_rules
from miner.present.output import Format, render_document, render_rows

if TYPE_CHECKING:
    from schema.filters import Filters

app = typer.Typer()


@app.command()
@with_filters
def stats(format: FormatOption = Format.table, *, filters: Filters) -> None:
    """Usage statistics over the latest successful run of each repository."""
    from miner.present.stats import compute_stats

    settings = cli_settings()
    rules = load_rules(settings.rules)
    with query_session(settings, filters) as session:
        document = compute_stats(session=session, rules=rules, filters=filters)
    headline = document["headline"]
    overview = [
        {
            "spec": document["spec"],
            "repositories": document["repositories"],
            "headline_repositories": headline["repositories"],
            "headline_share": headline["share"],
            "ci95_low": headline["ci95"][0],
            "ci95_high": headline["ci95"][1],
        }
    ]
    apis = [{"api": api, **values} for api, values in document["apis"].items()]
    categories = [{"category": cat, **values} for cat, values in document["categories"].items()]
    failures = [{"failure": key, "count": value} for key, value in _flatten(document["failures"]).items()]
    render_document(
        document,
        format,
        [
            ("headline: share calling log_param(s) / log_metric(s) / autolog", overview),
            ("apis", apis),
            ("categories", categories),
            ("failures", failures),
        ],
    )


def _flatten(mapping: dict, prefix: str = "") -> dict:
    flat: dict = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@app.command()
@with_filters
def findings(
    repo: Annotated[str | None, typer.Option(help="Only this OWNER/NAME.")] = None,
    api: Annotated[str | None, typer.Option(help="Only this api (e.g. log_param).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
    format: FormatOption = Format.table,
    *,
    filters: Filters,
) -> None:
    """Every finding of the latest successful run of each repository."""
    from miner.present.findings import finding_rows

    settings = cli_settings()
    with query_session(settings, filters) as session:
        rows = finding_rows(session=session, repo=repo, api=api, filters=filters, limit=limit)
    render_rows(rows, format, title="findings")


@app.command()
@with_filters
def repos(
    uses: Annotated[
        list[str] | None,
        typer.Option(
            "--uses",
            metavar="API|CATEGORY",
            help="Only repositories using this api or category (repeatable: all of them).",
        ),
    ] = None,
    not_uses: Annotated[
        list[str] | None,
        typer.Option("--not-uses", metavar="API|CATEGORY", help="Only repositories using none of these (repeatable)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
    format: FormatOption = Format.table,
    *,
    filters: Filters,
) -> None:
    """Repositories with their usage profile: one column per category, counting calls."""
    from miner.present.repositories import repository_rows

    settings = cli_settings()
    rules = load_rules(settings.rules)
    try:
        with query_session(settings, filters) as session:
            rows = repository_rows(
                session=session, rules=rules, filters=filters, uses=uses or [], not_uses=not_uses or [], limit=limit
            )
    except ValueError as exc:  # an unknown api or category: the message lists the valid ones
        fail(str(exc))
    if format is Format.table:  # narrower for people; json and csv carry every column
        for row in rows:
            row["commit"] = (row["commit"] or "")[:12]
            del row["topics"], row["mined_at"]
    render_rows(rows, format, title="repositories")
