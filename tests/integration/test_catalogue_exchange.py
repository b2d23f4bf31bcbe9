"""Catalogue export and import on each real database: a round trip through JSON and CSV
gives the same catalogue back (less the review of approved claims), exports are on the
custody record, and an import that fails stores nothing."""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import new_instance
from sprava.audit import verify_instance
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import ledger_leaf
from sprava.catalogue import acts, cases, claims, incidents, persons, units, vocabulary
from sprava.catalogue.exchange import WITHHELD, export_catalogue, import_catalogue
from sprava.catalogue.history import changes
from sprava.catalogue.verify import verify_catalogue
from sprava.domain.catalogue import ClaimStatus
from sprava.domain.custody import decode_leaf
from sprava.errors import SpravaError
from sprava.instance import Instance
from sprava.store.ingest import Ingestor

ANNA, BORIS, CAROL, DINA = "local:anna", "local:boris", "local:carol", "local:dina"
REVIEWERS = claims.Reviewers(frozenset({BORIS, CAROL, DINA}))
FORMULA = "=HYPERLINK(\"http://example.invalid\",\"click\")"


@pytest.fixture
def make_instance(request: pytest.FixtureRequest, module_database_url: str,
                  tmp_path: Path) -> Iterator[Callable[[], Instance]]:
    """Fresh instances on the back end of this module's world, each with its database."""
    made: list[Instance] = []
    dropped: list[str] = []

    def make() -> Instance:
        if module_database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / f'other{len(made)}.db'}"
        else:
            server = request.getfixturevalue("postgres_server")
            name = f"x_{uuid.uuid4().hex[:16]}"
            server.admin(f'CREATE DATABASE "{name}"')
            dropped.append(name)
            url = server.url(name)
        inst = new_instance(tmp_path / f"other{len(made)}", url)
        made.append(inst)
        return inst

    yield make
    for inst in made:
        inst.close()
    if dropped:
        server = request.getfixturevalue("postgres_server")
        for name in dropped:
            server.admin(f'DROP DATABASE "{name}" WITH (FORCE)')


def _evidence(tmp_path: Path) -> Path:
    folder = tmp_path / "evidence"
    if not folder.exists():
        folder.mkdir()
        for i in range(3):
            (folder / f"{i}.bin").write_bytes(f"exchange evidence {i}".encode() * 40)
    return folder


def _ingest(instance: Instance, tmp_path: Path) -> list[str]:
    seen: list[str] = []
    ingestor = Ingestor(instance, source_name="exchange tests")
    ingestor.run(ingestor.plan([os.fsencode(_evidence(tmp_path))]),
                 lambda r: seen.append(r.sha256 or ""))
    return sorted(seen)


@dataclass
class World:
    instance: Instance
    folder: Path  # the evidence, to ingest into other instances
    items: list[str]
    approved: str  # a person claim approved here
    person: str
    rejected: str


