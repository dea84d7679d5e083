"""One parser child serves a mining process across repositories, is recycled, and never crosses a fork."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from miner.analyse import sandbox as sandbox_mod
from miner.analyse.detect.detector import Detector
from miner.analyse.sandbox import ParserSandbox, close_shared_sandbox, shared_sandbox
from miner.analyse.sources import python_file
from miner.core.rules import load_rules
from miner.core.settings import LimitSettings
from tests.gitrepos import make_repo, mine

RULES = load_rules()
CALLS = "import mlflow\nmlflow.log_param('a', 1)\nmlflow.log_metric('m', 2)\n"


@pytest.fixture(autouse=True)
def no_shared_child() -> Iterator[None]:
    close_shared_sandbox()
    yield
    close_shared_sandbox()


def source(index: int) -> object:
    return python_file(f"f{index}.py", (CALLS + f"x{index} = {index}\n").encode())


def test_repositories_mined_in_a_row_share_one_child(tmp_path: Path) -> None:
    results = [mine(make_repo(tmp_path / f"r{i}", {"train.py": CALLS, f"m{i}.py": CALLS})) for i in range(4)]
    child = shared_sandbox(RULES, LimitSettings().parse_timeout_s, LimitSettings().parse_memory_mb)
    assert child.children_started == 1
    assert [sorted((f.path, f.line, f.api) for f in r.findings) for r in results] == [
        sorted(
            [
                ("train.py", 2, "log_param"),
                ("train.py", 3, "log_metric"),
                (f"m{i}.py", 2, "log_param"),
                (f"m{i}.py", 3, "log_metric"),
            ]
        )
        for i in range(4)
    ]


def test_the_child_is_replaced_after_its_quota_of_files() -> None:
    detector = Detector(RULES)
    with ParserSandbox(detector, timeout_s=30, recycle_after_files=3) as sandbox:
        analyses = [sandbox.analyse(source(i)) for i in range(7)]
        assert sandbox.children_started == 3  # files 1-3, 4-6, 7
    assert analyses == [detector.analyse(source(i)) for i in range(7)]
    assert all(len(a.findings) == 2 for a in analyses)


def test_other_settings_get_their_own_child() -> None:
    first = shared_sandbox(RULES, 30.0)
    assert shared_sandbox(RULES, 30.0) is first
    second = shared_sandbox(RULES, 45.0)
    assert second is not first and second.timeout_s == 45.0
    assert first._process is None  # the replaced one was closed


def _analyse_in_fork(queue: multiprocessing.Queue) -> None:
    child = shared_sandbox(RULES, 30.0)
    queue.put((child.owner_pid == os.getpid(), len(child.analyse(source(1)).findings)))


def test_a_forked_process_starts_its_own_child_and_the_parent_keeps_its_own() -> None:
    parent_child = shared_sandbox(RULES, 30.0)
    assert len(parent_child.analyse(source(0)).findings) == 2
    parser_pid = parent_child._process.pid
    queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    forked = multiprocessing.get_context("fork").Process(target=_analyse_in_fork, args=(queue,))
    forked.start()
    owned_here, findings = queue.get(timeout=60)
    forked.join(timeout=60)
    assert forked.exitcode == 0
    assert owned_here and findings == 2
    # the parent's parser child was neither used nor ended by the fork
    assert sandbox_mod._shared is parent_child and parent_child._process.pid == parser_pid
    assert parent_child._process.is_alive()
    assert len(parent_child.analyse(source(2)).findings) == 2
    assert parent_child.children_started == 1
