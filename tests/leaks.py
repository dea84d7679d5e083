"""Grep for a secret in everything a run left behind: files, a PostgreSQL dump."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url


def secret_forms(secret: str) -> list[bytes]:
    """The secret as it could be written: raw, URL-quoted, base64 (alone and as basic auth)."""
    raw = secret.encode()
    return [
        raw,
        quote(secret, safe="").encode(),
        base64.b64encode(raw),
        base64.b64encode(b"x-access-token:" + raw),
        base64.b64encode(raw + b":x-oauth-basic"),
    ]


def blobs_containing(secret: str, blobs: Iterable[tuple[str, bytes]]) -> list[str]:
    """Names of the (name, bytes) pairs that hold the secret in any of its forms."""
    forms = secret_forms(secret)
    return [name for name, data in blobs if any(form in data for form in forms)]


def files_under(root: Path) -> Iterable[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield str(path), path.read_bytes()


def postgres_dump(database_url: str) -> tuple[str, bytes]:
    """`pg_dump --data-only` of the database the URL names (any SQLAlchemy driver suffix dropped)."""
    url = make_url(database_url).set(drivername="postgresql")
    dump = subprocess.run(
        ["pg_dump", "--data-only", url.render_as_string(hide_password=False)], capture_output=True, check=True
    )
    return f"pg_dump of {url.database}", dump.stdout
