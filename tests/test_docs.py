"""The documentation builds on its own, and the project's text points only inside the repository.

`mkdocs build --strict` fails on any warning: a broken link or anchor between pages, a page left
out of the navigation. It runs with every proxy variable pointing at a closed port, so a theme or
plugin that wanted to fetch something at build time would fail here rather than on a machine
without network.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ("index.md", "detection.md", "statistics.md", "evaluation.md", "operations.md", "architecture.md")

# What users of the project read or run: none of it may send them outside the repository.
PROJECT_TEXT = [ROOT / "README.md", ROOT / "mkdocs.yml", DOCS, ROOT / "miner", ROOT / "schema", ROOT / "workers"]
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".j2", ".toml", ".ini", ".mako", ".txt", ".sh"}
OUTSIDE = re.compile(r"(?<![\w-])shared/|\.\./")


def _project_files() -> list[Path]:
    files: list[Path] = []
    for root in PROJECT_TEXT:
        if root.is_file():
            files.append(root)
            continue
        files += sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts
        )
    return files


def test_mkdocs_builds_strictly_without_network(tmp_path: Path) -> None:
    closed = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    site = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for page in PAGES:
        built = site / ("index.html" if page == "index.md" else f"{page.removesuffix('.md')}/index.html")
        assert built.is_file(), f"{page} was not built"
        # nothing a reader's browser would fetch from elsewhere either (web fonts, CDN scripts)
        assert not re.search(r'<(?:script|link)[^>]*(?:src|href)="https?://', built.read_text("utf-8")), page


def test_every_reference_page_is_in_the_docs_folder() -> None:
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(PAGES)


def test_project_text_refers_to_no_path_outside_the_repository() -> None:
    files = _project_files()
    assert len(files) > 50, "the scan found the project's files"
    offending = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert offending == []


def test_the_readme_links_every_reference_page() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for page in PAGES[1:]:
        assert f"(docs/{page})" in readme, page
