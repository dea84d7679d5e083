"""Where a finding can be checked on GitHub: the file at the mined commit, at the line.

`{web_url}/{owner}/{name}/blob/{commit}/{path}#L{line}`, every path segment percent-quoted,
since stored paths may hold spaces, `#`, `?` or any unicode. A notebook is one JSON file whose
lines are not the cell's lines, so its link is the file alone and the page names the cell.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


def _segments(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


def repository_url(web_url: str, full_name: str) -> str:
    owner, _, name = full_name.partition("/")
    return f"{web_url.rstrip('/')}/{_segments(owner, name)}"


def commit_url(web_url: str, full_name: str, commit: str) -> str:
    """The repository's tree at `commit`."""
    return f"{repository_url(web_url, full_name)}/tree/{quote(commit, safe='')}"


def file_url(web_url: str, full_name: str, commit: str, path: str) -> str:
    """The file at `commit` (git paths are `/`-separated and never hold an empty segment)."""
    return f"{repository_url(web_url, full_name)}/blob/{_segments(commit, *path.split('/'))}"


def is_notebook(path: str, cell: int | None) -> bool:
    return cell is not None or path.endswith(".ipynb")


def finding_url(web_url: str, finding: dict[str, Any]) -> str | None:
    """The line of a `finding_rows` row at its commit; the file itself for a notebook."""
    if not finding.get("commit"):
        return None
    url = file_url(web_url, finding["repository"], finding["commit"], finding["path"])
    if is_notebook(finding["path"], finding.get("cell")):
        return url
    return f"{url}#L{finding['line']}"


def with_urls(web_url: str, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`finding_rows` rows, each with its `url`."""
    return [{**finding, "url": finding_url(web_url, finding)} for finding in findings]


def location(finding: dict[str, Any]) -> str:
    """`line 12`, or `cell 3, line 2` in a notebook (cell: its 0-based index, as stored)."""
    if finding.get("cell") is not None:
        return f"cell {finding['cell']}, line {finding['line']}"
    return f"line {finding['line']}"
