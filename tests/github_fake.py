"""A local stand-in for api.github.com: real HTTP on 127.0.0.1, GitHub's REST shapes, faults on cue.

github.com is the one thing our tests cannot run, so this server speaks the part of its REST API
the miner uses: repository search (qualifiers, the 1,000-result cap, Link pagination, rate-limit
headers), a repository, a branch, and /rate_limit. Tests add repositories (their clone URLs may be
`file://` paths of real git repositories built in tmp_path) and schedule faults by request number:
secondary limits (403 or 429, with or without Retry-After), an exhausted primary quota, a 502, a
connection dropped without an answer, a stalled answer.

    with FakeGithub() as fake:
        fake.add_repository("acme/tracker", topics=["mlflow"], clone_url=repo.path.as_uri())
        fake.fail_at(2, "server_error")
        settings = fake.github_settings(token="t0k3n")
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import shlex
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha1
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

SEARCH_CAP = 1000
DOCS = "https://docs.github.com/rest"
UNLIMITED = 1_000_000
"""X-RateLimit-Limit reported when a quota is not enforced."""
WINDOW_S = {"search": 60, "core": 3600}
PRIMARY_MESSAGE = (
    "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please "
    "include the request ID 0000:1111:2222:3333:4444 and timestamp 2025-01-01 00:00:00 UTC."
)
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If "
    "you reach out to GitHub Support for help, please include the request ID 0000:1111:2222:3333:4444."
)

FaultKind = Literal["secondary_403", "secondary_429", "primary", "server_error", "drop", "stall"]


class FakeClock:
    """A clock that moves only when told to sleep: share it between the fake and the client."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


_generation = itertools.count()
"""Bumped by every change to any FakeRepository, so cached search answers know they are stale."""
_current_generation = [0]


@dataclass
class FakeRepository:
    """One repository as the fake serves it; `branches` maps branch name to head sha.

    Assign attributes to change a repository (topics are a tuple for that reason): assignment is
    what tells the server's caches to recompute.
    """

    id: int
    full_name: str
    clone_url: str
    created_at: datetime
    topics: tuple[str, ...]
    default_branch: str
    branches: dict[str, str]
    size_kb: int
    stars: int
    forks: int
    fork: bool
    archived: bool
    description: str | None
    language: str | None
    pushed_at: datetime | None
    updated_at: datetime
    _json: dict[tuple[str, bool], str] = field(default_factory=dict, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name != "_json":
            object.__setattr__(self, "_json", {})
            _current_generation[0] = next(_generation)

    def encoded(self, api_url: str, search: bool) -> str:
        """as_json, serialised once per change."""
        key = (api_url, search)
        if key not in self._json:
            self._json[key] = json.dumps(self.as_json(api_url, search))
        return self._json[key]

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]

    @property
    def head_sha(self) -> str:
        return self.branches[self.default_branch]

    def as_json(self, api_url: str, search: bool = False) -> dict[str, Any]:
        """The fields GitHub returns for a repository (a search item adds `score`)."""
        api = f"{api_url}/repos/{self.full_name}"
        owner_api = f"{api_url}/users/{self.owner}"
        owner_id = int(sha1(self.owner.encode()).hexdigest()[:7], 16)
        item: dict[str, Any] = {
            "id": self.id,
            "node_id": f"R_kgDO{self.id:08d}",
            "name": self.name,
            "full_name": self.full_name,
            "private": False,
            "owner": {
                "login": self.owner,
                "id": owner_id,
                "node_id": f"U_kgDO{owner_id:08d}",
                "avatar_url": f"https://avatars.githubusercontent.com/u/{owner_id}?v=4",
                "gravatar_id": "",
                "url": owner_api,
                "html_url": f"https://github.com/{self.owner}",
                "followers_url": f"{owner_api}/followers",
                "following_url": f"{owner_api}/following{{/other_user}}",
                "gists_url": f"{owner_api}/gists{{/gist_id}}",
                "starred_url": f"{owner_api}/starred{{/owner}}{{/repo}}",
                "subscriptions_url": f"{owner_api}/subscriptions",
                "organizations_url": f"{owner_api}/orgs",
                "repos_url": f"{owner_api}/repos",
                "events_url": f"{owner_api}/events{{/privacy}}",
                "received_events_url": f"{owner_api}/received_events",
                "type": "User",
                "user_view_type": "public",
                "site_admin": False,
            },
            "html_url": f"https://github.com/{self.full_name}",
            "description": self.description,
            "fork": self.fork,
            "url": api,
            "forks_url": f"{api}/forks",
            "keys_url": f"{api}/keys{{/key_id}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "teams_url": f"{api}/teams",
            "hooks_url": f"{api}/hooks",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "events_url": f"{api}/events",
            "assignees_url": f"{api}/assignees{{/user}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "tags_url": f"{api}/tags",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "languages_url": f"{api}/languages",
            "stargazers_url": f"{api}/stargazers",
            "contributors_url": f"{api}/contributors",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "commits_url": f"{api}/commits{{/sha}}",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "comments_url": f"{api}/comments{{/number}}",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "merges_url": f"{api}/merges",
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "downloads_url": f"{api}/downloads",
            "issues_url": f"{api}/issues{{/number}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "labels_url": f"{api}/labels{{/name}}",
            "releases_url": f"{api}/releases{{/id}}",
            "deployments_url": f"{api}/deployments",
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "pushed_at": _iso(self.pushed_at) if self.pushed_at else None,
            "git_url": f"git://github.com/{self.full_name}.git",
            "ssh_url": f"git@github.com:{self.full_name}.git",
            "clone_url": self.clone_url,
            "svn_url": f"https://github.com/{self.full_name}",
            "homepage": None,
            "size": self.size_kb,
            "stargazers_count": self.stars,
            "watchers_count": self.stars,
            "language": self.language,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": self.forks,
            "mirror_url": None,
            "archived": self.archived,
            "disabled": False,
            "open_issues_count": 0,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": list(self.topics),
            "visibility": "public",
            "forks": self.forks,
            "open_issues": 0,
            "watchers": self.stars,
            "default_branch": self.default_branch,
        }
        if search:
            item["score"] = 1.0
        else:
            item["network_count"] = self.forks
            item["subscribers_count"] = 0
        return item


