"""Processes of the worker tests: `celery worker` and `miner` children in their own process
groups, so a test can `kill -9` a worker with everything it started (git, parser sandboxes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from crawl_fixtures import wait_for

ROOT = Path(__file__).resolve().parent.parent


class Process:
    """A child in its own process group, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path, *, split: bool = False) -> None:
        self.log, self.errors = log, log.with_suffix(".err")
        self._handle = log.open("w")
        self._errors = self.errors.open("w") if split else None
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=self._handle,
            stderr=self._errors or subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        """Everything it printed (stdout only when split from stderr)."""
        return self.log.read_text(errors="replace")

    def diagnostics(self) -> str:
        return self.output() + (self.errors.read_text(errors="replace") if self._errors else "")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill_group(self) -> None:
        """kill -9 of the worker and everything it started: children, git, parser sandboxes."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=30)
        self._handle.close()
        if self._errors:
            self._errors.close()

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        self.kill_group()


def start_worker(name: str, env: dict[str, str], tmp: Path) -> Process:
    worker = Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers",
            "worker",
            "--concurrency",
            "1",
            "--pool",
            "prefork",
            "--loglevel",
            "INFO",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        env,
        tmp / f"{name}.log",
        tmp,
    )
    wait_for(lambda: "ready." in worker.output() or not worker.alive(), 60, f"worker {name} to start")
    assert worker.alive(), worker.output()
    return worker


def start_miner(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> Process:
    return Process([sys.executable, "-m", "miner.cli", *args], env, log, cwd, split=True)
