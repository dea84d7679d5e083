"""The synthetic results database `bench.stats_db` times its queries on: repositories, crawls,
runs and findings generated from a seed, with the column lists the loaders write."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from miner.core.rules import Rules

T0 = datetime(2026, 3, 1, tzinfo=UTC)

OTHER_APIS = ("search_runs", "get_run", "active_run", "log_batch")
CHUNK = 100_000

REPOSITORY_COLUMNS = (
    "id",
    "full_name",
    "clone_url",
    "default_branch",
    "topics",
    "stars",
    "forks",
    "size_kb",
    "archived",
    "fork",
    "first_seen_at",
)
CRAWL_COLUMNS = (
    "id",
    "topics",
    "query",
    "slices",
    "started_at",
    "finished_at",
    "repos_found",
    "repos_enqueued",
    "repos_skipped_unchanged",
    "status",
)
RUN_COLUMNS = (
    "id",
    "repository_id",
    "crawl_id",
    "commit_sha",
    "started_at",
    "finished_at",
    "status",
    "error",
    "files_seen",
    "files_analysed",
    "files_unparsable",
    "files_skipped",
    "bytes_analysed",
    "duration_s",
    "rules_version",
    "tool_version",
)
FINDING_COLUMNS = (
    "id",
    "mining_run_id",
    "path",
    "line",
    "column",
    "cell",
    "api",
    "category",
    "qualified_name",
    "flavor",
    "disabling",
    "via_client",
)
# The flags as `save_run` keeps them must equal the definition: no newer successful run.
WRONG_LATEST_FLAGS = """
SELECT count(*) FROM miningrun m
WHERE m.latest <> (m.status = 'ok' AND NOT EXISTS (
    SELECT 1 FROM miningrun n WHERE n.repository_id = m.repository_id AND n.status = 'ok'
    AND (n.finished_at > m.finished_at OR (n.finished_at = m.finished_at AND n.id > m.id))))
"""


# ------------------------------------------------------------------------------ the dataset


class Dataset:
    """Deterministic synthetic rows, generated chunk by chunk (2M findings never in one list)."""

    def __init__(self, repositories: int, findings: int, rules: Rules, seed: int = 5) -> None:
        self.rules = rules
        self.random = random.Random(seed)
        self.repositories = repositories
        self.findings = findings
        self.apis = list(rules.apis) + list(OTHER_APIS)
        weights = {
            "log_param": 15,
            "log_params": 8,
            "log_metric": 20,
            "log_metrics": 6,
            "autolog": 6,
            "start_run": 12,
            "log_artifact": 8,
            "log_model": 6,
            "set_experiment": 5,
            "set_tracking_uri": 5,
            "set_tag": 4,
            "end_run": 3,
        }
        self.weights = [weights.get(api, 1) for api in self.apis]
        self.runs: list[tuple[Any, ...]] = []
        self.ok_runs: list[int] = []  # run ids that carry findings
        self._plan_runs()

    def repository_rows(self) -> Iterator[tuple[Any, ...]]:
        pick = random.Random(11)
        for repository_id in range(1, self.repositories + 1):
            topics = ["mlflow-projects"]
            if pick.random() < 0.2:
                topics.append("nlp")
            if pick.random() < 0.1:
                topics.append("vision")
            stars = int(pick.paretovariate(1.2)) - 1
            yield (
                repository_id,
                f"owner{repository_id % 7919}/repo-{repository_id}",
                f"https://github.com/owner/repo-{repository_id}.git",
                "main",
                json.dumps(topics),
                stars,
                stars // 5,
                100 + repository_id % 5000,
                pick.random() < 0.05,
                pick.random() < 0.1,
                T0,
            )

    def crawl_rows(self) -> list[tuple[Any, ...]]:
        return [
            (
                crawl_id,
                json.dumps(["mlflow-projects"]),
                "topic:mlflow-projects",
                json.dumps([{"created": f"2020..{2020 + crawl_id}"}]),
                T0 + timedelta(days=crawl_id),
                T0 + timedelta(days=crawl_id, hours=6),
                self.repositories,
                self.repositories,
                0,
                "ok",
            )
            for crawl_id in (1, 2, 3)
        ]

    def _plan_runs(self) -> None:
        pick = self.random
        run_id = 0

        def run(repository_id: int, crawl_id: int, day: int, status: str, sha: str | None) -> int:
            nonlocal run_id
            run_id += 1
            started = T0 + timedelta(days=day, seconds=repository_id % 20000)
            ok = status == "ok"
            self.runs.append(
                (
                    run_id,
                    repository_id,
                    crawl_id,
                    sha,
                    started,
                    started + timedelta(seconds=7),
                    status,
                    None if ok else f"{status}: synthetic",
                    12,
                    12 if ok else 0,
                    0,
                    0,
                    40_000 if ok else 0,
                    7.0,
                    self.rules.version,
                    "bench",
                )
            )
            return run_id

        mined = int(self.repositories * 0.98)
        for repository_id in range(1, self.repositories + 1):
            if repository_id > mined:  # never mined successfully
                run(repository_id, 3, 3, "clone_failed", None)
                continue
            if pick.random() < 0.10:  # history: an older successful run
                self.ok_runs.append(run(repository_id, 1, 1, "ok", f"old{repository_id:08x}"))
            self.ok_runs.append(run(repository_id, 3, 3, "ok", f"{repository_id:040x}"))
            if pick.random() < 0.03:  # a newer commit whose mine timed out
                run(repository_id, 3, 4, "timeout", f"new{repository_id:08x}")

    def finding_chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        pick = random.Random(7)
        runs = self.ok_runs
        mean = self.findings / len(runs)
        sizes = [max(1, int(pick.expovariate(1 / mean))) for _ in runs]
        surplus = sum(sizes) - self.findings  # make the total exact
        index = 0
        while surplus != 0:
            step = -1 if surplus > 0 else 1
            if sizes[index] + step >= 1:
                sizes[index] += step
                surplus += step
            index = (index + 1) % len(sizes)
        finding_id = 0
        chunk: list[tuple[Any, ...]] = []
        client_prefix = self.rules.client_qualified_prefix
        for run_id, size in zip(runs, sizes):
            profile = pick.choices(self.apis, weights=self.weights, k=pick.randint(2, 8))
            for line in range(size):
                finding_id += 1
                api = pick.choice(profile)
                via_client = pick.random() < 0.08
                disabling = api == "autolog" and pick.random() < 0.1
                if via_client:
                    category, qualified, flavor = "client", f"{client_prefix}.{api}", None
                else:
                    category = self.rules.category_of(api).value
                    flavor = "sklearn" if api == "autolog" and line % 2 else None
                    qualified = f"mlflow.{flavor}.{api}" if flavor else f"mlflow.{api}"
                chunk.append(
                    (
                        finding_id,
                        run_id,
                        f"src/module_{line % 7}.py",
                        line + 1,
                        4,
                        None,
                        api,
                        category,
                        qualified,
                        flavor,
                        disabling,
                        via_client,
                    )
                )
                if len(chunk) == CHUNK:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk
