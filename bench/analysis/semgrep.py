"""Semgrep with a rule set equivalent to ours, over `git archive` checkouts of the same commits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from bench.analysis.corpus import Repo
from bench.analysis.timing import timed

DEFAULT_SEMGREP = "/tmp/bench-semgrep-venv/bin/semgrep"


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
        return {
            "error": f"semgrep not found ({semgrep!r}); `pip install semgrep` (a venv at "
            f"{DEFAULT_SEMGREP} is what --semgrep defaults to)"
        }
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
                    [
                        "git",
                        "--literal-pathspecs",
                        "--git-dir",
                        str(repo.git_dir),
                        "archive",
                        "--format=tar",
                        repo.commit,
                        "--",
                        *paths,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
                subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
                archive.stdout.close()  # type: ignore[union-attr]
                archive.wait()
        figures["archive_seconds"] = round(t_archive.seconds, 4)
        (root / ".semgrepignore").write_text("")  # scan tests/, build/, ... too, as we do
        rule_file = tmp / "semgrep-rules.yaml"
        rule_file.write_text(semgrep_rules(rules))
        cmd = [
            semgrep,
            "scan",
            "--config",
            str(rule_file),
            "--metrics",
            "off",
            "--disable-version-check",
            "--no-git-ignore",
            "--jobs",
            "1",
            "--max-target-bytes",
            "0",
            "--timeout",
            "0",
            "--json",
            "--quiet",
            ".",
        ]
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
