"""Analysis benchmark: our miner against baselines measured in the same run, over the same commits.

    python -m bench.analysis --corpus ../shared/eval/corpus-dev.json --repos-root /work/.mirror
    python -m bench.analysis ... --repos 10 --json /tmp/bench.json     # a quick run

Every figure is a ratio against something measured here, on this machine, in this run:

* git grep -c mlflow <commit> -- '*.py' '*.ipynb'   the cost of reading the bytes at all;
* full clone vs partial clone (+ fetching only the analysed blobs) from file:// URLs;
* the seed study's heuristic (substring match of log_param / log_metric / autolog in blob text);
* Semgrep with an equivalent rule set over `git archive` checkouts of the same commits;
* plain libcst.parse_module of the same files, without any detection (the parser's floor).

It also times the single-process run stage by stage (by wrapping the functions mine_commit
calls), measures what a few changes save or would save (the import prefilter, libcst without node
validation, libcst tuned as in the parser child, the stdlib ast parser, git plumbing reads), the
machine's own 2-over-1 ceiling, and peak RSS (VmHWM) of a fresh process mining the largest
repositories. Wall seconds on a shared machine are noisy, so CPU seconds and CPU-based ratios are
printed beside them.

Semgrep is looked for in $SEMGREP, /tmp/bench-semgrep-venv/bin/semgrep, then PATH (install it in a
venv: `python -m venv /tmp/bench-semgrep-venv && /tmp/bench-semgrep-venv/bin/pip install semgrep`).
`--skip clone|semgrep|parallel|rss` leaves a part out. `--repeat N` (default 2) runs our analysis and
the plain parses N times and keeps the fastest, since a shared machine's noise only adds time.

The corpus git directories are only read: clones go through upload-pack, checkouts through
git archive, and every temporary folder is deleted before the run ends.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import threading
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst._nodes.base import CSTNode

from miner.analyse.detect.detector import Detector
from miner.core.rules import load_rules
from miner.core.domain import FileStatus, MiningResult
from miner.present.evaluation import find_git_dir
from miner.analyse.gitread import SUBMODULE_MODE, SYMLINK_MODE, CommitReader
from miner.orchestrate.mining import run_parallel
from miner.analyse.parser_tuning import collector_paused, tuned_parser
from miner.analyse.pipeline import mine_commit
from miner.analyse.sandbox import close_shared_sandbox
from miner.core.settings import LimitSettings
from miner.analyse.sources import SourceError, load_source
from miner.core.paths import is_vendored, source_kind

MB = 1_000_000
SEED_WORDS = (b"log_param", b"log_metric", b"autolog")
UPLOAD_PACK = "git -c uploadpack.allowFilter=true -c uploadpack.allowAnySHA1InWant=true upload-pack"
# Corpus mirrors were fetched without blobs of 4 MiB and more (they are promisor packs with no
# promisor remote), so a plain clone of them dies in pack-objects. The "full" clone therefore asks
# for blob:limit=4m and lets the server's pack-objects skip what the mirror itself lacks; that is
# every object the mirror holds, which is what a full clone of it can be.
HOOK_SCRIPT = '#!/bin/sh\nexec "$@" --missing=allow-any\n'
DEFAULT_SEMGREP = "/tmp/bench-semgrep-venv/bin/semgrep"

TARGETS = {
    "parsed_per_mlflow_file": ("<=", 1.0),
    "detection_overhead": ("<=", 1.3),
    "analysis_vs_grep_2p": ("<=", 12.0),
    "semgrep_vs_ours": (">=", 2.0),
    "partial_vs_full_bytes": ("<=", 0.3),
    "peak_rss_mb": ("<", 300.0),
    "parallel_speedup": (">=", 1.8),
}


# --------------------------------------------------------------------------------------------
# Corpus inventory (setup, untimed)


@dataclass
class Blob:
    path: str
    sha: str
    size: int
    data: bytes


@dataclass
class Repo:
    name: str
    git_dir: Path
    commit: str
    source_bytes: int = 0            # every .py/.ipynb blob of the tree, vendored or not (git grep's input)
    source_files: int = 0
    analysed: list[Blob] = field(default_factory=list)   # what the pipeline reads: not vendored, present
    missing: list[str] = field(default_factory=list)     # .py/.ipynb paths whose blob the mirror lacks
    git_dir_bytes: int = 0

    @property
    def item(self) -> tuple[str, str, str]:
        return (self.name, str(self.git_dir), self.commit)

    @property
    def analysed_bytes(self) -> int:
        return sum(b.size for b in self.analysed)


def git(git_dir: Path | str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], **kwargs)


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def inventory(repo: Repo, limits: LimitSettings) -> None:
    """The commit's .py/.ipynb blobs, the analysed ones with their bytes (one cat-file --batch)."""
    out = git(repo.git_dir, "ls-tree", "-r", "-l", "-z", repo.commit, capture_output=True, check=True).stdout
    wanted: list[tuple[str, str, str]] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, path_b = record.split(b"\t", 1)
        mode, kind, sha, size = meta.decode().split()
        path = path_b.decode("utf-8", "surrogateescape")
        if kind != "blob" or source_kind(path) is None:
            continue
        if size == "-" or not size.isdigit():  # `BAD`: the object is not in the mirror
            repo.missing.append(path)
            continue
        repo.source_files += 1
        repo.source_bytes += int(size)
        if int(mode, 8) in (SYMLINK_MODE, SUBMODULE_MODE) or is_vendored(path):
            continue
        limit = limits.max_notebook_bytes if path.endswith(".ipynb") else limits.max_file_bytes
        if int(size) <= limit:
            wanted.append((path, sha, size))
    if wanted:
        batch = git(repo.git_dir, "cat-file", "--batch", input="".join(s + "\n" for _, s, _ in wanted).encode(),
                    capture_output=True, check=True).stdout
        pos = 0
        for path, sha, _ in wanted:
            end = batch.index(b"\n", pos)
            header = batch[pos:end].split()
            size = int(header[2])
            repo.analysed.append(Blob(path, sha, size, batch[end + 1:end + 1 + size]))
            pos = end + 1 + size + 1
    repo.git_dir_bytes = dir_bytes(repo.git_dir)


# --------------------------------------------------------------------------------------------
# Timing


@dataclass
class Timing:
    seconds: float = 0.0
    cpu: float = 0.0       # user+sys of this process and of children waited for meanwhile

    def as_dict(self) -> dict:
        return {"seconds": round(self.seconds, 4), "cpu_seconds": round(self.cpu, 4)}


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


