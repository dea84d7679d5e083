"""Statistics without reading every finding: per-run usage rows, profiles and a latest flag.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

`runusage` holds one row per (run, api) folded from the run's findings. On `miningrun`,
`latest` marks each repository's latest successful run (copied to `runusage.latest`), and
`apis_used`, `client_calls`, `other_calls` are the run's usage profile. `store.save_run`
writes all of it in the run's transaction; this revision fills it for runs stored before,
with the same folding and the same definition of latest (greatest finished_at, then id).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROFILE_COLUMNS = ("latest", "apis_used", "client_calls", "other_calls")


def upgrade() -> None:
    # Plain ALTER TABLE .. ADD COLUMN, never a batch copy of the table: on SQLite with foreign
    # keys on, dropping the old copy would cascade-delete every run's findings.
    op.add_column("miningrun", sa.Column("latest", sa.Boolean(), server_default=sa.false(),
                                         nullable=False))
    op.add_column("miningrun", sa.Column("apis_used", sa.String(), server_default="",
                                         nullable=False))
    op.add_column("miningrun", sa.Column("client_calls", sa.Integer(), server_default="0",
                                         nullable=False))
    op.add_column("miningrun", sa.Column("other_calls", sa.Integer(), server_default="0",
                                         nullable=False))
    op.create_index(
        "ix_miningrun_latest_profile", "miningrun",
        ["latest", "apis_used", "client_calls", "other_calls", "repository_id"], unique=False,
    )

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
    _backfill()


def _backfill() -> None:
    """Fold the findings of the runs already stored, as `store.save_run` does for new ones."""
    miningrun = sa.table(
        "miningrun",
        sa.column("id", sa.Integer()),
        sa.column("repository_id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("finished_at", sa.DateTime(timezone=True)),
        sa.column("latest", sa.Boolean()),
        sa.column("apis_used", sa.String()),
        sa.column("client_calls", sa.Integer()),
        sa.column("other_calls", sa.Integer()),
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
    op.execute(
        runusage.update()
        .where(runusage.c.mining_run_id.in_(
            sa.select(miningrun.c.id).where(miningrun.c.latest.is_(True))
        ))
        .values(latest=sa.true())
    )

    def run_total(column: sa.ColumnClause) -> sa.ScalarSelect:
        return (
            sa.select(sa.func.coalesce(sa.func.sum(column), 0))
            .where(runusage.c.mining_run_id == miningrun.c.id)
            .scalar_subquery()
        )

    op.execute(miningrun.update().values(client_calls=run_total(runusage.c.client_calls),
                                         other_calls=run_total(runusage.c.other_calls)))
    # apis_used: sorted and comma-joined, the same text on every database, so built here
    connection = op.get_bind()
    used = connection.execute(
        sa.select(runusage.c.mining_run_id, runusage.c.api)
        .where(runusage.c.used == 1)
        .order_by(runusage.c.mining_run_id, runusage.c.api)
    ).all()
    update = (
        miningrun.update()
        .where(miningrun.c.id == sa.bindparam("run_id"))
        .values(apis_used=sa.bindparam("apis"))
    )
    batch: list[dict[str, object]] = []
    for run_id, rows in groupby(used, key=lambda row: row[0]):
        batch.append({"run_id": run_id, "apis": ",".join(row[1] for row in rows)})
        if len(batch) >= 10_000:
            connection.execute(update, batch)
            batch = []
    if batch:
        connection.execute(update, batch)


def downgrade() -> None:
    op.drop_table("runusage")
    op.drop_index("ix_miningrun_latest_profile", table_name="miningrun")
    # Plain ALTER TABLE .. DROP COLUMN (SQLite >= 3.35), not a batch copy: see upgrade().
    for column in PROFILE_COLUMNS:
        op.drop_column("miningrun", column)
