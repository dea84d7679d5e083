"""GitHub edge: enumerate the repositories under a topic, and read one branch head.

GitHub search returns at most 1,000 results per query, so a topic is enumerated as a series of
`created:` date slices, each small enough to page completely. Every search request is counted:
a slice's first page doubles as the probe that tells how many repositories the slice holds, and
cut points are placed where the counts seen so far, interpolated, predict about `SLICE_TARGET`
repositories, so few probes are wasted on slices that turn out too large.

Retries are done here rather than by PyGithub's `GithubRetry`, which PyGithub is built with
`retry=None` to switch off: a transport-level retry sleeps inside urllib3 (neither observable nor
injectable), cannot switch to another token when one is exhausted (the Authorization header is
fixed per request), does not wait for `X-RateLimit-Reset` on a 429, and hides its retried requests
from the request count.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import requests
from github import Auth, Github
from github.GithubException import GithubException, UnknownObjectException

from miner.core.settings import GithubSettings

logger = logging.getLogger(__name__)

# Injectable so tests can record waits instead of sleeping; looked up at call time.
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.time

SEARCH_RESULT_CAP = 1000
"""GitHub serves at most the first 1,000 results of a search, whatever its total_count."""
SLICE_TARGET = 850
"""Repositories a new slice is cut to hold: below the cap with room for the model's error."""
GITHUB_EPOCH = datetime(2008, 1, 1, tzinfo=UTC)
"""No repository was created before GitHub went live in 2008."""
PRIOR_GROWTH_PER_YEAR = math.log(2.0)
"""Before any slice is counted, assume a topic's repositories double every year."""
SECONDARY_LIMIT_WAIT_S = 60.0
"""GitHub asks for at least a minute's wait after a secondary limit without Retry-After."""
RESET_MARGIN_S = 1.0
"""X-RateLimit-Reset has one-second resolution; waiting a second longer avoids a second 403."""

Resource = Literal["search", "core"]
T = TypeVar("T")


class GithubError(Exception):
    """A GitHub request failed in a way that retrying will not fix."""


class GithubNotFound(GithubError):
    """The repository or branch does not exist (or is not visible to the token)."""


class GithubRequestRejected(GithubError):
    """GitHub refused the request (401, 403 without a rate limit, 422, ...)."""


class TransientGithubError(Exception):
    """A fault that may pass: Celery tasks `autoretry_for` this."""


class GithubUnavailable(TransientGithubError):
    """GitHub kept failing (5xx, dropped connections, rate limits) after every allowed retry."""


@dataclass(frozen=True)
class RepositoryMeta:
    full_name: str
    clone_url: str
    default_branch: str
    stars: int
    forks: int
    size_kb: int
    topics: tuple[str, ...]
    description: str | None
    fork: bool
    archived: bool
    created_at: datetime
    pushed_at: datetime | None
    html_url: str

    @classmethod
    def from_search_item(cls, item: dict[str, Any]) -> RepositoryMeta:
        return cls(
            full_name=item["full_name"],
            clone_url=item["clone_url"],
            default_branch=item.get("default_branch") or "main",
            stars=int(item.get("stargazers_count") or 0),
            forks=int(item.get("forks_count") or 0),
            size_kb=int(item.get("size") or 0),
            topics=tuple(item.get("topics") or ()),
            description=item.get("description"),
            fork=bool(item.get("fork")),
            archived=bool(item.get("archived")),
            created_at=_parse_timestamp(item["created_at"]),
            pushed_at=_parse_timestamp(item["pushed_at"]) if item.get("pushed_at") else None,
            html_url=item.get("html_url") or "",
        )


@dataclass
class Enumeration:
    repositories: list[RepositoryMeta]
    slices: list[str]
    """The search query (`q`) of every slice that was paged, in the order paged."""
    requests: int
    """Search requests sent, including those answered by a rate limit or a fault and retried."""
    query: str
    """The per-topic queries, joined by "; "."""


