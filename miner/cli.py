"""The `miner` command line: mine, stats, findings, eval (crawl and query commands join later)."""

from __future__ import annotations

import functools
import inspect
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from miner import __version__
from miner.core.rules import load_rules
from miner.core.domain import LATEST_SPEC, SPEC_VERSIONS, MiningResult, RunStatus
from miner.orchestrate.jobs import store_result
from miner.present.evaluation import EvalReport, api_table, find_git_dir, kind_table, score_repository
from miner.present.export_formats import ExportFormat
from miner.orchestrate.mining import mine_target, run_parallel
from miner.present.output import Format, console, render_document, render_rows
from miner.analyse.pipeline import mine_commit
from miner.core.settings import Settings, load_settings
from miner.acquire.targets import Target, parse_target

if TYPE_CHECKING:
    from schema.filters import Filters

app = typer.Typer(
    help="Mine GitHub repositories for how they use the MLflow tracking API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def _settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # pydantic ValidationError, bad YAML: one line, no traceback
        console.print(f"[red]error:[/red] invalid settings: {exc}")
        raise typer.Exit(code=1) from None


def _fail(message: str) -> None:
    """One line on stderr however long (not wrapped at the console width), user text unstyled."""
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=1)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _summary_row(result: MiningResult) -> dict:
    by_category = Counter(f.category.value for f in result.findings)
    return {
        "repository": result.full_name,
        "status": result.status.value,
        "commit": result.commit_sha,
        "files_analysed": result.files_analysed,
        "files_unparsable": result.files_unparsable,
        "files_skipped": result.files_skipped,
        "findings": len(result.findings),
        "by_category": dict(sorted(by_category.items())),
        "error": result.error,
    }


@app.command()
def mine(
    targets: Annotated[list[str], typer.Argument(help="owner/name, a clone URL, or a local git repository path.")],
    rev: Annotated[Optional[str], typer.Option(help="Revision to mine (default: HEAD of the default branch).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Store under this OWNER/NAME (one target only).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Processes mining in parallel (default: settings.workers).")] = None,
    format: FormatOption = Format.table,
) -> None:
    """Mine one or more repositories now and store the results (re-mining a commit replaces it)."""
    from schema.db import DatabaseUnavailable, open_session

    settings = _settings()
    if name and len(targets) > 1:
        _fail("--name names one repository; give one target with it")
    parsed: list[Target] = []
    for spec in targets:
        try:
            parsed.append(parse_target(spec, settings, name))
        except ValueError as exc:
            _fail(str(exc))
    results: list[MiningResult] = []
    job = partial(mine_target, settings=settings, rev=rev)
    try:
        with open_session(settings) as session, _progress() as progress:
            task = progress.add_task("mining", total=len(parsed))
            for target, result in run_parallel(job, parsed, workers or settings.workers):
                store_result(session=session, result=result, settings=settings)
                results.append(result)
                progress.advance(task)
                progress.update(task, description=f"mined {target.full_name}")
    except DatabaseUnavailable as exc:
        _fail(str(exc))
    rows = [_summary_row(r) for r in results]
    if format is Format.table:
        for row in rows:
            row["by_category"] = " ".join(f"{k}={v}" for k, v in row["by_category"].items())
            row["commit"] = (row["commit"] or "")[:12]
    render_rows(rows, format, title="mined")
    if any(r.status is not RunStatus.ok for r in results):
        raise typer.Exit(code=1)


# --------------------------------------------------------------------------- query filters

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
        if isinstance(parameter.annotation, str) else parameter
        for parameter in signature.parameters.values() if parameter.name != "filters"
    ]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
        for name, annotation, default in _FILTER_OPTIONS
    ]

    @functools.wraps(command)
    def run(*args: Any, topic: str | None, min_stars: int | None, exclude_forks: bool,
            exclude_archived: bool, crawl: int | None, since: str | None, spec: int,
            **kwargs: Any) -> None:
        from schema.filters import Filters, parse_since

        try:
            since_at = parse_since(since) if since is not None else None
        except ValueError as exc:
            _query_error(f"--since: {exc}")
            return
        filters = Filters(topic=topic, min_stars=min_stars, exclude_forks=exclude_forks,
                          exclude_archived=exclude_archived, crawl_id=crawl, since=since_at,
                          spec=spec)
        command(*args, filters=filters, **kwargs)

    parameters = [*own, *added]
    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return run


