"""HTTP to GitHub: one PyGithub client per token, and the loop that waits, rotates tokens and retries.

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
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import requests
from github import Auth, Github
from github.GithubException import GithubException, UnknownObjectException

from miner.acquire.github.errors import GithubNotFound, GithubRequestRejected, GithubUnavailable
from miner.acquire.github.slices import SearchPage
from miner.core.settings import GithubSettings

logger = logging.getLogger(__name__)

# Injectable so tests can record waits instead of sleeping; looked up at call time.
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.time

SECONDARY_LIMIT_WAIT_S = 60.0
"""GitHub asks for at least a minute's wait after a secondary limit without Retry-After."""
RESET_MARGIN_S = 1.0
"""X-RateLimit-Reset has one-second resolution; waiting a second longer avoids a second 403."""

Resource = Literal["search", "core"]
T = TypeVar("T")


class GithubSession:
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
        return f"GithubSession(api_url={self._settings.api_url!r}, tokens={len(self._secrets)})"

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
