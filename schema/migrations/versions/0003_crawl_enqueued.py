"""Which repositories a crawl handed out, so a stalled crawl can name those still in flight.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

`crawl.enqueued_ids` lists the repository ids a crawl enqueued (largest first, as handed out);
a repository of that list with no run stored in the crawl is in flight. Crawls recorded before
this revision have an empty list: their in-flight repositories are unknown.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (see 0002: never a batch copy of a table that others reference).
    op.add_column("crawl", sa.Column("enqueued_ids", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35): a batch copy of `crawl` would set the references
    # of runs and repositories to it to NULL on the way.
    op.drop_column("crawl", "enqueued_ids")