_FILTER_OPTIONS: list[tuple[str, Any, Any]] = [
    ("topic", Annotated[Optional[str], typer.Option(help="Only repositories with this GitHub topic.", rich_help_panel="Filters")], None),
    ("min_stars", Annotated[Optional[int], typer.Option(min=0, help="Only repositories with at least this many stars.", rich_help_panel="Filters")], None),
    ("exclude_forks", Annotated[bool, typer.Option("--exclude-forks", help="Leave forks out.", rich_help_panel="Filters")], False),
    ("exclude_archived", Annotated[bool, typer.Option("--exclude-archived", help="Leave archived repositories out.", rich_help_panel="Filters")], False),
    ("crawl", Annotated[Optional[int], typer.Option("--crawl", metavar="ID", help="The latest successful run within this crawl (default: overall).", rich_help_panel="Filters")], None),
    ("since", Annotated[Optional[str], typer.Option(metavar="DATE", help="Only runs finished at or after this ISO date or datetime (UTC unless an offset is given).", rich_help_panel="Filters")], None),
    ("spec", Annotated[int, typer.Option(min=SPEC_VERSIONS[0], max=LATEST_SPEC, metavar="1|2", help="Count findings under this version of the detection spec: 1 leaves out what version 2 added (cell magics, assignment aliases, computed getattr, client-annotated parameters).", rich_help_panel="Filters")], LATEST_SPEC),
]


def _query_error(message: str) -> None:
    """One line on stderr however long (it may list every valid name), user text unstyled."""
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=1)


def _check_crawl(session: Any, filters: Filters) -> None:
    """--crawl names an existing crawl; a typo should not look like an empty result."""
    from schema.models import Crawl

    if filters.crawl_id is not None and session.get(Crawl, filters.crawl_id) is None:
        _query_error(f"--crawl: no crawl with id {filters.crawl_id} (see `miner crawls`)")


@contextmanager
def _query_session(settings: Settings, filters: Filters | None = None) -> Iterator[Any]:
    """The session of a read command: an unknown --crawl or an unreachable database ends the
    command with one line on stderr and exit code 1, never a traceback."""
    from schema.db import DatabaseUnavailable, open_session

    try:
        with open_session(settings) as session:
            if filters is not None:
                _check_crawl(session, filters)
            yield session
    except DatabaseUnavailable as exc:
        _fail(str(exc))


@app.command()
@with_filters
def stats(format: FormatOption = Format.table, *, filters: Filters) -> None:
    """Usage statistics over the latest successful run of each repository."""
    from miner.present.stats import compute_stats

    settings = _settings()
    rules = load_rules(settings.rules)
    with _query_session(settings, filters) as session:
        document = compute_stats(session=session, rules=rules, filters=filters)
    headline = document["headline"]
    overview = [{
        "spec": document["spec"],
        "repositories": document["repositories"],
        "headline_repositories": headline["repositories"],
        "headline_share": headline["share"],
        "ci95_low": headline["ci95"][0],
        "ci95_high": headline["ci95"][1],
    }]
    apis = [{"api": api, **values} for api, values in document["apis"].items()]
    categories = [{"category": cat, **values} for cat, values in document["categories"].items()]
    failures = [{"failure": key, "count": value} for key, value in _flatten(document["failures"]).items()]
    render_document(document, format, [
        ("headline: share calling log_param(s) / log_metric(s) / autolog", overview),
        ("apis", apis),
        ("categories", categories),
        ("failures", failures),
    ])


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
    repo: Annotated[Optional[str], typer.Option(help="Only this OWNER/NAME.")] = None,
    api: Annotated[Optional[str], typer.Option(help="Only this api (e.g. log_param).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many rows.")] = None,
    format: FormatOption = Format.table,
    *,
    filters: Filters,
) -> None:
    """Every finding of the latest successful run of each repository."""
    from miner.present.findings import finding_rows

    settings = _settings()
    with _query_session(settings, filters) as session:
        rows = finding_rows(session=session, repo=repo, api=api, filters=filters, limit=limit)
    render_rows(rows, format, title="findings")


