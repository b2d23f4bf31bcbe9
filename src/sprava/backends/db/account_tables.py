"""The account tables (migration 0004), on the same ``metadata`` as the vault's.

Accounts hold what logging in needs and nothing about the person behind them: a user
name, a role, an Argon2id password hash and a TOTP secret. There is no column for a
real name, an e-mail address, a phone number or anything else that would identify the
volunteer if the server were seized.

Session and API tokens are stored only as their SHA-256: a copy of the database does not
let anyone log in.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from sprava.backends.db.tables import UTCDateTime, metadata

ID = 36

account = Table(
    "account",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("reviewer", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("must_change_password", Boolean, nullable=False),
    Column("totp_secret", String(64), nullable=True),
    Column("totp_enabled", Boolean, nullable=False),
    Column("totp_last_step", BigInteger, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

account_session = Table(
    "account_session",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("account_id", String(ID), ForeignKey("account.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Index("ix_account_session_account_id", "account_id"),
)

api_token = Table(
    "api_token",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID), ForeignKey("account.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Index("ix_api_token_account_id", "account_id"),
)

login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
)
