"""Children that die with their parent and hold none of its connections (miner.core.lifeline).

Each test starts a real process that does what a worker does (opens a PostgreSQL connection,
starts the parser child, reads blobs with git cat-file, clones over HTTP), kills it with
`kill -9` as an operator or the OOM killer would, and looks at what is left in /proc.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
from crawl_fixtures import GitHttpServer, allow_partial_clone, wait_for
from gitrepos import make_repo
from proctree import children, descendants, descriptor_targets, in_group, is_alive, socket_of, with_marker
from sqlalchemy.engine import make_url

from miner.analyse.detect.detector import Detector
from miner.analyse.gitread import CommitReader
from miner.analyse.sandbox import ParserSandbox
from miner.analyse.sources import load_source
from miner.core.lifeline import HelperProcessKilled
from miner.core.rules import load_rules

ROOT = Path(__file__).resolve().parent.parent
TRACKED = load_source("train.py", b"import mlflow\nmlflow.log_param('lr', 0.1)\nmlflow.log_metric('acc', 1)\n")


def _script(tmp_path: Path, body: str, marker: str) -> subprocess.Popen[str]:
    """A Python process running `body`; it prints one JSON line when ready, then sleeps."""
    path = tmp_path / "worker_like.py"
    path.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "MINER_TEST_MARKER": marker}
    return subprocess.Popen(
        [sys.executable, str(path)], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )


def _ready(process: subprocess.Popen[str]) -> dict:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the process ended first (exit {process.wait()})"
    return json.loads(line)


def _kill_9(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_the_parser_child_keeps_no_descriptor_of_its_parent(postgres_url: str) -> None:
    url = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as database, ParserSandbox(Detector(load_rules("mlflow")), timeout_s=30) as sandbox:
        database.execute("BEGIN")
        database.execute("SELECT 1")  # a transaction open while the child is forked
        analysis = sandbox.analyse(TRACKED)
        assert [finding.api for finding in analysis.findings] == ["log_param", "log_metric"]
        child = sandbox.child_pid
        assert child is not None
        held = descriptor_targets(child)
        parent_pipe = socket_of(sandbox._connection.fileno())
        assert socket_of(database.fileno()) not in held.values()
        assert parent_pipe not in held.values(), "the parent's pipe end: its death must read as EOF"
        # its own pipe end and the standard streams, nothing else
        assert sorted(held) == [0, 1, 2, max(held)] and held[max(held)].startswith("socket:")
        assert held[0] == "/dev/null"


def test_the_parser_child_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    parent = _script(
        tmp_path,
        """
        import json, time
        from miner.analyse.detect.detector import Detector
        from miner.core.rules import load_rules
        from miner.analyse.sandbox import ParserSandbox
        from miner.analyse.sources import load_source
        sandbox = ParserSandbox(Detector(load_rules("mlflow")), timeout_s=30)
        sandbox.analyse(load_source("a.py", b"import mlflow\\nmlflow.autolog()\\n"))
        print(json.dumps({"child": sandbox.child_pid}), flush=True)
        time.sleep(600)
    """,
        "parser",
    )
    child = _ready(parent)["child"]
    try:
        assert is_alive(child) and [p.pid for p in children(parent.pid)] == [child]
        _kill_9(parent)
        wait_for(lambda: not is_alive(child), 10, "the parser child to die with its parent")
    finally:
        if is_alive(child):  # the test failed: leave no orphan behind it
            os.kill(child, signal.SIGKILL)


def test_a_killed_parser_child_is_replaced_and_the_file_analysed_again() -> None:
    with ParserSandbox(Detector(load_rules("mlflow")), timeout_s=30) as sandbox:
        first = sandbox.analyse(TRACKED)
        os.kill(sandbox.child_pid, signal.SIGKILL)  # the OOM killer, between two files
        time.sleep(0.2)
        again = sandbox.analyse(TRACKED)
        assert again == first and not again.unparsable
        assert sandbox.children_started == 2


def test_git_cat_file_dies_with_its_parent_even_when_another_process_holds_its_pipe(tmp_path: Path) -> None:
    built = make_repo(tmp_path / "repo", {"train.py": "import mlflow\n"})
    parent = _script(
        tmp_path,
        f"""
        import json, os, time
        from miner.analyse.gitread import CommitReader
        reader = CommitReader({str(built.path)!r})
        blob = next(entry for entry in reader.entries() if entry.path == "train.py")
        assert reader.read(blob.sha) == b"import mlflow\\n"
        # a process forked now inherits cat-file's stdin pipe: git never sees EOF while it lives
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        print(json.dumps({{"cat_file": reader._blobs._process.pid}}), flush=True)
        time.sleep(600)
    """,
        "catfile",
    )
    cat_file = _ready(parent)["cat_file"]
    holders = [p.pid for p in children(parent.pid) if p.pid != cat_file]
    _kill_9(parent)
    try:
        wait_for(lambda: not is_alive(cat_file), 10, "git cat-file to die with the process that started it")
    finally:
        for pid in holders:
            os.kill(pid, signal.SIGKILL)


def test_a_killed_cat_file_is_a_helper_death_not_a_missing_blob(tmp_path: Path) -> None:
    built = make_repo(tmp_path / "repo", {"a.py": "import mlflow\n", "b.py": "x = 1\n"})
    with CommitReader(built.path) as reader:
        entries = {entry.path: entry for entry in reader.entries()}
        reader.read(entries["a.py"].sha)
        os.kill(reader._blobs._process.pid, signal.SIGKILL)
        with pytest.raises(HelperProcessKilled, match="SIGKILL"):
            reader.read(entries["b.py"].sha)
    with CommitReader(built.path) as reader, pytest.raises(ValueError, match="not in the object store"):
        reader.read("0" * 40)


def test_a_clone_dies_with_its_parent_helpers_and_all(tmp_path: Path) -> None:
    built = make_repo(tmp_path / "http" / "held", {"train.py": "import mlflow\n"})
    allow_partial_clone(built.path)
    with GitHttpServer(tmp_path / "http") as server:
        server.hold(built.path)
        parent = _script(
            tmp_path,
            f"""
            import json
            from pathlib import Path
            from miner.acquire.clone import clone_repository
            from miner.core.settings import LimitSettings
            print(json.dumps({{"pid": __import__("os").getpid()}}), flush=True)
            clone_repository({server.url_for(built.path)!r}, Path({str(tmp_path / "clone.git")!r}), LimitSettings())
        """,
            "clone",
        )
        _ready(parent)
        wait_for(server.arrived.is_set, 60, "the clone to reach the server")
        git_processes = descendants(parent.pid)
        assert any(p.name.startswith("git") for p in git_processes), git_processes
        groups = {p.pgid for p in git_processes}
        _kill_9(parent)
        wait_for(
            lambda: not with_marker("MINER_TEST_MARKER", "clone"),
            10,
            "git and its remote helper to die with the process that started them",
        )
        assert not [p for group in groups for p in in_group(group)]
        server.release()
