"""Search requests needed to enumerate a topic, against the floor of one request per 100 results.

    python -m bench.search_requests
    python -m bench.search_requests --sizes 5000 20000 50000 --growth 0.5 --start 2012-01-01

Each size is served by the local fake GitHub (tests/github_fake.py, real HTTP on 127.0.0.1) with
creation dates that grow year over year, as a topic's do, and enumerated by
`miner.acquire.github.topics.enumerate_repositories`. The floor is ceil(N / 100): every result read once, in full
pages, with no probe wasted. In the same run the same topic is enumerated with cuts at the
middle of each range instead of interpolated ones, the plain bisection a slicer starts from.
A last line repeats the first size under GitHub's search quota (30 requests a minute), on a
simulated clock, to show that waiting for the quota costs time but no extra requests.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from miner.acquire.github import client, topics
from miner.acquire.github.slices import SlicePlanner
from tests.github_fake import FakeClock, FakeGithub

TOPIC = "mlflow"
TARGET_RATIO = 1.2


class HalvingPlanner(SlicePlanner):
    """The baseline: cut every over-full range at its middle."""

    def _cut_point(self, lo_s: int, hi_s: int, count: int) -> int:
        return (lo_s + hi_s) // 2


@contextmanager
def planner(cls: type[SlicePlanner]) -> Iterator[None]:
    original = topics.SlicePlanner
    topics.SlicePlanner = cls  # type: ignore[misc]
    try:
        yield
    finally:
        topics.SlicePlanner = original  # type: ignore[misc]


@dataclass
class Row:
    size: int
    found: int
    duplicates: int
    slices: int
    requests: int
    halving_requests: int
    seconds: float

    @property
    def floor(self) -> int:
        return math.ceil(self.size / 100)


def measure(size: int, start: datetime, growth: float, seed: int) -> Row:
    with FakeGithub() as fake:
        fake.add_synthetic_repositories(size, topics=[TOPIC], start=start, growth_per_year=growth, seed=seed)
        settings = fake.github_settings(token="bench-token")
        began = time.perf_counter()
        result = topics.enumerate_repositories(settings, [TOPIC])
        seconds = time.perf_counter() - began
        assert result.requests == fake.search_requests
        fake.reset()
        with planner(HalvingPlanner):
            halving = topics.enumerate_repositories(settings, [TOPIC])
    names = [repository.full_name for repository in result.repositories]
    return Row(
        size=size,
        found=len(set(names)),
        duplicates=len(names) - len(set(names)),
        slices=len(result.slices),
        requests=result.requests,
        halving_requests=halving.requests,
        seconds=seconds,
    )


def measure_under_quota(size: int, start: datetime, growth: float, seed: int) -> str:
    clock = FakeClock()
    original_sleep, original_clock = client.sleep, client.clock
    client.sleep, client.clock = clock.sleep, clock
    try:
        with FakeGithub(clock=clock, search_limit=30) as fake:
            fake.add_synthetic_repositories(size, topics=[TOPIC], start=start, growth_per_year=growth, seed=seed)
            result = topics.enumerate_repositories(fake.github_settings(token="bench-token"), [TOPIC])
            refused = sum(1 for entry in fake.log if entry.status != 200)
    finally:
        client.sleep, client.clock = original_sleep, original_clock
    return (
        f"under a 30/min search quota, N={size}: {len(result.repositories)} found, {result.requests} requests "
        f"({refused} refused), {len(clock.sleeps)} waits totalling {sum(clock.sleeps):.0f} s of simulated time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--start", type=datetime.fromisoformat, default=datetime(2012, 1, 1))
    parser.add_argument("--growth", type=float, default=0.5, help="yearly growth of new repositories (0.5 = +50 %%)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = args.start.replace(tzinfo=UTC)

    print(
        f"search requests to enumerate one topic: fake GitHub on 127.0.0.1, repositories created "
        f"{start:%Y-%m-%d}..now, +{args.growth:.0%} a year; floor = ceil(N/100); target ratio <= {TARGET_RATIO}"
    )
    header = (
        f"{'N':>7} {'found':>7} {'duplicates':>10} {'slices':>6} {'requests':>8} {'floor':>6} "
        f"{'ratio':>6} {'halving':>8} {'halving ratio':>13} {'seconds':>7}"
    )
    print(header)
    for size in args.sizes:
        row = measure(size, start, args.growth, args.seed)
        print(
            f"{row.size:>7} {row.found:>7} {row.duplicates:>10} {row.slices:>6} {row.requests:>8} {row.floor:>6} "
            f"{row.requests / row.floor:>6.3f} {row.halving_requests:>8} {row.halving_requests / row.floor:>13.3f} "
            f"{row.seconds:>7.1f}"
        )
    print(measure_under_quota(args.sizes[0], start, args.growth, args.seed))


if __name__ == "__main__":
    main()
