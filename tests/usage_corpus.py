"""A small mined corpus for the report, API and dashboard tests, with its numbers worked out by hand.

Two crawls. Crawl 1 (2026-03-01) mined three repositories, crawl 2 (2026-03-02) mined them
again and five more; `acme/busy` was mined last, on 2026-03-04.

| repository            | stars | fork/archived | topics       | latest successful run (crawl 2)                   | headline |
| --------------------- | ----- | ------------- | ------------ | ------------------------------------------------- | -------- |
| acme/params           | 50    |               | mlflow, nlp  | log_param x2; broken.py unparsable (crawl 1: log_metric) | yes |
| acme/client           | 5     | fork          | mlflow       | MlflowClient().log_metric                         | yes      |
| acme/autolog-off      | 0     | archived      | mlflow       | mlflow.autolog(disable=True)                      | no       |
| acme/sklearn          | 120   |               | mlflow, vision | sklearn + pytorch + plain autolog, in a notebook (crawl 1: sklearn autolog) | yes |
| acme/config           | 3     |               | mlflow       | set_tracking_uri, search_runs (other) (crawl 1: set_tracking_uri) | no |
| acme/busy             | 10    |               | mlflow       | log_metric x30, log_params x3 (2026-03-04)        | yes      |
| evil/drop'; DROP ...  | 1     |               | mlflow       | log_param in `<script>alert(1)</script>.py`       | yes      |
| acme/broken           | 7     |               | mlflow       | none: clone_failed                                | -        |

Overall: n = 7, headline 5 (71.4 %). Crawl 1: n = 3, headline 2 (params, sklearn).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from miner.core.domain import Category, FileKind, FileStatus, MiningResult, RunStatus
from miner.core.domain import FileResult as FileOutcome
from miner.core.domain import Finding as Call
from miner.core.rules import load_rules
from schema.crawls import create_crawl, finish_crawl
from schema.models import Crawl
from schema.repositories import upsert_repository
from schema.runs import save_run

RULES = load_rules()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVIL = "evil/drop'; DROP TABLE finding; --"
EVIL_PATH = "<script>alert(1)</script>.py"
SQL_ISH = "'; DROP TABLE finding; --"

REPOSITORIES = {  # full name: metadata
    "acme/params": {"stars": 50, "topics": ["mlflow-projects", "nlp"]},
    "acme/client": {"stars": 5, "topics": ["mlflow-projects"], "fork": True},
    "acme/autolog-off": {"stars": 0, "topics": ["mlflow-projects"], "archived": True},
    "acme/sklearn": {"stars": 120, "topics": ["mlflow-projects", "vision"]},
    "acme/config": {"stars": 3, "topics": ["mlflow-projects"]},
    "acme/busy": {"stars": 10, "topics": ["mlflow-projects"]},
    EVIL: {"stars": 1, "topics": ["mlflow-projects"]},
    "acme/broken": {"stars": 7, "topics": ["mlflow-projects"]},
}
N = 7
HEADLINE = 5
CRAWL1_N, CRAWL1_HEADLINE = 3, 2
BROKEN_ERROR = "clone failed: repository not found"


def fluent(
    api: str,
    *,
    path: str = "train.py",
    line: int = 1,
    flavor: str | None = None,
    cell: int | None = None,
    disabling: bool = False,
) -> Call:
    qualified = f"mlflow.{flavor}.{api}" if flavor else f"mlflow.{api}"
    return Call(
        path=path,
        line=line,
        column=1,
        qualified_name=qualified,
        api=api,
        category=RULES.category_of(api),
        flavor=flavor,
        cell=cell,
        disabling=disabling,
    )


def client(api: str, *, path: str = "track.py", line: int = 3) -> Call:
    return Call(
        path=path,
        line=line,
        column=1,
        qualified_name=f"mlflow.client.MlflowClient.{api}",
        api=api,
        category=Category.client,
        via_client=True,
    )


def mined(
    full_name: str,
    sha: str | None,
    *calls: Call,
    at: datetime,
    status: RunStatus = RunStatus.ok,
    error: str | None = None,
    extra_files: tuple[FileOutcome, ...] = (),
) -> MiningResult:
    files = [
        FileOutcome(
            path=path,
            kind=FileKind.ipynb if path.endswith(".ipynb") else FileKind.py,
            status=FileStatus.ok,
            parsed=True,
        )
        for path in sorted({call.path for call in calls})
    ] + list(extra_files)
    return MiningResult(
        full_name=full_name,
        commit_sha=sha,
        status=status,
        started_at=at,
        finished_at=at + timedelta(seconds=5),
        error=error,
        files=files,
        findings=list(calls),
    )


def _crawl(session: Session, started_at: datetime) -> int:
    crawl = create_crawl(session=session, topics=["mlflow-projects"], query="topic:mlflow-projects")
    loaded = session.get(Crawl, crawl.id)
    assert loaded is not None
    loaded.started_at = started_at
    session.add(loaded)
    session.commit()
    finish_crawl(
        session=session,
        crawl=crawl.id,
        repos_found=len(REPOSITORIES),
        repos_enqueued=len(REPOSITORIES),
        finished_at=started_at + timedelta(hours=1),
    )
    assert crawl.id is not None
    return crawl.id


def seed(session: Session) -> dict[str, int]:
    """Store the corpus; returns the crawl ids as {"crawl1": id, "crawl2": id}."""
    repositories = {
        name: upsert_repository(
            session=session, full_name=name, clone_url=f"https://example.invalid/{name}.git", **metadata
        )
        for name, metadata in REPOSITORIES.items()
    }
    crawl1 = _crawl(session, T0 - timedelta(minutes=5))
    crawl2 = _crawl(session, T0 + timedelta(days=1) - timedelta(minutes=5))
    day1, day2 = T0, T0 + timedelta(days=1)
    runs = [
        (crawl1, mined("acme/params", "p0", fluent("log_metric"), at=day1)),
        (crawl1, mined("acme/sklearn", "s0", fluent("autolog", flavor="sklearn"), at=day1)),
        (crawl1, mined("acme/config", "g0", fluent("set_tracking_uri"), at=day1)),
        (
            crawl2,
            mined(
                "acme/params",
                "p1",
                fluent("log_param", line=3),
                fluent("log_param", line=9),
                at=day2,
                extra_files=(
                    FileOutcome(
                        path="broken.py",
                        kind=FileKind.py,
                        status=FileStatus.unparsable,
                        error="invalid syntax (line 4)",
                    ),
                ),
            ),
        ),
        (crawl2, mined("acme/client", "c1", client("log_metric"), at=day2)),
        (crawl2, mined("acme/autolog-off", "o1", fluent("autolog", disabling=True), at=day2)),
        (
            crawl2,
            mined(
                "acme/sklearn",
                "s1",
                fluent("autolog", flavor="sklearn", path="fit.ipynb", cell=2),
                fluent("autolog", flavor="pytorch", path="fit.ipynb", cell=3),
                fluent("autolog", path="train.py", line=2),
                at=day2,
            ),
        ),
        (crawl2, mined("acme/config", "g1", fluent("set_tracking_uri"), fluent("search_runs", line=2), at=day2)),
        (
            crawl2,
            mined(
                "acme/busy",
                "b1",
                *(fluent("log_metric", line=line) for line in range(1, 31)),
                *(fluent("log_params", path="params.py", line=line) for line in range(1, 4)),
                at=T0 + timedelta(days=3),
            ),
        ),
        (crawl2, mined(EVIL, "e1", fluent("log_param", path=EVIL_PATH), at=day2)),
        (crawl2, mined("acme/broken", None, status=RunStatus.clone_failed, error=BROKEN_ERROR, at=day2)),
    ]
    for crawl_id, result in runs:
        save_run(
            session=session,
            repository=repositories[result.full_name],
            result=result,
            crawl_id=crawl_id,
            rules_version=RULES.version,
            tool_version="test",
        )
    return {"crawl1": crawl1, "crawl2": crawl2}