@dataclass
class Fault:
    """Answer the `at`-th to (`at` + times - 1)-th request under `path` with a fault."""

    kind: FaultKind
    at: int
    times: int = 1
    path: str = "/search/"
    retry_after_s: int | None = None
    reset_in_s: int = 60
    status: int | None = None
    stall_s: float = 2.0
    seen: int = 0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    authorization: str | None
    status: int | None
    """None when the connection was dropped without an answer."""
    headers: dict[str, str] = field(default_factory=dict)
    """The response headers the fake sent (rate-limit headers, Retry-After, Link)."""


@dataclass
class _Quota:
    limit: int
    used: int = 0
    reset_s: float = 0.0


class FakeGithub:
    """GitHub's REST API on a local port, for as long as the context lasts."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        search_limit: int | None = None,
        core_limit: int | None = None,
        valid_tokens: Iterable[str] | None = None,
    ) -> None:
        self.clock = clock
        self.limits: dict[str, int | None] = {"search": search_limit, "core": core_limit}
        self.valid_tokens = set(valid_tokens) if valid_tokens is not None else None
        self.log: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._repositories: dict[str, FakeRepository] = {}
        self._by_created: list[tuple[float, int, FakeRepository]] = []
        self._sorted = True
        self._search_cache: dict[tuple[str, str | None, str, int], list[FakeRepository]] = {}
        self._quotas: dict[tuple[str, str], _Quota] = {}
        self._next_id = 100_000
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeGithub:
        handler = type("FakeGithubHandler", (_Handler,), {"fake": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-github", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGithub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def github_settings(self, **overrides: Any):  # -> miner.core.settings.GithubSettings
        """Settings pointing at this server, without the pauses meant for github.com."""
        from miner.core.settings import GithubSettings

        values: dict[str, Any] = {
            "api_url": self.url,
            "min_request_interval_s": 0.0,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
            "timeout_s": 10.0,
        }
        values.update(overrides)
        return GithubSettings(**values)

    # --- content --------------------------------------------------------------------------------

    def add_repository(
        self,
        full_name: str,
        *,
        clone_url: str | None = None,
        created_at: datetime | None = None,
        topics: Iterable[str] = (),
        default_branch: str = "main",
        head_sha: str | None = None,
        branches: dict[str, str] | None = None,
        size_kb: int = 100,
        stars: int = 0,
        forks: int = 0,
        fork: bool = False,
        archived: bool = False,
        description: str | None = None,
        language: str | None = "Python",
        pushed_at: datetime | None = None,
    ) -> FakeRepository:
        created = _utc(created_at or datetime(2020, 1, 1, tzinfo=UTC))
        with self._lock:
            self._next_id += 1
            repository = FakeRepository(
                id=self._next_id,
                full_name=full_name,
                clone_url=clone_url or f"https://github.com/{full_name}.git",
                created_at=created,
                topics=tuple(topics),
                default_branch=default_branch,
                branches=dict(branches or {}),
                size_kb=size_kb,
                stars=stars,
                forks=forks,
                fork=fork,
                archived=archived,
                description=description,
                language=language,
                pushed_at=_utc(pushed_at) if pushed_at else created + timedelta(days=30),
                updated_at=created + timedelta(days=31),
            )
            repository.branches.setdefault(default_branch, head_sha or sha1(full_name.encode()).hexdigest())
            self._repositories[full_name.lower()] = repository
            self._by_created.append((created.timestamp(), repository.id, repository))
            self._sorted = False
        return repository

    def add_synthetic_repositories(
        self,
        count: int,
        *,
        topics: Iterable[str] = ("mlflow",),
        start: datetime = datetime(2012, 1, 1, tzinfo=UTC),
        end: datetime | None = None,
        growth_per_year: float = 0.5,
        seed: int = 0,
        prefix: str = "synthetic",
        clone_url: Callable[[int], str] | None = None,
    ) -> list[FakeRepository]:
        """`count` repositories whose creation rate grows by `growth_per_year` (0.5 = +50 %/year).

        That is how a GitHub topic fills up: a handful of repositories in its first years and
        most of them in the last few, which is what makes even date slices uneven.
        """
        generator = random.Random(seed)
        start_s = _utc(start).timestamp()
        end_s = _utc(end).timestamp() if end else time.time() - 86400
        years = (end_s - start_s) / (365.25 * 86400)
        rate = math.log1p(growth_per_year)
        topic_list = list(topics)
        created: list[FakeRepository] = []
        for index in range(count):
            u = generator.random()
            position = math.log1p(u * math.expm1(rate * years)) / rate if rate else u * years
            created_at = datetime.fromtimestamp(int(start_s + position * 365.25 * 86400), UTC)
            created.append(
                self.add_repository(
                    f"{prefix}-owner{index % 211}/{prefix}-{index:06d}",
                    clone_url=clone_url(index) if clone_url else None,
                    created_at=created_at,
                    topics=topic_list,
                    stars=int(generator.paretovariate(1.2)) - 1,
                    forks=generator.randrange(5),
                    size_kb=generator.randrange(10, 50_000),
                    language=generator.choice(["Python", "Python", "Python", "Jupyter Notebook"]),
                    description=f"synthetic repository {index}",
                )
            )
        return created

    def clear_repositories(self) -> None:
        with self._lock:
            self._repositories.clear()
            self._by_created.clear()
            self._sorted = True
            self._search_cache.clear()

    def reset(self) -> None:
        """Forget faults, the request log and spent quotas; keep the repositories."""
        with self._lock:
            self.faults.clear()
            self.log.clear()
            self._quotas.clear()

    @property
    def repositories(self) -> list[FakeRepository]:
        with self._lock:
            return list(self._repositories.values())

    # --- faults and rate limits -----------------------------------------------------------------

    def fail_at(
        self,
        at: int,
        kind: FaultKind,
        *,
        times: int = 1,
        path: str = "/search/",
        retry_after_s: int | None = None,
        reset_in_s: int = 60,
        status: int | None = None,
        stall_s: float = 2.0,
    ) -> Fault:
        """Answer request number `at` (1-based, counting requests under `path`) with a fault.

        secondary_403 / secondary_429: GitHub's secondary-limit message, Retry-After if given.
        primary: quota spent (X-RateLimit-Remaining: 0, reset in `reset_in_s`), 403 or `status`.
        server_error: 502 (or `status`). drop: close the connection without a response.
        stall: answer normally after `stall_s` seconds (longer than the client's timeout).
        """
        fault = Fault(kind, at, times, path, retry_after_s, reset_in_s, status, stall_s)
        with self._lock:
            self.faults.append(fault)
        return fault

    def exhaust_token(self, token: str | None, resource: str = "search", reset_in_s: int = 60) -> None:
        """Spend a token's quota: its requests get 403 primary-limit answers until the reset."""
        with self._lock:
            quota = self._quota(_token_key(f"token {token}" if token else None), resource)
            quota.limit = quota.limit if quota.limit != UNLIMITED else {"search": 30, "core": 5000}[resource]
            quota.used = quota.limit
            quota.reset_s = self.clock() + reset_in_s

    @property
    def search_requests(self) -> int:
        """Search requests received, faulted and dropped ones included."""
        with self._lock:
            return sum(1 for entry in self.log if entry.path.startswith("/search/"))

    @property
    def authorizations(self) -> list[str | None]:
        """The Authorization header of every request, in order."""
        with self._lock:
            return [entry.authorization for entry in self.log]

    def _quota(self, key: str, resource: str) -> _Quota:
        now = self.clock()
        quota = self._quotas.get((key, resource))
        if quota is None or quota.reset_s <= now:
            limit = self.limits.get(resource)
            quota = _Quota(limit=limit if limit is not None else UNLIMITED, reset_s=now + WINDOW_S[resource])
            self._quotas[(key, resource)] = quota
        return quota

    def _due_fault(self, path: str) -> Fault | None:
        due = None
        for fault in self.faults:
            if path.startswith(fault.path):
                fault.seen += 1
                if due is None and fault.at <= fault.seen < fault.at + fault.times:
                    due = fault
        return due

    # --- answers --------------------------------------------------------------------------------

    def _respond(self, method: str, raw_path: str, authorization: str | None) -> _Answer:
        parsed = urllib.parse.urlsplit(raw_path)
        path = parsed.path.rstrip("/") or "/"
        params = {key: values[-1] for key, values in urllib.parse.parse_qs(parsed.query).items()}
        resource = "search" if path.startswith("/search/") else "core"
        with self._lock:
            fault = self._due_fault(path)
            answer = self._answer_fault(fault, resource, authorization) if fault else None
            if answer is None:
                answer = self._answer(method, path, params, resource, authorization)
            self.log.append(RecordedRequest(method, path, params, authorization, answer.status, answer.headers))
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.stall_s)
        return answer

    def _rate_headers(self, quota: _Quota, resource: str) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(quota.limit),
            "X-RateLimit-Remaining": str(max(quota.limit - quota.used, 0)),
            "X-RateLimit-Reset": str(int(math.ceil(quota.reset_s))),
            "X-RateLimit-Used": str(quota.used),
            "X-RateLimit-Resource": resource,
        }

    def _answer_fault(self, fault: Fault, resource: str, authorization: str | None) -> _Answer | None:
        quota = self._quota(_token_key(authorization), resource)
        headers = self._rate_headers(quota, resource)
        if fault.kind == "drop":
            return _Answer(None, {}, None)
        if fault.kind == "stall":
            return None
        if fault.kind == "server_error":
            return _Answer(fault.status or 502, {}, {"message": "Server Error"})
        if fault.kind == "primary":
            headers.update(
                {
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Used": headers["X-RateLimit-Limit"],
                    "X-RateLimit-Reset": str(int(self.clock()) + fault.reset_in_s),
                }
            )
            body = {"message": PRIMARY_MESSAGE, "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api"}
            return _Answer(fault.status or 403, headers, body)
        status = 403 if fault.kind == "secondary_403" else 429
        if fault.retry_after_s is not None:
            headers["Retry-After"] = str(fault.retry_after_s)
        body = {
            "message": SECONDARY_MESSAGE,
            "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        }
        return _Answer(status, headers, body)

    def _answer(
        self, method: str, path: str, params: dict[str, str], resource: str, authorization: str | None
    ) -> _Answer:
        if self.valid_tokens is not None and (
            authorization is None or authorization.split(" ", 1)[-1] not in self.valid_tokens
        ):
            return _Answer(401, {}, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})
        if path == "/rate_limit":
            return self._rate_limit_answer(authorization)
        quota = self._quota(_token_key(authorization), resource)
        if quota.used >= quota.limit:
            headers = self._rate_headers(quota, resource)
            body = {"message": PRIMARY_MESSAGE, "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api"}
            return _Answer(403, headers, body)
        quota.used += 1
        headers = self._rate_headers(quota, resource)
        if method != "GET":
            return _Answer(404, headers, _not_found(f"{DOCS}"))
        parts = [urllib.parse.unquote(part) for part in path.strip("/").split("/")]
        if parts == ["search", "repositories"]:
            return self._search(params, headers)
        if len(parts) == 3 and parts[0] == "repos":
            repository = self._repositories.get(f"{parts[1]}/{parts[2]}".lower())
            if repository is None:
                return _Answer(404, headers, _not_found(f"{DOCS}/repos/repos#get-a-repository"))
            return _Answer(200, headers, repository.as_json(self.url))
        if len(parts) >= 5 and parts[0] == "repos" and parts[3] == "branches":
            repository = self._repositories.get(f"{parts[1]}/{parts[2]}".lower())
            branch = "/".join(parts[4:])
            if repository is None:
                return _Answer(404, headers, _not_found(f"{DOCS}/branches/branches#get-a-branch"))
            if branch not in repository.branches:
                body = _not_found(f"{DOCS}/branches/branches#get-a-branch")
                body["message"] = "Branch not found"
                return _Answer(404, headers, body)
            return _Answer(200, headers, self._branch_json(repository, branch))
        return _Answer(404, headers, _not_found(DOCS))

    def _rate_limit_answer(self, authorization: str | None) -> _Answer:
        resources = {}
        for resource in ("core", "search"):
            quota = self._quota(_token_key(authorization), resource)
            resources[resource] = {
                "limit": quota.limit,
                "used": quota.used,
                "remaining": max(quota.limit - quota.used, 0),
                "reset": int(math.ceil(quota.reset_s)),
            }
        return _Answer(200, {}, {"resources": resources, "rate": resources["core"]})

    def _branch_json(self, repository: FakeRepository, branch: str) -> dict[str, Any]:
        api = f"{self.url}/repos/{repository.full_name}"
        sha = repository.branches[branch]
        return {
            "name": branch,
            "commit": {
                "sha": sha,
                "node_id": f"C_kwDO{sha[:12]}",
                "url": f"{api}/commits/{sha}",
                "html_url": f"https://github.com/{repository.full_name}/commit/{sha}",
                "commit": {
                    "author": {"name": "Fake", "email": "fake@example.com", "date": _iso(repository.updated_at)},
                    "committer": {"name": "Fake", "email": "fake@example.com", "date": _iso(repository.updated_at)},
                    "message": "head",
                    "tree": {"sha": sha1(sha.encode()).hexdigest(), "url": f"{api}/git/trees/{sha}"},
                    "url": f"{api}/git/commits/{sha}",
                    "comment_count": 0,
                },
                "parents": [],
            },
            "_links": {
                "self": f"{api}/branches/{urllib.parse.quote(branch, safe='')}",
                "html": f"https://github.com/{repository.full_name}/tree/{branch}",
            },
            "protected": False,
            "protection": {"enabled": False, "required_status_checks": {"enforcement_level": "off", "contexts": []}},
            "protection_url": f"{api}/branches/{urllib.parse.quote(branch, safe='')}/protection",
        }

    def _search(self, params: dict[str, str], headers: dict[str, str]) -> _Answer:
        query = params.get("q", "")
        try:
            per_page = min(max(int(params.get("per_page", "30")), 1), 100)
            page = max(int(params.get("page", "1")), 1)
            matcher = _SearchQuery.parse(query)
        except ValueError as exc:
            body = {
                "message": "Validation Failed",
                "errors": [{"resource": "Search", "field": "q", "code": "invalid", "message": str(exc)}],
                "documentation_url": f"{DOCS}/search/search#search-repositories",
                "status": "422",
            }
            return _Answer(422, headers, body)
        if (page - 1) * per_page >= SEARCH_CAP:
            body = {
                "message": "Only the first 1000 search results are available",
                "documentation_url": f"{DOCS}/search/search",
                "status": "422",
            }
            return _Answer(422, headers, body)
        matches = self._matches(query, matcher, params.get("sort"), params.get("order", "desc"))
        start = (page - 1) * per_page
        stop = min(start + per_page, SEARCH_CAP)
        items = [repository.encoded(self.url, search=True) for repository in matches[start:stop]]
        last_page = max(1, math.ceil(min(len(matches), SEARCH_CAP) / per_page))
        links = []
        if page < last_page:
            links.append((page + 1, "next"))
            links.append((last_page, "last"))
        if page > 1:
            links.append((page - 1, "prev"))
            links.append((1, "first"))
        if links:
            headers = dict(headers)
            headers["Link"] = ", ".join(
                f'<{self._page_url(params, number)}>; rel="{relation}"' for number, relation in links
            )
        body = f'{{"total_count": {len(matches)}, "incomplete_results": false, "items": [{", ".join(items)}]}}'
        return _Answer(200, headers, _Encoded(body))

    def _matches(self, query: str, matcher: _SearchQuery, sort: str | None, order: str) -> list[FakeRepository]:
        """Matching repositories in result order; a slice's pages 2..n reuse its page 1's work."""
        key = (query, sort, order, _current_generation[0])
        if key not in self._search_cache:
            if len(self._search_cache) > 64:
                self._search_cache.clear()
            matches = [repository for repository in self._candidates(matcher) if matcher.matches(repository)]
            matches.sort(key=_sort_key(sort, order))
            self._search_cache[key] = matches
        return self._search_cache[key]

    def _page_url(self, params: dict[str, str], page: int) -> str:
        return f"{self.url}/search/repositories?{urllib.parse.urlencode({**params, 'page': str(page)})}"

    def _candidates(self, matcher: _SearchQuery) -> Iterator[FakeRepository]:
        if not self._sorted:
            self._by_created.sort(key=lambda entry: (entry[0], entry[1]))
            self._sorted = True
        low, high = matcher.created_bounds()
        first = bisect.bisect_left(self._by_created, (low, -1))
        last = bisect.bisect_right(self._by_created, (high, math.inf))
        for _, _, repository in self._by_created[first:last]:
            yield repository


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a stalled answer is expected, not an error worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class _Answer:
    status: int | None
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class _Encoded:
    """A body already serialised to JSON text."""

    text: str


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGithub
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_version = "GitHub.com"
    sys_version = ""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._handle("POST")

    def _handle(self, method: str) -> None:
        answer = self.fake._respond(method, self.path, self.headers.get("Authorization"))
        if answer.status is None:
            self.close_connection = True
            return
        body = answer.body
        payload = (body.text if isinstance(body, _Encoded) else json.dumps(body)).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        self.send_header("X-GitHub-Request-Id", f"FAKE:{len(self.fake.log):08X}")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Silence: a request log would print Authorization-bearing noise into test output."""


# --- the search language -------------------------------------------------------------------------


@dataclass
class _SearchQuery:
    """The qualifiers of a repository search; forks are left out unless `fork:` asks for them."""

    words: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    excluded_topics: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    created: tuple[float, float] = (-math.inf, math.inf)
    pushed: tuple[float, float] = (-math.inf, math.inf)
    stars: tuple[float, float] = (-math.inf, math.inf)
    forks: tuple[float, float] = (-math.inf, math.inf)
    size: tuple[float, float] = (-math.inf, math.inf)
    fork: Literal["false", "true", "only"] = "false"
    archived: bool | None = None

    @classmethod
    def parse(cls, query: str) -> _SearchQuery:
        parsed = cls()
        for term in shlex.split(query):
            negated = term.startswith("-") and ":" in term
            qualifier, _, value = term.lstrip("-").partition(":") if ":" in term else ("", "", term)
            qualifier = qualifier.lower()
            if not qualifier:
                parsed.words.append(term.lower())
            elif qualifier == "topic":
                (parsed.excluded_topics if negated else parsed.topics).append(value.lower())
            elif qualifier == "language":
                parsed.languages.append(value.lower())
            elif qualifier in ("user", "org"):
                parsed.owners.append(value.lower())
            elif qualifier in ("created", "pushed"):
                setattr(parsed, qualifier, _intersect(getattr(parsed, qualifier), _date_range(value)))
            elif qualifier in ("stars", "forks", "size"):
                setattr(parsed, qualifier, _intersect(getattr(parsed, qualifier), _number_range(value)))
            elif qualifier == "fork":
                if value not in ("true", "false", "only"):
                    raise ValueError(f"fork:{value} is not true, false or only")
                parsed.fork = value  # type: ignore[assignment]
            elif qualifier == "archived":
                if value not in ("true", "false"):
                    raise ValueError(f"archived:{value} is not true or false")
                parsed.archived = value == "true"
            elif qualifier in ("is", "in", "sort"):
                continue  # is:public, in:name: everything served is public; sort: is a parameter here
            else:
                raise ValueError(f"unknown qualifier {qualifier}:")
        return parsed

    def created_bounds(self) -> tuple[float, float]:
        return self.created

    def matches(self, repository: FakeRepository) -> bool:
        topics = {topic.lower() for topic in repository.topics}
        if any(topic not in topics for topic in self.topics):
            return False
        if any(topic in topics for topic in self.excluded_topics):
            return False
        if self.languages and (repository.language or "").lower() not in self.languages:
            return False
        if self.owners and repository.owner.lower() not in self.owners:
            return False
        if not _within(repository.created_at.timestamp(), self.created):
            return False
        if self.pushed != (-math.inf, math.inf) and (
            repository.pushed_at is None or not _within(repository.pushed_at.timestamp(), self.pushed)
        ):
            return False
        if not (
            _within(repository.stars, self.stars)
            and _within(repository.forks, self.forks)
            and _within(repository.size_kb, self.size)
        ):
            return False
        if self.fork == "false" and repository.fork or self.fork == "only" and not repository.fork:
            return False
        if self.archived is not None and repository.archived != self.archived:
            return False
        text = f"{repository.full_name} {repository.description or ''} {' '.join(topics)}".lower()
        return all(word in text for word in self.words)


def _within(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


def _intersect(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return max(a[0], b[0]), min(a[1], b[1])


def _number_range(value: str) -> tuple[float, float]:
    return _range(value, float, lambda number, side: number, step=1.0)


def _date_range(value: str) -> tuple[float, float]:
    """A date means its whole day; a datetime means that second."""
    return _range(value, _moment, _moment_bound, step=1.0)


def _range(
    value: str,
    parse: Callable[[str], Any],
    bound: Callable[[Any, str], float],
    step: float,
) -> tuple[float, float]:
    try:
        if ".." in value:
            low, high = value.split("..", 1)
            return (
                -math.inf if low == "*" else bound(parse(low), "start"),
                math.inf if high == "*" else bound(parse(high), "end"),
            )
        for operator in (">=", "<=", ">", "<"):
            if value.startswith(operator):
                parsed = parse(value[len(operator) :])
                if operator == ">=":
                    return bound(parsed, "start"), math.inf
                if operator == "<=":
                    return -math.inf, bound(parsed, "end")
                if operator == ">":
                    return bound(parsed, "end") + step, math.inf
                return -math.inf, bound(parsed, "start") - step
        parsed = parse(value)
        return bound(parsed, "start"), bound(parsed, "end")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read {value!r} as a range") from exc


def _moment(text: str) -> tuple[datetime, bool]:
    """(moment, whether it names a whole day)."""
    if "T" not in text:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC), True
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), False


def _moment_bound(parsed: tuple[datetime, bool], side: str) -> float:
    moment, whole_day = parsed
    if whole_day and side == "end":
        return moment.timestamp() + 86400 - 1
    return moment.timestamp()


def _sort_key(sort: str | None, order: str) -> Callable[[FakeRepository], Any]:
    """Best match is approximated by stars, ties by id; GitHub sorts `sort=` fields likewise."""
    sign = 1 if order == "asc" else -1
    if sort == "forks":
        return lambda repository: (sign * repository.forks, repository.id)
    if sort == "updated":
        return lambda repository: (sign * repository.updated_at.timestamp(), repository.id)
    if sort == "stars":
        return lambda repository: (sign * repository.stars, repository.id)
    return lambda repository: (-repository.stars, repository.id)


def _not_found(documentation_url: str) -> dict[str, str]:
    return {"message": "Not Found", "documentation_url": documentation_url, "status": "404"}


def _token_key(authorization: str | None) -> str:
    return authorization or "anonymous"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
