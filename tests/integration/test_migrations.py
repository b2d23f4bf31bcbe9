"""Schema migrations on each real database: up, down with data in it, up again, and a
model that says exactly what the migrations build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from sprava.audit import verify_instance
from sprava.backends.db.engine import head_revision, make_engine, migrate, schema_revision
from sprava.backends.db.tables import item, ledger_head, ledger_leaf, metadata
from sprava.errors import ConfigurationError
from sprava.instance import Instance, init_instance, open_instance
from sprava.settings import Settings, load_settings
from sprava.store.ingest import Ingestor

TABLES = {"source", "item", "item_name", "ledger_head", "ledger_leaf", "ledger_node",
          "ledger_checkpoint"}


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(tmp_path / "instance", {"database_url": database_url}, environ={})


def _init(settings: Settings, database_url: str) -> Instance:
    inst, created = init_instance(settings, origin="test.sprava.local/migrations",
                                  explicit={"database_url": database_url})
    assert created
    return inst


def _ingest(inst: Instance, folder: Path) -> None:
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a" * 3000)
    (folder / "b.bin").write_bytes(b"b" * 5)
    (folder / "c.bin").write_bytes(b"a" * 3000)
    ingestor = Ingestor(inst, source_name="migrations")
    summary = ingestor.run(ingestor.plan([os.fsencode(folder)]))
    assert (summary.stored, summary.already_held, summary.failed) == (2, 1, 0)


def test_down_to_base_with_data_and_up_again(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    try:
        assert schema_revision(engine) is None
        assert _tables(engine) == set()
        migrate(engine, "head")
        assert schema_revision(engine) == head_revision()
        assert _tables(engine) == TABLES

        inst = _init(_settings(tmp_path, database_url), database_url)
        try:
            _ingest(inst, tmp_path / "media")
            report = verify_instance(inst)
            assert report.ok, report.findings
            assert (report.items, report.leaves, report.checkpoints) == (2, 3, 1)
        finally:
            inst.close()

        migrate(engine, "base")
        assert _tables(engine) == set()
        assert schema_revision(engine) is None

        migrate(engine, "head")
        assert schema_revision(engine) == head_revision()
        assert _tables(engine) == TABLES
        with engine.connect() as conn:  # a fresh, empty vault again
            assert conn.execute(select(ledger_head.c.id, ledger_head.c.size)).all() == [(1, 0)]
            assert conn.execute(select(item.c.sha256)).all() == []
            assert conn.execute(select(ledger_leaf.c.idx)).all() == []
    finally:
        engine.dispose()


def test_migrate_to_head_twice_is_harmless(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        migrate(engine)
        assert schema_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert conn.execute(select(ledger_head.c.size)).scalars().all() == [0]
    finally:
        engine.dispose()


def test_open_instance_at_base_is_refused(database_url: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path, database_url)
    _init(settings, database_url).close()
    open_instance(settings).close()  # usable at head
    engine = make_engine(database_url)
    try:
        migrate(engine, "base")
    finally:
        engine.dispose()
    with pytest.raises(ConfigurationError, match="schema is at nothing") as caught:
        open_instance(settings)
    assert caught.value.code == "schema-outdated"


def test_model_matches_the_migrations(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine, "head")
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True})
            differences = compare_metadata(context, metadata)
        assert differences == []
    finally:
        engine.dispose()
