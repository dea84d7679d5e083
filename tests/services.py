"""Private Redis and PostgreSQL servers a test can stop and start again.

The machine's own services are shared by the whole suite; a test that restarts a broker or a
database mid-crawl gets its own instance on a free port, with its data in a temporary folder,
from the same binaries (Debian's redis-server and PostgreSQL 15).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import redis
from crawl_fixtures import wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """redis-server with an append-only file fsynced on every write, as a broker that must not
    lose queued tasks across a restart should be configured (docker/compose.yaml does the same);
    or, with persistent=False, one that forgets everything when it stops."""

    def __init__(self, data_dir: Path, *, persistent: bool = True) -> None:
        self.data_dir = data_dir
        self.persistent = persistent  # False: keeps nothing on disk, as this machine's Redis
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        log = (self.data_dir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self.answers, 20, f"redis-server on port {self.port}")

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def queue_length(self, queue: str) -> int:
        return int(redis.Redis(port=self.port, socket_timeout=5).llen(queue))

    def kill(self) -> None:
        """kill -9: no shutdown save; only what the append-only file already holds survives."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)
        self.process = None

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.kill()


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


def _runuser() -> str:
    """util-linux's runuser lives in sbin, which a user's PATH (PATH=/usr/bin:/bin) may lack."""
    for candidate in (shutil.which("runuser"), "/usr/sbin/runuser", "/sbin/runuser"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("runuser (util-linux) is not installed: apt-get install util-linux")


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb, pg_ctl), run as the `postgres` user because the
    server refuses to run as root; trust authentication on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="miner-pg-"))  # not under pytest's root-only tmp
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = [_runuser(), "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            [
                *self._as_postgres,
                _postgres_bin("initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        subprocess.run(
            [
                *self._as_postgres,
                _postgres_bin("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "server.log"),
                "-o",
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash from the clients' side: connections cut, recovery on restart."""
        subprocess.run(
            [*self._as_postgres, _postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
            check=False,
            capture_output=True,
        )

    def answers(self) -> bool:
        return (
            subprocess.run(
                [_postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            ).returncode
            == 0
        )

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop("fast")
        shutil.rmtree(self.root, ignore_errors=True)