@contextmanager
def timed() -> Iterator[Timing]:
    t = Timing()
    wall, cpu = time.perf_counter(), _cpu()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - wall
        t.cpu = _cpu() - cpu


def best_of(n: int, run: Callable[[], object]) -> Timing:
    best: Timing | None = None
    for _ in range(n):
        with timed() as t:
            run()
        if best is None or t.seconds < best.seconds:
            best = t
    assert best is not None
    return best


# --------------------------------------------------------------------------------------------
# Our analysis


def mine_item(item: tuple[str, str, str]) -> MiningResult:
    """One repository at one commit, exactly as the miner does it (picklable for run_parallel)."""
    name, git_dir, commit = item
    return mine_commit(git_dir, full_name=name, rules=load_rules(), limits=LimitSettings(), rev=commit)


class InProcessSandbox:
    """Stands in for miner.analyse.sandbox's shared parser child: the detector runs in this process, with
    libcst tuned as the child tunes it, so the stages can be timed (and profiled) and the
    sandbox's own cost measured."""

    def __init__(self, detector, timeout_s: float = 0.0, memory_mb: int = 0) -> None:
        self.detector = detector

    def __enter__(self) -> "InProcessSandbox":
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def analyse(self, source):
        with collector_paused():
            return self.detector.analyse(source)

    def close(self) -> None:
        pass


@contextmanager
def parse_in_process() -> Iterator[bool]:
    """Replace the pipeline's parser sandbox by InProcessSandbox (and tune libcst in this process
    meanwhile); yields whether the pipeline had a sandbox to replace."""
    import miner.analyse.pipeline as pipeline_mod

    original = getattr(pipeline_mod, "shared_sandbox", None)
    if original is None:
        yield False
        return
    pipeline_mod.shared_sandbox = lambda rules, *_: InProcessSandbox(Detector(rules))  # type: ignore[attr-defined]
    try:
        with tuned_parser():
            yield True
    finally:
        pipeline_mod.shared_sandbox = original  # type: ignore[attr-defined]


def run_ours(repos: list[Repo], workers: int, per_repo: dict[str, float] | None = None
             ) -> tuple[Timing, dict[str, MiningResult]]:
    function = mine_item
    if workers <= 1 and per_repo is not None:  # in-process: a closure is fine and times each repo
        def function(item: tuple[str, str, str]) -> MiningResult:
            started = time.perf_counter()
            try:
                return mine_item(item)
            finally:
                per_repo[item[0]] = time.perf_counter() - started
    with timed() as t:
        results = {item[0]: result for item, result in run_parallel(function, [r.item for r in repos], workers)}
        close_shared_sandbox()  # inside the timing: the parser child's CPU is counted once it is reaped
    return t, results


def makespan(durations: list[float], workers: int) -> float:
    """Finish time of a pool handing tasks, in this order, to whichever worker frees first."""
    free = [0.0] * workers
    for d in durations:
        i = free.index(min(free))
        free[i] += d
    return max(free)


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x ^= i * 7
    return x


def cpu_ceiling(workers: int, seconds_per_task: float = 1.5) -> dict:
    """The machine's own 'workers over 1' figure right now: pure-Python spinning through run_parallel."""
    n = 200_000
    while True:  # calibrate one task to about seconds_per_task
        t = time.perf_counter()
        _spin(n)
        dt = time.perf_counter() - t
        if dt > 0.2:
            break
        n *= 2
    n = int(n * seconds_per_task / dt)
    tasks = [n] * (2 * workers)
    with timed() as one:
        list(run_parallel(_spin, tasks, 1))
    with timed() as many:
        list(run_parallel(_spin, tasks, workers))
    return {"one_seconds": one.seconds, "many_seconds": many.seconds, "speedup": one.seconds / many.seconds}


class Breakdown:
    """Inclusive wall time of the pipeline's stages, by wrapping the functions mine_commit calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._undo: list[tuple[object, str, object]] = []

    def _add(self, key: str, dt: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + dt
        self.calls[key] = self.calls.get(key, 0) + 1

    def wrap(self, owner: object, attr: str, key: str) -> None:
        original = getattr(owner, attr)
        add = self._add

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(key, time.perf_counter() - t)

        self._undo.append((owner, attr, original))
        setattr(owner, attr, wrapper)

    def wrap_generator(self, owner: object, attr: str, key: str) -> None:
        original = getattr(owner, attr)
        add = self._add

        def wrapper(*args, **kwargs):
            it = original(*args, **kwargs)
            while True:
                t = time.perf_counter()
                try:
                    value = next(it)
                except StopIteration:
                    add(key, time.perf_counter() - t)
                    return
                add(key, time.perf_counter() - t)
                yield value

        self._undo.append((owner, attr, original))
        setattr(owner, attr, wrapper)

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()


def run_breakdown(repos: list[Repo]) -> tuple[float, dict[str, float], dict[str, int]]:
    import miner.analyse.detect.detector as detector_mod
    import miner.analyse.pipeline as pipeline_mod
    import miner.analyse.sources as sources_mod

    b = Breakdown()
    b.wrap(CommitReader, "__init__", "git: open repo + resolve commit")
    b.wrap_generator(CommitReader, "entries", "git: ls-tree -r -l (paths + sizes)")
    b.wrap(CommitReader, "read", "git: blob read (cat-file --batch)")
    b.wrap(CommitReader, "close", "git: close (end cat-file)")
    b.wrap(pipeline_mod, "load_source", "load_source (decode / notebook)")
    b.wrap(sources_mod, "notebook_file", "  notebook_file (json + cells)")
    b.wrap(sources_mod, "strip_ipython", "  strip_ipython")
    b.wrap(detector_mod.Detector, "analyse", "Detector.analyse")
    b.wrap(detector_mod, "_parse", "  libcst parse_module")
    b.wrap(detector_mod, "gather", "  gather pass (walk.py)")
    try:
        with parse_in_process(), timed() as t:
            for repo in repos:
                mine_item(repo.item)
    finally:
        b.restore()
    return t.seconds, b.seconds, b.calls


# --------------------------------------------------------------------------------------------
# Baselines


def grep_one(repo: Repo) -> int:
    r = git(repo.git_dir, "grep", "-c", "mlflow", repo.commit, "--", "*.py", "*.ipynb",
            capture_output=True)
    return sum(1 for line in r.stdout.splitlines() if line)


def run_grep(repos: list[Repo], processes: int) -> int:
    if processes <= 1:
        return sum(grep_one(r) for r in repos)
    with ThreadPoolExecutor(processes) as pool:  # each thread waits on its own git process
        return sum(pool.map(grep_one, repos))


def seed_heuristic(repos: list[Repo]) -> dict[str, bool]:
    """The seed study: does any .py/.ipynb blob's text contain log_param, log_metric or autolog?"""
    flagged: dict[str, bool] = {}
    for repo in repos:
        hit = False
        with CommitReader(repo.git_dir, repo.commit) as reader:
            for entry in reader.entries():
                if source_kind(entry.path) is None or entry.is_symlink or entry.is_submodule:
                    continue
                try:
                    data = reader.read(entry.sha)
                except ValueError:
                    continue
                if any(word in data for word in SEED_WORDS):
                    hit = True
                    break
        flagged[repo.name] = hit
    return flagged


