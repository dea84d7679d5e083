"""Date slicing of one search, with no I/O: driven by a fetch function.

GitHub search returns at most 1,000 results per query, so a topic is enumerated as a series of
`created:` date slices, each small enough to page completely. A slice's first page doubles as the
probe that tells how many repositories the slice holds, and cut points are placed where the counts
seen so far, interpolated, predict about `SLICE_TARGET` repositories, so few probes are wasted on
slices that turn out too large.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from miner.acquire.github.queries import created_range

SEARCH_RESULT_CAP = 1000
"""GitHub serves at most the first 1,000 results of a search, whatever its total_count."""
SLICE_TARGET = 850
"""Repositories a new slice is cut to hold: below the cap with room for the model's error."""
PRIOR_GROWTH_PER_YEAR = math.log(2.0)
"""Before any slice is counted, assume a topic's repositories double every year."""


@dataclass(frozen=True)
class SearchPage:
    total_count: int
    items: list[dict[str, Any]]
    incomplete_results: bool = False


FetchPage = Callable[[int, int, int], SearchPage]
"""(first second, last second, page number from 1) -> that page of the slice's results."""


@dataclass
class SlicePlanner:
    """Cuts [start, end] (epoch seconds, inclusive) into slices under the cap and pages each.

    Slices are cut off the oldest end of a range. Every probe tells how many repositories were
    created before its end, so the count of what is left of a range is known by subtraction and
    only a probe that comes back over the cap pages nothing. Those cumulative counts (`knots`) are
    what the next cut point is interpolated from.
    """

    fetch: FetchPage
    per_page: int = 100
    on_progress: Callable[[str], None] = lambda message: None
    target: int = SLICE_TARGET
    slices: list[tuple[int, int]] = field(default_factory=list)
    knots: dict[int, int] = field(default_factory=dict)
    """Boundary second -> repositories created before it, as counted by the probes."""

    def items(self, start_s: int, end_s: int) -> Iterator[dict[str, Any]]:
        if start_s > end_s:
            return
        yield from self._page_or_cut(start_s, end_s, self._probe(start_s, end_s))

    def _probe(self, lo_s: int, hi_s: int) -> SearchPage:
        first = self.fetch(lo_s, hi_s, 1)
        if not self.knots:
            self.knots[lo_s] = 0
        base = self.knots.get(lo_s)
        if base is not None:
            self.knots[hi_s + 1] = base + first.total_count
        return first

    def _page_or_cut(self, lo_s: int, hi_s: int, first: SearchPage) -> Iterator[dict[str, Any]]:
        if first.total_count > SEARCH_RESULT_CAP and lo_s < hi_s:
            self.on_progress(
                f"{created_range(lo_s, hi_s)}: {first.total_count} repositories, "
                f"over the {SEARCH_RESULT_CAP}-result cap: cutting by creation date"
            )
            yield from self._cut(lo_s, hi_s, first.total_count)
            return
        if first.total_count > SEARCH_RESULT_CAP:
            self.on_progress(
                f"{created_range(lo_s, hi_s)} holds {first.total_count} repositories in one second; "
                f"only the first {SEARCH_RESULT_CAP} can be listed"
            )
        if first.incomplete_results:
            self.on_progress(f"{created_range(lo_s, hi_s)}: GitHub reported incomplete results")
        self.slices.append((lo_s, hi_s))
        self.on_progress(f"{created_range(lo_s, hi_s)}: {first.total_count} repositories")
        yield from first.items
        pages = math.ceil(min(first.total_count, SEARCH_RESULT_CAP) / self.per_page)
        received = len(first.items)
        for page in range(2, pages + 1):
            if received < (page - 1) * self.per_page:
                break  # a short page: the slice shrank since it was counted
            result = self.fetch(lo_s, hi_s, page)
            received += len(result.items)
            yield from result.items

    def _cut(self, lo_s: int, hi_s: int, count: int) -> Iterator[dict[str, Any]]:
        while count > SEARCH_RESULT_CAP and lo_s < hi_s:
            cut_s = self._cut_point(lo_s, hi_s, count)
            prefix = self._probe(lo_s, cut_s)
            yield from self._page_or_cut(lo_s, cut_s, prefix)
            count -= prefix.total_count
            lo_s = cut_s + 1
        # What is left is paged on its own count, not the subtraction: the index may have moved.
        yield from self.items(lo_s, hi_s)

    def _cut_point(self, lo_s: int, hi_s: int, count: int) -> int:
        """Last second of a prefix of [lo, hi] predicted to hold `target` repositories.

        The cumulative count is interpolated between the knots with a monotone cubic
        (Fritsch-Carlson), so the density on both sides of the range bends the guess. Before
        there is anything to bend it, a growth prior stands in: a topic's old end is sparse.
        """
        span_s = hi_s - lo_s + 1
        share = min(self.target / count, 1.0)
        positions = sorted(self.knots)
        if len(positions) <= 2 or lo_s not in self.knots or hi_s + 1 not in self.knots:
            rate = PRIOR_GROWTH_PER_YEAR * span_s / SECONDS_PER_YEAR
            fraction = _share_point(rate, share)
        else:
            counts = [self.knots[position] for position in positions]
            fraction = _monotone_share_point(positions, counts, positions.index(lo_s), share)
        return min(hi_s - 1, max(lo_s, lo_s + int(fraction * span_s) - 1))


SECONDS_PER_YEAR = 365.25 * 86400


def _share_point(rate: float, share: float) -> float:
    """The u in [0, 1] where [0, u] holds `share` of [0, 1] under density exp(rate * x)."""
    if abs(rate) < 1e-9:
        return share
    return math.log1p(share * math.expm1(rate)) / rate


def _monotone_share_point(xs: list[int], ys: list[int], i: int, share: float) -> float:
    """Where on [xs[i], xs[i+1]] the monotone cubic through (xs, ys) gains `share` of its rise."""
    last = len(xs) - 1
    slopes = [max(ys[k + 1] - ys[k], 0) / (xs[k + 1] - xs[k]) for k in range(last)]

    def tangent(k: int) -> float:
        if k == 0 or k == last:  # one-sided three-point estimate, kept monotone
            inner, outer = (0, 1) if k == 0 else (last - 1, last - 2)
            h_in, h_out = xs[inner + 1] - xs[inner], xs[outer + 1] - xs[outer]
            d = ((2 * h_in + h_out) * slopes[inner] - h_in * slopes[outer]) / (h_in + h_out)
            return min(max(d, 0.0), 3 * slopes[inner])
        before, after = slopes[k - 1], slopes[k]
        if before <= 0 or after <= 0:
            return 0.0
        h_before, h_after = xs[k] - xs[k - 1], xs[k + 1] - xs[k]
        w_before, w_after = 2 * h_after + h_before, h_after + 2 * h_before
        return (w_before + w_after) / (w_before / before + w_after / after)

    width = xs[i + 1] - xs[i]
    rise = slopes[i] * width
    if rise <= 0:
        return share
    m0, m1 = tangent(i) * width / rise, tangent(i + 1) * width / rise

    def gained(u: float) -> float:  # Hermite basis, normalised so gained(0) = 0 and gained(1) = 1
        return (3 - 2 * u) * u * u + m0 * u * (1 - u) ** 2 - m1 * u * u * (1 - u)

    low, high = 0.0, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        if gained(middle) < share:
            low = middle
        else:
            high = middle
    return low
