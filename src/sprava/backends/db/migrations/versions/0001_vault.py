"""The evidence vault: items, their names and sources, and the custody ledger.

Revision ID: 0001_vault
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_vault"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_source"),
        sa.UniqueConstraint("name", name="uq_source_name"),
    )
    op.create_table(
        "item",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_item"),
    )
    op.create_table(
        "item_name",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("item_sha256", sa.String(64), nullable=False),
        sa.Column("name_raw", sa.LargeBinary, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("source_id", sa.Integer, nullable=True),
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_item_name"),
        sa.ForeignKeyConstraint(
            ["item_sha256"], ["item.sha256"], name="fk_item_name_item_sha256_item"
        ),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"], name="fk_item_name_source_id_source"),
    )
    op.create_index("ix_item_name_item_sha256", "item_name", ["item_sha256"])
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_head"),
    )
    op.create_table(
        "ledger_leaf",
        sa.Column("idx", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("item_sha256", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("idx", name="pk_ledger_leaf"),
    )
    op.create_index("ix_ledger_leaf_item_sha256", "ledger_leaf", ["item_sha256"])
    op.create_table(
        "ledger_node",
        sa.Column("pos", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("pos", name="pk_ledger_node"),
    )
    op.create_table(
        "ledger_checkpoint",
        sa.Column("size", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name="pk_ledger_checkpoint"),
    )
    op.execute(sa.text("INSERT INTO ledger_head (id, size) VALUES (1, 0)"))


def downgrade() -> None:
    for table in ("ledger_checkpoint", "ledger_node", "ledger_leaf", "ledger_head"):
        op.drop_table(table)
    op.drop_index("ix_item_name_item_sha256", table_name="item_name")
    for table in ("item_name", "item", "source"):
        op.drop_table(table)