def parse_units(repos: list[Repo], rules) -> dict[str, list[str]]:
    """Code to hand libcst: every analysed .py file, those whose bytes name mlflow, and exactly the
    cells our detector parses (Detector.needs_parse passed, notebook cells after IPython stripping)."""
    detector = Detector(rules)
    units: dict[str, list[str]] = {"py_all": [], "py_mlflow": [], "same_as_ours": []}
    for repo in repos:
        for blob in repo.analysed:
            try:
                source = load_source(blob.path, blob.data)
            except SourceError:
                continue
            if source.kind == "py":
                units["py_all"].append(source.cells[0])
                if b"mlflow" in blob.data:
                    units["py_mlflow"].append(source.cells[0])
            if detector.needs_parse(source):
                units["same_as_ours"].extend(c for c in source.cells if c.strip())
    return units


def parse_all(codes: list[str]) -> int:
    failures = 0
    for code in codes:
        try:
            cst.parse_module(code)
        except Exception:
            failures += 1
    return failures


@dataclass
class ParsedFile:
    repo: str
    path: str
    kind: str
    cells: list[str]
    imports_namespace: bool   # an import statement of the namespace can be in its text: we parse it


def parsed_files(repos: list[Repo], rules) -> list[ParsedFile]:
    """The files that name the namespace (the substring prefilter), each with whether the import
    prefilter (Detector.needs_parse) lets it through to the parser."""
    detector = Detector(rules)
    out = []
    for repo in repos:
        for blob in repo.analysed:
            try:
                source = load_source(blob.path, blob.data)
            except SourceError:
                continue
            if any(source.mentions(ns) for ns in rules.namespaces):
                out.append(ParsedFile(repo.name, blob.path, source.kind, [c for c in source.cells if c.strip()],
                                      detector.needs_parse(source)))
    return out


def ast_gather(codes: list[str]) -> int:
    """What-if: the stdlib parser and a walk collecting the node types our gather pass collects."""
    failures = 0
    wanted = (ast.Call, ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)
    for code in codes:
        try:
            [node for node in ast.walk(ast.parse(code)) if isinstance(node, wanted)]
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            failures += 1
    return failures


def parse_without_validation(codes: list[str]) -> int:
    """What-if: libcst's parser with CSTNode.__post_init__ (every node's _validate) switched off."""
    original = CSTNode.__post_init__
    CSTNode.__post_init__ = lambda self: None  # type: ignore[method-assign]
    try:
        return parse_all(codes)
    finally:
        CSTNode.__post_init__ = original  # type: ignore[method-assign]


def parse_tuned(codes: list[str]) -> int:
    """The parse as the sandbox child runs it: miner.analyse.parser_tuning's constructors, no validation,
    no cycle collection (the floor our analysis can reach with libcst)."""
    with tuned_parser(), collector_paused():
        return parse_all(codes)


def pipeline_read(repos: list[Repo]) -> int:
    """Read the analysed blobs as the pipeline does: CommitReader.entries() (one ls-tree with
    sizes), then read() of each through GitPython's persistent cat-file --batch."""
    total = 0
    for repo in repos:
        with CommitReader(repo.git_dir, repo.commit) as reader:
            for entry in reader.entries():
                if source_kind(entry.path) is None or is_vendored(entry.path) or entry.is_symlink \
                        or entry.is_submodule:
                    continue
                if entry.size is None:
                    continue
                try:
                    total += len(reader.read(entry.sha))
                except ValueError:
                    pass
    return total


def plumbing_read(repos: list[Repo]) -> int:
    """What-if: one `git ls-tree -r -l -z` and one `git cat-file --batch` per repository."""
    total = 0
    for repo in repos:
        out = git(repo.git_dir, "ls-tree", "-r", "-l", "-z", repo.commit, capture_output=True).stdout
        shas = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, path_b = record.split(b"\t", 1)
            mode, kind, sha, size = meta.split()
            path = path_b.decode("utf-8", "surrogateescape")
            if kind == b"blob" and size.isdigit() and source_kind(path) and not is_vendored(path) \
                    and mode != b"120000":
                shas.append(sha)
        if shas:
            batch = git(repo.git_dir, "cat-file", "--batch", input=b"\n".join(shas) + b"\n",
                        capture_output=True).stdout
            pos = 0
            for _ in shas:
                end = batch.index(b"\n", pos)
                size = int(batch[pos:end].split()[2])
                total += len(batch[end + 1:end + 1 + size])
                pos = end + 1 + size + 1
    return total


