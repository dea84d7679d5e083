"""Mining writes nowhere but its own temporary folder, and removes that folder on every outcome.

A child process mines a series of built repositories, each ending differently (ok, clone failed,
private or deleted (HTTP 404), empty, too large, clone timed out, a file over the parse time limit, a file that crashes the
parser, a hostile tree of symlinks and odd names), under `strace -f`. Every system call that can
create, change or remove a file is read back from the trace with its path resolved (per-process
working directories followed through chdir and fork), and each must land inside the work folder.
Afterwards the work folder is empty, HOME, TMPDIR and the working directory are untouched, and a
hook committed to the repository never ran.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import git
from crawl_fixtures import GitHttpServer, allow_partial_clone
from gitrepos import make_repo

ROOT = Path(__file__).resolve().parent.parent
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")
TRACED = (
    "open",
    "openat",
    "creat",
    "mkdir",
    "mkdirat",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "rmdir",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "truncate",
    "chmod",
    "fchmodat",
    "utimensat",
    "chdir",
    "fchdir",
    "clone",
    "clone3",
    "fork",
    "vfork",
)
# Not file writes: the null device, and the kernel objects of multiprocessing's semaphores.
NOT_FILES = (re.compile(r"^/dev/null$"), re.compile(r"^/dev/shm/sem\.[\w.-]+$"))

MINE_SERIES = """
import json, sys
from miner.orchestrate.mining import mine_target
from miner.core.settings import LimitSettings, Settings
from miner.acquire.targets import Target

cases, work = json.loads(sys.argv[1]), sys.argv[2]
outcomes = {}
for name, url, limits in cases:
    settings = Settings(work_dir=work, database_url="sqlite://", limits=LimitSettings(**limits))
    result = mine_target(Target(url, "confined/" + name, url, None), settings)
    outcomes[name] = {"status": result.status.value, "error": result.error,
                      "files": {f.path: [f.status.value, f.error] for f in result.files}}
