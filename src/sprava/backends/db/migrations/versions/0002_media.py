"""Media pipeline: jobs, analysis results, perceptual hashes, clusters, derived items.

Revision ID: 0002_media
Revises: 0001_vault
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_media"
down_revision = "0001_vault"
branch_labels = None
depends_on = None


def _fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["item.sha256"], name=f"fk_{table}_{column}_item")


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("item_sha256", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(100), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job"),
        sa.UniqueConstraint("key", name="uq_job_key"),
        _fk("job", "item_sha256"),
    )
    op.create_index("ix_job_status", "job", ["status"])
    op.create_table(
        "analysis",
        sa.Column("item_sha256", sa.String(64), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_sha256", "step", name="pk_analysis"),
        _fk("analysis", "item_sha256"),
    )
    op.create_table(
        "phash",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("item_sha256", sa.String(64), nullable=False),
        sa.Column("frame_second", sa.Float, nullable=True),
        sa.Column("variant", sa.String(32), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("quality", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_phash"),
        _fk("phash", "item_sha256"),
    )
    op.create_index("ix_phash_item_sha256", "phash", ["item_sha256"])
    op.create_table(
        "item_cluster",
        sa.Column("item_sha256", sa.String(64), nullable=False),
        sa.Column("cluster", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("item_sha256", name="pk_item_cluster"),
        _fk("item_cluster", "item_sha256"),
    )
    op.create_index("ix_item_cluster_cluster", "item_cluster", ["cluster"])
    op.create_table(
        "derived_item",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("original_sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("sha256", "original_sha256", "kind", name="pk_derived_item"),
        _fk("derived_item", "sha256"),
        _fk("derived_item", "original_sha256"),
    )
    op.create_index("ix_derived_item_original_sha256", "derived_item", ["original_sha256"])


def downgrade() -> None:
    op.drop_index("ix_derived_item_original_sha256", table_name="derived_item")
    op.drop_table("derived_item")
    op.drop_index("ix_item_cluster_cluster", table_name="item_cluster")
    op.drop_table("item_cluster")
    op.drop_index("ix_phash_item_sha256", table_name="phash")
    op.drop_table("phash")
    op.drop_table("analysis")
    op.drop_index("ix_job_status", table_name="job")
    op.drop_table("job")