@pytest.fixture(scope="module")
def world(module_database_url: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    """One catalogue of every kind of record per back end, which the tests export (and
    so only add events to)."""
    folder = tmp_path_factory.mktemp("world")
    inst = new_instance(folder / "instance", module_database_url)
    try:
        yield _world(inst, folder)
    finally:
        inst.close()


def _world(instance: Instance, tmp_path: Path) -> World:
    items = _ingest(instance, tmp_path)
    vocabulary.add_term(instance, {"code": "kettling", "labels": {"en": "Kettling",
                                                                  "be": "Кацёл"}}, actor=ANNA)
    inc = incidents.create_incident(instance, {
        "title": "Разгон на Пушкінскай", "description": f"{FORMULA}\nsecond line",
        "start": "2020-08-10T22:40:00+03:00", "end": "2020-08-11T01:00:00+03:00",
        "place": {"name": "Pushkinskaya", "admin_area": "Мінск", "lat": 53.9093,
                  "lon": -27.4955, "precision_m": 150},
        "violation_types": ["beating", "kettling"]}, actor=ANNA)
    incidents.set_incident_status(instance, inc.id, "corroborated", actor=BORIS)
    ministry = units.create_unit(instance, {"names": {"be": "МУС", "en": "Interior Ministry"},
                                            "type": "ministry"}, actor=ANNA)
    omon = units.create_unit(instance, {"names": {"ru": "ОМОН", "en": "Minsk OMON"},
                                        "type": "OMON", "parent_id": ministry.id,
                                        "area_of_operation": "Мінск", "notes": "+ riot police"},
                             actor=ANNA)
    person = persons.create_person(instance, {
        "name": "Іван Іваноў", "rank": "major", "role": "deputy commander",
        "identifiers": [{"kind": "badge_number", "value": "0451"},
                        {"kind": "call_sign", "value": "-Берёза"}]}, actor=ANNA)
    command = claims.create_claim(instance, {
        "statement": "person_commanded_unit", "subject": {"kind": "person", "id": person.id},
        "object": {"kind": "unit", "id": omon.id}, "sources": items[:2], "confidence": "high",
        "valid_from": "2019-05", "valid_to": "2021", "comment": "@two videos"},
        actor=ANNA, submit=True)
    claims.approve_claim(instance, command.id, actor=BORIS, rights=REVIEWERS,
                         reason="badge legible")
    rejected = claims.create_claim(instance, {
        "statement": "unit_present_at_incident", "subject": {"kind": "unit", "id": ministry.id},
        "object": {"kind": "incident", "id": inc.id}, "sources": [items[2]],
        "confidence": "low"}, actor=ANNA, submit=True)
    claims.reject_claim(instance, rejected.id, actor=BORIS, rights=REVIEWERS,
                        reason="the video is from 2019")
    claims.create_claim(instance, {
        "statement": "unit_subordinate_to_unit", "subject": {"kind": "unit", "id": omon.id},
        "object": {"kind": "unit", "id": ministry.id}, "sources": [items[0]],
        "confidence": "medium", "valid_from": "2010"}, actor=ANNA)  # a draft
    acts.create_act(instance, {
        "incident_id": inc.id, "type": "beating", "description": "Beaten with batons.",
        "victim": {"pseudonym": "V-17", "age_band": "18-25",
                   "consent": {"share_with_prosecutors": True}},
        "perpetrator": {"kind": "person", "person_id": person.id, "sources": [items[1]],
                        "confidence": "medium"}, "evidence": [items[0]]}, actor=ANNA)
    acts.create_act(instance, {
        "incident_id": inc.id, "type": "kettling",
        "perpetrator": {"kind": "unit", "unit_id": omon.id, "sources": [items[2]],
                        "confidence": "low"}}, actor=ANNA)
    cases.create_case(instance, {"title": "Pushkinskaya", "recipient": "UN OHCHR",
                                 "incidents": [inc.id], "claims": [command.id],
                                 "items": items[:1]}, actor=ANNA)
    return World(instance, tmp_path, items, command.id, person.id, rejected.id)


def _export(instance: Instance, fmt: str, *, persons: bool = True) -> bytes:
    out = io.BytesIO()
    export_catalogue(instance, out, fmt=fmt, actor=DINA, persons=persons)
    return out.getvalue()


def _doc(instance: Instance) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_export(instance, "json"))
    return doc


def _leaves(instance: Instance) -> int:
    with read_transaction(instance.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(ledger_leaf)).scalar_one())


def _clean(instance: Instance) -> None:
    report = verify_instance(instance)
    assert report.ok, report.findings
    assert verify_catalogue(instance) == []


def _reviewed_here(doc: dict[str, Any]) -> dict[str, Any]:
    """A document as it reads after an import: approved claims pending, unreviewed."""
    out = json.loads(json.dumps(doc))
    for c in out["claims"]:
        if c["status"] == "approved":
            c.update(status="pending_review", reviewer=None, review_reason=None,
                     reviewed_at=None)
    return out


def _sections(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("exported_at", "origin")}


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(SpravaError) as caught:
        call()
    return caught.value.code


def _attempt(target: Instance, doc: dict[str, Any]) -> str:
    """Import ``doc``, which must fail; returns the error code, having checked that
    nothing at all was recorded."""
    before = _leaves(target)
    code = _code(lambda: import_catalogue(target, io.BytesIO(json.dumps(doc).encode()),
                                          fmt="json", actor=CAROL))
    assert _leaves(target) == before
    return code


def _refusals(target: Instance, doc: dict[str, Any], tmp_path: Path) -> None:
    """Imports that fail, each for one reason, into an empty instance."""
    assert _attempt(target, doc) == "item-not-found"  # the evidence is not in this vault yet
    _ingest(target, tmp_path)
    [child] = [u for u in doc["units"] if u["parent_id"]]
    [top] = [u for u in doc["units"] if not u["parent_id"]]
    orphan = {**doc, "units": [{**child, "parent_id": str(uuid.uuid4())}, top]}
    assert _attempt(target, orphan) == "unit-not-found"
    loop = {**doc, "units": [{**top, "parent_id": child["id"]}, child]}
    assert _attempt(target, loop) == "unit-cycle"
    act = next(a for a in doc["acts"] if a["perpetrator"]["kind"] == "unit")
    wrong = {**act, "perpetrator": {**act["perpetrator"], "unit_id": top["id"]}}
    others = [a for a in doc["acts"] if a is not act]
    assert _attempt(target, {**doc, "acts": [*others, wrong]}) == "perpetrator-mismatch"
    person = {**doc["persons"][0], "notes": None, "home_phone": "+375"}
    assert _attempt(target, {**doc, "persons": [person]}) == "red-line-field"


