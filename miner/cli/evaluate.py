"""`miner eval`: score the detector against a labelled corpus of local clones."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from miner.analyse.pipeline import mine_commit
from miner.cli.common import cli_settings, fail, progress_bar
from miner.core.domain import MiningResult, RunStatus
from miner.core.rules import load_rules
from miner.core.settings import Settings
from miner.orchestrate.mining import run_parallel
from miner.present.evaluation import EvalReport, api_table, find_git_dir, kind_table, score_repository
from miner.present.output import Format, console, render_document

app = typer.Typer()


def _mine_corpus_entry(entry: dict, repos_root: Path, settings: Settings) -> MiningResult | None:
    git_dir = find_git_dir(repos_root, entry["repo"])
    if git_dir is None:
        return None
    return mine_commit(
        git_dir, full_name=entry["repo"], rules=load_rules(settings.rules), limits=settings.limits, rev=entry["commit"]
    )


def _git_dir_bytes(git_dir: Path | None) -> int:
    if git_dir is None:
        return 0
    return sum(f.stat().st_size for f in (git_dir / "objects").rglob("*") if f.is_file())


@app.command(name="eval")
def evaluate(
    corpus: Annotated[Path, typer.Argument(help="Labelled corpus (see docs/evaluation.md).")],
    repos_root: Annotated[Path, typer.Option("--repos-root", help="Folder holding OWNER+NAME/repo git directories.")],
    workers: Annotated[int | None, typer.Option(help="Processes mining in parallel.")] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
) -> None:
    """Score the detector against a labelled corpus: per-api precision/recall and every disagreement."""
    settings = cli_settings()
    rules = load_rules(settings.rules)
    try:
        document = json.loads(corpus.read_text("utf-8"))
        entries = list(document["repositories"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"cannot read corpus {corpus}: {exc}")
    report = EvalReport()
    job = partial(_mine_corpus_entry, repos_root=repos_root, settings=settings)
    by_repo: dict[str, MiningResult | None] = {}
    # Largest repositories first, so that no big one is left running alone at the end.
    ordered = sorted(entries, key=lambda e: -_git_dir_bytes(find_git_dir(repos_root, e["repo"])))
    with progress_bar() as progress:
        task = progress.add_task("evaluating", total=len(entries))
        for entry, result in run_parallel(job, ordered, workers or settings.workers):
            by_repo[entry["repo"]] = result
            progress.advance(task)
    for entry in entries:  # score in corpus order so the report is reproducible
        result = by_repo[entry["repo"]]
        if result is None:
            report.missing.append(entry["repo"])
            continue
        if result.status is not RunStatus.ok:
            report.failed[entry["repo"]] = result.error or result.status.value
            continue
        report.repositories.append(entry["repo"])
        score_repository(entry, result.findings, rules, report)
    if report.missing:
        console.print(f"[yellow]missing, skipped:[/yellow] {', '.join(report.missing)}")
    out = report.as_dict()
    calls = out["calls"]
    summary = [
        {
            "repositories": out["repositories"],
            "missing": len(report.missing),
            "failed": len(report.failed),
            **{f"calls_{k}": v for k, v in calls.items()},
            "headline_detected": out["headline"]["detected_share"],
            "headline_labelled": out["headline"]["labelled_share"],
        }
    ]
    if format is Format.json:
        out["apis"] = api_table(report, rules)
        out["kinds"] = kind_table(report)
    render_document(
        out,
        format if format is Format.json else Format.table,
        [
            ("summary", summary),
            ("per api: repository level and call level", api_table(report, rules)),
            ("per detection spec kind (labels' spec_v2, else v1), every category", kind_table(report)),
            ("disagreements", out["disagreements"] or [{"disagreements": "none"}]),
            ("rule found differs from the label's kind", out["rule_mismatches"] or [{"rule_mismatches": "none"}]),
        ],
    )
