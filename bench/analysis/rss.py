"""Peak memory of mining one repository, measured in a fresh child process (VmHWM, not ru_maxrss)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from bench.analysis.corpus import Repo
from bench.analysis.ours import mine_item
from bench.analysis.timing import timed


def _vm_hwm_kb(pid: int | str) -> int:
    """Peak RSS of a process's current image (VmHWM: reset at exec, unlike ru_maxrss)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children_hwm(stop: threading.Event, peaks: dict[int, int], names: dict[int, str]) -> None:
    me = str(os.getpid())
    while not stop.wait(0.02):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    ppid = handle.read().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue
            if ppid != me:
                continue
            hwm = _vm_hwm_kb(pid)
            if not hwm:  # a zombie: nothing mapped any more
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            # the parser sandbox is a fork of this python (no exec): name it by what it runs
            name = (
                " ".join(a.decode(errors="replace") for a in argv[:3])
                if argv[0].startswith(b"git")
                else "python (forked parser sandbox)"
            )
            peaks[int(pid)] = max(peaks.get(int(pid), 0), hwm)
            names[int(pid)] = name


def rss_probe(git_dir: str, commit: str, name: str) -> None:
    """Child mode: mine one repository; print the peak RSS (VmHWM) of this process and its children.

    ru_maxrss would not do: Linux carries it across exec, so a probe forked from a big parent
    reports the parent's size. VmHWM belongs to the current image only. Children are the git
    cat-file processes and the parser sandbox (a fork, whose figure includes pages it shares with
    this process): the sum is an upper bound of the footprint.
    """
    peaks: dict[int, int] = {}
    names: dict[int, str] = {}
    stop = threading.Event()
    poller = threading.Thread(target=_children_hwm, args=(stop, peaks, names), daemon=True)
    before = _vm_hwm_kb("self")
    poller.start()
    with timed() as t:
        result = mine_item((name, git_dir, commit))
    stop.set()
    poller.join()
    by_name: dict[str, float] = {}
    for pid, kb in peaks.items():
        by_name[names[pid]] = max(by_name.get(names[pid], 0.0), kb / 1024)
    print(
        json.dumps(
            {
                "repo": name,
                "seconds": t.seconds,
                "files": len(result.files),
                "maxrss_mb": _vm_hwm_kb("self") / 1024,
                "after_imports_mb": before / 1024,
                "children_mb": sum(by_name.values()),
                "children": by_name,
            }
        )
    )


def measure_rss(repo: Repo) -> dict:
    r = subprocess.run(
        [sys.executable, "-m", "bench.analysis", "--rss-probe", str(repo.git_dir), repo.commit, repo.name],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"repo": repo.name, "error": r.stderr[-400:]}
