"""Crawl throughput with two mining processes against one, measured in the same run.

    python -m bench.throughput
    python -m bench.throughput --repositories 30 --files 8 --repeat 2 --no-celery

~30 real repositories are built in a temporary folder (each a dozen Python modules calling
mlflow and a notebook, served over file:// for partial clones) and listed by the local fake
GitHub (tests/github_fake.py). Each measurement crawls them into a fresh SQLite database:

  in-process  `miner crawl` without a broker: the plan (`start_crawl`), then the local pool
              running `miner.orchestrate.jobs.mine_repository`, with 1 and with 2 processes
  celery      a real `celery -A workers worker --concurrency N` on the local Redis (db 14),
              N = 1 and 2; timed from the first message sent to the crawl's last run stored

Mining time is what the ratio is about (the plan is the same work either way and is printed
apart). Measurements alternate 1, 2, 1, 2, ... and the best of each is kept. Before each round
the machine's own ceiling is measured the same way: a pure-Python CPU loop in 1 and in 2
processes (on 2 CPUs that are busy with other programs, or hyperthreads of one core, no crawl
can do better than that ceiling).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from crawl_fixtures import TOPIC, CorpusRepo, allow_partial_clone, register  # noqa: E402
from github_fake import FakeGithub  # noqa: E402
from gitrepos import make_repo, notebook_v4  # noqa: E402

from miner.core.settings import GithubSettings, Settings  # noqa: E402
from miner.orchestrate.crawl import start_crawl  # noqa: E402
from miner.orchestrate.jobs import mine_repository  # noqa: E402
from miner.orchestrate.mining import run_parallel  # noqa: E402

TARGET_RATIO = 1.8
REDIS_URL = "redis://127.0.0.1:6379/14"


def module_source(index: int, functions: int = 25) -> str:
    """A plausible training module: imports, helpers, and mlflow calls in nested code."""
    lines = ["import mlflow", "import mlflow.sklearn as msk", "from mlflow import log_metric, log_param", ""]
    for number in range(functions):
        lines += [
            f"def step_{index}_{number}(data, alpha={number}.5):",
            f"    with mlflow.start_run(run_name='r{number}') as run:",
            "        log_param('alpha', alpha)",
            "        for epoch, value in enumerate(data):",
            "            if value > alpha and epoch % 2 == 0:",
            "                log_metric('loss', value * alpha, step=epoch)",
            "            else:",
            "                mlflow.log_metrics({'acc': value, 'epoch': epoch})",
            "        msk.autolog(log_models=False)",
            f"        return {{'id': run.info.run_id, 'n': {number}, 'values': [v ** 2 for v in data]}}",
            "",
        ]
    return "\n".join(lines) + "\n"


def build_repositories(root: Path, count: int, files: int) -> list[CorpusRepo]:
    notebook = notebook_v4([("code", "import mlflow\nmlflow.autolog()\n"), ("code", "x = [i for i in range(10)]\n")])
    repositories = []
    for index in range(count):
        tree: dict[str, str | bytes] = {f"src/model_{n}.py": module_source(index * 100 + n) for n in range(files)}
        tree["notebooks/train.ipynb"] = notebook
        tree["README.md"] = f"# bench {index}\n"
        built = make_repo(root / f"bench-{index:03d}", tree)
        allow_partial_clone(built.path)
        repositories.append(CorpusRepo(f"bench/bench-{index:03d}", "tracking", built.path, built.sha))
    return repositories


def _settings(fake: FakeGithub, folder: Path, workers: int) -> Settings:
    return Settings(
        database_url=f"sqlite:///{folder / 'miner.db'}",
        broker_url=None,
        workers=workers,
        work_dir=str(folder / "work"),
        github=GithubSettings(api_url=fake.url, min_request_interval_s=0.0),
    )


def crawl_in_process(fake: FakeGithub, scratch: Path, workers: int, expected: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix=f"in-process-{workers}-", dir=scratch))
    settings = _settings(fake, folder, workers)
    started = time.perf_counter()
    plan = start_crawl(settings, topics=[TOPIC])
    planned = time.perf_counter()
    job = partial(mine_repository, crawl_id=plan.crawl_id, settings=settings)
    statuses = [status.value for _, status in run_parallel(job, plan.to_mine, workers)]
    finished = time.perf_counter()
    assert statuses == ["ok"] * expected, statuses
    return planned - started, finished - planned


class CeleryWorker:
    def __init__(self, concurrency: int, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            env=env,
            cwd=log.parent,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.handle.close()


def crawl_on_celery(fake: FakeGithub, scratch: Path, concurrency: int, expected: int) -> tuple[float, float]:
    import redis
    from celery import Celery

    from schema.crawls import crawl_progress
    from schema.db import open_session

    redis.Redis.from_url(REDIS_URL).flushdb()
    folder = Path(tempfile.mkdtemp(prefix=f"celery-{concurrency}-", dir=scratch))
    settings = _settings(fake, folder, concurrency)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MINER_CONFIG": str(folder / "no-config.yaml"),
        "MINER_BROKER_URL": REDIS_URL,
        "MINER_DATABASE_URL": settings.database_url,
        "MINER_WORK_DIR": str(settings.work_dir),
        "MINER_GITHUB__API_URL": fake.url,
        "MINER_GITHUB__MIN_REQUEST_INTERVAL_S": "0",
    }
    worker = CeleryWorker(concurrency, env, folder / "worker.log")
    try:
        started = time.perf_counter()
        plan = start_crawl(settings, topics=[TOPIC])
        planned = time.perf_counter()
        sender = Celery(broker=REDIS_URL)
        for repository_id in plan.to_mine:
            sender.send_task("workers.tasks.mine_repo", args=[repository_id, plan.crawl_id])
        while True:
            with open_session(settings) as session:
                progress = crawl_progress(session=session, crawl_id=plan.crawl_id)
            if progress["runs_done"] >= expected:
                break
            time.sleep(0.05)
        finished = time.perf_counter()
        assert progress["runs_ok"] == expected, progress
        return planned - started, finished - planned
    finally:
        worker.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()


def _spin_units(units: int) -> None:
    for _ in range(units):
        sum(i * i for i in range(20_000))


def cpu_ceiling(units: int = 1500, repeat: int = 2) -> float:
    """Wall time of fixed CPU work split over 2 processes ÷ over 1: what the machine allows."""
    from concurrent.futures import ProcessPoolExecutor

    best = {1: float("inf"), 2: float("inf")}
    for _ in range(repeat):
        for processes in (1, 2):
            with ProcessPoolExecutor(processes) as pool:
                started = time.perf_counter()
                list(pool.map(_spin_units, [units // processes] * processes))
                best[processes] = min(best[processes], time.perf_counter() - started)
    return best[1] / best[2]


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001 - any failure means: no Redis to measure with
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repositories", type=int, default=30)
    parser.add_argument("--files", type=int, default=8, help="Python modules per repository")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--celery", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)

    print(f"cpus: {os.cpu_count()}; repositories: {args.repositories}, {args.files} modules + 1 notebook each")
    print(f"machine ceiling  a CPU-bound loop in 2 processes ÷ 1, measured before each round: {cpu_ceiling():.2f} now")
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as scratch_name:
        scratch = Path(scratch_name)
        repositories = build_repositories(scratch / "repos", args.repositories, args.files)
        with FakeGithub() as fake:
            register(fake, repositories)
            modes = [("in-process pool", crawl_in_process)]
            if args.celery:
                if _redis_up():
                    modes.append(("celery worker", crawl_on_celery))
                else:
                    print("celery: no Redis on 127.0.0.1:6379, skipped")
            for label, crawl in modes:
                ones: list[tuple[float, float]] = []
                twos: list[tuple[float, float]] = []
                for round_number in range(1, args.repeat + 1):
                    ceiling = cpu_ceiling(repeat=1)  # the load other programs put on the machine now
                    ones.append(crawl(fake, scratch, 1, args.repositories))
                    twos.append(crawl(fake, scratch, 2, args.repositories))
                    print(
                        f"{label:16} round {round_number}: machine ceiling {ceiling:.2f}; mine 1 process "
                        f"{ones[-1][1]:6.2f} s, 2 processes {twos[-1][1]:6.2f} s: {ones[-1][1] / twos[-1][1]:.2f}"
                    )
                one, two = min(ones, key=lambda t: t[1]), min(twos, key=lambda t: t[1])
                ratios[label] = one[1] / two[1]
                print(
                    f"{label:16} best of {args.repeat}: 1 process {one[1]:.2f} s ({args.repositories / one[1]:.2f} repos/s, "
                    f"plan {one[0]:.2f} s), 2 processes {two[1]:.2f} s ({args.repositories / two[1]:.2f} repos/s, "
                    f"plan {two[0]:.2f} s)"
                )
                print(
                    f"{label:16} throughput 2 ÷ 1: {ratios[label]:.2f} (target ≥ {TARGET_RATIO}); whole crawl "
                    f"incl. plan: {(one[0] + one[1]) / (two[0] + two[1]):.2f}"
                )
    return 0 if ratios and min(ratios.values()) >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
