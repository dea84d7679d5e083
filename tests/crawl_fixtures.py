"""Building blocks of the crawl tests: a corpus of real repositories served for partial clones,
an observable clone counter, a smart-HTTP git server that can hold a fetch, and DB readers.

Every repository is a real git repository built in tmp_path (tests/gitrepos.py). They are served
over file:// (git runs upload-pack on the repository itself) or over HTTP by `git http-backend`;
in both cases the serving side is configured as GitHub's is: filters allowed, any object id may
be asked for. Clones are counted where git packs objects for a client: a global
`uploadpack.packObjectsHook` (honoured from the global config only) logs the repository first,
so "no clone happened" is an observation, not an inference.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import git
from gitrepos import BuiltRepo, commit_all, make_repo, notebook_v4, write_tree
from sqlmodel import select

TOPIC = "mlflow-projects"


# --------------------------------------------------------------------------- serving repositories


def allow_partial_clone(repo_path: Path) -> None:
    """Serve this repository as GitHub does: `--filter` honoured, any object id may be wanted."""
    repo = git.Repo(repo_path)
    try:
        with repo.config_writer() as config:
            config.set_value("uploadpack", "allowFilter", "true")
            config.set_value("uploadpack", "allowAnySHA1InWant", "true")
    finally:
        repo.close()


def git_dir_of(repo_path: Path) -> Path:
    """The folder git runs upload-pack / pack-objects in for a built (non-bare) repository."""
    return (repo_path / ".git").resolve()


@dataclass
class CloneCounter:
    """Counts `git pack-objects` runs per served repository: one per clone or fetch served.

    Point `GIT_CONFIG_GLOBAL` of the cloning processes at `config_path` (see `env`).
    """

    root: Path
    config_path: Path = field(init=False)
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_path = self.root / "pack-objects.log"
        self.log_path.touch()
        hook = self.root / "count-pack-objects.sh"
        hook.write_text(f'#!/bin/sh\necho "$(pwd -P)" >> "{self.log_path}"\nexec "$@"\n')
        hook.chmod(0o755)
        self.config_path = self.root / "gitconfig"
        self.config_path.write_text(f"[uploadpack]\n\tpackObjectsHook = {hook}\n")

    @property
    def env(self) -> dict[str, str]:
        return {"GIT_CONFIG_GLOBAL": str(self.config_path)}

    def counts(self) -> Counter[Path]:
        return Counter(Path(line) for line in self.log_path.read_text().splitlines() if line.strip())

    def of(self, repo_path: Path) -> int:
        return self.counts()[git_dir_of(repo_path)]

    def total(self) -> int:
        return sum(self.counts().values())


# ---------------------------------------------------------------------------------- the corpus

KINDS = ("tracking", "notebook", "plain", "fluent_batch")

TRACKING_PY = "import mlflow\n\nmlflow.log_param('alpha', 0.5)\nmlflow.log_metric('rmse', 0.1)\n"
NOTEBOOK = notebook_v4(
    [("markdown", "# train"), ("code", "import mlflow\n"), ("code", "%matplotlib inline\nmlflow.autolog()\n")]
)
PLAIN_PY = "def main():\n    print('no tracking here')\n"
VENDORED_PY = "import mlflow\nmlflow.log_param('vendored', 1)\n"
BATCH_PY = "from mlflow import log_metrics, log_params\n\nlog_params({'a': 1})\nlog_metrics({'b': 2.0})\n"
BROKEN_PY = "import mlflow\ndef broken(:\n    mlflow.log_param('x', 1)\n"


def repository_files(kind: str, index: int) -> tuple[dict[str, str | bytes], dict[str, str]]:
    """Files and symbolic links of a corpus repository of `kind` (see `expected_stats`)."""
    noise = {"README.md": f"# project {index}\n", "data/train.csv": "x,y\n" + "1,2\n" * (50 + index)}
    if kind == "tracking":
        return {**noise, "train.py": TRACKING_PY}, {}
    if kind == "notebook":
        return {**noise, "notebooks/explore.ipynb": NOTEBOOK}, {}
    if kind == "plain":
        return {**noise, "src/main.py": PLAIN_PY, "venv/lib/site-packages/tracker.py": VENDORED_PY}, {}
    if kind == "fluent_batch":
        return {**noise, "pkg/model.py": BATCH_PY, "pkg/broken.py": BROKEN_PY}, {"entry.py": "pkg/model.py"}
    raise ValueError(kind)


@dataclass
class CorpusRepo:
    full_name: str
    kind: str
    path: Path
    sha: str

    @property
    def url(self) -> str:
        return self.path.resolve().as_uri()

    def commit(self, files: Mapping[str, str | bytes], message: str = "change") -> str:
        """A new commit on the default branch; returns (and remembers) its sha."""
        write_tree(self.path, files)
        repo = git.Repo(self.path)
        try:
            self.sha = commit_all(repo, message)
        finally:
            repo.close()
        return self.sha


def build_corpus(root: Path, count: int, prefix: str = "corpus") -> list[CorpusRepo]:
    """`count` repositories cycling through KINDS, each served for partial clones."""
    corpus = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        files, links = repository_files(kind, index)
        name = f"{prefix}-{index:02d}"
        built = make_repo(root / name, files, links)
        allow_partial_clone(built.path)
        corpus.append(CorpusRepo(f"owner{index % 3}/{name}", kind, built.path, built.sha))
    return corpus


def kinds_of(corpus: Iterable[CorpusRepo]) -> Counter[str]:
    return Counter(repo.kind for repo in corpus)


def expected_stats(kinds: Mapping[str, int]) -> dict[str, Any]:
    """The parts of `compute_stats` a crawl of the corpus must produce, counted by hand:

    tracking      train.py: log_param + log_metric                       1 file, ok
    notebook      explore.ipynb: autolog (magic line stripped)           1 file, ok
    plain         src/main.py (no mlflow), site-packages/tracker.py       2 files: ok, skipped (vendored)
    fluent_batch  pkg/model.py: log_params + log_metrics, pkg/broken.py   3 files: ok, unparsable,
                  (names mlflow, does not parse), entry.py -> link         skipped (symbolic link)
    """
    tracking, notebook, plain, batch = (kinds.get(k, 0) for k in KINDS)
    total = tracking + notebook + plain + batch
    return {
        "repositories": total,
        "headline_repositories": tracking + notebook + batch,
        "apis": {
            "log_param": (tracking, tracking),  # (repositories, calls)
            "log_metric": (tracking, tracking),
            "autolog": (notebook, notebook),
            "log_params": (batch, batch),
            "log_metrics": (batch, batch),
            "log_artifact": (0, 0),
        },
        "files": {
            "seen": tracking + notebook + 2 * plain + 3 * batch,
            "analysed": tracking + notebook + plain + batch,
            "unparsable": batch,
            "skipped": plain + batch,
        },
    }


def stats_digest(document: dict[str, Any]) -> dict[str, Any]:
    """The same shape as `expected_stats`, read from a `compute_stats` document."""
    return {
        "repositories": document["repositories"],
        "headline_repositories": document["headline"]["repositories"],
        "apis": {
            api: (document["apis"][api]["repositories"], document["apis"][api]["calls"])
            for api in ("log_param", "log_metric", "autolog", "log_params", "log_metrics", "log_artifact")
        },
        "files": {key: document["files"][key] for key in ("seen", "analysed", "unparsable", "skipped")},
    }


def register(fake: Any, corpus: Iterable[CorpusRepo], *, url_of=None, **extra: Any) -> None:  # noqa: ANN001
    """Add the corpus to a FakeGithub, in order, each created a day after the previous."""
    start = datetime(2021, 1, 1, tzinfo=UTC)
    for index, repo in enumerate(corpus):
        fake.add_repository(
            repo.full_name,
            clone_url=url_of(repo) if url_of else repo.url,
            topics=[TOPIC],
            head_sha=repo.sha,
            default_branch=_branch(repo.path),
            created_at=start + timedelta(days=index),
            **extra,
        )


def _branch(path: Path) -> str:
    repo = git.Repo(path)
    try:
        return repo.active_branch.name
    finally:
        repo.close()


# ----------------------------------------------------------------------------- database readers


@dataclass(frozen=True)
class RunRow:
    id: int
    full_name: str
    commit_sha: str | None
    status: str
    crawl_id: int | None
    started_at: datetime
    error: str | None


def run_rows(database_url: str) -> list[RunRow]:
    from schema.db import open_session
    from schema.models import MiningRun, Repository

    with open_session(database_url) as session:
        rows = session.exec(
            select(MiningRun, Repository.full_name)
            .join(Repository, Repository.id == MiningRun.repository_id)
            .order_by(MiningRun.id)
        ).all()
        return [
            RunRow(run.id, name, run.commit_sha, run.status.value, run.crawl_id, run.started_at, run.error)
            for run, name in rows
        ]


def crawl_row(database_url: str, crawl_id: int | None = None) -> dict[str, Any]:
    """The newest crawl's row (or crawl `crawl_id`'s) as `miner crawls` shows it."""
    from schema.crawls import crawl_rows
    from schema.db import open_session

    with open_session(database_url) as session:
        rows = crawl_rows(session=session, crawl_id=crawl_id)
    assert rows, "no crawl recorded"
    return rows[0]


def stats_document(database_url: str) -> dict[str, Any]:
    from miner.core.rules import load_rules
    from miner.present.stats import compute_stats
    from schema.db import open_session

    with open_session(database_url) as session:
        return compute_stats(session=session, rules=load_rules())


def crawl_env(fake_url: str, database_url: str, work_dir: Path, **extra: str) -> dict[str, str]:
    """MINER_* variables of a crawl against the fake GitHub, without any config.yaml."""
    return {
        "MINER_CONFIG": str(work_dir / "no-config.yaml"),
        "MINER_GITHUB__API_URL": fake_url,
        "MINER_GITHUB__MIN_REQUEST_INTERVAL_S": "0",
        "MINER_DATABASE_URL": database_url,
        "MINER_WORK_DIR": str(work_dir),
        **extra,
    }


# ----------------------------------------------------------------------------- smart-HTTP server


class GitHttpServer:
    """Git's smart HTTP protocol on 127.0.0.1, by `git http-backend` over the repositories under
    `root` (served as /NAME). It counts pack requests (`command=fetch`, i.e. clones and fetches,
    not ls-remote) per repository and can hold those of chosen repositories until released,
    which is how a test makes a clone last exactly as long as it needs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fetches: Counter[str] = Counter()
        self.held: set[str] = set()
        self.arrived = threading.Event()  # a held request is waiting
        self._release = threading.Event()
        self._lock = threading.Lock()
        handler = type("GitHttpHandler", (_GitHttpHandler,), {"git_server": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="git-http", daemon=True)

    def __enter__(self) -> GitHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url_for(self, repo_path: Path) -> str:
        return f"{self.url}/{repo_path.relative_to(self.root).as_posix()}"

    def hold(self, repo_path: Path) -> None:
        self.held.add(repo_path.relative_to(self.root).as_posix())

    def release(self) -> None:
        self._release.set()

    def fetches_of(self, repo_path: Path) -> int:
        with self._lock:
            return self.fetches[repo_path.relative_to(self.root).as_posix()]

    def _count(self, name: str) -> None:
        with self._lock:
            self.fetches[name] += 1

    def _wait_if_held(self, name: str) -> None:
        if name in self.held and not self._release.is_set():
            self.arrived.set()
            self._release.wait(timeout=300)


class _GitHttpHandler(BaseHTTPRequestHandler):
    git_server: GitHttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_GET(self) -> None:
        self._backend(b"")

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._backend(body)

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _backend(self, body: bytes) -> None:
        path, _, query = self.path.partition("?")
        name = path.strip("/").split("/info/refs")[0].removesuffix("/git-upload-pack")
        if self.command == "POST" and path.endswith("/git-upload-pack"):
            plain = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
            if b"command=fetch" in plain or b"want " in plain[:200]:
                self.git_server._count(name)
                self.git_server._wait_if_held(name)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.git_server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        if not _ and b"\n\n" in done.stdout:
            head, _, payload = done.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key, value.strip()))
        try:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client was killed mid-request
            pass


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.2):  # noqa: ANN001, ANN201
    """Poll until `predicate()` is truthy; fail the test saying `what` did not happen."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


__all__ = [
    "BuiltRepo",
    "CloneCounter",
    "CorpusRepo",
    "GitHttpServer",
    "allow_partial_clone",
    "build_corpus",
    "crawl_env",
    "crawl_row",
    "expected_stats",
    "kinds_of",
    "register",
    "run_rows",
    "stats_document",
    "stats_digest",
    "wait_for",
]