def test_round_trip_through_json_then_csv(world: World,
                                          make_instance: Callable[[], Instance]) -> None:
    instance = world.instance
    original = _doc(instance)
    second, third = make_instance(), make_instance()
    _refusals(second, original, world.folder)
    assert _ingest(third, world.folder) == world.items  # the evidence, ingested first

    done = import_catalogue(second, io.BytesIO(_export(instance, "json")), fmt="json",
                            actor=CAROL)
    assert done.created == {"vocabulary": 1, "incidents": 1, "units": 2, "persons": 1,
                            "claims": 5, "acts": 2, "cases": 1}
    assert (done.sent_to_review, done.origin) == (1, instance.origin)
    moved = import_catalogue(third, io.BytesIO(_export(second, "csv")), fmt="auto",
                             actor=CAROL)
    assert moved.created == done.created
    assert moved.sent_to_review == 0  # nothing was approved on the second instance

    expected = _sections(_reviewed_here(original))
    assert _sections(_doc(second)) == expected
    assert _sections(_doc(third)) == expected
    assert original["claims"] != expected["claims"]  # the approval did not travel

    claim = claims.get_claim(second, world.approved)
    assert (claim.status, claim.author, claim.reviewer) == (
        ClaimStatus.PENDING_REVIEW, ANNA, None)
    assert claims.get_claim(second, world.rejected).review_reason == "the video is from 2019"
    [created] = changes(second, "claim", world.approved).items
    assert created.change == "create"
    assert created.actor == CAROL
    assert created.note is not None
    assert f"approved on the exporting instance by {BORIS}" in created.note
    with pytest.raises(SpravaError, match="cannot review") as caught:
        claims.approve_claim(second, world.approved, actor=CAROL, rights=REVIEWERS)
    assert caught.value.code == "self-review"  # the importer is not the second pair of eyes
    assert claims.approve_claim(second, world.approved, actor=BORIS,
                                rights=REVIEWERS).status is ClaimStatus.APPROVED

    before = _leaves(third)
    again = import_catalogue(third, io.BytesIO(_export(instance, "csv")), fmt="csv",
                             actor=CAROL)
    assert sum(again.created.values()) == 0
    assert again.skipped == done.created  # the same records: skipped, not duplicated
    assert _leaves(third) == before  # an import of what is held records nothing
    unit = original["units"][0]
    assert _attempt(second, {**original, "units": [{**unit, "type": "riot police"}]}) == (
        "id-exists")
    term = original["vocabulary"][0]
    assert _attempt(second, {**original, "vocabulary": [{**term, "labels": {"en": "x"}}]}) == (
        "term-exists")
    for inst in (instance, second, third):
        _clean(inst)


def _events(instance: Instance, after: int) -> list[dict[str, Any]]:
    with read_transaction(instance.engine) as conn:
        rows = conn.execute(select(ledger_leaf.c.data).where(ledger_leaf.c.idx >= after)
                            .order_by(ledger_leaf.c.idx)).scalars()
        return [decode_leaf(bytes(d)) for d in rows]


def test_exports_are_recorded_and_can_leave_persons_out(world: World) -> None:
    instance = world.instance
    start = _leaves(instance)
    out = io.BytesIO()
    summary = export_catalogue(instance, out, fmt="csv", actor=DINA)
    data = out.getvalue()
    view, export = _events(instance, start)
    assert (view["kind"], view["change"], view["entity"], view["ids"], view["actor"]) == (
        "catalogue", "view", "person", [world.person], DINA)
    assert export["kind"] == "catalogue_export"
    assert export["export_sha256"] == summary.sha256
    assert (export["size"], export["format"], export["includes_persons"]) == (
        len(data), "csv", True)
    assert export["counts"]["persons"] == 1
    assert "Іваноў" not in json.dumps(export, ensure_ascii=False)
    assert summary.leaf_index == start + 1
    last = changes(instance, "person", world.person, limit=500).items[-1]
    assert (last.change, last.actor, last.leaf_index) == ("view", DINA, start)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        incidents_csv = archive.read("incidents.csv").decode("utf-8-sig")
        persons_csv = archive.read("person_identifiers.csv").decode("utf-8-sig")
    assert f"'{FORMULA}".replace('"', '""') in incidents_csv  # never a live formula
    assert ",-27.4955," in incidents_csv  # a plain negative number stays a number
    assert "'-Берёза" in persons_csv

    start = _leaves(instance)
    restricted = json.loads(_export(instance, "json", persons=False))
    [export] = _events(instance, start)  # no view: no person left
    assert (export["kind"], export["includes_persons"], export["counts"]["persons"]) == (
        "catalogue_export", False, 0)
    assert restricted["persons"] == []
    text = json.dumps(restricted, ensure_ascii=False)
    assert world.person not in text
    assert "Іваноў" not in text
    assert {c["subject"]["kind"] for c in restricted["claims"]} == {"unit"}
    assert {a["perpetrator"]["description"] for a in restricted["acts"]} == {WITHHELD, None}
    assert restricted["cases"][0]["claims"] == []
    _clean(instance)


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(SpravaError) as caught:
        call()
    return caught.value.code
