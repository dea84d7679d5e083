"""Initial tables: repository, crawl, miningrun, fileresult, finding.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written by hand from `schema.models` with plain SQLAlchemy types (a revision must not import
model code that later changes); `tests/test_migrations.py` proves it matches the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUM = sa.String(length=32)          # str Enums as VARCHAR, not native enum types
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "crawl",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("query", sa.String(), nullable=True),
        sa.Column("slices", sa.JSON(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("repos_found", sa.Integer(), nullable=False),
        sa.Column("repos_enqueued", sa.Integer(), nullable=False),
        sa.Column("repos_skipped_unchanged", sa.Integer(), nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl")),
    )

    op.create_table(
        "repository",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.String(), nullable=False),
        sa.Column("clone_url", sa.String(), nullable=True),
        sa.Column("default_branch", sa.String(), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("stars", sa.Integer(), nullable=True),
        sa.Column("forks", sa.Integer(), nullable=True),
        sa.Column("size_kb", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=True),
        sa.Column("pushed_at", TIMESTAMP, nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("fork", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", TIMESTAMP, nullable=False),
        sa.Column("last_mined_sha", sa.String(), nullable=True),
        sa.Column("last_mined_at", TIMESTAMP, nullable=True),
        sa.Column("last_seen_crawl_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["last_seen_crawl_id"], ["crawl.id"],
            name=op.f("fk_repository_last_seen_crawl_id_crawl"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository")),
    )
    op.create_index(op.f("ix_repository_full_name"), "repository", ["full_name"], unique=True)

    op.create_table(
        "miningrun",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("crawl_id", sa.Integer(), nullable=True),
        sa.Column("commit_sha", sa.String(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("files_seen", sa.Integer(), nullable=False),
        sa.Column("files_analysed", sa.Integer(), nullable=False),
        sa.Column("files_unparsable", sa.Integer(), nullable=False),
        sa.Column("files_skipped", sa.Integer(), nullable=False),
        sa.Column("bytes_analysed", sa.BigInteger(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("rules_version", sa.String(), nullable=False),
        sa.Column("tool_version", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["crawl_id"], ["crawl.id"],
            name=op.f("fk_miningrun_crawl_id_crawl"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"], ["repository.id"],
            name=op.f("fk_miningrun_repository_id_repository"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miningrun")),
        sa.UniqueConstraint(
            "repository_id", "commit_sha", name=op.f("uq_miningrun_repository_id_commit_sha")
        ),
    )
    op.create_index(op.f("ix_miningrun_crawl_id"), "miningrun", ["crawl_id"], unique=False)
    op.create_index(
        "ix_miningrun_repository_status_finished", "miningrun",
        ["repository_id", "status", "finished_at"], unique=False,
    )

    op.create_table(
        "fileresult",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mining_run_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("kind", ENUM, nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("parsed", sa.Boolean(), nullable=False),
        sa.Column("unparsable_cells", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mining_run_id"], ["miningrun.id"],
            name=op.f("fk_fileresult_mining_run_id_miningrun"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fileresult")),
    )
    op.create_index(
        op.f("ix_fileresult_mining_run_id"), "fileresult", ["mining_run_id"], unique=False
    )

    op.create_table(
        "finding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mining_run_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("column", sa.Integer(), nullable=False),
        sa.Column("cell", sa.Integer(), nullable=True),
        sa.Column("api", sa.String(), nullable=False),
        sa.Column("category", ENUM, nullable=False),
        sa.Column("qualified_name", sa.String(), nullable=False),
        sa.Column("flavor", sa.String(), nullable=True),
        sa.Column("disabling", sa.Boolean(), nullable=False),
        sa.Column("via_client", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mining_run_id"], ["miningrun.id"],
            name=op.f("fk_finding_mining_run_id_miningrun"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finding")),
    )
    op.create_index(op.f("ix_finding_api"), "finding", ["api"], unique=False)
    op.create_index(op.f("ix_finding_category"), "finding", ["category"], unique=False)
    op.create_index(op.f("ix_finding_qualified_name"), "finding", ["qualified_name"], unique=False)
    op.create_index(
        "ix_finding_run_usage", "finding",
        ["mining_run_id", "api", "category", "via_client", "disabling"], unique=False,
    )


def downgrade() -> None:
    op.drop_table("finding")
    op.drop_table("fileresult")
    op.drop_table("miningrun")
    op.drop_table("repository")
    op.drop_table("crawl")
