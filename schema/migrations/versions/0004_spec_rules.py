"""Spec version 2: the rule each finding was made through, and usage summaries per spec version.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

`finding.rule` is `v1` or the spec version 2 kind; every finding stored before was made under
version 1, so existing rows get `v1`. `runusage` and `miningrun` get the same summaries
counting only version 1 findings (`*_v1`), which for rows stored before are the summaries
they already hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_USAGE_V1 = ("calls_v1", "client_calls_v1", "other_calls_v1", "used_v1")
MINING_RUN_V1 = ("client_calls_v1", "other_calls_v1")


def upgrade() -> None:
    # recreate="never": on SQLite each is a plain ALTER TABLE .. ADD COLUMN, never a copy of the
    # table (dropping the old copy would cascade-delete every run's rows, see 0002).
    with op.batch_alter_table("finding", recreate="never") as batch:
        batch.add_column(sa.Column("rule", sa.String(), server_default="v1", nullable=False))
    with op.batch_alter_table("runusage", recreate="never") as batch:
        for name in RUN_USAGE_V1:
            batch.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("miningrun", recreate="never") as batch:
        batch.add_column(sa.Column("apis_used_v1", sa.String(), server_default="", nullable=False))
        for name in MINING_RUN_V1:
            batch.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))

    runusage = sa.table("runusage", *(sa.column(name, sa.Integer()) for name in
                                      ("calls", "client_calls", "other_calls", "used", *RUN_USAGE_V1)))
    op.execute(runusage.update().values(
        calls_v1=runusage.c.calls, client_calls_v1=runusage.c.client_calls,
        other_calls_v1=runusage.c.other_calls, used_v1=runusage.c.used,
    ))
    miningrun = sa.table(
        "miningrun", sa.column("apis_used", sa.String()), sa.column("apis_used_v1", sa.String()),
        *(sa.column(name, sa.Integer()) for name in ("client_calls", "other_calls", *MINING_RUN_V1)),
    )
    op.execute(miningrun.update().values(
        apis_used_v1=miningrun.c.apis_used, client_calls_v1=miningrun.c.client_calls,
        other_calls_v1=miningrun.c.other_calls,
    ))


def downgrade() -> None:
    with op.batch_alter_table("miningrun", recreate="never") as batch:
        for name in ("apis_used_v1", *MINING_RUN_V1):
            batch.drop_column(name)
    with op.batch_alter_table("runusage", recreate="never") as batch:
        for name in RUN_USAGE_V1:
            batch.drop_column(name)
    with op.batch_alter_table("finding", recreate="never") as batch:
        batch.drop_column("rule")
