"""Migration 0007 on each real database: items analysed before it learn when they were
taken from their stored metadata; down drops the column and keeps the metadata; up
again fills it the same way."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import insert, inspect, select

from sprava.backends.db.engine import (
    head_revision,
    migrate,
    read_transaction,
    schema_revision,
    write_transaction,
)
from sprava.backends.db.tables import analysis, item
from sprava.instance import Instance
from sprava.store.ingest import Ingestor

# (file content, the metadata step's status and result as the pipeline stores them)
_ITEMS: dict[str, tuple[str, object]] = {
    "with-offset": ("done", {"fields": {"captured_at": "2020-08-09T23:30:00+03:00",
                                        "captured_at_offset_known": True}}),
    "no-offset": ("done", {"fields": {"captured_at": "2020-08-11T10:00:00.25",
                                      "captured_at_offset_known": False}}),
    "no-time": ("done", {"fields": {"width": 64, "height": 48}}),
    "unreadable-time": ("done", {"fields": {"captured_at": "10 August 2020"}}),
    "failed": ("failed", None),
}
_EXPECTED = {
    "with-offset": datetime(2020, 8, 9, 20, 30, tzinfo=UTC),
    "no-offset": datetime(2020, 8, 11, 10, 0, 0, 250000, tzinfo=UTC),
    "no-time": None, "unreadable-time": None, "failed": None, "not-analysed": None,
}


def _held(instance: Instance) -> dict[str, str]:
    """Ingest one file per case and store its metadata step as the pipeline would."""
    shas: dict[str, str] = {}
    ingestor = Ingestor(instance, actor="user:anna")
    for name in [*_ITEMS, "not-analysed"]:
        result = ingestor.ingest_chunks(f"{name}.bin".encode(), iter([name.encode() * 50]))
        assert result.sha256 is not None
        shas[name] = result.sha256
    with write_transaction(instance.engine) as conn:
        for name, (status, found) in _ITEMS.items():
            conn.execute(insert(analysis).values(
                item_sha256=shas[name], step="metadata", status=status,
                result=None if found is None else json.dumps(found),
                error_code="corrupt-media" if status == "failed" else None,
                tool="test", updated_at=datetime.now(UTC)))
    return shas


def _captured(instance: Instance, shas: dict[str, str]) -> dict[str, datetime | None]:
    by_sha = {sha: name for name, sha in shas.items()}
    with read_transaction(instance.engine) as conn:
        rows = conn.execute(select(item.c.sha256, item.c.captured_at)).all()
    return {by_sha[sha]: when for sha, when in rows}


def test_up_fills_the_capture_time_from_stored_metadata_and_down_keeps_the_metadata(
        instance: Instance) -> None:
    shas = _held(instance)
    assert set(_captured(instance, shas).values()) == {None}  # written past the pipeline

    migrate(instance.engine, "0006_inbox")
    assert schema_revision(instance.engine) == "0006_inbox"
    with read_transaction(instance.engine) as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("item")}
        indexes = {i["name"] for i in inspect(conn).get_indexes("item")}
        stored = conn.execute(select(analysis.c.item_sha256).where(
            analysis.c.step == "metadata")).scalars().all()
    assert "captured_at" not in columns
    assert "ix_item_captured_at" not in indexes
    assert sorted(stored) == sorted(shas[n] for n in _ITEMS)  # the metadata stays

    migrate(instance.engine, "head")
    assert schema_revision(instance.engine) == head_revision()
    assert _captured(instance, shas) == _EXPECTED
    with read_transaction(instance.engine) as conn:
        assert "ix_item_captured_at" in {i["name"] for i in inspect(conn).get_indexes("item")}
        # the column is usable by the grid's filter on each database
        found = conn.execute(select(item.c.sha256).where(
            item.c.captured_at >= datetime(2020, 8, 10, tzinfo=UTC))).scalars().all()
    assert found == [shas["no-offset"]]
