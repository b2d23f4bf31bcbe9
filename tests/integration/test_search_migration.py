"""Migration 0005 on each real database: the full-text objects of each dialect come and go
with it, with data in the vault and the index, and the index built again afterwards
finds what it found before."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, func, insert, inspect, select, text

from sprava.backends.db.engine import migrate, read_transaction, schema_revision, write_transaction
from sprava.backends.db.search_tables import search_doc, search_queue
from sprava.backends.db.tables import analysis
from sprava.catalogue import incidents
from sprava.instance import Instance
from sprava.search import SearchScope, search
from sprava.store.ingest import Ingestor

SCOPE = SearchScope(persons=False, items="all")
TRIGGERS_SQLITE = {"search_doc_ai", "search_doc_ad", "search_doc_au",
                   "search_queue_analysis_ai", "search_queue_analysis_au",
                   "search_queue_analysis_ad"}


def _objects(conn: Connection) -> dict[str, set[str]]:
    """The search objects that only the migration makes (not in the model)."""
    if conn.dialect.name == "sqlite":
        rows = conn.execute(text("SELECT type, name FROM sqlite_master WHERE name LIKE 'search%'"))
        found: dict[str, set[str]] = {}
        for kind, name in rows:
            found.setdefault(kind, set()).add(name)
        return {"trigger": found.get("trigger", set()),
                "fts": {n for n in found.get("table", set()) if n.startswith("search_fts")}}
    triggers = set(conn.execute(text(
        "SELECT trigger_name FROM information_schema.triggers "
        "WHERE trigger_name LIKE 'search%'")).scalars())
    functions = set(conn.execute(text(
        "SELECT proname FROM pg_proc WHERE proname LIKE 'search%'")).scalars())
    indexes = set(conn.execute(text(
        "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_search_doc_tsv%'")).scalars())
    columns = set(conn.execute(text(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'search_doc' AND column_name LIKE 'tsv%'")).scalars())
    return {"trigger": triggers, "fts": functions | indexes | columns}


def _search_tables(conn: Connection) -> set[str]:
    return {n for n in inspect(conn).get_table_names() if n.startswith("search")}


def test_down_and_up_again_with_data(instance: Instance, tmp_path: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "Hrodna_march.jpg").write_bytes(b"x" * 200)
    ingestor = Ingestor(instance, actor="user:anna")
    ingestor.run(ingestor.plan([os.fsencode(folder)]))
    inc = incidents.create_incident(instance, {
        "title": "Марш у Гродне", "start": "2020-08-23T12:00:00Z",
        "place": {"name": "Гродна"}}, actor="local:anna")
    before = [(h.kind, h.id) for h in search(instance, "Grodno", scope=SCOPE).items]
    assert ("incident", inc.id) in before
    assert len(before) == 2

    with read_transaction(instance.engine) as conn:
        made = _objects(conn)
        assert _search_tables(conn) >= {"search_doc", "search_state", "search_queue",
                                        "search_term"}
    if instance.engine.dialect.name == "sqlite":
        assert made["trigger"] == TRIGGERS_SQLITE
        assert made["fts"] >= {"search_fts", "search_fts_data", "search_fts_idx"}
    else:
        assert made == {"trigger": {"search_queue_analysis"},
                        "fts": {"search_queue_analysis", "ix_search_doc_tsv",
                                "ix_search_doc_tsv_head", "tsv", "tsv_head"}}

    migrate(instance.engine, "0004_accounts")
    assert schema_revision(instance.engine) == "0004_accounts"
    with read_transaction(instance.engine) as conn:
        assert _search_tables(conn) == set()
        assert _objects(conn) == {"trigger": set(), "fts": set()}
        # the vault and the catalogue are untouched
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM item")).scalar_one() == 1

    migrate(instance.engine, "head")
    with read_transaction(instance.engine) as conn:
        assert conn.execute(select(func.count()).select_from(search_doc)).scalar_one() == 0
    after = [(h.kind, h.id) for h in search(instance, "Grodno", scope=SCOPE).items]
    assert after == before


def test_only_metadata_analysis_queues_an_item(instance: Instance, tmp_path: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"y" * 200)
    ingestor = Ingestor(instance)
    found: list[str] = []
    ingestor.run(ingestor.plan([os.fsencode(folder)]), lambda r: found.append(r.sha256 or ""))
    now = datetime.now(UTC)
    with write_transaction(instance.engine) as conn:
        for step in ("phash", "thumbnail", "metadata"):
            conn.execute(insert(analysis).values(
                item_sha256=found[0], step=step, status="done", tool="test",
                result=json.dumps({"fields": {}}), updated_at=now))
    with read_transaction(instance.engine) as conn:
        queued = conn.execute(select(search_queue.c.kind, search_queue.c.ref)).all()
    assert [tuple(r) for r in queued] == [("item", found[0])]
