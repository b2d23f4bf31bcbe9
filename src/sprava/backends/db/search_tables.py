"""The search index tables (migration 0005), on the same ``metadata`` as the vault's.

The index is a cache: everything in it is rebuilt from the catalogue and the vault by
:mod:`sprava.search.indexer`, and dropping it loses nothing. One row of ``search_doc`` is
one searchable record (an incident, an act, a unit, a person, a claim, or an item as one
audience may see it) with the folded keys of its text (``folded``, see
:mod:`sprava.search.text`), its filter tokens (``facets``), what a hit shows (``title``,
``body``) and the columns the filters compare.

The full-text part differs by database and is not in this model, only in the migration:

* SQLite: the FTS5 table ``search_fts`` over ``head``, ``folded`` and ``facets``
  (external content: it reads ``search_doc``), kept in step by triggers on ``search_doc``;
* PostgreSQL: the generated ``tsvector`` columns (``'simple'`` configuration)
  ``search_doc.tsv`` (every key and token) and ``search_doc.tsv_head`` (the heading's
  keys), each with a GIN index (``ix_search_doc_tsv``, ``ix_search_doc_tsv_head``).

:func:`is_dialect_object` names those, so that a comparison of this model with a live
database can leave them out. Triggers on ``analysis`` (both databases) note in
``search_queue`` every item whose metadata changed, since analysis is not a ledger event.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from sprava.backends.db.tables import UTCDateTime, metadata

search_doc = Table(
    "search_doc",
    metadata,
    # Not a counter: the id orders the rows by kind, then by ``ref`` (see
    # sprava.search.documents.doc_id), so that the index can hand out hits in that order.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("kind", String(16), nullable=False),  # incident, act, unit, person, claim, item
    Column("ref", String(64), nullable=False),  # the entity's id or the item's SHA-256
    # Who the row is for: "full" (the record as it is), "redacted" (a redacted copy as a
    # reader of redacted copies may see it: no names, no metadata).
    Column("audience", String(8), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("head", Text, nullable=False),  # folded keys of the heading (title, names)
    Column("folded", Text, nullable=False),  # folded keys of the rest of the text
    Column("facets", Text, nullable=False),  # filter and scope tokens
    Column("at_from", UTCDateTime(), nullable=True),
    Column("at_to", UTCDateTime(), nullable=True),
    Column("persons", Text, nullable=True),  # ids of the persons the row shows
    UniqueConstraint("kind", "ref", "audience", name="uq_search_doc_kind"),
    # A narrow copy of the times by id, so that comparing the time range of candidates
    # found by the index does not read their whole rows.
    Index("ix_search_doc_time", "id", "at_from", "at_to"),
)

# One row: how far the index has caught up with the ledger, and with which folding.
search_state = Table(
    "search_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("ledger_size", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=True),
)

# Records to index again that no ledger event announces (an item's metadata, written by
# the analysis jobs); filled by triggers on ``analysis``, emptied by the indexer.
search_queue = Table(
    "search_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("ref", String(64), nullable=False),
)

# Every key the index has held (never removed: a key no record holds any more matches
# nothing). A prefix is looked up here and searched for as the few keys it stands for,
# which the index answers faster than a prefix.
search_term = Table(
    "search_term",
    metadata,
    # Compared byte by byte (collation "C" on PostgreSQL), so that a prefix is a range.
    Column("key", String(200).with_variant(String(200, collation="C"), "postgresql"),
           primary_key=True),
)

SEARCH_TABLES = (search_doc, search_state, search_queue, search_term)

FTS_TABLE = "search_fts"
_FTS_SHADOWS = ("_data", "_idx", "_content", "_docsize", "_config")
PG_COLUMN = "tsv"
PG_HEAD_COLUMN = "tsv_head"
PG_INDEXES = ("ix_search_doc_tsv", "ix_search_doc_tsv_head")


def is_dialect_object(name: str | None, type_: str) -> bool:
    """Whether a database object is the dialect-specific full-text part of the index
    (not in the model by design): the FTS5 table and its shadow tables, or the tsvector
    columns and their indexes."""
    if name is None:
        return False
    if type_ == "table":
        return name == FTS_TABLE or name in {FTS_TABLE + s for s in _FTS_SHADOWS}
    if type_ == "column":
        return name in (PG_COLUMN, PG_HEAD_COLUMN)
    if type_ == "index":
        return name in PG_INDEXES
    return False
