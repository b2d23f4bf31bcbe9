"""The database tables, declared once for SQLAlchemy Core and for Alembic.

The ledger tables are append-only by contract: nothing in Sprava issues an UPDATE or a
DELETE against ``ledger_leaf``, ``ledger_node`` or ``ledger_checkpoint``. ``ledger_head``
is the single row that serialises writers (it is locked for the duration of an append)
and caches the current size; ``sprava verify`` re-derives it from the leaves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """A time stored as UTC and always read back time-zone aware, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Sprava stores only time-zone aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

source = Table(
    "source",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

item = Table(
    "item",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),
    # When the picture or video was taken, as its own metadata says (EXIF
    # DateTimeOriginal, a container's creation time), in UTC; a time written without its
    # offset is read as UTC. Copied from the metadata analysis so that the evidence grid
    # can filter on it with an index; added by migration 0007.
    Column("captured_at", UTCDateTime(), nullable=True),
    Index("ix_item_captured_at", "captured_at"),
)

item_name = Table(
    "item_name",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_sha256", String(64), ForeignKey("item.sha256"), nullable=False),
    # The name exactly as the file system gave it, so that nothing is lost for names
    # that are not valid UTF-8; ``name`` is its display form with such bytes escaped.
    Column("name_raw", LargeBinary, nullable=False),
    Column("name", Text, nullable=False),
    Column("source_id", Integer, ForeignKey("source.id"), nullable=True),
    Column("leaf_index", BigInteger, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    # Who handed it in (the custody event's actor, copied here so that an uploader's
    # own items can be listed without reading leaves); added by migration 0004.
    Column("actor", String(200), nullable=True),
    Index("ix_item_name_item_sha256", "item_sha256"),
    Index("ix_item_name_actor", "actor"),
)

ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

ledger_leaf = Table(
    "ledger_leaf",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("item_sha256", String(64), nullable=True),
    Index("ix_ledger_leaf_item_sha256", "item_sha256"),
)

# A perfect subtree root; ``pos`` packs (level, index) as level << 56 | index.
ledger_node = Table(
    "ledger_node",
    metadata,
    Column("pos", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

ledger_checkpoint = Table(
    "ledger_checkpoint",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("note", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# --- media pipeline (0002) ---------------------------------------------------------------

# Background work, claimed by workers with a lease so that a killed worker's job is taken
# up again; ``key`` makes enqueueing the same work twice a no-op.
job = Table(
    "job",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("item_sha256", String(64), ForeignKey("item.sha256"), nullable=False),
    Column("params", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("worker", String(100), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_job_status", "status"),
)

# The outcome of one analysis step on one item: its result as JSON, or why it failed.
analysis = Table(
    "analysis",
    metadata,
    Column("item_sha256", String(64), ForeignKey("item.sha256"), primary_key=True),
    Column("step", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("result", Text, nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("tool", String(200), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Perceptual hashes; ``id`` is the key the near-duplicate index stores.
phash = Table(
    "phash",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_sha256", String(64), ForeignKey("item.sha256"), nullable=False),
    Column("frame_second", Float, nullable=True),
    # "full" for the picture or frame as it is; crop and trim variants match crops and
    # screenshots of it (see sprava.media.phash.pdq_image_variants).
    Column("variant", String(32), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("quality", Integer, nullable=False),
    Index("ix_phash_item_sha256", "item_sha256"),
)

# Near-duplicate clusters: every item whose hashes came close to another's shares a
# cluster, named by its earliest member.
item_cluster = Table(
    "item_cluster",
    metadata,
    Column("item_sha256", String(64), ForeignKey("item.sha256"), primary_key=True),
    Column("cluster", String(64), nullable=False),
    Index("ix_item_cluster_cluster", "cluster"),
)

# A derived item (redacted copy, thumbnail) names its original and how it was made.
derived_item = Table(
    "derived_item",
    metadata,
    Column("sha256", String(64), ForeignKey("item.sha256"), primary_key=True),
    Column("original_sha256", String(64), ForeignKey("item.sha256"), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("settings", Text, nullable=False),
    Column("leaf_index", BigInteger, nullable=False),
    Index("ix_derived_item_original_sha256", "original_sha256"),
)
