"""`miner stats` on a synthetic results database, against a plain count of its findings.

    python -m bench.stats_db
    python -m bench.stats_db --repositories 20000 --findings 400000 --backend sqlite --repeat 3

Builds the same synthetic database on SQLite (a temporary file) and on PostgreSQL (a database
created for the run on 127.0.0.1:5432 and dropped afterwards), migrated by Alembic like any
other: 100,000 repositories, 2,000,000 findings. Per repository a latest successful run; 10 %
also have an older successful run (history that the statistics must skip), 3 % a newer failed
run, and 2 % of extra repositories were never mined successfully. Each run calls 2 to 8
distinct apis of the rules table (or outside it), 8 % of calls go through an MlflowClient and
one autolog in ten disables it. Rows are bulk inserted (executemany on SQLite, COPY on
PostgreSQL); what `schema.runs.save_run` writes beside the findings (per-run usage rows and
profiles, latest flags) is then folded from them by `schema.summaries.rebuild_summaries`, and checked.
PostgreSQL gets the VACUUM ANALYZE autovacuum would run.

Then, in the same process and alternately, `SELECT count(*) FROM finding` (the baseline) and
`compute_stats` (what `miner stats` runs) are timed `--repeat` times each after one warm-up;
the median of each and their ratio are printed, with a few other queries of the read API
(target: stats under 1 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import text

from bench.stats_dataset import (
    CRAWL_COLUMNS,
    FINDING_COLUMNS,
    REPOSITORY_COLUMNS,
    RUN_COLUMNS,
    WRONG_LATEST_FLAGS,
    Dataset,
)
from miner.core.rules import Rules, load_rules
from miner.present.findings import finding_rows
from miner.present.repositories import count_repositories, repository_rows
from miner.present.stats import compute_stats
from miner.present.trend import crawl_trend
from schema.db import make_engine, open_session, upgrade
from schema.filters import Filters
from schema.summaries import rebuild_summaries

TARGET_S = 1.0
MAINTENANCE_URLS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
)
# ------------------------------------------------------------------------------- loading


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):  # what SQLAlchemy's DateTime stores: naive UTC text
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value


def load_sqlite(url: str, dataset: Dataset) -> None:
    upgrade(url)
    connection = make_engine(url).raw_connection()
    try:
        cursor = connection.cursor()

        def insert(table: str, columns: tuple[str, ...], rows: Any) -> None:
            names = ", ".join(f'"{column}"' for column in columns)
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})", ([_sqlite_value(v) for v in row] for row in rows)
            )

        insert("crawl", CRAWL_COLUMNS, dataset.crawl_rows())
        insert("repository", REPOSITORY_COLUMNS, dataset.repository_rows())
        insert("miningrun", RUN_COLUMNS, dataset.runs)
        for chunk in dataset.finding_chunks():
            insert("finding", FINDING_COLUMNS, chunk)
        connection.commit()
    finally:
        connection.close()
    summarise(url)


def load_postgresql(url: str, dataset: Dataset) -> None:
    upgrade(url)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as connection:
        with connection.cursor() as cursor:

            def copy(table: str, columns: tuple[str, ...], rows: Any) -> None:
                names = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), names)
                with cursor.copy(statement) as stream:
                    for row in rows:
                        stream.write_row(row)

            copy("crawl", CRAWL_COLUMNS, dataset.crawl_rows())
            copy("repository", REPOSITORY_COLUMNS, dataset.repository_rows())
            copy("miningrun", RUN_COLUMNS, dataset.runs)
            for chunk in dataset.finding_chunks():
                copy("finding", FINDING_COLUMNS, chunk)
            for table in ("crawl", "repository", "miningrun", "finding"):  # sequences after COPY
                cursor.execute(
                    sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT max(id) FROM {}))").format(
                        sql.Literal(table), sql.Identifier(table)
                    )
                )
        connection.commit()
    summarise(url)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def summarise(url: str) -> None:
    """What `save_run` writes beside the findings, folded from them by the store's own code."""
    with open_session(url) as session:
        rebuild_summaries(session=session)


