"""Score the detector against a labelled corpus (docs/evaluation.md): pure, findings in, scores out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from miner.core.domain import RULE_V1, Category, Finding
from miner.core.rules import Rules

CallKey = tuple[str, int | None, int, str]  # (path, cell, line, api)


@dataclass
class Disagreement:
    repo: str
    kind: str  # "missed" (label, not found) or "extra" (found, not labelled)
    path: str
    cell: int | None
    line: int
    api: str
    qualified_name: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


@dataclass
class EvalReport:
    repositories: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    repo_level: dict[str, Counts] = field(default_factory=dict)
    calls: Counts = field(default_factory=Counts)
    calls_by_api: dict[str, Counts] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    headline_detected: int = 0
    headline_labelled: int = 0
    # Per detection spec kind (`v1`, or a label's `spec_v2`), over every labelled call, the
    # `other` category included: the kinds are about how a name resolves, not what it calls.
    calls_by_kind: dict[str, Counts] = field(default_factory=dict)
    # Calls found where labelled, but through another rule than the label's kind.
    rule_mismatches: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        n = len(self.repositories)
        return {
            "repositories": n,
            "missing": self.missing,
            "failed": self.failed,
            "repo_level": {api: c.as_dict() for api, c in self.repo_level.items()},
            "calls": self.calls.as_dict(),
            "calls_by_api": {api: c.as_dict() for api, c in sorted(self.calls_by_api.items())},
            "headline": {
                "detected": self.headline_detected,
                "labelled": self.headline_labelled,
                "detected_share": round(self.headline_detected / n, 4) if n else 0.0,
                "labelled_share": round(self.headline_labelled / n, 4) if n else 0.0,
            },
            "disagreements": [d.as_dict() for d in self.disagreements],
            "calls_by_kind": {kind: c.as_dict() for kind, c in sorted(self.calls_by_kind.items())},
            "rule_mismatches": self.rule_mismatches,
        }


def find_git_dir(repos_root: Path, full_name: str) -> Path | None:
    """`DIR/OWNER+NAME/repo`, `DIR/OWNER+NAME/repo/.git` or `DIR/OWNER+NAME`, whichever is a git dir."""
    base = repos_root / full_name.replace("/", "+")
    for candidate in (base / "repo" / ".git", base / "repo", base / ".git", base):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    return None


def used_apis(findings: list[Finding], rules: Rules) -> set[str]:
    """Repository-level usage per the spec: fluent or client; a disabling autolog does not count."""
    return {f.api for f in findings if not f.disabling and f.api in rules.apis}


def label_uses(entry: dict) -> set[str]:
    return set(entry.get("uses", []))


def score_repository(entry: dict, findings: list[Finding], rules: Rules, report: EvalReport) -> None:
    """Add one repository's agreement with its labels to the report."""
    repo = entry["repo"]
    ours, theirs = used_apis(findings, rules), label_uses(entry)
    for api in rules.apis:
        counts = report.repo_level.setdefault(api, Counts())
        if api in ours and api in theirs:
            counts.tp += 1
        elif api in ours:
            counts.fp += 1
        elif api in theirs:
            counts.fn += 1
    headline = set(rules.headline_apis)
    report.headline_detected += bool(ours & headline)
    report.headline_labelled += bool(theirs & headline)

    labels = [c for c in entry.get("calls", []) if c.get("category") != Category.other.value]
    required = [c for c in labels if not c.get("beyond_spec")]
    optional = [c for c in labels if c.get("beyond_spec")]
    found = [f for f in findings if f.category is not Category.other]
    unmatched = list(found)

    def take(label: dict) -> bool:
        lines = {label["line"], label.get("name_line", label["line"])}
        for i, f in enumerate(unmatched):
            if f.path == label["path"] and f.cell == label.get("cell") and f.api == label["api"] and f.line in lines:
                del unmatched[i]
                return True
        return False

    for label in required:
        counts = report.calls_by_api.setdefault(label["api"], Counts())
        if take(label):
            report.calls.tp += 1
            counts.tp += 1
        else:
            report.calls.fn += 1
            counts.fn += 1
            report.disagreements.append(
                Disagreement(
                    repo,
                    "missed",
                    label["path"],
                    label.get("cell"),
                    label["line"],
                    label["api"],
                    label.get("qualified_name", ""),
                )
            )
    for label in optional:
        take(label)  # a beyond-spec call we also found is neither credit nor a false positive
    for f in unmatched:
        counts = report.calls_by_api.setdefault(f.api, Counts())
        report.calls.fp += 1
        counts.fp += 1
        report.disagreements.append(Disagreement(repo, "extra", f.path, f.cell, f.line, f.api, f.qualified_name))
    _score_kinds(entry, findings, report)


def label_kind(label: dict) -> str:
    """The rule a labelled call needs: its `spec_v2` kind, else `v1`."""
    return label.get("spec_v2") or RULE_V1


def _matches(finding: Finding, label: dict) -> bool:
    lines = {label["line"], label.get("name_line", label["line"])}
    return (
        finding.path == label["path"]
        and finding.cell == label.get("cell")
        and finding.api == label["api"]
        and finding.line in lines
    )


def _score_kinds(entry: dict, findings: list[Finding], report: EvalReport) -> None:
    """Recall per spec kind over every labelled call, and whether the rule found agrees.

    A finding no label matches counts as a false positive of the rule it was found through.
    """
    unmatched = list(findings)
    for label in entry.get("calls", []):
        if label.get("beyond_spec"):
            continue
        kind = label_kind(label)
        counts = report.calls_by_kind.setdefault(kind, Counts())
        index = next((i for i, f in enumerate(unmatched) if _matches(f, label)), None)
        if index is None:
            counts.fn += 1
            continue
        counts.tp += 1
        found = unmatched.pop(index)
        if found.rule != kind:
            report.rule_mismatches.append(
                {
                    "repo": entry["repo"],
                    "path": label["path"],
                    "cell": label.get("cell"),
                    "line": label["line"],
                    "api": label["api"],
                    "label": kind,
                    "found": found.rule,
                }
            )
    for found in unmatched:
        if not any(_matches(found, label) for label in entry.get("calls", [])):
            report.calls_by_kind.setdefault(found.rule, Counts()).fp += 1


def kind_table(report: EvalReport) -> list[dict]:
    """One row per spec kind: labelled calls found (recall), and findings of it no label has."""
    return [
        {
            "kind": kind,
            "labelled": c.tp + c.fn,
            "found": c.tp,
            "missed": c.fn,
            "unlabelled_found": c.fp,
            "recall": round(c.recall, 4),
            "precision": round(c.precision, 4),
        }
        for kind, c in sorted(report.calls_by_kind.items(), key=lambda item: (item[0] != RULE_V1, item[0]))
    ]


def api_table(report: EvalReport, rules: Rules) -> list[dict]:
    rows = []
    for api in rules.apis:
        repo = report.repo_level.get(api, Counts())
        calls = report.calls_by_api.get(api, Counts())
        rows.append(
            {
                "api": api,
                "repo_tp": repo.tp,
                "repo_fp": repo.fp,
                "repo_fn": repo.fn,
                "repo_precision": round(repo.precision, 4),
                "repo_recall": round(repo.recall, 4),
                "call_tp": calls.tp,
                "call_fp": calls.fp,
                "call_fn": calls.fn,
                "call_precision": round(calls.precision, 4),
                "call_recall": round(calls.recall, 4),
            }
        )
    return rows