def run_clones(repos: list[Repo], tmp: Path) -> dict:
    """Full clone vs partial clone + fetch of the analysed blobs; sizes of what arrived."""
    hook = tmp / "pack-objects-hook.sh"
    hook.write_text(HOOK_SCRIPT)
    hook.chmod(0o755)
    full_upload = UPLOAD_PACK.replace(" upload-pack", f" -c uploadpack.packObjectsHook={hook} upload-pack")
    keep_packed = ["-c", "fetch.unpackLimit=1", "-c", "transfer.unpackLimit=1"]  # all arrivals stay packs
    figures = {"full_seconds": 0.0, "full_pack_bytes": 0, "full_disk_bytes": 0,
               "partial_seconds": 0.0, "partial_clone_seconds": 0.0, "partial_fetch_seconds": 0.0,
               "partial_pack_bytes": 0, "partial_disk_bytes": 0, "blobs_fetched": 0, "failures": []}

    def packs(d: Path) -> int:
        return sum(p.stat().st_size for p in (d / "objects" / "pack").glob("*.pack"))

    for i, repo in enumerate(repos):
        url = f"file://{repo.git_dir.resolve()}"
        full, part = tmp / f"full-{i}.git", tmp / f"partial-{i}.git"
        t0 = time.perf_counter()
        r = subprocess.run(["git", *keep_packed, "clone", "-q", "--bare", "--no-local", "--filter=blob:limit=4m",
                            f"--upload-pack={full_upload}", url, str(full)], capture_output=True)
        figures["full_seconds"] += time.perf_counter() - t0
        if r.returncode:
            figures["failures"].append(f"full {repo.name}: {r.stderr.decode()[-200:]}")
        else:
            figures["full_pack_bytes"] += packs(full)
            figures["full_disk_bytes"] += dir_bytes(full)
        shutil.rmtree(full, ignore_errors=True)

        t0 = time.perf_counter()
        r = subprocess.run(["git", *keep_packed, "clone", "-q", "--bare", "--filter=blob:none", "--depth", "1",
                            "--no-tags", f"--upload-pack={UPLOAD_PACK}", url, str(part)], capture_output=True)
        t1 = time.perf_counter()
        oids = sorted({b.sha for b in repo.analysed})
        if r.returncode == 0 and oids:
            # noop negotiation: otherwise the server sees our commit as a "have" and sends nothing
            f = subprocess.run(["git", *keep_packed, "-c", "fetch.negotiationAlgorithm=noop", "--git-dir", str(part),
                                "fetch", "-q", "--no-tags", "--no-write-fetch-head", "--filter=blob:none",
                                f"--upload-pack={UPLOAD_PACK}", "origin", "--stdin"],
                               input="\n".join(oids).encode(), capture_output=True)
            if f.returncode:
                figures["failures"].append(f"fetch {repo.name}: {f.stderr.decode()[-200:]}")
            figures["blobs_fetched"] += len(oids)
        t2 = time.perf_counter()
        figures["partial_clone_seconds"] += t1 - t0
        figures["partial_fetch_seconds"] += t2 - t1
        figures["partial_seconds"] += t2 - t0
        if r.returncode:
            figures["failures"].append(f"partial {repo.name}: {r.stderr.decode()[-200:]}")
        else:
            figures["partial_pack_bytes"] += packs(part)
            figures["partial_disk_bytes"] += dir_bytes(part)
        shutil.rmtree(part, ignore_errors=True)
    hook.unlink()
    return figures


def semgrep_rules(rules) -> str:
    ns = rules.namespaces[0]
    clients = "\n".join(
        f"            - pattern-inside: |\n                $C = {cls}(...)\n                ..."
        for cls in sorted(rules.client_classes)
    )
    return f"""rules:
  - id: tracker-call
    languages: [python]
    severity: INFO
    message: call of {ns}.$F
    pattern-either:
      - pattern: {ns}.$F(...)
      - pattern: {ns}.$M.$F(...)
  - id: tracker-client-call
    languages: [python]
    severity: INFO
    message: client call $C.$METHOD
    patterns:
      - pattern-either:
{clients}
      - pattern: $C.$METHOD(...)
"""


