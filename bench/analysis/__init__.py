"""Analysis benchmark: our miner against baselines measured in the same run, over the same commits.

    python -m bench.analysis --corpus CORPUS.json --repos-root DIR
    python -m bench.analysis ... --repos 10 --json bench.json          # a quick run

--corpus and --repos-root may instead come from BENCH_CORPUS and BENCH_REPOS_ROOT; one of the two
ways is required.

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

The package is split by job: `corpus` (inventory), `timing`, `ours`, `baselines` (git grep, seed
heuristic, plain parses, what-ifs), `clones`, `semgrep`, `rss`, `report`, and `run` (the command
line). The corpus git directories are only read: clones go through upload-pack, checkouts through
git archive, and every temporary folder is deleted before the run ends.
"""
