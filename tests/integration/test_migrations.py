"""Schema migrations on each real database: up, down with data in it, up again, and a
model that says exactly what the migrations build."""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, MetaData, Text, inspect, select

import sprava.backends.db.account_tables
import sprava.backends.db.catalogue_tables
import sprava.backends.db.inbox_tables  # noqa: F401  (registers the inbox tables)
from sprava.audit import verify_instance
from sprava.backends.db.engine import head_revision, make_engine, migrate, schema_revision
from sprava.backends.db.search_tables import is_dialect_object
from sprava.backends.db.tables import item, ledger_head, ledger_leaf, metadata
from sprava.errors import ConfigurationError
from sprava.instance import Instance, init_instance, open_instance
from sprava.settings import Settings, load_settings
from sprava.store.ingest import Ingestor

TABLES = {"source", "item", "item_name", "ledger_head", "ledger_leaf", "ledger_node",
          "ledger_checkpoint", "job", "analysis", "phash", "item_cluster", "derived_item",
          "vocabulary_term", "incident", "incident_violation", "unit", "unit_name", "person",
          "person_identifier", "claim", "claim_source", "act", "act_item", "case_record",
          "case_incident", "case_claim", "case_item", "catalogue_change",
          "account", "account_session", "api_token", "login_throttle",
          "search_doc", "search_state", "search_queue", "search_term",
          "inbox_recipient", "inbox_unlock", "inbox_submission", "inbox_post", "inbox_object"}


def _tables(engine: Engine) -> set[str]:
    """The tables, less Alembic's and the full-text index's own (the FTS5 table and its
    shadow tables on SQLite, which the search migration test checks)."""
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names()) - {"alembic_version"}
    return {n for n in names if not is_dialect_object(n, "table")}


def _include(name: str | None, type_: str, _parents: object) -> bool:
    """Compare everything but the dialect-specific full-text objects, which the model
    leaves out by design (see sprava.backends.db.search_tables)."""
    return not is_dialect_object(name, type_)


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


def _vault_with_data(database_url: str, tmp_path: Path, engine: Engine) -> None:
    """Migrate the empty database to head, then ingest files into it (and check them)."""
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


def _up_again(engine: Engine) -> None:
    """After a downgrade to base: nothing left, and head builds a fresh, empty vault."""
    assert _tables(engine) == set()
    assert schema_revision(engine) is None
    migrate(engine, "head")
    assert schema_revision(engine) == head_revision()
    assert _tables(engine) == TABLES
    with engine.connect() as conn:
        assert conn.execute(select(ledger_head.c.id, ledger_head.c.size)).all() == [(1, 0)]
        assert conn.execute(select(item.c.sha256)).all() == []
        assert conn.execute(select(ledger_leaf.c.idx)).all() == []


def _alembic_downgrade(engine: Engine, revision: str) -> None:
    """Alembic's own downgrade, on the migration scripts Sprava ships (not ``migrate``)."""
    with engine.begin() as conn:
        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("sprava.backends.db") / "migrations"))
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_down_to_base_with_data_and_up_again(database_url: str, tmp_path: Path) -> None:
    """The round trip through ``sprava.backends.db.engine.migrate``."""
    engine = make_engine(database_url)
    try:
        _vault_with_data(database_url, tmp_path, engine)
        migrate(engine, "base")
        _up_again(engine)
    finally:
        engine.dispose()


def test_migration_scripts_go_down_with_data_and_up_again(
    database_url: str, tmp_path: Path
) -> None:
    """The same round trip with the downgrade run by Alembic directly: the scripts
    themselves drop everything, with data in the tables."""
    engine = make_engine(database_url)
    try:
        _vault_with_data(database_url, tmp_path, engine)
        _alembic_downgrade(engine, "base")
        _up_again(engine)
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


@pytest.mark.parametrize("downgrade", [
    pytest.param(migrate, id="sprava-migrate"),
    pytest.param(_alembic_downgrade, id="alembic-downgrade"),
])
def test_open_instance_at_base_is_refused(
    database_url: str, tmp_path: Path, downgrade: Callable[[Engine, str], None]
) -> None:
    settings = _settings(tmp_path, database_url)
    _init(settings, database_url).close()
    open_instance(settings).close()  # usable at head
    engine = make_engine(database_url)
    try:
        downgrade(engine, "base")
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
                conn, opts={"compare_type": True, "compare_server_default": True,
                            "include_name": _include})
            differences = compare_metadata(context, metadata)
            # and the comparison is not blind: a model one column ahead is told apart
            drifted = MetaData(naming_convention=metadata.naming_convention)
            for table in metadata.sorted_tables:
                table.to_metadata(drifted)
            drifted.tables["item"].append_column(Column("note", Text, nullable=True))
            drift = compare_metadata(context, drifted)
        assert differences == []
        assert [(d[0], d[2], d[3].name) for d in drift] == [("add_column", "item", "note")]
    finally:
        engine.dispose()