@app.command()
@with_filters
def repos(
    uses: Annotated[Optional[list[str]], typer.Option("--uses", metavar="API|CATEGORY", help="Only repositories using this api or category (repeatable: all of them).")] = None,
    not_uses: Annotated[Optional[list[str]], typer.Option("--not-uses", metavar="API|CATEGORY", help="Only repositories using none of these (repeatable).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many rows.")] = None,
    format: FormatOption = Format.table,
    *,
    filters: Filters,
) -> None:
    """Repositories with their usage profile: one column per category, counting calls."""
    from miner.present.repositories import repository_rows

    settings = _settings()
    rules = load_rules(settings.rules)
    try:
        with _query_session(settings, filters) as session:
            rows = repository_rows(session=session, rules=rules, filters=filters,
                                   uses=uses or [], not_uses=not_uses or [], limit=limit)
    except ValueError as exc:   # an unknown api or category: the message lists the valid ones
        _query_error(str(exc))
        return
    if format is Format.table:   # narrower for people; json and csv carry every column
        for row in rows:
            row["commit"] = (row["commit"] or "")[:12]
            del row["topics"], row["mined_at"]
    render_rows(rows, format, title="repositories")


@app.command()
@with_filters
def export(
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="File format of the tables.")] = ExportFormat.parquet,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into (created if missing).")] = Path("export"),
    *,
    filters: Filters,
) -> None:
    """Write repositories, runs, file results, findings, stats.json and a dataset.json card to DIR."""
    from miner.present.export import write_export
    from schema.db import safe_url

    settings = _settings()
    rules = load_rules(settings.rules)
    try:
        with _query_session(settings, filters) as session, console.status(f"exporting to {out}"):
            card = write_export(session=session, rules=rules, out_dir=out, fmt=format,
                                filters=filters, database=safe_url(settings.database_url))
    except OSError as exc:
        _fail(f"cannot write the export to {out}: {exc}")
        return
    counts = ", ".join(f"{name} {table['rows']}" for name, table in card["tables"].items())
    console.print(f"exported to {out}: {counts}")


def _mine_corpus_entry(entry: dict, repos_root: Path, settings: Settings) -> MiningResult | None:
    git_dir = find_git_dir(repos_root, entry["repo"])
    if git_dir is None:
        return None
    return mine_commit(git_dir, full_name=entry["repo"], rules=load_rules(settings.rules),
                       limits=settings.limits, rev=entry["commit"])


def _git_dir_bytes(git_dir: Path | None) -> int:
    if git_dir is None:
        return 0
    return sum(f.stat().st_size for f in (git_dir / "objects").rglob("*") if f.is_file())


