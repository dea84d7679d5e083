"""Which paths of a tree are sources, and how a raw tree path becomes text.

Shared knowledge, not analysis: the clone uses it to choose the blobs to fetch, the pipeline to
choose the files to read, so both judge a path by the very same rules.
"""

from __future__ import annotations

from typing import Literal

VENDORED_FOLDERS = frozenset({"site-packages", "dist-packages", "node_modules", ".git"})


def is_vendored(path: str) -> bool:
    """Paths inside site-packages, node_modules, ... are not the project's own code."""
    return any(part in VENDORED_FOLDERS for part in path.split("/")[:-1])


def source_kind(path: str) -> Literal["py", "ipynb"] | None:
    if path.endswith(".py"):
        return "py"
    if path.endswith(".ipynb"):
        return "ipynb"
    return None


def path_text(raw: bytes) -> str:
    """A tree path as text every store accepts: bytes that are not UTF-8 become `\\xNN` escapes
    (never lone surrogates, which PostgreSQL and UTF-8 encoders refuse)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")
