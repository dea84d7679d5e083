"""schema.repositories, runs, latest, crawls on SQLite and PostgreSQL: upserts, replacing runs, history, races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from miner.core.domain import (
    Category,
    FileKind,
    FileStatus,
    MiningResult,
    RunStatus,
)
from miner.core.domain import FileResult as FileOutcome
from miner.core.domain import Finding as Call
from miner.core.rules import load_rules
from miner.present.stats import compute_stats
from schema.crawls import create_crawl, finish_crawl
from schema.db import open_session
from schema.latest import latest_runs
from schema.models import CrawlStatus, FileResult, Finding, MiningRun, Repository
from schema.repositories import get_repository, load_repository, upsert_repository
from schema.runs import save_run

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RULES_VERSION = "test-rules"
TOOL_VERSION = "0.0-test"


def call(
    api: str,
    *,
    path: str = "train.py",
    line: int = 1,
    flavor: str | None = None,
    category: Category | None = None,
    via_client: bool = False,
    disabling: bool = False,
    cell: int | None = None,
) -> Call:
    if via_client:
        qualified = f"mlflow.client.MlflowClient.{api}"
    else:
        qualified = f"mlflow.{flavor}.{api}" if flavor else f"mlflow.{api}"
    return Call(
        path=path,
        line=line,
        column=0,
        qualified_name=qualified,
        api=api,
        category=category or (Category.client if via_client else load_rules().category_of(api)),
        flavor=flavor,
        cell=cell,
        disabling=disabling,
        via_client=via_client,
    )


def result(
    full_name: str,
    sha: str | None,
    *calls: Call,
    status: RunStatus = RunStatus.ok,
    minutes: int = 0,
    files: list[FileOutcome] | None = None,
    error: str | None = None,
) -> MiningResult:
    started = T0 + timedelta(minutes=minutes)
    if files is None:
        files = [
            FileOutcome(path=path, kind=FileKind.py, status=FileStatus.ok, size_bytes=100, parsed=True)
            for path in sorted({c.path for c in calls})
        ]
    return MiningResult(
        full_name=full_name,
        commit_sha=sha,
        status=status,
        started_at=started,
        finished_at=started + timedelta(seconds=30),
        error=error,
        files=files,
        findings=list(calls),
        bytes_analysed=100,
    )


def save(session: Session, repository: Repository, mined: MiningResult, crawl_id: int | None = None) -> MiningRun:
    return save_run(
        session=session,
        repository=repository,
        result=mined,
        crawl_id=crawl_id,
        rules_version=RULES_VERSION,
        tool_version=TOOL_VERSION,
    )


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def latest(session: Session, crawl_id: int | None = None) -> dict[int, str]:
    return {row.repository_id: row.commit_sha for row in session.exec(latest_runs(session=session, crawl_id=crawl_id))}


# ------------------------------------------------------------------------------ repositories


def test_upsert_repository_is_idempotent_and_keeps_fields_given_as_none(session: Session) -> None:
    first = upsert_repository(
        session=session,
        full_name="acme/a",
        clone_url="https://github.com/acme/a.git",
        default_branch="main",
        stars=3,
        topics=["mlflow-projects"],
        pushed_at=datetime(2025, 5, 1, 8, 30, tzinfo=UTC),
    )
    again = upsert_repository(session=session, full_name="acme/a", stars=5, default_branch=None, description=None)

    assert again.id == first.id
    assert count(session, Repository) == 1
    session.expire_all()
    stored = get_repository(session=session, full_name="acme/a")
    assert stored is not None
    assert (stored.stars, stored.default_branch) == (5, "main")
    assert stored.clone_url == "https://github.com/acme/a.git"
    assert stored.topics == ["mlflow-projects"]
    assert stored.pushed_at == datetime(2025, 5, 1, 8, 30, tzinfo=UTC)
    assert stored.first_seen_at.tzinfo is not None


def test_upsert_repository_rejects_unknown_fields(session: Session) -> None:
    with pytest.raises(TypeError, match="stargazers"):
        upsert_repository(session=session, full_name="acme/a", stargazers=1)


def test_concurrent_upserts_of_one_name_make_one_row(database_url: str) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def upsert(index: int) -> None:
        try:
            with open_session(database_url) as session:
                barrier.wait()
                upsert_repository(session=session, full_name="acme/race", stars=index)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=upsert, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with open_session(database_url) as session:
        assert count(session, Repository) == 1


# ----------------------------------------------------------------------------------------- runs


def test_saving_the_same_commit_twice_replaces_the_run(session: Session) -> None:
    repository = upsert_repository(session=session, full_name="acme/a")
    save(session, repository, result("acme/a", "c1", call("log_param"), call("log_metric")))
    second = save(
        session, repository, result("acme/a", "c1", call("autolog", flavor="sklearn", path="fit.py"), minutes=5)
    )

    assert count(session, MiningRun) == 1
    assert session.exec(select(MiningRun.id)).one() == second.id
    assert session.exec(select(Finding.api)).all() == ["autolog"]
    assert session.exec(select(FileResult.path)).all() == ["fit.py"]
    assert {f.mining_run_id for f in session.exec(select(Finding)).all()} == {second.id}


def test_a_successful_run_records_the_mined_commit_on_the_repository(session: Session) -> None:
    repository = upsert_repository(session=session, full_name="acme/a")
    run = save(session, repository, result("acme/a", "c1", call("log_param"), minutes=10))
    save(
        session,
        repository,
        result("acme/a", None, status=RunStatus.clone_failed, minutes=20, error="fatal: repository not found"),
    )
    # an older commit saved late (a redelivered task) does not move the marker back
    save(session, repository, result("acme/a", "c0", call("log_param"), minutes=1))

    session.expire_all()
    stored = load_repository(session=session, repository_id=repository.id)
    assert stored.last_mined_sha == "c1"
    assert stored.last_mined_at == run.finished_at
    assert run.rules_version == RULES_VERSION and run.tool_version == TOOL_VERSION
    assert run.duration_s == 30.0 and run.files_seen == 1 and run.files_analysed == 1


def test_run_columns_round_trip(session: Session) -> None:
    repository = upsert_repository(session=session, full_name="acme/nb")
    files = [
        FileOutcome(
            path="a.ipynb",
            kind=FileKind.ipynb,
            status=FileStatus.unparsable,
            error="SyntaxError in cell 2",
            size_bytes=2048,
            parsed=True,
            unparsable_cells=(2,),
        ),
        FileOutcome(path="venv/site-packages/x.py", kind=FileKind.py, status=FileStatus.skipped),
    ]
    run = save(
        session, repository, result("acme/nb", "abc", call("log_metrics", path="a.ipynb", cell=3, line=4), files=files)
    )

    session.expire_all()
    stored_run = session.get(MiningRun, run.id)
    assert stored_run.status is RunStatus.ok
    assert (stored_run.files_seen, stored_run.files_unparsable, stored_run.files_skipped) == (2, 1, 1)
    assert stored_run.started_at == T0
    notebook = session.exec(select(FileResult).where(FileResult.path == "a.ipynb")).one()
    assert notebook.kind is FileKind.ipynb and notebook.status is FileStatus.unparsable
    assert notebook.unparsable_cells == [2] and notebook.error == "SyntaxError in cell 2"
    finding = session.exec(select(Finding)).one()
    assert finding.category is Category.metrics
    assert (finding.cell, finding.line, finding.qualified_name) == (3, 4, "mlflow.log_metrics")


def test_concurrent_saves_of_one_commit_leave_one_run(database_url: str) -> None:
    with open_session(database_url) as session:
        repository = upsert_repository(session=session, full_name="acme/race")
    calls = [call("log_param", line=n) for n in range(1, 201)]

    for round_ in range(3):
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def save_in_thread(minutes: int) -> None:
            try:
                with open_session(database_url) as own:
                    barrier.wait()
                    save(own, repository, result("acme/race", "c1", *calls, minutes=minutes))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=save_in_thread, args=(round_ * 10 + i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        with open_session(database_url) as session:
            assert count(session, MiningRun) == 1
            assert count(session, Finding) == len(calls)
            assert count(session, FileResult) == 1
            run_id = session.exec(select(MiningRun.id)).one()
            assert set(session.exec(select(Finding.mining_run_id)).all()) == {run_id}


def test_runs_of_different_commits_are_history_and_latest_runs_picks_the_newest_ok(
    session: Session,
) -> None:
    a = upsert_repository(session=session, full_name="acme/a")
    b = upsert_repository(session=session, full_name="acme/b")
    save(session, a, result("acme/a", "a1", call("log_param"), minutes=0))
    save(session, a, result("acme/a", "a2", call("log_metric"), minutes=10))
    save(session, a, result("acme/a", "a3", status=RunStatus.timeout, minutes=20))
    save(session, b, result("acme/b", "b2", call("log_param"), minutes=30))
    save(session, b, result("acme/b", "b1", call("log_param"), minutes=5))
    upsert_repository(session=session, full_name="acme/never-mined")

    assert count(session, MiningRun) == 5
    assert latest(session) == {a.id: "a2", b.id: "b2"}
    subquery = latest_runs(session=session).subquery()
    apis = session.exec(
        select(Finding.api).join(subquery, Finding.mining_run_id == subquery.c.id).order_by(Finding.api)
    ).all()
    assert apis == ["log_metric", "log_param"]


def test_latest_runs_within_a_crawl(session: Session) -> None:
    first = create_crawl(session=session, topics=["mlflow-projects"])
    second = create_crawl(session=session, topics=["mlflow-projects"], query="stars:>1")
    a = upsert_repository(session=session, full_name="acme/a", last_seen_crawl_id=first.id)
    save(session, a, result("acme/a", "a1", call("log_param"), minutes=0), crawl_id=first.id)
    save(session, a, result("acme/a", "a2", call("log_param"), minutes=10), crawl_id=second.id)

    assert latest(session, crawl_id=first.id) == {a.id: "a1"}
    assert latest(session, crawl_id=second.id) == {a.id: "a2"}
    assert latest(session) == {a.id: "a2"}


def test_failed_runs_without_commit_replace_each_other_within_a_crawl(session: Session) -> None:
    crawl = create_crawl(session=session, topics=["mlflow-projects"])
    later = create_crawl(session=session, topics=["mlflow-projects"])
    a = upsert_repository(session=session, full_name="acme/a")
    for minutes in (0, 1, 2):  # a task retried three times in one crawl
        save(
            session,
            a,
            result("acme/a", None, status=RunStatus.clone_failed, minutes=minutes, error=f"attempt {minutes}"),
            crawl_id=crawl.id,
        )
    save(session, a, result("acme/a", None, status=RunStatus.clone_failed, minutes=60), crawl_id=later.id)

    runs = session.exec(select(MiningRun).order_by(MiningRun.finished_at)).all()
    assert [(run.crawl_id, run.error) for run in runs] == [(crawl.id, "attempt 2"), (later.id, None)]


def test_failed_runs_are_counted_in_stats_failures(session: Session) -> None:
    rules = load_rules()
    ok_then_timeout = upsert_repository(session=session, full_name="acme/a")
    never_ok = upsert_repository(session=session, full_name="acme/b")
    too_large = upsert_repository(session=session, full_name="acme/c")
    save(session, ok_then_timeout, result("acme/a", "a1", call("log_param"), minutes=0))
    save(session, ok_then_timeout, result("acme/a", "a2", status=RunStatus.timeout, minutes=10))
    save(session, never_ok, result("acme/b", None, status=RunStatus.clone_failed, minutes=1))
    save(session, never_ok, result("acme/b", "b1", status=RunStatus.error, minutes=2, error="Traceback ..."))
    save(session, too_large, result("acme/c", None, status=RunStatus.too_large, minutes=3))

    stats = compute_stats(session=session, rules=rules)

    assert stats["repositories"] == 1  # acme/a, through its older ok run
    assert stats["apis"]["log_param"]["repositories"] == 1
    assert stats["failures"] == {
        "runs": {"clone_failed": 0, "too_large": 1, "timeout": 1, "error": 1},
        "repositories_without_ok_run": 2,
        "unparsable_files": 0,
        "skipped_files": 0,
    }


def test_save_run_refuses_mismatched_input(session: Session) -> None:
    repository = upsert_repository(session=session, full_name="acme/a")
    with pytest.raises(ValueError, match="acme/b"):
        save(session, repository, result("acme/b", "c1"))
    with pytest.raises(ValueError, match="commit_sha"):
        save(session, repository, result("acme/a", None))
    assert count(session, MiningRun) == 0


def test_finish_crawl_records_counts_and_status(session: Session) -> None:
    crawl = create_crawl(session=session, topics=["mlflow-projects"], slices=["2020..2021"])
    assert crawl.status is CrawlStatus.running and crawl.finished_at is None

    finished = finish_crawl(
        session=session, crawl=crawl.id, repos_found=12, repos_enqueued=7, repos_skipped_unchanged=5
    )

    assert finished.status is CrawlStatus.ok and finished.finished_at is not None
    assert (finished.repos_found, finished.repos_enqueued, finished.repos_skipped_unchanged) == (12, 7, 5)
    assert finished.slices == ["2020..2021"] and finished.topics == ["mlflow-projects"]
    failed = finish_crawl(session=session, crawl=finished, status=CrawlStatus.failed, error="GitHub 502")
    assert (failed.status, failed.error, failed.repos_found) == (CrawlStatus.failed, "GitHub 502", 12)


def test_a_crawl_finished_as_running_keeps_no_finish_time(session: Session) -> None:
    crawl = create_crawl(session=session, topics=["mlflow-projects"])
    running = finish_crawl(session=session, crawl=crawl.id, status=CrawlStatus.running, repos_found=3, repos_enqueued=2)
    assert running.status is CrawlStatus.running and running.finished_at is None
    assert running.repos_enqueued == 2