def create_postgres_database() -> tuple[str, Callable[[], None]]:
    errors = []
    candidates = (
        [os.environ["MINER_BENCH_POSTGRES_URL"]]
        if os.environ.get("MINER_BENCH_POSTGRES_URL")
        else list(MAINTENANCE_URLS)
    )
    for maintenance_url in candidates:
        try:
            maintenance = psycopg.connect(maintenance_url, autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError as exc:
            errors.append(str(exc).strip().splitlines()[0])
    else:
        raise SystemExit("PostgreSQL is not reachable: " + "; ".join(errors))
    name = f"miner_bench_{uuid.uuid4().hex[:10]}"
    maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = maintenance.info
    password = f":{info.password}" if info.password else ""
    url = f"postgresql+psycopg://{info.user}{password}@{info.host}:{info.port}/{name}"

    def drop() -> None:
        make_engine(url).dispose()
        maintenance.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        maintenance.close()

    return url, drop


# ------------------------------------------------------------------------------- timing


def _timed(job: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = job()
    return time.perf_counter() - started, value


def measure(url: str, rules: Rules, repeat: int) -> dict[str, Any]:
    with open_session(url) as session:

        def count_findings() -> int:
            return int(session.execute(text("SELECT count(*) FROM finding")).scalar_one())

        def stats() -> dict[str, Any]:
            return compute_stats(session=session, rules=rules)

        count_findings(), stats()  # warm caches and plans once
        baseline: list[float] = []
        timings: list[float] = []
        for _ in range(repeat):  # alternate, so drift hits both alike
            seconds, findings = _timed(count_findings)
            baseline.append(seconds)
            seconds, document = _timed(stats)
            timings.append(seconds)
        others = {
            "stats --topic nlp --exclude-forks": lambda: compute_stats(
                session=session, rules=rules, filters=Filters(topic="nlp", exclude_forks=True)
            ),
            "stats --crawl 1": lambda: compute_stats(session=session, rules=rules, filters=Filters(crawl_id=1)),
            "repository_rows(limit=50)": lambda: repository_rows(session=session, rules=rules, limit=50),
            "repository_rows(uses=autolog, limit=50)": lambda: repository_rows(
                session=session, rules=rules, uses=["autolog"], limit=50
            ),
            "count_repositories(uses=autolog)": lambda: count_repositories(
                session=session, rules=rules, uses=["autolog"]
            ),
            "finding_rows(api=log_param, limit=50)": lambda: finding_rows(session=session, api="log_param", limit=50),
            "crawl_trend": lambda: crawl_trend(session=session, rules=rules),
        }
        other_timings = {}
        for name, job in others.items():
            job()
            other_timings[name] = statistics.median(_timed(job)[0] for _ in range(max(1, repeat // 2)))
        usage_rows = int(session.execute(text("SELECT count(*) FROM runusage")).scalar_one())
        wrong_flags = int(session.execute(text(WRONG_LATEST_FLAGS)).scalar_one())
        if wrong_flags:
            raise SystemExit(f"{wrong_flags} runs carry a wrong latest flag: the dataset is broken")
    return {
        "findings": findings,
        "usage_rows": usage_rows,
        "repositories": document["repositories"],
        "headline": document["headline"]["repositories"],
        "count_s": statistics.median(baseline),
        "stats_s": statistics.median(timings),
        "stats_best_s": min(timings),
        "others": other_timings,
    }


def report(backend: str, load_s: float, result: dict[str, Any]) -> None:
    ratio = result["stats_s"] / result["count_s"] if result["count_s"] else float("inf")
    verdict = "under" if result["stats_s"] < TARGET_S else "OVER"
    print(
        f"\n{backend}: {result['findings']:,} findings, {result['usage_rows']:,} run-usage rows, "
        f"loaded in {load_s:.1f} s"
    )
    print(f"  stats: n = {result['repositories']:,} repositories, headline {result['headline']:,}")
    print(f"  SELECT count(*) FROM finding  {result['count_s'] * 1000:8.1f} ms  (median)")
    print(
        f"  compute_stats (miner stats)   {result['stats_s'] * 1000:8.1f} ms  (median; best "
        f"{result['stats_best_s'] * 1000:.1f} ms)  {verdict} the {TARGET_S:.0f} s target"
    )
    print(f"  ratio stats / count(*)        {ratio:8.2f}")
    for name, seconds in result["others"].items():
        print(f"    {name:<42} {seconds * 1000:8.1f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repositories", type=int, default=100_000)
    parser.add_argument("--findings", type=int, default=2_000_000)
    parser.add_argument("--backend", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    rules = load_rules()
    started = time.perf_counter()
    dataset = Dataset(args.repositories, args.findings, rules)
    print(
        f"dataset: {args.repositories:,} repositories, {len(dataset.runs):,} runs, "
        f"{args.findings:,} findings (planned in {time.perf_counter() - started:.1f} s)"
    )
    for backend in args.backend:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="miner-bench-") as folder:
                url = f"sqlite:///{Path(folder) / 'bench.db'}"
                load_s, _ = _timed(lambda: load_sqlite(url, dataset))
                try:
                    report("SQLite", load_s, measure(url, rules, args.repeat))
                finally:
                    make_engine(url).dispose()
        else:
            url, drop = create_postgres_database()
            try:
                load_s, _ = _timed(lambda: load_postgresql(url, dataset))
                report("PostgreSQL", load_s, measure(url, rules, args.repeat))
            finally:
                drop()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