def run_semgrep(repos: list[Repo], semgrep: str | None, tmp: Path, rules) -> dict:
    if not semgrep or not Path(semgrep).exists() and shutil.which(semgrep) is None:
        return {"error": f"semgrep not found ({semgrep!r}); `pip install semgrep` (a venv at "
                         f"{DEFAULT_SEMGREP} is what --semgrep defaults to)"}
    root = tmp / "checkouts"
    root.mkdir()
    figures: dict = {}
    try:
        with timed() as t_archive:
            for i, repo in enumerate(repos):
                paths = [b.path for b in repo.analysed]
                if not paths:
                    continue
                dest = root / f"r{i:03d}"
                dest.mkdir()
                archive = subprocess.Popen(
                    ["git", "--literal-pathspecs", "--git-dir", str(repo.git_dir), "archive", "--format=tar",
                     repo.commit, "--", *paths], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
                archive.stdout.close()  # type: ignore[union-attr]
                archive.wait()
        figures["archive_seconds"] = round(t_archive.seconds, 4)
        (root / ".semgrepignore").write_text("")  # scan tests/, build/, ... too, as we do
        rule_file = tmp / "semgrep-rules.yaml"
        rule_file.write_text(semgrep_rules(rules))
        cmd = [semgrep, "scan", "--config", str(rule_file), "--metrics", "off", "--disable-version-check",
               "--no-git-ignore", "--jobs", "1", "--max-target-bytes", "0", "--timeout", "0", "--json",
               "--quiet", "."]
        env = dict(os.environ, SEMGREP_ENABLE_VERSION_CHECK="0", SEMGREP_SEND_METRICS="off")
        with timed() as t:
            r = subprocess.run(cmd, cwd=root, capture_output=True, env=env)
        figures.update(seconds=t.seconds, cpu_seconds=t.cpu, returncode=r.returncode)
        try:
            out = json.loads(r.stdout)
            figures["results"] = len(out.get("results", []))
            figures["errors"] = len(out.get("errors", []))
            figures["scanned"] = len(out.get("paths", {}).get("scanned", []))
        except json.JSONDecodeError:
            figures["error"] = f"semgrep exited {r.returncode}: {r.stderr.decode()[-400:]}"
        # semgrep only scans .py (no notebook support in the OSS engine): its input bytes
        figures["input_bytes"] = sum(b.size for repo in repos for b in repo.analysed if b.path.endswith(".py"))
    except Exception as exc:
        figures["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


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
            name = " ".join(a.decode(errors="replace") for a in argv[:3]) if argv[0].startswith(b"git") \
                else "python (forked parser sandbox)"
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
    print(json.dumps({"repo": name, "seconds": t.seconds, "files": len(result.files),
                      "maxrss_mb": _vm_hwm_kb("self") / 1024, "after_imports_mb": before / 1024,
                      "children_mb": sum(by_name.values()), "children": by_name}))


def measure_rss(repo: Repo) -> dict:
    r = subprocess.run([sys.executable, "-m", "bench.analysis", "--rss-probe", str(repo.git_dir), repo.commit,
                        repo.name], capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"repo": repo.name, "error": r.stderr[-400:]}


# --------------------------------------------------------------------------------------------
# Report


def verdict(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    op, target = TARGETS[key]
    ok = {"<=": value <= target, ">=": value >= target, "<": value < target}[op]
    return "ok" if ok else "MISSED"


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("../shared/eval/corpus-dev.json"))
    ap.add_argument("--repos-root", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--repos", type=int, default=None, help="only the first N repositories (quick run)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--semgrep", default=os.environ.get("SEMGREP") or (
        DEFAULT_SEMGREP if Path(DEFAULT_SEMGREP).exists() else shutil.which("semgrep")))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs of ours and of the plain parses; the fastest counts (noise only adds time)")
    ap.add_argument("--skip", action="append", default=[], choices=["clone", "semgrep", "parallel", "rss"])
    ap.add_argument("--rss-probe", nargs=3, metavar=("GIT_DIR", "COMMIT", "NAME"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_probe:
        rss_probe(*args.rss_probe)
        return 0

    run_started = time.perf_counter()
    load_at_start = os.getloadavg()
    rules, limits = load_rules(), LimitSettings()
    entries = json.loads(args.corpus.read_text())["repositories"]
    if args.repos:
        entries = entries[: args.repos]
    repos: list[Repo] = []
    not_found: list[str] = []
    for entry in entries:
        git_dir = find_git_dir(args.repos_root, entry["repo"])
        if git_dir is None:
            not_found.append(entry["repo"])
            continue
        repos.append(Repo(entry["repo"], git_dir, entry["commit"]))
    log = lambda msg: print(f"[{time.perf_counter() - run_started:6.1f}s] {msg}", file=sys.stderr, flush=True)
    log(f"inventory of {len(repos)} repositories")
    for repo in repos:
        inventory(repo, limits)
    analysed_bytes = sum(r.analysed_bytes for r in repos)
    analysed_files = sum(len(r.analysed) for r in repos)
    source_bytes = sum(r.source_bytes for r in repos)
    mlflow_files = sum(1 for r in repos for b in r.analysed if b"mlflow" in b.data)

    # warm the page cache and the interpreter (libcst's parser, GitPython) before anything is timed
    for repo in repos:
        for pack in (repo.git_dir / "objects" / "pack").glob("*.pack"):
            with open(pack, "rb") as handle:
                while handle.read(1 << 22):
                    pass
    run_grep(repos, 1)
    smallest = min(repos, key=lambda r: r.analysed_bytes)
    mine_item(smallest.item)
    cst.parse_module("import mlflow\nmlflow.log_param('a', 1)\n")

    fig: dict = {"repositories": len(repos), "not_found": not_found, "analysed_files": analysed_files,
                 "analysed_bytes": analysed_bytes, "source_bytes_all": source_bytes,
                 "mlflow_files": mlflow_files, "missing_blobs": sum(len(r.missing) for r in repos)}

    log(f"ours, 1 process (best of {args.repeat})")
    per_repo: dict[str, float] = {}
    t_ours, results = None, {}
    for _ in range(args.repeat):   # a shared machine's noise only ever adds time: keep the fastest
        times: dict[str, float] = {}
        t_run, run_results = run_ours(repos, 1, times)
        if t_ours is None or t_run.seconds < t_ours.seconds:
            t_ours, results, per_repo = t_run, run_results, times
    assert t_ours is not None
    files_parsed = sum(1 for res in results.values() for f in res.files if f.parsed)
    fig["ours_1p"] = t_ours.as_dict() | {
        "files": sum(len(res.files) for res in results.values()), "files_parsed": files_parsed,
        "findings": sum(len(res.findings) for res in results.values()),
        "bytes_analysed": sum(res.bytes_analysed for res in results.values()),
        "errors": {n: res.error for n, res in results.items() if res.error},
        "unparsable": sum(1 for res in results.values() for f in res.files if f.status is FileStatus.unparsable),
    }

    log(f"ours, 1 process, parser sandbox replaced by an in-process call (best of {args.repeat})")
    with parse_in_process() as had_sandbox:
        t_inproc = best_of(args.repeat, lambda: run_ours(repos, 1))
    fig["ours_in_process"] = t_inproc.as_dict() | {"pipeline_has_sandbox": had_sandbox}
    durations = [per_repo[r.name] for r in repos]
    fig["per_repo_seconds"] = {r.name: round(per_repo[r.name], 4) for r in repos}
    if "parallel" not in args.skip:
        # in the order a crawl hands repositories out: largest first by repository size (GitHub's
        # size_kb there, the git directory's bytes here), as miner.orchestrate.crawl and `miner eval` do
        by_size = sorted(repos, key=lambda r: -r.git_dir_bytes)
        log(f"ours, run_parallel workers={args.workers}, largest repositories first (best of {args.repeat})")
        t_par = best_of(args.repeat, lambda: run_ours(by_size, args.workers))
        fig["ours_parallel"] = t_par.as_dict() | {"workers": args.workers}
        log(f"machine ceiling: CPU-bound spinning through run_parallel, {args.workers} over 1")
        fig["ceiling"] = cpu_ceiling(args.workers)
        fig["schedule"] = {
            "largest_repo": max(repos, key=lambda r: per_repo[r.name]).name,
            "largest_share": max(durations) / sum(durations),
            "ideal_speedup_corpus_order": sum(durations) / makespan(durations, args.workers),
            "ideal_speedup_largest_first": sum(durations) / makespan(sorted(durations, reverse=True), args.workers),
            "ideal_speedup_by_repository_size": sum(durations) / makespan([per_repo[r.name] for r in by_size], args.workers),
        }
    else:
        t_par = None

    log("breakdown (instrumented run)")
    bd_total, bd, bd_calls = run_breakdown(repos)
    fig["breakdown"] = {"total_seconds": round(bd_total, 4),
                        "stages": {k: {"seconds": round(v, 4), "calls": bd_calls[k]} for k, v in bd.items()}}

    log("git grep, 1 and 2 processes (best of 3)")
    t_grep1 = best_of(3, lambda: run_grep(repos, 1))
    t_grep2 = best_of(3, lambda: run_grep(repos, 2))
    fig["git_grep_1p"], fig["git_grep_2p"] = t_grep1.as_dict(), t_grep2.as_dict()

    log("seed heuristic")
    with timed() as t_seed:
        seed = seed_heuristic(repos)
    headline = set(rules.headline_apis)
    ours_headline = {n for n, res in results.items()
                     if any(f.api in headline and not f.disabling for f in res.findings)}
    fig["seed"] = t_seed.as_dict() | {"flagged": sum(seed.values()), "ours_headline": len(ours_headline),
                                      "agree": sum(1 for n, v in seed.items() if v == (n in ours_headline))}

    log("plain libcst parse")
    units = parse_units(repos, rules)
    parse_t: dict[str, Timing] = {}
    for key in ("py_all", "py_mlflow", "same_as_ours"):
        outcome: dict[str, int] = {}
        repeat = 1 if key == "py_all" else args.repeat   # the two the targets divide by
        parse_t[key] = best_of(repeat, lambda: outcome.update(failures=parse_all(units[key])))
        failures = outcome["failures"]
        fig[f"parse_{key}"] = parse_t[key].as_dict() | {"units": len(units[key]), "failures": failures,
                                              "bytes": sum(len(u.encode("utf-8", "surrogatepass")) for u in units[key])}

    log("what-ifs: import prefilter, parse without validation, stdlib ast, git plumbing reads")
    files = parsed_files(repos, rules)
    with_findings = {(n, f.path) for n, res in results.items() for f in res.findings}
    no_import = [f for f in files if not f.imports_namespace]
    with timed() as t_noimp:
        parse_all([c for f in no_import for c in f.cells])
    noval: dict[str, int] = {}
    t_noval = best_of(args.repeat, lambda: noval.update(failures=parse_without_validation(units["same_as_ours"])))
    noval_failures = noval["failures"]
    tuned: dict[str, int] = {}
    t_tuned = best_of(args.repeat, lambda: tuned.update(failures=parse_tuned(units["same_as_ours"])))
    with timed() as t_ast:
        ast_failures = ast_gather(units["same_as_ours"])
    with timed() as t_gp:
        gp_bytes = pipeline_read(repos)
    with timed() as t_pl:
        pl_bytes = plumbing_read(repos)
    fig["whatif"] = {
        "parsed_files": len(files), "no_import_files": len(no_import),
        "no_import_files_with_findings": sum(1 for f in no_import if (f.repo, f.path) in with_findings),
        "no_import_parse": t_noimp.as_dict(),
        "parse_without_validation": t_noval.as_dict() | {"failures": noval_failures},
        "parse_tuned": t_tuned.as_dict() | {"failures": tuned["failures"]},
        "ast_parse_walk": t_ast.as_dict() | {"failures": ast_failures,
                                             "libcst_failures": fig["parse_same_as_ours"]["failures"]},
        "pipeline_read": t_gp.as_dict() | {"bytes": gp_bytes},
        "plumbing_read": t_pl.as_dict() | {"bytes": pl_bytes},
    }

    tmp = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    try:
        if "clone" not in args.skip:
            log("clones: full vs partial")
            fig["clone"] = run_clones(repos, tmp)
        if "semgrep" not in args.skip:
            log("semgrep")
            fig["semgrep"] = run_semgrep(repos, args.semgrep, tmp, rules)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fig["temp_removed"] = not tmp.exists()

    if "rss" not in args.skip:
        log("peak RSS")
        largest = []  # by analysed bytes, by git dir size, by our mining time
        for pick in (max(repos, key=lambda r: r.analysed_bytes), max(repos, key=lambda r: r.git_dir_bytes),
                     max(repos, key=lambda r: per_repo[r.name])):
            if all(pick is not r for r in largest):
                largest.append(pick)
        fig["rss"] = [measure_rss(r) | {"analysed_mb": r.analysed_bytes / MB, "git_dir_mb": r.git_dir_bytes / MB}
                      for r in largest]

    fig["load_average"] = {"start": load_at_start, "end": os.getloadavg()}
    fig["cpus"] = os.cpu_count()
    fig["run_seconds"] = time.perf_counter() - run_started
    print(render(fig, t_ours, t_par, t_inproc, t_grep1, t_grep2, t_seed, parse_t, bd_total, bd))
    if args.json:
        args.json.write_text(json.dumps(fig, indent=1, default=str))
    return 0


def render(fig, t_ours, t_par, t_inproc, t_grep1, t_grep2, t_seed, parse_t, bd_total, bd) -> str:
    lines: list[str] = []
    w = lines.append
    ours = t_ours.seconds
    w(f"mlflow-miner analysis benchmark: {fig['repositories']} repositories, "
      f"{fig['analysed_files']} analysed files ({fig['analysed_bytes'] / MB:.1f} MB), "
      f"{fig['mlflow_files']} whose bytes contain 'mlflow'; {fig['cpus']} CPUs, "
      f"load average {fig['load_average']['start'][0]:.2f} at start")
    if fig["not_found"]:
        w(f"  not found under the repos root: {', '.join(fig['not_found'])}")
    if fig["missing_blobs"]:
        w(f"  {fig['missing_blobs']} .py/.ipynb blobs absent from the mirrors (skipped by every tool)")
    w("")
    w(f"{'':46}{'input MB':>9}{'seconds':>9}{'cpu s':>8}{'MB/s':>8}{'ours ÷ it':>11}{'(by cpu)':>10}")
    w("-" * 101)

    def row(label: str, mb: float | None, seconds: float | None, cpu: float | None, vs_ours: bool = True,
            cpu_ratio: bool = True) -> None:
        mbps = mb / seconds if mb and seconds else None
        rel = ratio(ours, seconds) if vs_ours and seconds else None
        rel_cpu = ratio(t_ours.cpu, cpu) if vs_ours and cpu_ratio and cpu else None
        w(f"{label:46}{fmt(mb, 1):>9}{fmt(seconds):>9}{fmt(cpu):>8}{fmt(mbps, 1):>8}{fmt(rel):>11}{fmt(rel_cpu):>10}")

    amb = fig["analysed_bytes"] / MB
    row("ours: mine_commit, 1 process", amb, ours, t_ours.cpu, vs_ours=False)
    if t_par:
        row(f"ours: run_parallel, {fig['ours_parallel']['workers']} processes, largest first", amb, t_par.seconds, t_par.cpu, cpu_ratio=False)
    if fig["ours_in_process"]["pipeline_has_sandbox"]:
        row("ours: 1 process, parse in-process (no sandbox)", amb, t_inproc.seconds, t_inproc.cpu)
    row("git grep -c mlflow, 1 process", fig["source_bytes_all"] / MB, t_grep1.seconds, t_grep1.cpu)
    row("git grep -c mlflow, 2 processes", fig["source_bytes_all"] / MB, t_grep2.seconds, t_grep2.cpu)
    row("seed heuristic (substring, GitPython reads)", fig["source_bytes_all"] / MB, t_seed.seconds, t_seed.cpu)
    row("libcst.parse_module, all .py files", fig["parse_py_all"]["bytes"] / MB, parse_t["py_all"].seconds,
        parse_t["py_all"].cpu)
    row("libcst.parse_module, .py containing 'mlflow'", fig["parse_py_mlflow"]["bytes"] / MB,
        parse_t["py_mlflow"].seconds, parse_t["py_mlflow"].cpu)
    row("libcst.parse_module, the units we parse", fig["parse_same_as_ours"]["bytes"] / MB,
        parse_t["same_as_ours"].seconds, parse_t["same_as_ours"].cpu)
    clone = fig.get("clone")
    if clone:
        row("full clone (file://, all refs' history)", clone["full_pack_bytes"] / MB, clone["full_seconds"], None)
        row("partial clone + fetch of analysed blobs", clone["partial_pack_bytes"] / MB, clone["partial_seconds"],
            None)
    sg = fig.get("semgrep")
    if sg and "seconds" in sg and "error" not in sg:
        row("semgrep (-j 1, checkouts of the .py files)", sg["input_bytes"] / MB, sg["seconds"], sg["cpu_seconds"])
    w("")

    # targets
    parsed_ratio = ratio(fig["ours_1p"]["files_parsed"], fig["mlflow_files"])
    overhead = ratio(ours, parse_t["same_as_ours"].seconds)
    analyse_only = ratio(bd.get("Detector.analyse", 0.0), parse_t["same_as_ours"].seconds)
    vs_grep1 = ratio(ours, t_grep1.seconds)
    vs_grep2 = ratio(t_par.seconds, t_grep1.seconds) if t_par else None
    vs_grep2b = ratio(t_par.seconds, t_grep2.seconds) if t_par else None
    semgrep_ratio = ratio(sg["seconds"], ours) if sg and "seconds" in sg and "error" not in sg else None
    bytes_ratio = ratio(clone["partial_pack_bytes"], clone["full_pack_bytes"]) if clone else None
    disk_ratio = ratio(clone["partial_disk_bytes"], clone["full_disk_bytes"]) if clone else None
    rss = fig.get("rss") or []
    peak = max((r["maxrss_mb"] + r["children_mb"] for r in rss if "maxrss_mb" in r), default=None)
    speedup = ratio(ours, t_par.seconds) if t_par else None
    fig["ratios"] = {"parsed_per_mlflow_file": parsed_ratio, "detection_overhead": overhead,
                     "detector_analyse_over_parse": analyse_only, "analysis_vs_grep_1p": vs_grep1,
                     "analysis_vs_grep_2p": vs_grep2, "analysis_2p_vs_grep_2p": vs_grep2b,
                     "semgrep_vs_ours": semgrep_ratio, "partial_vs_full_bytes": bytes_ratio,
                     "partial_vs_full_disk": disk_ratio, "peak_rss_mb": peak, "parallel_speedup": speedup,
                     "seed_vs_ours_time": ratio(t_seed.seconds, ours)}
    w(f"{'figure':72}{'value':>9}  {'target':>8}  {'verdict':8}{'by cpu':>8}")
    w("-" * 109)

    def target_row(label: str, key: str | None, value: float | None, digits: int = 2,
                   by_cpu: float | None = None) -> None:
        cpu_text = f"{fmt(by_cpu, digits):>8}" if by_cpu is not None else ""
        if key:
            op, target = TARGETS[key]
            w(f"{label:72}{fmt(value, digits):>9}  {op + ' ' + format(target, 'g'):>8}  "
              f"{verdict(key, value):8}{cpu_text}")
        else:
            w(f"{label:72}{fmt(value, digits):>9}  {'':8}  {'':8}{cpu_text}")

    target_row(f"files parsed ÷ files whose bytes contain 'mlflow' "
               f"({fig['ours_1p']['files_parsed']}/{fig['mlflow_files']})", "parsed_per_mlflow_file", parsed_ratio)
    target_row("detection overhead: ours end to end ÷ plain parse of same units", "detection_overhead", overhead,
               by_cpu=ratio(t_ours.cpu, parse_t["same_as_ours"].cpu))
    target_row("  Detector.analyse alone ÷ plain parse of same units", None, analyse_only)
    if "parse_tuned" in fig.get("whatif", {}):
        # ours parses with miner.analyse.parser_tuning (a lever); against a plain parse tuned the same way
        tuned_s = fig["whatif"]["parse_tuned"]["seconds"]
        fig["ratios"]["detection_overhead_equal_settings"] = ratio(ours, tuned_s)
        target_row("  ours end to end ÷ parse of same units tuned as in our parser child", None, ratio(ours, tuned_s))
    if fig["ours_in_process"]["pipeline_has_sandbox"]:
        fig["ratios"]["sandbox_cost"] = ratio(ours, t_inproc.seconds)
        target_row("  ours (parser sandbox) ÷ ours with the parse in-process", None, ratio(ours, t_inproc.seconds),
                   by_cpu=ratio(t_ours.cpu, t_inproc.cpu))
    target_row("analysis (1 process) ÷ git grep (1 process)", None, vs_grep1, by_cpu=ratio(t_ours.cpu, t_grep1.cpu))
    target_row(f"analysis ({fig.get('ours_parallel', {}).get('workers', '-')} processes) ÷ git grep (1 process)",
               "analysis_vs_grep_2p", vs_grep2)
    target_row("  analysis (2 processes) ÷ git grep (2 processes)", None, vs_grep2b)
    target_row("semgrep ÷ ours (1 process each)", "semgrep_vs_ours", semgrep_ratio,
               by_cpu=ratio(sg["cpu_seconds"], t_ours.cpu) if semgrep_ratio else None)
    target_row("partial ÷ full clone, pack bytes fetched", "partial_vs_full_bytes", bytes_ratio, 4)
    target_row("  partial ÷ full clone, bytes on disk", None, disk_ratio, 4)
    target_row("  partial ÷ full clone, seconds", None,
               ratio(clone["partial_seconds"], clone["full_seconds"]) if clone else None)
    target_row("peak RSS MB, mining process + all its children, summed (largest repos)", "peak_rss_mb", peak, 1)
    workers = fig.get("ours_parallel", {}).get("workers", "-")
    target_row(f"run_parallel speedup, {workers} processes over 1", "parallel_speedup", speedup)
    if "ceiling" in fig:
        c, sch = fig["ceiling"], fig["schedule"]
        fig["ratios"]["machine_ceiling"] = c["speedup"]
        target_row(f"  machine ceiling now: CPU-bound spin via run_parallel, {workers} over 1", None, c["speedup"])
        target_row(f"  ideal given per-repo times, corpus order (largest repo "
                   f"= {100 * sch['largest_share']:.0f} %)", None, sch["ideal_speedup_corpus_order"])
        target_row("  ideal given per-repo times, largest repository size first (the order run)", None,
                   sch["ideal_speedup_by_repository_size"])
        target_row("  ideal given per-repo times, longest mining time first", None, sch["ideal_speedup_largest_first"])
    w("")

    w(f"where the single-process analysis time goes (instrumented run, parse in-process, {bd_total:.2f} s; "
      f"inclusive times):")
    for key in ("git: open repo + resolve commit", "git: ls-tree -r -l (paths + sizes)",
                "git: blob read (cat-file --batch)",
                "git: close (end cat-file)", "load_source (decode / notebook)", "  notebook_file (json + cells)",
                "  strip_ipython", "Detector.analyse", "  libcst parse_module", "  gather pass (walk.py)"):
        if key in bd:
            w(f"  {key:44}{bd[key]:8.2f} s {100 * bd[key] / bd_total:5.1f} %")
    accounted = sum(bd.get(k, 0.0) for k in bd if not k.startswith("  "))
    resolve = bd.get("Detector.analyse", 0.0) - bd.get("  libcst parse_module", 0.0) - bd.get("  gather pass (walk.py)", 0.0)
    w(f"  {'  bindings + findings (analyse - parse - gather)':44}{resolve:8.2f} s {100 * resolve / bd_total:5.1f} %")
    w(f"  {'rest of mine_commit (loop, FileResult, ...)':44}{bd_total - accounted:8.2f} s "
      f"{100 * (bd_total - accounted) / bd_total:5.1f} %")
    w("")

    wi = fig.get("whatif")
    if wi:
        same = parse_t["same_as_ours"].seconds
        w("evidence for speed-ups (measured above, same units):")
        w(f"  import prefilter (applied): files naming the namespace with no import of it in their text: "
          f"{wi['no_import_files']}/{wi['parsed_files']}, with findings: {wi['no_import_files_with_findings']}; "
          f"we skip them, parsing them would add {wi['no_import_parse']['seconds']:.2f} s = "
          f"{100 * wi['no_import_parse']['seconds'] / same:.0f} % to the plain parse of the units we parse")
        nv = wi["parse_without_validation"]
        w(f"  libcst parse with CSTNode._validate switched off: {nv['seconds']:.2f} s vs {same:.2f} s "
          f"({100 * (1 - nv['seconds'] / same):.0f} % less; {nv['failures']} failures)")
        tp = wi["parse_tuned"]
        w(f"  libcst parse tuned as in our parser child (no validation, plain constructors, no cycle GC): "
          f"{tp['seconds']:.2f} s vs {same:.2f} s ({100 * (1 - tp['seconds'] / same):.0f} % less; "
          f"{tp['failures']} failures)")
        a = wi["ast_parse_walk"]
        w(f"  stdlib ast.parse + ast.walk of the same units: {a['seconds']:.2f} s vs libcst parse {same:.2f} s "
          f"({same / a['seconds']:.1f}x faster); failures ast {a['failures']} / libcst {a['libcst_failures']}")
        g, p = wi["pipeline_read"], wi["plumbing_read"]
        w(f"  reading the analysed blobs: ours (ls-tree, reads through GitPython's cat-file) {g['seconds']:.2f} s vs ls-tree -l + one "
          f"cat-file --batch {p['seconds']:.2f} s ({g['bytes'] / MB:.1f} / {p['bytes'] / MB:.1f} MB)")
        w("")
    w("notes:")
    o = fig["ours_1p"]
    w(f"  ours: {o['files']} files, {o['files_parsed']} parsed, {o['unparsable']} unparsable, "
      f"{o['findings']} findings, {len(o['errors'])} repository errors")
    s = fig["seed"]
    w(f"  seed heuristic flags {s['flagged']} repositories; ours finds a headline API in {s['ours_headline']}; "
      f"they agree on {s['agree']}/{fig['repositories']}")
    if clone:
        w(f"  clones: full {clone['full_pack_bytes'] / MB:.1f} MB packs / {clone['full_disk_bytes'] / MB:.1f} MB on "
          f"disk in {clone['full_seconds']:.1f} s; partial {clone['partial_pack_bytes'] / MB:.2f} MB packs / "
          f"{clone['partial_disk_bytes'] / MB:.2f} MB on disk in {clone['partial_seconds']:.1f} s "
          f"(clone {clone['partial_clone_seconds']:.1f} s + fetch of {clone['blobs_fetched']} blobs "
          f"{clone['partial_fetch_seconds']:.1f} s); failures: {len(clone['failures'])}")
        w("  full clone = every object the mirror holds (blob:limit=4m, server skips blobs the mirror lacks)")
    if sg:
        if "error" in sg:
            w(f"  semgrep: not measured: {sg['error']}")
        else:
            w(f"  semgrep: {sg.get('scanned')} files scanned, {sg.get('results')} results, {sg.get('errors')} "
              f"errors; git archive | tar -x took {sg['archive_seconds']:.2f} s (not counted); .ipynb not scanned")
    for r in rss:
        if "error" in r:
            w(f"  RSS probe {r['repo']}: failed: {r['error']}")
        else:
            kids = ", ".join(f"{n} {mb:.1f}" for n, mb in sorted(r["children"].items(), key=lambda kv: -kv[1]))
            w(f"  RSS {r['repo']} ({r['analysed_mb']:.1f} MB analysed, {r['git_dir_mb']:.0f} MB git dir, "
              f"mined in {r['seconds']:.2f} s): python {r['maxrss_mb']:.1f} MB ({r['after_imports_mb']:.1f} after "
              f"imports) + children (VmHWM, MB): {kids}")
    la = fig["load_average"]
    w(f"  load average start {la['start'][0]:.2f} / end {la['end'][0]:.2f}; temp folders removed: "
      f"{fig['temp_removed']}; whole run {fig['run_seconds']:.0f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
