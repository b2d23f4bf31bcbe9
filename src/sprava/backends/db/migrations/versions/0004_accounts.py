"""Accounts, sessions, API tokens, login throttling; who handed in each item.

Revision ID: 0004_accounts
Revises: 0003_catalogue

``item_name.actor`` is filled for the names already held from their custody events (the
leaf each row names), so that "an uploader sees only their own uploads" holds for items
ingested before this revision too. Downgrading drops the accounts (their custody events
stay in the ledger) and the column.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004_accounts"
down_revision = "0003_catalogue"
branch_labels = None
depends_on = None

_ID = 36
_BATCH = 1000


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("reviewer", sa.Boolean, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("must_change_password", sa.Boolean, nullable=False),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("totp_enabled", sa.Boolean, nullable=False),
        sa.Column("totp_last_step", sa.BigInteger, nullable=True),
        _when("created_at"), _when("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_account"),
        sa.UniqueConstraint("username", name="uq_account_username"),
    )
    op.create_table(
        "account_session",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        _when("created_at"), _when("expires_at"), _when("last_seen_at"),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_account_session"),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name="fk_account_session_account_id_account"),
    )
    op.create_index("ix_account_session_account_id", "account_session", ["account_id"])
    op.create_table(
        "api_token",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        _when("created_at"), _when("expires_at", True), _when("revoked_at", True),
        _when("last_used_at", True),
        sa.PrimaryKeyConstraint("id", name="pk_api_token"),
        sa.UniqueConstraint("token_sha256", name="uq_api_token_token_sha256"),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name="fk_api_token_account_id_account"),
    )
    op.create_index("ix_api_token_account_id", "api_token", ["account_id"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        _when("window_start"), _when("locked_until", True),
        sa.PrimaryKeyConstraint("key", name="pk_login_throttle"),
    )
    with op.batch_alter_table("item_name") as batch:
        batch.add_column(sa.Column("actor", sa.String(200), nullable=True))
    op.create_index("ix_item_name_actor", "item_name", ["actor"])
    _fill_actors()


def _fill_actors() -> None:
    """Copy each name's actor from the custody event it names, a batch at a time."""
    conn = op.get_bind()
    names = sa.table("item_name", sa.column("id", sa.Integer), sa.column("leaf_index"),
                     sa.column("actor"))
    leaves = sa.table("ledger_leaf", sa.column("idx"), sa.column("data"))
    after = 0
    while True:
        rows = conn.execute(
            sa.select(names.c.id, leaves.c.data)
            .select_from(names.join(leaves, leaves.c.idx == names.c.leaf_index))
            .where(names.c.id > after).order_by(names.c.id).limit(_BATCH)).all()
        if not rows:
            return
        for row_id, data in rows:
            try:
                actor = json.loads(bytes(data)).get("actor")
            except (ValueError, UnicodeDecodeError, AttributeError):
                actor = None  # `sprava verify` reports a leaf that does not parse
            if isinstance(actor, str):
                conn.execute(sa.update(names).where(names.c.id == row_id)
                             .values(actor=actor[:200]))
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_item_name_actor", table_name="item_name")
    with op.batch_alter_table("item_name") as batch:
        batch.drop_column("actor")
    op.drop_table("login_throttle")
    op.drop_index("ix_api_token_account_id", table_name="api_token")
    op.drop_table("api_token")
    op.drop_index("ix_account_session_account_id", table_name="account_session")
    op.drop_table("account_session")
    op.drop_table("account")
