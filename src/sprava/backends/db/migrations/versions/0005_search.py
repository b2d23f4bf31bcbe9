"""Search: the full-text index of the catalogue and the vault.

Revision ID: 0005_search
Revises: 0004_accounts

Written out in full, like the revisions before it. The index starts empty and behind
(``search_state.ledger_size`` 0, ``version`` 0): the first search catches it up from the
ledger (see :mod:`sprava.search.indexer`), so that upgrading an instance with data in it
is quick and nothing here depends on how words are folded today.

The full-text part is dialect-specific: an FTS5 table with triggers that keep it in step
with ``search_doc`` on SQLite; generated ``tsvector`` columns with GIN indexes on
PostgreSQL. On both, triggers on ``analysis`` queue an item for indexing when its
metadata changes. Downgrading drops all of it; nothing else is touched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_search"
down_revision = "0004_accounts"
branch_labels = None
depends_on = None

# Only the "metadata" step of the analysis is indexed; the triggers below name it.
_SQLITE_UP = [
    # External content: the FTS table keeps only its index and reads search_doc.
    "CREATE VIRTUAL TABLE search_fts USING fts5(head, folded, facets, content='search_doc', "
    "content_rowid='id', tokenize='ascii', prefix='2 3 4', detail='column')",
    "CREATE TRIGGER search_doc_ai AFTER INSERT ON search_doc BEGIN "
    "INSERT INTO search_fts(rowid, head, folded, facets) "
    "VALUES (new.id, new.head, new.folded, new.facets); END",
    "CREATE TRIGGER search_doc_ad AFTER DELETE ON search_doc BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, head, folded, facets) "
    "VALUES ('delete', old.id, old.head, old.folded, old.facets); END",
    "CREATE TRIGGER search_doc_au AFTER UPDATE ON search_doc BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, head, folded, facets) "
    "VALUES ('delete', old.id, old.head, old.folded, old.facets); "
    "INSERT INTO search_fts(rowid, head, folded, facets) "
    "VALUES (new.id, new.head, new.folded, new.facets); END",
    "CREATE TRIGGER search_queue_analysis_ai AFTER INSERT ON analysis "
    "WHEN new.step = 'metadata' BEGIN "
    "INSERT INTO search_queue(kind, ref) VALUES ('item', new.item_sha256); END",
    "CREATE TRIGGER search_queue_analysis_au AFTER UPDATE ON analysis "
    "WHEN new.step = 'metadata' BEGIN "
    "INSERT INTO search_queue(kind, ref) VALUES ('item', new.item_sha256); END",
    "CREATE TRIGGER search_queue_analysis_ad AFTER DELETE ON analysis "
    "WHEN old.step = 'metadata' BEGIN "
    "INSERT INTO search_queue(kind, ref) VALUES ('item', old.item_sha256); END",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS search_queue_analysis_ad",
    "DROP TRIGGER IF EXISTS search_queue_analysis_au",
    "DROP TRIGGER IF EXISTS search_queue_analysis_ai",
    "DROP TRIGGER IF EXISTS search_doc_au",
    "DROP TRIGGER IF EXISTS search_doc_ad",
    "DROP TRIGGER IF EXISTS search_doc_ai",
    "DROP TABLE IF EXISTS search_fts",
]

_PG_UP = [
    # Two columns rather than weights: a GIN index does not hold weights, so a match
    # on the heading by weight would re-read every candidate row.
    "ALTER TABLE search_doc ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
    "to_tsvector('simple'::regconfig, head || ' ' || folded || ' ' || facets)) STORED",
    "ALTER TABLE search_doc ADD COLUMN tsv_head tsvector GENERATED ALWAYS AS ("
    "to_tsvector('simple'::regconfig, head)) STORED",
    "CREATE INDEX ix_search_doc_tsv ON search_doc USING gin (tsv)",
    "CREATE INDEX ix_search_doc_tsv_head ON search_doc USING gin (tsv_head)",
    "CREATE FUNCTION search_queue_analysis() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "IF TG_OP = 'DELETE' THEN IF OLD.step = 'metadata' THEN "
    "INSERT INTO search_queue(kind, ref) VALUES ('item', OLD.item_sha256); END IF; "
    "ELSIF NEW.step = 'metadata' THEN "
    "INSERT INTO search_queue(kind, ref) VALUES ('item', NEW.item_sha256); END IF; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER search_queue_analysis AFTER INSERT OR UPDATE OR DELETE ON analysis "
    "FOR EACH ROW EXECUTE FUNCTION search_queue_analysis()",
]
_PG_DOWN = [
    "DROP TRIGGER IF EXISTS search_queue_analysis ON analysis",
    "DROP FUNCTION IF EXISTS search_queue_analysis()",
    "DROP INDEX IF EXISTS ix_search_doc_tsv_head",
    "DROP INDEX IF EXISTS ix_search_doc_tsv",
]


def upgrade() -> None:
    op.create_table(
        "search_doc",
        # INTEGER PRIMARY KEY on SQLite (the rowid, which FTS5 reads), BIGINT on PostgreSQL
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(8), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("head", sa.Text, nullable=False),
        sa.Column("folded", sa.Text, nullable=False),
        sa.Column("facets", sa.Text, nullable=False),
        sa.Column("at_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("at_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("persons", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_search_doc"),
        sa.UniqueConstraint("kind", "ref", "audience", name="uq_search_doc_kind"),
    )
    op.create_index("ix_search_doc_time", "search_doc", ["id", "at_from", "at_to"])
    op.create_table(
        "search_state",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("ledger_size", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_search_state"),
    )
    op.create_table(
        "search_queue",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_search_queue"),
    )
    op.create_table(
        "search_term",
        sa.Column("key", sa.String(200).with_variant(sa.String(200, collation="C"),
                                                     "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_search_term"),
    )
    op.execute(sa.text("INSERT INTO search_state (id, ledger_size, version) VALUES (1, 0, 0)"))
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE_UP if dialect == "sqlite" else _PG_UP:
        op.execute(sa.text(statement))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE_DOWN if dialect == "sqlite" else _PG_DOWN:
        op.execute(sa.text(statement))
    op.drop_table("search_term")
    op.drop_table("search_queue")
    op.drop_table("search_state")
    op.drop_index("ix_search_doc_time", table_name="search_doc")
    op.drop_table("search_doc")
