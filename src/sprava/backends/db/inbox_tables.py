"""The insider inbox's tables (migration 0006), on the same ``metadata`` as the vault's.

What a copy of these tables shows: that submissions exist, under random pseudonyms; on
which *days* each side wrote (never a time of day); how many posts, files and replies
each has; the size of each stored object rounded up to its bucket. What it never shows:
a receipt code (only an Argon2id lookup identifier derived under a pepper kept outside
the database), a message, a file, a file name, an exact size (sealed under the server's
storage key), an IP address or a user agent. Recipients' private keys are here only
sealed under a key derived from their password; an unlocked key only sealed under a key
derived from a session secret the database never holds.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from sprava.backends.db.tables import UTCDateTime, metadata

ID = 36

inbox_recipient = Table(
    "inbox_recipient",
    metadata,
    Column("account_id", String(ID), ForeignKey("account.id"), primary_key=True),
    # age1… public key; None until the recipient sets up a key
    Column("public_key", String(100), nullable=True),
    # the private key sealed under Argon2id(password); None for a key held offline only
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("assigned_by", String(200), nullable=False),
    Column("assigned_at", UTCDateTime(), nullable=False),
    Column("key_set_at", UTCDateTime(), nullable=True),
)

inbox_unlock = Table(
    "inbox_unlock",
    metadata,
    Column("credential_sha256", String(64), primary_key=True),
    Column("account_id", String(ID), ForeignKey("account.id"), nullable=False),
    Column("sealed_key", LargeBinary, nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_inbox_unlock_account_id", "account_id"),
)

inbox_submission = Table(
    "inbox_submission",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("pseudonym", String(100), nullable=False, unique=True),
    Column("lookup", String(64), nullable=False, unique=True),
    Column("kdf", String(64), nullable=False),
    Column("reply_key", String(100), nullable=False),
    Column("created_day", Date, nullable=False),
    Column("insider_day", Date, nullable=False),
    Column("staff_day", Date, nullable=True),
)

inbox_post = Table(
    "inbox_post",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("submission_id", String(ID), ForeignKey("inbox_submission.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("author", String(16), nullable=False),  # "insider" or "staff"
    Column("actor", String(200), nullable=True),  # the staff member who replied
    Column("day", Date, nullable=False),
    UniqueConstraint("submission_id", "seq", name="uq_inbox_post_submission_id"),
)

inbox_object = Table(
    "inbox_object",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("post_id", String(ID), ForeignKey("inbox_post.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # manifest, message, file or reply
    Column("position", Integer, nullable=False),
    Column("stored_size", BigInteger, nullable=False),
    Column("sealed_length", LargeBinary, nullable=False),
    Column("item_sha256", String(64), ForeignKey("item.sha256"), nullable=True),
    Index("ix_inbox_object_post_id", "post_id"),
)
