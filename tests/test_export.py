"""`miner export` on SQLite and PostgreSQL: the files load back with pandas / pyarrow and agree
with `miner stats`; dataset.json says where the numbers come from.

The dataset is the hand-built one of test_filters.py (its docstring has the table).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlmodel import Session
from test_filters import MINED, RULES, SQLISH_TOPIC, client, fluent, mined, seed_dataset
from typer.testing import CliRunner

from miner import __version__
from miner.cli import app
from miner.present.export import write_export
from miner.present.export_formats import ExportFormat
from miner.present.findings import count_findings
from miner.present.repositories import repository_rows
from miner.present.stats import compute_stats
from schema.filters import Filters
from schema.repositories import upsert_repository
from schema.runs import save_run

TABLES = ("repositories", "runs", "file_results", "findings")
RUNNER = CliRunner()


def load(out: Path, table: str, fmt: ExportFormat) -> pd.DataFrame:
    path = out / f"{table}.{fmt.value}"
    if fmt is ExportFormat.parquet:
        return pq.read_table(path).to_pandas()
    if fmt is ExportFormat.csv:
        return pd.read_csv(
            path, keep_default_na=False, na_values=[""], dtype={"commit": str, "path": str, "error": str}
        )
    return pd.read_json(path, orient="records", dtype={"commit": str})


def recount(findings: pd.DataFrame) -> dict[str, tuple[int, int, int]]:
    """Per api, from the exported findings alone: (repositories using it, calls, client calls)."""
    result = {}
    for api, rows in findings.groupby("api"):
        using = rows.loc[~rows["disabling"].astype(bool), "repository"].nunique()
        result[api] = (int(using), len(rows), int(rows["via_client"].astype(bool).sum()))
    return result


@pytest.fixture
def dataset(session: Session) -> dict[str, int]:
    return seed_dataset(session)


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_an_export_loads_back_and_matches_stats(
    session: Session, dataset: dict[str, int], tmp_path: Path, fmt: ExportFormat
) -> None:
    out = tmp_path / "export"
    card = write_export(session=session, rules=RULES, out_dir=out, fmt=fmt, database="sqlite:///somewhere.db")
    stats = compute_stats(session=session, rules=RULES)

    assert sorted(path.name for path in out.iterdir()) == sorted(
        [f"{table}.{fmt.value}" for table in TABLES] + ["dataset.json", "stats.json"]
    )
    assert json.loads((out / "stats.json").read_text()) == json.loads(json.dumps(stats))

    repositories = load(out, "repositories", fmt)
    runs = load(out, "runs", fmt)
    files = load(out, "file_results", fmt)
    findings = load(out, "findings", fmt)

    # the repositories counted, each with the commit whose findings are exported
    assert len(repositories) == stats["repositories"] == len(MINED)
    assert set(repositories["full_name"]) == MINED
    commits = dict(zip(repositories["full_name"], repositories["commit"]))
    assert commits["a/nlp-big"] == "n2"
    assert {(row.repository, row.commit) for row in findings.itertuples()} <= set(commits.items())
    assert int(repositories["headline"].astype(bool).sum()) == stats["headline"]["repositories"]
    profile = {row["full_name"]: row for row in repository_rows(session=session, rules=RULES)}
    for row in repositories.to_dict("records"):
        for category in RULES.categories:
            assert row[category.value] == profile[row["full_name"]][category.value]
        assert row["findings"] == profile[row["full_name"]]["findings"]

    # per-api figures recomputed from the exported findings equal the stats document
    assert len(findings) == count_findings(session=session)
    recounted = recount(findings)
    for api, entry in stats["apis"].items():
        assert recounted.get(api, (0, 0, 0)) == (entry["repositories"], entry["calls"], entry["client_calls"]), api
    headline = findings[findings["api"].isin(RULES.headline_apis) & ~findings["disabling"].astype(bool)]
    assert headline["repository"].nunique() == stats["headline"]["repositories"]

    # runs: the latest successful ones, and the failed last run of a/regressed and a/failed
    assert sorted(zip(runs["repository"], runs["status"], runs["role"])) == sorted(
        [(name, "ok", "latest_ok") for name in MINED]
        + [("a/failed", "clone_failed", "latest_failed"), ("a/regressed", "timeout", "latest_failed")]
    )
    assert set(runs.loc[runs["role"] == "latest_ok", "run_id"]) == set(repositories["run_id"])
    assert set(findings["run_id"]) <= set(repositories["run_id"])
    unparsable = files[files["status"] == "unparsable"]
    assert list(zip(unparsable["repository"], unparsable["path"])) == [("a/nlp-big", "broken.py")]
    assert len(unparsable) == stats["files"]["unparsable"]
    assert len(files) == stats["files"]["seen"]

    counts = card["counts"]
    assert counts == {
        "repositories": len(MINED),
        "headline_repositories": 5,
        "findings": len(findings),
        "runs": len(runs),
        "file_results": len(files),
    }


def test_the_dataset_card(session: Session, dataset: dict[str, int], tmp_path: Path) -> None:
    out = tmp_path / "export"
    write_export(
        session=session,
        rules=RULES,
        out_dir=out,
        fmt=ExportFormat.parquet,
        database="postgresql+psycopg://miner:***@db/miner",
    )
    card = json.loads((out / "dataset.json").read_text())

    assert card["tool"] == {"name": "mlflow-miner", "version": __version__}
    assert card["rules"]["name"] == RULES.name and card["rules"]["version"] == RULES.version
    assert card["rules"]["mined_with_versions"] == [RULES.version]
    assert card["database"] == "postgresql+psycopg://miner:***@db/miner"
    assert card["filters"] == Filters().as_dict()
    assert card["reproduce"] == "miner export --format parquet --out DIR"
    # the crawls the exported runs come from: query, topics and the date slices
    assert [(c["id"], c["query"], c["topics"], c["slices"]) for c in card["crawls"]] == [
        (dataset[1], "topic:mlflow-projects", ["mlflow-projects"], ["created:2026-01"]),
        (dataset[2], "topic:mlflow-projects", ["mlflow-projects"], ["created:2026-02"]),
    ]
    assert card["dates"]["runs_finished_from"].startswith("2026-03-01T12:00:05")
    assert card["dates"]["runs_finished_to"].startswith("2026-03-03T12:00:05")
    assert card["dates"]["crawls_started_from"] <= card["dates"]["crawls_started_to"]
    # every repository with the commit mined
    assert {(r["full_name"], r["commit"]) for r in card["repositories"]} == {
        ("a/nlp-big", "n2"),
        ("a/vision-fork", "v1"),
        ("a/archived", "r1"),
        ("a/plain", "p1"),
        ("a/sqlish", "s1"),
        ("a/regressed", "g1"),
    }
    # the files it describes, with row counts and checksums
    for table in TABLES:
        entry = card["tables"][table]
        path = out / entry["file"]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["rows"] == pq.read_metadata(path).num_rows
        assert entry["columns"] == pq.read_schema(path).names
    assert card["stats"]["sha256"] == hashlib.sha256((out / "stats.json").read_bytes()).hexdigest()


def test_an_export_with_filters(session: Session, dataset: dict[str, int], tmp_path: Path) -> None:
    filters = Filters(topic="nlp", exclude_forks=True)
    card = write_export(session=session, rules=RULES, out_dir=tmp_path, fmt="csv", filters=filters)

    repositories = load(tmp_path, "repositories", ExportFormat.csv)
    assert set(repositories["full_name"]) == {"a/nlp-big", "a/regressed"}
    assert json.loads((tmp_path / "stats.json").read_text())["repositories"] == 2
    assert card["filters"]["topic"] == "nlp" and card["filters"]["exclude_forks"] is True
    assert card["reproduce"] == 'miner export --format csv --out DIR --topic "nlp" --exclude-forks'
    findings = load(tmp_path, "findings", ExportFormat.csv)
    assert set(findings["repository"]) == {"a/nlp-big", "a/regressed"}

    crawl = write_export(
        session=session, rules=RULES, out_dir=tmp_path / "crawl1", fmt="json", filters=Filters(crawl_id=dataset[1])
    )
    assert [c["id"] for c in crawl["crawls"]] == [dataset[1]]
    assert {r["full_name"]: r["commit"] for r in crawl["repositories"]}["a/nlp-big"] == "n1"


def test_tables_are_written_in_chunks(session: Session, dataset: dict[str, int], tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    chunked = tmp_path / "chunked"
    write_export(session=session, rules=RULES, out_dir=whole, fmt="parquet")
    write_export(session=session, rules=RULES, out_dir=chunked, fmt="parquet", chunk_rows=2)

    assert pq.read_metadata(chunked / "findings.parquet").num_row_groups > 1
    for table in TABLES:
        assert pq.read_table(chunked / f"{table}.parquet").equals(pq.read_table(whole / f"{table}.parquet")), table
    for fmt in ("csv", "json"):
        one, two = tmp_path / f"{fmt}1", tmp_path / f"{fmt}2"
        write_export(session=session, rules=RULES, out_dir=one, fmt=fmt)
        write_export(session=session, rules=RULES, out_dir=two, fmt=fmt, chunk_rows=3)
        for table in TABLES:
            assert (one / f"{table}.{fmt}").read_bytes() == (two / f"{table}.{fmt}").read_bytes()


def test_awkward_text_survives_every_format(session: Session, tmp_path: Path) -> None:
    awkward = 'dir, with "quotes"/new\nline; DROP TABLE finding; --.py'
    repository = upsert_repository(
        session=session,
        full_name="o/awkward",
        topics=[SQLISH_TOPIC, "ünïcode"],
        stars=3,
        description='a "quoted", multi\nline text',
    )
    save_run(
        session=session,
        repository=repository,
        result=mined("o/awkward", "w1", replace(fluent("log_param"), path=awkward), client("log_metric"), on=2),
        rules_version=RULES.version,
        tool_version="test",
    )
    for fmt in ExportFormat:
        out = tmp_path / fmt.value
        write_export(session=session, rules=RULES, out_dir=out, fmt=fmt)
        findings = load(out, "findings", fmt)
        assert awkward in set(findings["path"]), fmt
        repositories = load(out, "repositories", fmt)
        topics = repositories.loc[0, "topics"]
        if fmt is ExportFormat.csv:
            topics = json.loads(topics)
        assert list(topics) == [SQLISH_TOPIC, "ünïcode"], fmt
        assert repositories.loc[0, "description"] == 'a "quoted", multi\nline text'


def test_an_empty_database_exports_empty_tables(session: Session, tmp_path: Path) -> None:
    for fmt in ExportFormat:
        out = tmp_path / fmt.value
        card = write_export(session=session, rules=RULES, out_dir=out, fmt=fmt)
        assert all(entry["rows"] == 0 for entry in card["tables"].values())
        assert card["repositories"] == [] and card["crawls"] == []
        if fmt is ExportFormat.parquet:
            assert "api" in pq.read_schema(out / "findings.parquet").names
        elif fmt is ExportFormat.csv:
            assert (out / "findings.csv").read_text().startswith("finding_id,run_id,repository,")
        else:
            assert json.loads((out / "findings.json").read_text()) == []


def test_export_command(
    session: Session, dataset: dict[str, int], database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINER_DATABASE_URL", database_url)
    monkeypatch.setenv("MINER_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cli-export"

    result = RUNNER.invoke(
        app, ["export", "--format", "csv", "--out", str(out), "--crawl", str(dataset[2]), "--since", "2026-03-02"]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # messages go to stderr
    assert "exported to" in result.stderr
    card = json.loads((out / "dataset.json").read_text())
    assert card["filters"]["crawl_id"] == dataset[2]
    assert card["filters"]["since"] == "2026-03-02T00:00:00+00:00"
    assert {r["full_name"] for r in card["repositories"]} == {"a/nlp-big", "a/archived", "a/sqlish"}
    assert len(pd.read_csv(out / "repositories.csv")) == 3

    bad = RUNNER.invoke(app, ["export", "--format", "xlsx", "--out", str(out)])
    assert bad.exit_code != 0 and "xlsx" in bad.stderr