print(json.dumps(outcomes))
"""


@dataclass(frozen=True)
class Write:
    pid: int
    call: str
    path: str


def _unescape(text: str) -> str:
    """strace -xx prints every string byte as \\xNN."""
    return os.fsdecode(
        re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode()).replace(b'\\"', b'"')
    )


def _strings(args: str) -> list[str]:
    return [_unescape(s) for s in re.findall(r'"((?:[^"\\]|\\.)*)"', args)]


def _dirfds(args: str) -> list[str | None]:
    """Directory arguments as strace -y shows them: AT_FDCWD, or `N</path>`."""
    found = []
    for match in re.finditer(r"(AT_FDCWD|\d+<((?:[^>\\]|\\.)*)>)", args):
        found.append(None if match.group(1) == "AT_FDCWD" else _unescape(match.group(2)))
    return found


def written_paths(log: Path, first_cwd: str) -> list[Write]:
    """Every create/change/remove in a `strace -f -y -xx` log, as absolute paths."""
    cwd: dict[int, str] = {}
    pending: dict[int, str] = {}
    writes: list[Write] = []
    root_pid: int | None = None
    for raw in log.read_text().splitlines():
        pid_text, _, rest = raw.partition(" ")
        pid = int(pid_text)
        root_pid = root_pid or pid
        if pid not in cwd:
            # a new child can speak before its parent's fork call returns: its parent is the
            # process with a fork call still pending
            forking = [p for p, call in pending.items() if re.match(r"(clone3?|v?fork)\(", call)]
            cwd[pid] = cwd[forking[-1]] if forking else first_cwd
        rest = rest.strip()
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[: -len("<unfinished ...>")]
            continue
        resumed = re.match(r"<\.\.\. \w+ resumed>(.*)", rest)
        if resumed:
            rest = pending.pop(pid, "") + resumed.group(1)
        call = re.match(r"(\w+)\((.*)\)\s+=\s+(-?\d+|\?)", rest)
        if not call:
            continue
        name, args, result = call.groups()

        def absolute(path: str, base: str | None = None) -> str:
            return os.path.normpath(os.path.join(base or cwd[pid], path))

        if name in ("clone", "clone3", "fork", "vfork") and result not in ("?", "-1") and int(result) > 0:
            cwd.setdefault(int(result), cwd[pid])  # unless the child already spoke (and chdir-ed)
        elif name == "chdir" and result == "0":
            cwd[pid] = absolute(_strings(args)[0])
        elif name == "fchdir" and result == "0":
            cwd[pid] = _dirfds(args)[0] or cwd[pid]
        elif name in ("open", "creat") or name == "openat":
            if name == "creat" or any(flag in args for flag in WRITE_FLAGS):
                base = _dirfds(args)[0] if name == "openat" else None
                writes.append(Write(pid, name, absolute(_strings(args)[0], base)))
        elif name in ("mkdir", "unlink", "rmdir", "truncate", "chmod"):
            writes.append(Write(pid, name, absolute(_strings(args)[0])))
        elif name in ("mkdirat", "unlinkat", "fchmodat", "utimensat"):
            paths, dirs = _strings(args), _dirfds(args)
            if paths:
                writes.append(Write(pid, name, absolute(paths[0], dirs[0] if dirs else None)))
        elif name in ("rename", "link"):
            writes.extend(Write(pid, name, absolute(path)) for path in _strings(args)[:2])
        elif name in ("renameat", "renameat2", "linkat"):
            paths, dirs = _strings(args), _dirfds(args)
            writes.extend(Write(pid, name, absolute(path, base)) for path, base in zip(paths, dirs))
        elif name == "symlink":
            writes.append(Write(pid, name, absolute(_strings(args)[1])))
        elif name == "symlinkat":
            paths, dirs = _strings(args), _dirfds(args)
            writes.append(Write(pid, name, absolute(paths[1], dirs[0] if dirs else None)))
    return writes


def _outside(writes: list[Write], work: Path) -> list[Write]:
    inside = str(work)
    return [
        w
        for w in writes
        if not (w.path == inside or w.path.startswith(inside + os.sep))
        and not any(pattern.match(w.path) for pattern in NOT_FILES)
    ]


def _hostile_repo(root: Path, marker: Path) -> Path:
    hook = f"#!/bin/sh\ntouch {marker}\n"
    built = make_repo(
        root,
        {
            "train.py": "import mlflow\nmlflow.log_param('a', 1)\n",
            "-rf.py": "import mlflow\nmlflow.log_metric('m', 1)\n",
            "a..b/x.py": "import mlflow\nmlflow.set_tag('t', 1)\n",
            "hooks/post-checkout": hook,
            "dot-git/hooks/post-checkout": hook,
        },
        symlinks={"passwd.py": "/etc/passwd", "up.py": "../../..", "loop.py": "loop.py"},
    )
    for path in ("hooks/post-checkout", "dot-git/hooks/post-checkout"):
        (built.path / path).chmod(0o755)
    allow_partial_clone(built.path)
    return built.path


def test_mining_writes_only_inside_its_work_folder_and_removes_it_on_every_outcome(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    assert strace, "strace is needed (Debian package strace; scripts/services.sh installs it)"
    repos, work, home, tmpdir, cwd = (tmp_path / name for name in ("repos", "work", "home", "tmp", "cwd"))
    for folder in (work, home, tmpdir, cwd):
        folder.mkdir()
    marker = tmp_path / "hook-ran"

    good = make_repo(repos / "good", {"train.py": "import mlflow\nmlflow.log_param('a', 1)\n"})
    allow_partial_clone(good.path)
    empty = repos / "empty"
    git.Repo.init(empty).close()
    noise = "".join(random.Random(3).choices(string.ascii_letters, k=400_000))  # does not compress
    big = make_repo(repos / "big", {"data.py": f"X = '{noise}'\n"})
    slow_parse = make_repo(
        repos / "slow-parse",
        {
            "slow.py": "import mlflow\nx = 1" + "+1" * 10_000 + "\nmlflow.log_param('a', 1)\n",
            "train.py": "import mlflow\nmlflow.log_param('b', 2)\n",
        },
    )
    allow_partial_clone(slow_parse.path)
    crash = make_repo(
        repos / "crash",
        {
            "deep.py": "import mlflow\nx = " + "(" * 10_000 + "1" + ")" * 10_000 + "\n",
            "train.py": "import mlflow\nmlflow.log_param('b', 2)\n",
        },
    )
    allow_partial_clone(crash.path)
    hostile = _hostile_repo(repos / "hostile", marker)
    held = make_repo(tmp_path / "http" / "held", {"train.py": "import mlflow\n"})
    allow_partial_clone(held.path)

    with GitHttpServer(tmp_path / "http") as server:
        server.hold(held.path)
        cases = [
            ("ok", good.path.as_uri(), {}),
            ("clone-failed", (repos / "missing").as_uri(), {}),
            ("empty", empty.as_uri(), {}),
            ("too-large", big.path.as_uri(), {"max_clone_bytes": 100_000}),
            ("clone-timeout", server.url_for(held.path), {"clone_timeout_s": 2}),
            ("private-or-404", f"{server.url}/owner/private-repo", {"clone_timeout_s": 30}),
            ("parse-time-limit", slow_parse.path.as_uri(), {"parse_timeout_s": 2}),
            ("parser-crash", crash.path.as_uri(), {"parse_timeout_s": 20}),
            ("hostile", hostile.as_uri(), {}),
        ]
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": str(home),
            "TMPDIR": str(tmpdir),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "MINER_CONFIG": str(cwd / "absent.yaml"),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        log = tmp_path / "strace.log"
        traced = subprocess.run(
            [
                strace,
                "-f",
                "-qq",
                "-y",
                "-xx",
                "-o",
                str(log),
                "-e",
                "trace=" + ",".join(TRACED),
                sys.executable,
                "-c",
                MINE_SERIES,
                json.dumps(cases),
                str(work),
            ],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        server.release()
    assert traced.returncode == 0, traced.stderr[-3000:]
    outcomes = json.loads(traced.stdout)

    # each outcome really happened
    assert {name: o["status"] for name, o in outcomes.items()} == {
        "ok": "ok",
        "clone-failed": "clone_failed",
        "empty": "clone_failed",
        "too-large": "too_large",
        "clone-timeout": "timeout",
        "private-or-404": "clone_failed",
        "parse-time-limit": "ok",
        "parser-crash": "ok",
        "hostile": "ok",
    }, outcomes
    assert outcomes["clone-failed"]["error"].endswith("does not appear to be a git repository")
    assert (
        outcomes["private-or-404"]["error"] == f"clone failed: repository '{server.url}/owner/private-repo/' not found"
    )
    assert outcomes["parse-time-limit"]["files"]["slow.py"] == ["unparsable", "parser time limit: no result within 2 s"]
    assert outcomes["parser-crash"]["files"]["deep.py"][0] == "unparsable"
    assert outcomes["hostile"]["files"]["passwd.py"] == ["skipped", "symbolic link (not followed)"]
    assert {path: status for path, (status, _) in outcomes["hostile"]["files"].items() if path.endswith(".py")} == {
        "train.py": "ok",
        "-rf.py": "ok",
        "a..b/x.py": "ok",
        "passwd.py": "skipped",
        "up.py": "skipped",
        "loop.py": "skipped",
    }

    # the trace saw the clones being written, all of them inside the work folder, nothing else
    writes = written_paths(log, str(cwd))
    assert sum(1 for w in writes if w.path.startswith(str(work) + os.sep)) > 50, "the trace holds the clones' writes"
    assert _outside(writes, work) == []
    assert list(work.iterdir()) == [], "every clone folder removed, whatever the outcome"
    assert [list(folder.iterdir()) for folder in (home, tmpdir, cwd)] == [[], [], []]
    assert not marker.exists(), "a committed hook ran"


def test_the_trace_reader_sees_writes_outside(tmp_path: Path) -> None:
    """The checker can fail: a child that writes beside the work folder is caught, relative
    paths and directories changed into included."""
    strace = shutil.which("strace")
    assert strace
    work, cwd = tmp_path / "work", tmp_path / "cwd"
    work.mkdir(), cwd.mkdir()
    script = (
        "import os, subprocess\n"
        f"open({str(work / 'inside.txt')!r}, 'w').close()\n"
        "open('relative.txt', 'w').close()\n"
        "os.chdir('..'); os.mkdir('made-by-chdir')\n"
        f"subprocess.run(['touch', 'from-child'], cwd={str(tmp_path)!r}, check=True)\n"
    )
    log = tmp_path / "strace.log"
    subprocess.run(
        [
            strace,
            "-f",
            "-qq",
            "-y",
            "-xx",
            "-o",
            str(log),
            "-e",
            "trace=" + ",".join(TRACED),
            sys.executable,
            "-c",
            script,
        ],
        cwd=cwd,
        check=True,
    )
    outside = {w.path for w in _outside(written_paths(log, str(cwd)), work)}
    assert {str(cwd / "relative.txt"), str(tmp_path / "made-by-chdir"), str(tmp_path / "from-child")} <= outside
    assert str(work / "inside.txt") not in outside
