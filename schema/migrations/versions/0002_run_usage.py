"""Statistics without reading every finding: a per-run usage summary and a latest-run flag.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

`runusage` holds one row per (run, api) folded from the run's findings; `miningrun.latest`
(copied to `runusage.latest`) marks each repository's latest successful run. `store.save_run`
writes both in the run's transaction; this revision fills them for runs stored before it,
with the same folding and the same definition of latest (greatest finished_at, then id).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("miningrun") as batch:
        batch.add_column(
            sa.Column("latest", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.create_index("ix_miningrun_latest", ["latest", "repository_id"], unique=False)

    op.create_table(
        "runusage",
        sa.Column("mining_run_id", sa.Integer(), nullable=False),
        sa.Column("api", sa.String(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("client_calls", sa.Integer(), nullable=False),
        sa.Column("other_calls", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("latest", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mining_run_id"], ["miningrun.id"],
            name=op.f("fk_runusage_mining_run_id_miningrun"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mining_run_id", "api", name=op.f("pk_runusage")),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_runusage_latest_api", "runusage",
        ["latest", "api", "used", "calls", "client_calls", "other_calls"], unique=False,
    )

    miningrun = sa.table(
        "miningrun",
        sa.column("id", sa.Integer()),
        sa.column("repository_id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("finished_at", sa.DateTime(timezone=True)),
        sa.column("latest", sa.Boolean()),
    )
    newer = miningrun.alias("newer_run")
    newer_exists = sa.select(newer.c.id).where(
        newer.c.repository_id == miningrun.c.repository_id,
        newer.c.status == "ok",
        sa.or_(
            newer.c.finished_at > miningrun.c.finished_at,
            sa.and_(newer.c.finished_at == miningrun.c.finished_at, newer.c.id > miningrun.c.id),
        ),
    )
    latest_ids = sa.select(miningrun.c.id).where(miningrun.c.status == "ok", ~newer_exists.exists())
    op.execute(
        miningrun.update().where(miningrun.c.id.in_(latest_ids.subquery().select()))
        .values(latest=sa.true())
    )

    finding = sa.table(
        "finding",
        sa.column("mining_run_id", sa.Integer()),
        sa.column("api", sa.String()),
        sa.column("category", sa.String()),
        sa.column("via_client", sa.Boolean()),
        sa.column("disabling", sa.Boolean()),
    )
    runusage = sa.table(
        "runusage",
        *(sa.column(name, sa.Integer()) for name in
          ("mining_run_id", "calls", "client_calls", "other_calls", "used")),
        sa.column("api", sa.String()),
        sa.column("latest", sa.Boolean()),
    )
    folded = sa.select(
        finding.c.mining_run_id,
        finding.c.api,
        sa.func.count(),
        sa.func.sum(sa.case((finding.c.via_client.is_(True), 1), else_=0)),
        sa.func.sum(sa.case((finding.c.category == "other", 1), else_=0)),
        sa.func.max(sa.case((finding.c.disabling.is_(True), 0), else_=1)),
    ).group_by(finding.c.mining_run_id, finding.c.api)
    op.execute(
        runusage.insert().from_select(
            ["mining_run_id", "api", "calls", "client_calls", "other_calls", "used"], folded
        )
    )
    op.execute(
        runusage.update()
        .where(runusage.c.mining_run_id.in_(
            sa.select(miningrun.c.id).where(miningrun.c.latest.is_(True))
        ))
        .values(latest=sa.true())
    )


def downgrade() -> None:
    op.drop_table("runusage")
    with op.batch_alter_table("miningrun") as batch:
        batch.drop_index("ix_miningrun_latest")
        batch.drop_column("latest")