@app.command(name="eval")
def evaluate(
    corpus: Annotated[Path, typer.Argument(help="Labelled corpus (see docs/evaluation.md).")],
    repos_root: Annotated[Path, typer.Option("--repos-root", help="Folder holding OWNER+NAME/repo git directories.")],
    workers: Annotated[Optional[int], typer.Option(help="Processes mining in parallel.")] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
) -> None:
    """Score the detector against a labelled corpus: per-api precision/recall and every disagreement."""
    settings = _settings()
    rules = load_rules(settings.rules)
    try:
        document = json.loads(corpus.read_text("utf-8"))
        entries = list(document["repositories"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _fail(f"cannot read corpus {corpus}: {exc}")
        return
    report = EvalReport()
    job = partial(_mine_corpus_entry, repos_root=repos_root, settings=settings)
    by_repo: dict[str, MiningResult | None] = {}
    # Largest repositories first, so that no big one is left running alone at the end.
    ordered = sorted(entries, key=lambda e: -_git_dir_bytes(find_git_dir(repos_root, e["repo"])))
    with _progress() as progress:
        task = progress.add_task("evaluating", total=len(entries))
        for entry, result in run_parallel(job, ordered, workers or settings.workers):
            by_repo[entry["repo"]] = result
            progress.advance(task)
    for entry in entries:  # score in corpus order so the report is reproducible
        result = by_repo[entry["repo"]]
        if result is None:
            report.missing.append(entry["repo"])
            continue
        if result.status is not RunStatus.ok:
            report.failed[entry["repo"]] = result.error or result.status.value
            continue
        report.repositories.append(entry["repo"])
        score_repository(entry, result.findings, rules, report)
    if report.missing:
        console.print(f"[yellow]missing, skipped:[/yellow] {', '.join(report.missing)}")
    out = report.as_dict()
    calls = out["calls"]
    summary = [{"repositories": out["repositories"], "missing": len(report.missing), "failed": len(report.failed),
                **{f"calls_{k}": v for k, v in calls.items()},
                "headline_detected": out["headline"]["detected_share"],
                "headline_labelled": out["headline"]["labelled_share"]}]
    if format is Format.json:
        out["apis"] = api_table(report, rules)
        out["kinds"] = kind_table(report)
    render_document(out, format if format is Format.json else Format.table, [
        ("summary", summary),
        ("per api: repository level and call level", api_table(report, rules)),
        ("per detection spec kind (labels' spec_v2, else v1), every category", kind_table(report)),
        ("disagreements", out["disagreements"] or [{"disagreements": "none"}]),
        ("rule found differs from the label's kind", out["rule_mismatches"] or [{"rule_mismatches": "none"}]),
    ])


@app.command()
def crawl(
    topic: Annotated[Optional[list[str]], typer.Option("--topic", "-t", help="Topic to enumerate (repeatable; default: settings.topics).")] = None,
    query: Annotated[str, typer.Option(help='Extra search qualifiers, e.g. "language:python stars:>=5".')] = "",
    limit: Annotated[Optional[int], typer.Option(help="Stop after this many repositories.")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="With a broker: follow the crawl until every task is stored.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Processes mining in parallel when no broker is configured.")] = None,
    format: FormatOption = Format.table,
) -> None:
    """Enumerate topic repositories and mine every one whose default branch changed since its last run.

    With a broker (MINER_BROKER_URL) this only enqueues, and `celery -A workers worker` mines;
    without one it mines here, in a local pool running the same task code.
    """
    from miner.orchestrate.crawl import start_crawl
    from miner.orchestrate.jobs import mine_repository
    from schema.db import DatabaseUnavailable

    settings = _settings()
    topics = topic or list(settings.topics)
    try:
        with console.status("enumerating " + ", ".join(topics)) as status:
            plan = start_crawl(settings, topics=topics, query=query, limit=limit,
                               on_progress=lambda message: status.update(message))
    except DatabaseUnavailable as exc:
        _fail(str(exc))
        return
    except Exception as exc:  # GitHub unreachable, bad query: one line, recorded on the crawl row
        _fail(f"crawl failed: {exc}")
        return
    console.print(
        f"crawl {plan.crawl_id}: {plan.found} repositories found, {len(plan.to_mine)} to mine, "
        f"{plan.skipped_unchanged} unchanged"
    )
    try:
        if settings.broker_url:
            from kombu.exceptions import OperationalError as BrokerUnavailable

            from workers.tasks import enqueue_plan

            try:
                sent = enqueue_plan(plan, settings.broker_url)
            except BrokerUnavailable as exc:
                from schema.db import open_session
                from schema.models import CrawlStatus
                from schema.crawls import finish_crawl

                with open_session(settings) as session:   # not left "running" forever
                    finish_crawl(session=session, crawl=plan.crawl_id, status=CrawlStatus.failed,
                                 error=f"broker unavailable: {exc}")
                _fail(f"broker unavailable: {exc}")
                return
            console.print(f"enqueued {sent} tasks on the broker")
            if wait:
                _follow_crawl(settings, plan.crawl_id, len(plan.to_mine))
        else:
            job = partial(mine_repository, crawl_id=plan.crawl_id, settings=settings)
            with _progress() as progress:
                task = progress.add_task("mining", total=len(plan.to_mine))
                for _repository_id, _status in run_parallel(job, plan.to_mine, workers or settings.workers):
                    progress.advance(task)
        _print_crawls(settings, format, only=plan.crawl_id)
    except DatabaseUnavailable as exc:
        _fail(str(exc))


def _follow_crawl(settings: Settings, crawl_id: int, expected: int, poll_s: float = 1.0,
                  outage_limit_s: float = 900.0) -> None:
    """Progress read from the database, until the crawl is closed (its last run stored).

    The workers go on while the database restarts (their tasks retry), so an outage only pauses
    the progress bar; one longer than `outage_limit_s` ends the wait with DatabaseUnavailable.
    """
    import time

    from sqlalchemy.exc import OperationalError

    from schema.crawls import crawl_rows
    from schema.db import DatabaseUnavailable, open_session

    outage_since: float | None = None
    with _progress() as progress:
        task = progress.add_task(f"crawl {crawl_id}", total=expected)
        while True:
            try:
                with open_session(settings) as session:
                    row = crawl_rows(session=session, crawl_id=crawl_id)[0]
            except (DatabaseUnavailable, OperationalError) as exc:
                outage_since = outage_since or time.monotonic()
                if time.monotonic() - outage_since > outage_limit_s:
                    raise DatabaseUnavailable(
                        f"the database stayed unreachable for {outage_limit_s:.0f} s while following "
                        f"crawl {crawl_id}; the workers go on, `miner crawls` shows its progress"
                    ) from exc
                progress.update(task, description=f"crawl {crawl_id}: database unavailable, retrying")
                time.sleep(poll_s)
                continue
            outage_since = None
            progress.update(task, completed=row["runs_done"],
                            description=f"crawl {crawl_id}: {row['runs_ok']} ok, {row['runs_failed']} failed")
            if row["status"] != "running":
                return
            if row["runs_done"] >= expected:
                # every run is stored; the task that stored the last one closes the crawl a
                # moment later (or died first): closing is idempotent, so close it here too
                from schema.crawls import close_crawl_if_done

                with open_session(settings) as session:
                    close_crawl_if_done(session=session, crawl_id=crawl_id)
                return
            time.sleep(poll_s)


def _print_crawls(settings: Settings, format: Format, only: int | None = None) -> None:
    from schema.crawls import crawl_rows

    with _query_session(settings) as session:
        rows = crawl_rows(session=session, crawl_id=only, stall_after_s=settings.crawl_stall_after_s)
    render_rows(rows, format, title="crawls")


@app.command()
def crawls(format: FormatOption = Format.table) -> None:
    """List crawls with their progress: found, enqueued, unchanged, runs stored ok / failed.

    A running crawl that stored no run for `crawl_stall_after_s` is shown as `stalled`, with the
    repositories still in flight."""
    _print_crawls(_settings(), format)


@app.command()
def doctor(format: FormatOption = Format.table) -> None:
    """Check settings, database, broker, git and GitHub access; say what is missing."""
    from miner.orchestrate.doctor import Verdict, run_checks

    checks = run_checks(_settings())
    render_rows([c.as_row() for c in checks], format, title="doctor")
    if any(c.verdict is Verdict.fail for c in checks):
        raise typer.Exit(code=1)


db_app = typer.Typer(help="Results database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to the configured database (idempotent)."""
    from schema.db import DatabaseUnavailable, current_revision, safe_url, upgrade

    settings = _settings()
    try:
        upgrade(settings.database_url)
        revision = current_revision(settings.database_url)
    except DatabaseUnavailable as exc:
        _fail(str(exc))
        return
    console.print(f"{safe_url(settings.database_url)} is at schema revision {revision}")


@app.command()
def version(
    format: Annotated[Format, typer.Option("--format", "-f", help="table (one line), json or csv.")] = Format.table,
) -> None:
    """Print the tool version, the rules version and the detection spec version they follow."""
    settings = _settings()
    rules = load_rules(settings.rules)
    if format is Format.table:
        typer.echo(f"mlflow-miner {__version__}, rules {settings.rules} {rules.version} "
                   f"(detection spec version {rules.spec_version})")
        return
    info = {"tool": "mlflow-miner", "version": __version__, "rules": rules.name,
            "rules_version": rules.version, "spec_version": rules.spec_version}
    render_document(info, format, [("version", [info])])


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

    settings = _settings()
    rules = load_rules(settings.rules)
    try:
        with _query_session(settings, filters) as session:
            files = write_report(session=session, rules=rules, out_dir=out, filters=filters,
                                 database=safe_url(settings.database_url))
    except OSError as exc:
        _fail(f"cannot write the report to {out}: {exc}")
        return
    console.print(f"report written to {files.index} ({len(files.charts)} charts)")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the read-only API (OpenAPI at /docs) and the dashboard (/) with uvicorn."""
    import uvicorn

    from miner.present.api import create_app
    settings = _settings()
    with _query_session(settings):   # migrate and fail now, in one line, not on the first request
        pass
    console.print(f"serving on http://{host}:{port}/ (API docs at /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


if __name__ == "__main__":
    app()
