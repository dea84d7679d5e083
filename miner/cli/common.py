"""What every `miner` command shares: settings, the one-line failure, the --format and filter
options, the session of a read command, and the progress bar (all on stderr)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from miner.core.domain import LATEST_SPEC, SPEC_VERSIONS
from miner.core.settings import Settings, load_settings
from miner.present.output import Format, console

if TYPE_CHECKING:
    from schema.filters import Filters

FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def cli_settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # pydantic ValidationError, bad YAML: one line, no traceback
        console.print(f"[red]error:[/red] invalid settings: {exc}")
        raise typer.Exit(code=1) from None


def fail(message: str) -> NoReturn:
    """One line on stderr however long (not wrapped at the console width, it may list every
    valid name), user text unstyled; then exit code 1."""
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=1)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def with_filters(command: Callable[..., None]) -> Callable[..., None]:
    """Give a query command the shared filter options, handed to it as one `filters: Filters`.

    --topic, --min-stars, --exclude-forks, --exclude-archived, --crawl ID, --since DATE,
    --spec 1|2: the same set for stats, findings, repos, export and report (and the same names
    as the API's).
    """
    signature = inspect.signature(command)
    # Typer reads the evaluated annotations; `filters` is ours to fill and never evaluated, so
    # schema.filters (and SQLAlchemy) load only when a query command runs.
    own = [
        parameter.replace(annotation=eval(parameter.annotation, command.__globals__))  # noqa: S307
        if isinstance(parameter.annotation, str)
        else parameter
        for parameter in signature.parameters.values()
        if parameter.name != "filters"
    ]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
        for name, annotation, default in _FILTER_OPTIONS
    ]

    @functools.wraps(command)
    def run(
        *args: Any,
        topic: str | None,
        min_stars: int | None,
        exclude_forks: bool,
        exclude_archived: bool,
        crawl: int | None,
        since: str | None,
        spec: int,
        **kwargs: Any,
    ) -> None:
        from schema.filters import Filters, parse_since

        try:
            since_at = parse_since(since) if since is not None else None
        except ValueError as exc:
            fail(f"--since: {exc}")
        filters = Filters(
            topic=topic,
            min_stars=min_stars,
            exclude_forks=exclude_forks,
            exclude_archived=exclude_archived,
            crawl_id=crawl,
            since=since_at,
            spec=spec,
        )
        command(*args, filters=filters, **kwargs)

    parameters = [*own, *added]
    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return run


_FILTER_OPTIONS: list[tuple[str, Any, Any]] = [
    (
        "topic",
        Annotated[
            str | None, typer.Option(help="Only repositories with this GitHub topic.", rich_help_panel="Filters")
        ],
        None,
    ),
    (
        "min_stars",
        Annotated[
            int | None,
            typer.Option(min=0, help="Only repositories with at least this many stars.", rich_help_panel="Filters"),
        ],
        None,
    ),
    (
        "exclude_forks",
        Annotated[bool, typer.Option("--exclude-forks", help="Leave forks out.", rich_help_panel="Filters")],
        False,
    ),
    (
        "exclude_archived",
        Annotated[
            bool, typer.Option("--exclude-archived", help="Leave archived repositories out.", rich_help_panel="Filters")
        ],
        False,
    ),
    (
        "crawl",
        Annotated[
            int | None,
            typer.Option(
                "--crawl",
                metavar="ID",
                help="The latest successful run within this crawl (default: overall).",
                rich_help_panel="Filters",
            ),
        ],
        None,
    ),
    (
        "since",
        Annotated[
            str | None,
            typer.Option(
                metavar="DATE",
                help="Only runs finished at or after this ISO date or datetime (UTC unless an offset is given).",
                rich_help_panel="Filters",
            ),
        ],
        None,
    ),
    (
        "spec",
        Annotated[
            int,
            typer.Option(
                min=SPEC_VERSIONS[0],
                max=LATEST_SPEC,
                metavar="1|2",
                help="Count findings under this version of the detection spec: 1 leaves out what version 2 added (cell magics, assignment aliases, computed getattr, client-annotated parameters).",
                rich_help_panel="Filters",
            ),
        ],
        LATEST_SPEC,
    ),
]


def _check_crawl(session: Any, filters: Filters) -> None:
    """--crawl names an existing crawl; a typo should not look like an empty result."""
    from schema.models import Crawl

    if filters.crawl_id is not None and session.get(Crawl, filters.crawl_id) is None:
        fail(f"--crawl: no crawl with id {filters.crawl_id} (see `miner crawls`)")


@contextmanager
def query_session(settings: Settings, filters: Filters | None = None) -> Iterator[Any]:
    """The session of a read command: an unknown --crawl or an unreachable database ends the
    command with one line on stderr and exit code 1, never a traceback."""
    from schema.db import DatabaseUnavailable, open_session

    try:
        with open_session(settings) as session:
            if filters is not None:
                _check_crawl(session, filters)
            yield session
    except DatabaseUnavailable as exc:
        fail(str(exc))
