"""Profile the analysis of a whole corpus, single process, with pyinstrument; write the hotspots.

    python -m bench.profile --corpus CORPUS.json --repos-root DIR --out bench-profile.txt

--corpus and --repos-root may instead come from BENCH_CORPUS and BENCH_REPOS_ROOT; one of the two
ways is required. Without --out the whole report goes to stdout.

The pipeline parses in a forked sandbox child (miner/analyse/sandbox.py) that this profiler cannot see, so
the detector is called in-process here (bench.analysis.ours.parse_in_process). The report holds: functions by self time (where the samples landed), functions by inclusive time
(counted once per stack, so recursion does not inflate them), and pyinstrument's call tree.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.analysis.ours import mine_item, parse_in_process
from bench.inputs import add_corpus_options, require_corpus_options
from miner.present.evaluation import find_git_dir


def _walk(frame, stack: tuple[str, ...], self_times: dict, inclusive: dict, labels: dict) -> None:
    key = frame.identifier
    labels.setdefault(key, f"{frame.function}  {frame.file_path_short or ''}:{frame.line_no}")
    if key not in stack:  # a function already on the stack adds no inclusive time
        inclusive[key] = inclusive.get(key, 0.0) + frame.time
    children_time = 0.0
    for child in frame.children:
        if child.is_synthetic:  # pyinstrument's [self] / [await] leaves: the parent's own time
            continue
        children_time += child.time
        _walk(child, stack + (key,), self_times, inclusive, labels)
    self_times[key] = self_times.get(key, 0.0) + frame.time - children_time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_options(ap)
    ap.add_argument("--repos", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the whole report here (default: stdout)")
    ap.add_argument("--interval", type=float, default=0.001)
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args(argv)
    require_corpus_options(ap, args)
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("bench.profile needs pyinstrument: pip install -e '.[bench]'", file=sys.stderr)
        return 2

    entries = json.loads(args.corpus.read_text())["repositories"][: args.repos]
    items = []
    for entry in entries:
        git_dir = find_git_dir(args.repos_root, entry["repo"])
        if git_dir is not None:
            items.append((entry["repo"], str(git_dir), entry["commit"]))
    mine_item(min(items, key=lambda i: i[0]))  # imports and first-use costs outside the profile

    profiler = Profiler(interval=args.interval)
    # the pipeline parses in a forked sandbox child, which a profiler of this process cannot see:
    # profile with the detector called in-process (the sandbox's own cost is in bench.analysis)
    with parse_in_process() as had_sandbox:
        started = time.perf_counter()
        profiler.start()
        files = findings = 0
        for item in items:
            result = mine_item(item)
            files += len(result.files)
            findings += len(result.findings)
        profiler.stop()
        wall = time.perf_counter() - started

    session = profiler.last_session
    root = session.root_frame()
    self_times: dict[str, float] = {}
    inclusive: dict[str, float] = {}
    labels: dict[str, str] = {}
    _walk(root, (), self_times, inclusive, labels)
    total = root.time

    lines = [
        f"pyinstrument profile of mine_commit over {len(items)} repositories ({files} files, {findings} "
        f"findings), single process{', parser sandbox replaced by in-process calls' if had_sandbox else ''}, "
        f"{wall:.1f} s wall, {total:.1f} s sampled, interval {args.interval} s",
        "",
        f"top {args.top} functions by SELF time (share of all sampled time):",
    ]
    for rank, (key, t) in enumerate(sorted(self_times.items(), key=lambda kv: -kv[1])[: args.top], 1):
        lines.append(f"{rank:3}. {100 * t / total:5.1f} %  {t:7.2f} s  {labels[key]}")
    lines += ["", f"top {args.top} functions by INCLUSIVE time (once per stack):"]
    for rank, (key, t) in enumerate(sorted(inclusive.items(), key=lambda kv: -kv[1])[: args.top], 1):
        lines.append(f"{rank:3}. {100 * t / total:5.1f} %  {t:7.2f} s  {labels[key]}")
    lines += ["", "pyinstrument call tree (library frames grouped):", ""]
    lines.append(profiler.output_text(unicode=False, color=False, show_all=False))
    if args.out is None:
        print("\n".join(lines))
        return 0
    args.out.write_text("\n".join(lines))
    print("\n".join(lines[: args.top + 4]))
    print(f"... written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
