"""Mining commands: `mine` (named repositories, now), `crawl` (a topic, incrementally) and
`crawls` (their progress)."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Annotated

import typer

from miner.acquire.targets import Target, parse_target
from miner.cli.common import FormatOption, cli_settings, fail, progress_bar, query_session
from miner.core.domain import MiningResult, RunStatus
from miner.core.settings import Settings
from miner.orchestrate.jobs import store_result
from miner.orchestrate.mining import mine_target, run_parallel
from miner.present.output import Format, console, render_rows

app = typer.Typer()


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
    rev: Annotated[str | None, typer.Option(help="Revision to mine (default: HEAD of the default branch).")] = None,
    name: Annotated[str | None, typer.Option(help="Store under this OWNER/NAME (one target only).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes mining in parallel (default: settings.workers).")
    ] = None,
    format: FormatOption = Format.table,
) -> None:
    """Mine one or more repositories now and store the results (re-mining a commit replaces it)."""
    from schema.db import DatabaseUnavailable, open_session

    settings = cli_settings()
    if name and len(targets) > 1:
        fail("--name names one repository; give one target with it")
    parsed: list[Target] = []
    for spec in targets:
        try:
            parsed.append(parse_target(spec, settings, name))
        except ValueError as exc:
            fail(str(exc))
    results: list[MiningResult] = []
    job = partial(mine_target, settings=settings, rev=rev)
    try:
        with open_session(settings) as session, progress_bar() as progress:
            task = progress.add_task("mining", total=len(parsed))
            for target, result in run_parallel(job, parsed, workers or settings.workers):
                store_result(session=session, result=result, settings=settings)
                results.append(result)
                progress.advance(task)
                progress.update(task, description=f"mined {target.full_name}")
    except DatabaseUnavailable as exc:
        fail(str(exc))
    rows = [_summary_row(r) for r in results]
    if format is Format.table:
        for row in rows:
            row["by_category"] = " ".join(f"{k}={v}" for k, v in row["by_category"].items())
            row["commit"] = (row["commit"] or "")[:12]
    render_rows(rows, format, title="mined")
    if any(r.status is not RunStatus.ok for r in results):
        raise typer.Exit(code=1)


@app.command()
def crawl(
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="Topic to enumerate (repeatable; default: settings.topics)."),
    ] = None,
    query: Annotated[str, typer.Option(help='Extra search qualifiers, e.g. "language:python stars:>=5".')] = "",
    limit: Annotated[int | None, typer.Option(help="Stop after this many repositories.")] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="With a broker: follow the crawl until every task is stored.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(help="Processes mining in parallel when no broker is configured.")
    ] = None,
    format: FormatOption = Format.table,
) -> None:
    """Enumerate topic repositories and mine every one whose default branch changed since its last run.

    With a broker (MINER_BROKER_URL) this only enqueues, and `celery -A workers worker` mines;
    without one it mines here, in a local pool running the same task code.
    """
    from miner.orchestrate.crawl import start_crawl
    from miner.orchestrate.jobs import mine_repository
    from schema.db import DatabaseUnavailable

    settings = cli_settings()
    topics = topic or list(settings.topics)
    try:
        with console.status("enumerating " + ", ".join(topics)) as status:
            plan = start_crawl(
                settings, topics=topics, query=query, limit=limit, on_progress=lambda message: status.update(message)
            )
    except DatabaseUnavailable as exc:
        fail(str(exc))
    except Exception as exc:  # GitHub unreachable, bad query: one line, recorded on the crawl row
        fail(f"crawl failed: {exc}")
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
                from schema.crawls import finish_crawl
                from schema.db import open_session
                from schema.models import CrawlStatus

                with open_session(settings) as session:  # not left "running" forever
                    finish_crawl(
                        session=session,
                        crawl=plan.crawl_id,
                        status=CrawlStatus.failed,
                        error=f"broker unavailable: {exc}",
                    )
                fail(f"broker unavailable: {exc}")
            console.print(f"enqueued {sent} tasks on the broker")
            if wait:
                _follow_crawl(settings, plan.crawl_id, len(plan.to_mine))
        else:
            job = partial(mine_repository, crawl_id=plan.crawl_id, settings=settings)
            with progress_bar() as progress:
                task = progress.add_task("mining", total=len(plan.to_mine))
                for _repository_id, _status in run_parallel(job, plan.to_mine, workers or settings.workers):
                    progress.advance(task)
        _print_crawls(settings, format, only=plan.crawl_id)
    except DatabaseUnavailable as exc:
        fail(str(exc))


def _follow_crawl(
    settings: Settings, crawl_id: int, expected: int, poll_s: float = 1.0, outage_limit_s: float = 900.0
) -> None:
    """Progress read from the database, until the crawl is closed (its last run stored).

    The workers go on while the database restarts (their tasks retry), so an outage only pauses
    the progress bar; one longer than `outage_limit_s` ends the wait with DatabaseUnavailable.
    """
    import time

    from sqlalchemy.exc import OperationalError

    from schema.crawls import crawl_rows
    from schema.db import DatabaseUnavailable, open_session

    outage_since: float | None = None
    with progress_bar() as progress:
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
            progress.update(
                task,
                completed=row["runs_done"],
                description=f"crawl {crawl_id}: {row['runs_ok']} ok, {row['runs_failed']} failed",
            )
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

    with query_session(settings) as session:
        rows = crawl_rows(session=session, crawl_id=only, stall_after_s=settings.crawl_stall_after_s)
    render_rows(rows, format, title="crawls")


@app.command()
def crawls(format: FormatOption = Format.table) -> None:
    """List crawls with their progress: found, enqueued, unchanged, runs stored ok / failed.

    A running crawl that stored no run for `crawl_stall_after_s` is shown as `stalled`, with the
    repositories still in flight."""
    _print_crawls(cli_settings(), format)
