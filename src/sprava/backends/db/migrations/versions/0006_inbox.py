"""The insider inbox: recipients, unlocked keys, submissions, posts, stored objects.

Revision ID: 0006_inbox
Revises: 0005_search

Written out in full, like the revisions before it. New tables only; downgrading drops
them (the ciphertext objects in the blob store's ``inbox/`` folder stay, unreadable
without the rows that name them and the recipients' keys).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_inbox"
down_revision = "0005_search"
branch_labels = None
depends_on = None

_ID = 36


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "inbox_recipient",
        sa.Column("account_id", sa.String(_ID), nullable=False),
        sa.Column("public_key", sa.String(100), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
        sa.Column("assigned_by", sa.String(200), nullable=False),
        _when("assigned_at"), _when("key_set_at", True),
        sa.PrimaryKeyConstraint("account_id", name="pk_inbox_recipient"),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name="fk_inbox_recipient_account_id_account"),
    )
    op.create_table(
        "inbox_unlock",
        sa.Column("credential_sha256", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary, nullable=False),
        _when("expires_at"),
        sa.PrimaryKeyConstraint("credential_sha256", name="pk_inbox_unlock"),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name="fk_inbox_unlock_account_id_account"),
    )
    op.create_index("ix_inbox_unlock_account_id", "inbox_unlock", ["account_id"])
    op.create_table(
        "inbox_submission",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("pseudonym", sa.String(100), nullable=False),
        sa.Column("lookup", sa.String(64), nullable=False),
        sa.Column("kdf", sa.String(64), nullable=False),
        sa.Column("reply_key", sa.String(100), nullable=False),
        sa.Column("created_day", sa.Date, nullable=False),
        sa.Column("insider_day", sa.Date, nullable=False),
        sa.Column("staff_day", sa.Date, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_submission"),
        sa.UniqueConstraint("pseudonym", name="uq_inbox_submission_pseudonym"),
        sa.UniqueConstraint("lookup", name="uq_inbox_submission_lookup"),
    )
    op.create_table(
        "inbox_post",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("submission_id", sa.String(_ID), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("author", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_post"),
        sa.UniqueConstraint("submission_id", "seq", name="uq_inbox_post_submission_id"),
        sa.ForeignKeyConstraint(["submission_id"], ["inbox_submission.id"],
                                name="fk_inbox_post_submission_id_inbox_submission"),
    )
    op.create_table(
        "inbox_object",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("post_id", sa.String(_ID), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("stored_size", sa.BigInteger, nullable=False),
        sa.Column("sealed_length", sa.LargeBinary, nullable=False),
        sa.Column("item_sha256", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_object"),
        sa.ForeignKeyConstraint(["post_id"], ["inbox_post.id"],
                                name="fk_inbox_object_post_id_inbox_post"),
        sa.ForeignKeyConstraint(["item_sha256"], ["item.sha256"],
                                name="fk_inbox_object_item_sha256_item"),
    )
    op.create_index("ix_inbox_object_post_id", "inbox_object", ["post_id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_object_post_id", table_name="inbox_object")
    op.drop_table("inbox_object")
    op.drop_table("inbox_post")
    op.drop_table("inbox_submission")
    op.drop_index("ix_inbox_unlock_account_id", table_name="inbox_unlock")
    op.drop_table("inbox_unlock")
    op.drop_table("inbox_recipient")
