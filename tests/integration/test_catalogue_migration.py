"""Migration 0003 (catalogue) on each real database: up from 0002 with a vault full of
evidence, down to 0002 with the catalogue full, up again; and the model matches it."""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, inspect, select

import sprava.backends.db.catalogue_tables as catalogue_tables
from sprava.audit import verify_instance
from sprava.backends.db.engine import make_engine, migrate, schema_revision
from sprava.backends.db.tables import item, ledger_leaf
from sprava.catalogue import acts, cases, claims, incidents, persons, units, vocabulary
from sprava.catalogue.verify import verify_catalogue
from sprava.instance import Instance, init_instance
from sprava.settings import load_settings
from sprava.store.ingest import Ingestor

VAULT_0002 = {"source", "item", "item_name", "ledger_head", "ledger_leaf", "ledger_node",
              "ledger_checkpoint", "job", "analysis", "phash", "item_cluster", "derived_item"}
CATALOGUE = {t.name for t in catalogue_tables.CATALOGUE_TABLES}


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _alembic(engine: Engine, revision: str) -> None:
    """Alembic's own downgrade on the shipped scripts, not ``migrate``."""
    with engine.begin() as conn:
        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("sprava.backends.db") / "migrations"))
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def _instance(tmp_path: Path, database_url: str) -> Instance:
    settings = load_settings(tmp_path / "instance", {"database_url": database_url}, environ={})
    inst, _ = init_instance(settings, origin="test.sprava.local/catalogue-migration",
                            explicit={"database_url": database_url})
    return inst


def _ingest(inst: Instance, folder: Path) -> list[str]:
    folder.mkdir()
    for name, body in (("a.bin", b"a" * 3000), ("b.bin", b"b" * 5)):
        (folder / name).write_bytes(body)
    seen: list[str] = []
    ingestor = Ingestor(inst, source_name="migration")
    ingestor.run(ingestor.plan([os.fsencode(folder)]), lambda r: seen.append(r.sha256 or ""))
    return sorted(seen)


def _catalogue(inst: Instance, shas: list[str]) -> None:
    """One of everything, with a reviewed person claim in a case."""
    vocabulary.add_term(inst, {"code": "x-local", "labels": {"en": "Local"}}, actor="a")
    inc = incidents.create_incident(inst, {
        "title": "I", "start": "2020-08-10T20:00:00Z", "place": {"name": "Minsk"},
        "violation_types": ["x-local"]}, actor="a")
    unit = units.create_unit(inst, {"names": {"be": "АМАП"}, "type": "OMON"}, actor="a")
    person = persons.create_person(inst, {"name": "P", "identifiers": [
        {"kind": "call_sign", "value": "Rys"}]}, actor="a")
    act = acts.create_act(inst, {"incident_id": inc.id, "type": "beating", "evidence": shas,
                                 "perpetrator": {"kind": "unit", "unit_id": unit.id,
                                                 "sources": shas, "confidence": "low"}},
                          actor="a")
    claim = claims.create_claim(inst, {
        "statement": "person_committed_act", "subject": {"kind": "person", "id": person.id},
        "object": {"kind": "act", "id": act.id}, "sources": shas[:1], "confidence": "high"},
        actor="a", submit=True)
    claims.approve_claim(inst, claim.id, actor="b", rights=claims.Reviewers(frozenset({"b"})))
    cases.create_case(inst, {"title": "C", "recipient": "R", "incidents": [inc.id],
                             "claims": [claim.id], "items": shas}, actor="a")


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(item)).scalar_one(),
                conn.execute(select(func.count()).select_from(ledger_leaf)).scalar_one())


@pytest.mark.parametrize("downgrade", [
    pytest.param(migrate, id="sprava-migrate"),
    pytest.param(_alembic, id="alembic-downgrade"),
])
def test_up_from_0002_with_evidence_and_down_with_a_catalogue(
    database_url: str, tmp_path: Path, downgrade: Callable[[Engine, str], None]
) -> None:
    inst = _instance(tmp_path, database_url)
    engine = make_engine(database_url)
    try:
        # Evidence ingested by today's code, then the schema taken back to 0002 with it:
        # a vault as 0002 left it, with evidence in it.
        shas = _ingest(inst, tmp_path / "media")
        downgrade(engine, "0002_media")
        assert schema_revision(engine) == "0002_media"
        assert _tables(engine) == VAULT_0002
        vault = _counts(engine)
        assert vault == (2, 2)

        migrate(engine, "0003_catalogue")
        assert schema_revision(engine) == "0003_catalogue"
        assert _tables(engine) == VAULT_0002 | CATALOGUE
        assert _counts(engine) == vault
        assert verify_instance(inst).ok
        _catalogue(inst, shas)
        report = verify_instance(inst)
        assert report.ok, report.findings
        assert verify_catalogue(inst) == []
        with_catalogue = _counts(engine)
        assert with_catalogue[1] > vault[1]

        downgrade(engine, "0002_media")  # with the catalogue full
        assert schema_revision(engine) == "0002_media"
        assert _tables(engine) == VAULT_0002
        assert _counts(engine) == with_catalogue  # evidence and every custody event stay
        report = verify_instance(inst)
        assert report.ok, report.findings

        migrate(engine, "head")
        assert _tables(engine) >= VAULT_0002 | CATALOGUE
        assert incidents.list_incidents(inst).total == 0
        assert verify_catalogue(inst) == []
        assert verify_instance(inst).ok
    finally:
        engine.dispose()
        inst.close()
