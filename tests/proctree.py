"""Read the process table from /proc: who is alive, whose child, in which group, holding what.

The orphan and chaos tests ask "is anything of that worker left?" in three ways: by process
group, by a marker variable in the environment (git runs in process groups of its own, and the
environment is inherited by every descendant), and by the descriptors a process holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    pgid: int
    state: str
    name: str

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")  # a zombie has died; only its parent's wait is missing


def info(pid: int) -> ProcessInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcessInfo(pid, int(fields[1]), int(fields[2]), fields[0], name)


def is_alive(pid: int) -> bool:
    found = info(pid)
    return found is not None and found.alive


def all_processes() -> list[ProcessInfo]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (process := info(int(entry))) is not None:
            found.append(process)
    return found


def children(pid: int) -> list[ProcessInfo]:
    return [process for process in all_processes() if process.ppid == pid and process.alive]


def descendants(pid: int) -> list[ProcessInfo]:
    table = [process for process in all_processes() if process.alive]
    found, frontier = [], {pid}
    while frontier:
        layer = [process for process in table if process.ppid in frontier]
        found += layer
        frontier = {process.pid for process in layer}
    return found


def in_group(pgid: int) -> list[ProcessInfo]:
    return [process for process in all_processes() if process.pgid == pgid and process.alive]


def with_marker(name: str, value: str) -> list[ProcessInfo]:
    """Live processes whose environment has name=value (inherited from the process we marked)."""
    wanted = f"{name}={value}".encode()
    found = []
    for process in all_processes():
        if not process.alive:
            continue
        try:
            environment = Path(f"/proc/{process.pid}/environ").read_bytes()
        except OSError:
            continue
        if wanted in environment.split(b"\0"):
            found.append(process)
    return found


def descriptor_targets(pid: int) -> dict[int, str]:
    """fd number -> what it points at (`socket:[inode]`, `pipe:[inode]`, a path)."""
    folder = Path(f"/proc/{pid}/fd")
    targets = {}
    for entry in folder.iterdir():
        try:
            targets[int(entry.name)] = os.readlink(entry)
        except OSError:
            continue
    return targets


def socket_of(descriptor: int) -> str:
    return f"socket:[{os.fstat(descriptor).st_ino}]"