def enumerate_repositories(
    settings: GithubSettings,
    topics: list[str],
    extra_query: str = "",
    limit: int | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> Enumeration:
    """Every repository tagged with one of `topics` (and matching `extra_query`), once each.

    Topics are enumerated one after the other; a repository under several topics is kept where it
    was first seen. `extra_query` holds further search qualifiers (`language:python stars:>=5`); a
    `created:` qualifier in it narrows the date range that is sliced.
    """
    progress = on_progress or (lambda message: None)
    session = _GithubSession(settings, progress)
    extra, (start_s, end_s) = _split_created_qualifier(extra_query, now_s=int(clock()))
    queries = [f"topic:{topic} {extra}".strip() for topic in topics]
    repositories: dict[str, RepositoryMeta] = {}
    slices: list[str] = []
    for query in queries:
        if limit is not None and len(repositories) >= limit:
            break

        def fetch(lo_s: int, hi_s: int, page: int, query: str = query) -> SearchPage:
            return session.search_page(f"{query} {created_range(lo_s, hi_s)}", page)

        planner = SlicePlanner(fetch, per_page=session.per_page, on_progress=progress)
        for item in planner.items(start_s, end_s):
            repository = RepositoryMeta.from_search_item(item)
            repositories.setdefault(repository.full_name.lower(), repository)  # names ignore case
            if limit is not None and len(repositories) >= limit:
                break
        slices += [f"{query} {created_range(lo_s, hi_s)}" for lo_s, hi_s in planner.slices]
        progress(f"{query}: {len(repositories)} repositories so far, {session.search_requests} search requests")
    return Enumeration(
        repositories=list(repositories.values()),
        slices=slices,
        requests=session.search_requests,
        query="; ".join(queries),
    )


def branch_head(
    settings: GithubSettings,
    full_name: str,
    branch: str,
    on_progress: Callable[[str], None] | None = None,
) -> str:
    """The sha the branch points to now: an unchanged repository need not be cloned again."""
    session = _GithubSession(settings, on_progress or (lambda message: None))
    return session.call(
        "core",
        f"branch {branch!r} of {full_name}",
        lambda gh: gh.get_repo(full_name).get_branch(branch).commit.sha,
    )


# --- date slicing (no I/O: driven by a fetch function) -------------------------------------------


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


# --- queries ------------------------------------------------------------------------------------


def created_range(lo_s: int, hi_s: int) -> str:
    """A `created:` qualifier covering whole seconds lo..hi, both inclusive."""
    return f"created:{_format_timestamp(lo_s)}..{_format_timestamp(hi_s)}"


def _format_timestamp(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _parse_timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_CREATED = re.compile(r"(?:^|\s)created:(\S+)")


def _split_created_qualifier(extra_query: str, now_s: int) -> tuple[str, tuple[int, int]]:
    """Remove a `created:` qualifier from the query and turn it into the range to slice."""
    start_s, end_s = int(GITHUB_EPOCH.timestamp()), now_s
    match = _CREATED.search(extra_query)
    if not match:
        return " ".join(extra_query.split()), (start_s, end_s)
    rest = " ".join((extra_query[: match.start()] + " " + extra_query[match.end():]).split())
    value = match.group(1)
    if ".." in value:
        low, high = value.split("..", 1)
        if low != "*":
            start_s = max(start_s, _bound_s(low, "start"))
        if high != "*":
            end_s = min(end_s, _bound_s(high, "end"))
    elif value.startswith(">="):
        start_s = max(start_s, _bound_s(value[2:], "start"))
    elif value.startswith(">"):
        start_s = max(start_s, _bound_s(value[1:], "end") + 1)
    elif value.startswith("<="):
        end_s = min(end_s, _bound_s(value[2:], "end"))
    elif value.startswith("<"):
        end_s = min(end_s, _bound_s(value[1:], "start") - 1)
    else:
        start_s, end_s = max(start_s, _bound_s(value, "start")), min(end_s, _bound_s(value, "end"))
    return rest, (start_s, end_s)


def _bound_s(text: str, side: Literal["start", "end"]) -> int:
    """A date covers its whole day: as an upper bound it means the day's last second."""
    if "T" in text:
        return int(_parse_timestamp(text).timestamp())
    day_start = int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())
    return day_start if side == "start" else day_start + 86399


# --- HTTP: tokens, rate limits, retries --------------------------------------------------------


class _GithubSession:
    """One PyGithub client per token, and the loop that waits, rotates tokens and retries."""

    def __init__(self, settings: GithubSettings, on_progress: Callable[[str], None]) -> None:
        self._settings = settings
        self._progress = on_progress
        tokens = settings.all_tokens()
        self._secrets = tuple(tokens)
        self.per_page = max(1, min(settings.per_page, 100))
        self._clients = [self._client(Auth.Token(token)) for token in tokens] or [self._client(None)]
        self._current = 0
        self._exhausted_until: dict[tuple[int, str], float] = {}
        self.search_requests = 0

    def __repr__(self) -> str:
        return f"_GithubSession(api_url={self._settings.api_url!r}, tokens={len(self._secrets)})"

    def _client(self, auth: Auth.Token | None) -> Github:
        interval = self._settings.min_request_interval_s
        return Github(
            auth=auth,
            base_url=self._settings.api_url.rstrip("/"),
            timeout=max(1, math.ceil(self._settings.timeout_s)),  # PyGithub insists on whole seconds
            per_page=self.per_page,
            retry=None,
            seconds_between_requests=interval or None,
            seconds_between_writes=None,
            lazy=True,
            user_agent="mlflow-miner",
        )

    def search_page(self, query: str, page: int) -> SearchPage:
        parameters = {"q": query, "per_page": self.per_page, "page": page}
        headers, data = self.call(
            "search",
            f"search {query!r} page {page}",
            lambda gh: gh.requester.requestJsonAndCheck("GET", "/search/repositories", parameters=parameters),
        )
        self._note_quota(headers, "search")
        return SearchPage(
            total_count=int(data.get("total_count") or 0),
            items=list(data.get("items") or []),
            incomplete_results=bool(data.get("incomplete_results")),
        )

    def call(self, resource: Resource, what: str, request: Callable[[Github], T]) -> T:
        """Send one request, waiting out rate limits and retrying transient faults."""
        failures = 0
        limited = 0
        while True:
            index = self._usable_client(resource)
            if resource == "search":
                self.search_requests += 1
            try:
                return request(self._clients[index])
            except UnknownObjectException:
                raise GithubNotFound(self._redact(f"{what}: not found")) from None
            except GithubException as exc:
                headers = {key.lower(): str(value) for key, value in (exc.headers or {}).items()}
                message = _message(exc)
                limit = _rate_limit(exc.status, headers, message)
                if limit is None and exc.status is not None and exc.status >= 500:
                    failures = self._backoff(failures, what, f"HTTP {exc.status}")
                    continue
                if limit is None:
                    raise GithubRequestRejected(self._redact(f"{what}: HTTP {exc.status}: {message}")) from None
                limited += 1
                if limited > self._settings.max_retries + len(self._clients):
                    raise GithubUnavailable(
                        self._redact(f"{what}: still rate limited after {limited} responses (HTTP {exc.status})")
                    ) from None
                if limit == "primary":
                    reset_s = _header_float(headers, "x-ratelimit-reset") or clock() + SECONDARY_LIMIT_WAIT_S
                    self._exhausted_until[(index, resource)] = reset_s
                    continue
                wait_s = _header_float(headers, "retry-after")
                if wait_s is None:
                    wait_s = min(
                        SECONDARY_LIMIT_WAIT_S * 2 ** (limited - 1),
                        max(SECONDARY_LIMIT_WAIT_S, self._settings.backoff_max_s),
                    )
                self._wait(wait_s, f"secondary rate limit (HTTP {exc.status}), waiting {wait_s:.0f} s")
            except requests.RequestException as exc:
                failures = self._backoff(failures, what, f"{type(exc).__name__}")

    def _note_quota(self, headers: dict[str, Any], resource: str) -> None:
        """The response used a quota's last request: rotate or wait before the next, not after a 403."""
        lowered = {key.lower(): str(value) for key, value in headers.items()}
        reset_s = _header_float(lowered, "x-ratelimit-reset")
        if lowered.get("x-ratelimit-remaining") == "0" and reset_s is not None:
            self._exhausted_until[(self._current, resource)] = reset_s

    def _usable_client(self, resource: str) -> int:
        """Index of a token with quota left, rotating first and waiting only if all are spent."""
        now_s = clock()
        count = len(self._clients)
        for step in range(count):
            index = (self._current + step) % count
            if self._exhausted_until.get((index, resource), 0.0) <= now_s:
                if index != self._current:
                    self._progress(f"token {self._current + 1} of {count} exhausted; using token {index + 1}")
                    self._current = index
                return index
        index = min(range(count), key=lambda i: self._exhausted_until[(i, resource)])
        reset_s = self._exhausted_until.pop((index, resource))
        wait_s = max(0.0, reset_s - now_s) + RESET_MARGIN_S
        self._wait(wait_s, f"rate limited, waiting {wait_s:.0f} s for the {resource} quota to reset")
        self._current = index
        return index

    def _backoff(self, failures: int, what: str, reason: str) -> int:
        failures += 1
        if failures > self._settings.max_retries:
            raise GithubUnavailable(
                self._redact(f"{what}: GitHub unavailable after {self._settings.max_retries} retries ({reason})")
            ) from None
        delay_s = min(self._settings.backoff_max_s, self._settings.backoff_base_s * 2 ** (failures - 1))
        delay_s = delay_s / 2 + random.uniform(0, delay_s / 2)
        self._wait(delay_s, f"{reason}; retry {failures} of {self._settings.max_retries} in {delay_s:.1f} s")
        return failures

    def _wait(self, seconds: float, message: str) -> None:
        message = self._redact(message)
        logger.info(message)
        self._progress(message)
        sleep(seconds)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict):
        return str(data.get("message") or "")
    return str(data or "")[:200]


def _rate_limit(status: int | None, headers: dict[str, str], message: str) -> Literal["primary", "secondary"] | None:
    """GitHub's documented signals: Retry-After first, then a spent quota, then the message."""
    if status not in (403, 429):
        return None
    if "retry-after" in headers:
        return "secondary"
    if headers.get("x-ratelimit-remaining") == "0":
        return "primary"
    lowered = message.lower()
    if "rate limit" in lowered or status == 429:
        return "secondary"
    return None


def _header_float(headers: dict[str, str], name: str) -> float | None:
    try:
        return float(headers[name])
    except (KeyError, ValueError):
        return None
