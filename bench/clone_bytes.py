"""Bytes a crawl's partial clone fetches, against a full clone of the same repository.

    python -m bench.clone_bytes --corpus CORPUS.json --mirrors DIR
    python -m bench.clone_bytes --corpus CORPUS.json --mirrors DIR --verbose

--corpus and --mirrors (also spelled --repos-root) may instead come from BENCH_CORPUS and
BENCH_REPOS_ROOT; one of the two ways is required.

Every repository of the evaluation corpus is served read-only from its bare mirror over file://
(upload-pack run with filters and any-object wants allowed, as GitHub's is; nothing is written
into the mirror) and cloned three ways into a temporary folder, in the same run:

  partial  `miner.acquire.clone.clone_repository`: bare, depth 1, blob:none, then one batch of the
           *.py / *.ipynb blobs the pipeline reads; at the corpus commit
  shallow  `git clone --bare --depth 1 --single-branch`: the same commit with every blob
  full     `git clone --bare`: every branch's history with every blob (the baseline)

Bytes are the objects received: pack files plus loose objects (indexes are built locally).
Some mirrors lack large blobs (the mirror omits files of 4 MiB and more); their full or shallow
clone fails on the server and they are left out of that ratio, and counted. Unless --no-verify,
each partial clone is mined and compared with mining the mirror itself at the same commit:
fetching less must not change a single finding.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.inputs import add_corpus_options, require_corpus_options
from miner.acquire.clone import CloneError, clone_repository
from miner.analyse.pipeline import mine_commit
from miner.core.rules import load_rules
from miner.core.settings import LimitSettings
from miner.orchestrate.mining import run_parallel
from miner.present.evaluation import find_git_dir

UPLOAD_PACK = "git -c uploadpack.allowFilter=true -c uploadpack.allowAnySHA1InWant=true upload-pack"
TARGET_RATIO = 0.3
_RECEIVED_SUFFIXES = (".pack",)


@dataclass
class Row:
    repo: str
    partial_bytes: int | None = None
    shallow_bytes: int | None = None
    full_bytes: int | None = None
    partial_s: float = 0.0
    full_s: float = 0.0
    error: str | None = None
    identical: bool | None = None


def received_bytes(git_dir: Path) -> int:
    """Pack files and loose objects: what came over the wire, not the indexes built here."""
    objects = git_dir / "objects"
    total = 0
    for path in objects.rglob("*"):
        if not path.is_file() or path.parent.name == "info":
            continue
        if path.parent.name == "pack":
            if path.suffix in _RECEIVED_SUFFIXES:
                total += path.stat().st_size
        elif len(path.parent.name) == 2:  # a loose object
            total += path.stat().st_size
    return total


def _git_clone(args: list[str], url: str, dest: Path) -> float | None:
    started = time.perf_counter()
    done = subprocess.run(
        ["git", "clone", "--bare", "--quiet", "--upload-pack", UPLOAD_PACK, *args, "--", url, str(dest)],
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - started if done.returncode == 0 else None


def _head(git_dir: Path) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()


def measure(entry: dict, mirrors: Path, scratch: Path, verify: bool) -> Row:
    row = Row(entry["repo"])
    mirror = find_git_dir(mirrors, entry["repo"])
    if mirror is None:
        row.error = "no mirror"
        return row
    url = mirror.resolve().as_uri()
    commit = entry["commit"]
    rev = None if _head(mirror) == commit else commit  # a crawl clones the default branch
    folder = Path(tempfile.mkdtemp(prefix="clone-bytes-", dir=scratch))
    try:
        started = time.perf_counter()
        try:
            partial = clone_repository(url, folder / "partial.git", LimitSettings(), rev=rev, upload_pack=UPLOAD_PACK)
        except CloneError as exc:
            row.error = f"partial clone: {exc}"
            return row
        row.partial_s = time.perf_counter() - started
        row.partial_bytes = received_bytes(partial)
        if _git_clone(["--depth", "1", "--single-branch", "--no-tags"], url, folder / "shallow.git") is not None:
            row.shallow_bytes = received_bytes(folder / "shallow.git")
        full_s = _git_clone([], url, folder / "full.git")
        if full_s is not None:
            row.full_s = full_s
            row.full_bytes = received_bytes(folder / "full.git")
        if verify:
            rules, limits = load_rules(), LimitSettings()
            ours = mine_commit(partial, full_name=entry["repo"], rules=rules, limits=limits, rev=commit)
            theirs = mine_commit(mirror, full_name=entry["repo"], rules=rules, limits=limits, rev=commit)
            row.identical = (
                ours.status,
                ours.commit_sha,
                sorted(map(repr, ours.files)),
                sorted(map(repr, ours.findings)),
            ) == (theirs.status, theirs.commit_sha, sorted(map(repr, theirs.files)), sorted(map(repr, theirs.findings)))
        return row
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _ratio(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator:.3f}" if denominator else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_options(parser, repos_root_flags=("--mirrors", "--repos-root"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="skip mining both sides")
    parser.add_argument("--verbose", action="store_true", help="one line per repository")
    args = parser.parse_args(argv)
    require_corpus_options(parser, args, repos_root_flag="--mirrors")

    entries = json.loads(args.corpus.read_text())["repositories"]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-clone-bytes-") as scratch:
        job = _Measure(args.repos_root, Path(scratch), args.verify)
        for _entry, row in run_parallel(job, entries, args.workers):
            rows.append(row)
    rows.sort(key=lambda r: r.repo)

    if args.verbose:
        print(f"{'repository':60} {'partial':>10} {'shallow':>10} {'full':>10} {'ratio':>7} same")
        for r in rows:
            ratio = _ratio(r.partial_bytes or 0, r.full_bytes or 0) if r.full_bytes else "n/a"
            print(
                f"{r.repo[:60]:60} {r.partial_bytes or 0:>10} {r.shallow_bytes or 0:>10} {r.full_bytes or 0:>10} "
                f"{ratio:>7} {r.identical if r.identical is not None else '-'} {r.error or ''}"
            )

    cloned = [r for r in rows if r.partial_bytes is not None]
    with_full = [r for r in cloned if r.full_bytes]
    with_shallow = [r for r in cloned if r.shallow_bytes]
    partial_vs_full = sum(r.partial_bytes or 0 for r in with_full)
    full = sum(r.full_bytes or 0 for r in with_full)
    partial_vs_shallow = sum(r.partial_bytes or 0 for r in with_shallow)
    shallow = sum(r.shallow_bytes or 0 for r in with_shallow)
    per_repo = sorted((r.partial_bytes or 0) / r.full_bytes for r in with_full if r.full_bytes)
    print(
        f"repositories: {len(rows)}; partial clones ok: {len(cloned)}; "
        f"full clone possible: {len(with_full)} (the others' mirrors lack blobs a full clone needs)"
    )
    for r in rows:
        if r.error:
            print(f"  failed: {r.repo}: {r.error}")
    print(
        f"partial ÷ full clone bytes:        {_ratio(partial_vs_full, full)}  "
        f"({partial_vs_full:,} / {full:,} bytes over {len(with_full)} repositories; target ≤ {TARGET_RATIO})"
    )
    if per_repo:
        print(f"  per repository: median {per_repo[len(per_repo) // 2]:.3f}, max {per_repo[-1]:.3f}")
    print(
        f"partial ÷ shallow full-blob bytes: {_ratio(partial_vs_shallow, shallow)}  "
        f"({partial_vs_shallow:,} / {shallow:,} bytes over {len(with_shallow)} repositories)"
    )
    partial_s = sum(r.partial_s for r in with_full)
    full_s = sum(r.full_s for r in with_full)
    print(
        f"partial ÷ full clone time:         {_ratio(int(partial_s * 1e6), int(full_s * 1e6))}  "
        f"({partial_s:.2f} s / {full_s:.2f} s, local file:// transport)"
    )
    if args.verify:
        checked = [r for r in cloned if r.identical is not None]
        same = sum(1 for r in checked if r.identical)
        print(f"mining the partial clone = mining the mirror: {same}/{len(checked)} repositories identical")
        for r in checked:
            if not r.identical:
                print(f"  differs: {r.repo}")
    return 0 if cloned and full and partial_vs_full / full <= TARGET_RATIO else 1


@dataclass(frozen=True)
class _Measure:
    """A picklable job for the process pool."""

    mirrors: Path
    scratch: Path
    verify: bool

    def __call__(self, entry: dict) -> Row:
        return measure(entry, self.mirrors, self.scratch, self.verify)


if __name__ == "__main__":
    sys.exit(main())
