"""The catalogue on each real database: round trips, statuses, vocabulary, red lines, and
every change on the custody record with the instance verifying clean afterwards."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from sprava.audit import verify_instance
from sprava.backends.db.catalogue_tables import CATALOGUE_TABLES, catalogue_change
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import ledger_leaf
from sprava.catalogue import acts, cases, claims, incidents, persons, units, vocabulary
from sprava.catalogue.history import changes
from sprava.catalogue.verify import verify_catalogue
from sprava.domain.catalogue import (
    RED_LINE_KEYS,
    RED_LINE_MESSAGE,
    ClaimStatus,
    Effect,
    IncidentStatus,
    PerpetratorKind,
    state_digest,
)
from sprava.domain.custody import decode_leaf
from sprava.errors import BadInputError, ConflictError, NotFoundError, SpravaError
from sprava.instance import Instance
from sprava.store.ingest import Ingestor

ANNA, BORIS = "local:anna", "local:boris"
MISSING = "00000000-0000-4000-8000-000000000000"


def _items(instance: Instance, tmp_path: Path, count: int = 3) -> list[str]:
    folder = tmp_path / "evidence"
    folder.mkdir()
    for i in range(count):
        (folder / f"{i}.bin").write_bytes(f"evidence {i}".encode() * 50)
    seen: dict[str, str] = {}
    ingestor = Ingestor(instance, source_name="catalogue tests")
    ingestor.run(ingestor.plan([os.fsencode(folder)]),
                 lambda r: seen.__setitem__(r.name.rsplit("/", 1)[-1], r.sha256 or ""))
    return [seen[f"{i}.bin"] for i in range(count)]


def _events(instance: Instance) -> list[dict[str, Any]]:
    with read_transaction(instance.engine) as conn:
        rows = conn.execute(select(ledger_leaf.c.data).where(ledger_leaf.c.kind == "catalogue")
                            .order_by(ledger_leaf.c.idx)).scalars()
        return [decode_leaf(bytes(d)) for d in rows]


def _leaves(instance: Instance) -> int:
    with read_transaction(instance.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(ledger_leaf)).scalar_one())


def _clean(instance: Instance) -> None:
    report = verify_instance(instance)
    assert report.ok, report.findings
    assert verify_catalogue(instance) == []


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(SpravaError) as caught:
        call()
    return caught.value.code


INCIDENT = {
    "title": "Dispersal at Pushkinskaya",
    "description": "Riot police beat and detained people leaving the metro.",
    "start": "2020-08-10T22:40:00+03:00", "end": "2020-08-11T01:00:00+03:00",
    "place": {"name": "Pushkinskaya metro", "admin_area": "Minsk", "lat": 53.9093,
              "lon": 27.4955, "precision_m": 150},
    "violation_types": ["beating", "arbitrary-detention"],
}


def test_incident_round_trip(instance: Instance) -> None:
    created = incidents.create_incident(instance, INCIDENT, actor=ANNA)
    assert created.status is IncidentStatus.REPORTED
    got = incidents.get_incident(instance, created.id)
    assert got == created
    assert got.start.isoformat() == "2020-08-10T19:40:00+00:00"
    assert (got.place.lat, got.place.lon, got.place.precision_m) == (53.9093, 27.4955, 150.0)

    updated = incidents.update_incident(instance, created.id, {
        "title": "Dispersal near Pushkinskaya", "violation_types": ["beating"],
        "place": {"name": "Pushkinskaya", "admin_area": "Minsk"}}, actor=BORIS)
    assert incidents.get_incident(instance, created.id) == updated
    assert (updated.title, updated.violation_types, updated.place.lat) == (
        "Dispersal near Pushkinskaya", ("beating",), None)
    assert updated.created_at == created.created_at < updated.updated_at
    before = _leaves(instance)
    same = incidents.update_incident(instance, created.id, {"title": updated.title}, actor=ANNA)
    assert same == updated
    assert _leaves(instance) == before  # a change that changes nothing records nothing

    events = _events(instance)
    assert [(e["change"], e["entity"], e["id"], e["actor"]) for e in events] == [
        ("create", "incident", created.id, ANNA), ("update", "incident", created.id, BORIS)]
    assert events[1]["state_sha256"] == state_digest(updated.state())
    assert "Pushkinskaya" not in str(events)  # the ledger carries digests, not content
    history = changes(instance, "incident", created.id)
    assert [(c.change, c.actor) for c in history.items] == [("create", ANNA), ("update", BORIS)]
    _clean(instance)


def test_incident_refusals(instance: Instance) -> None:
    assert _code(lambda: incidents.get_incident(instance, MISSING)) == "incident-not-found"
    assert _code(lambda: incidents.update_incident(
        instance, MISSING, {"title": "x"}, actor=ANNA)) == "incident-not-found"
    assert _code(lambda: incidents.create_incident(
        instance, {**INCIDENT, "violation_types": ["looting"]},
        actor=ANNA)) == "unknown-violation-type"
    assert _code(lambda: incidents.create_incident(
        instance, {**INCIDENT, "end": "2020-08-01T00:00:00Z"}, actor=ANNA)) == "bad-period"
    assert _code(lambda: incidents.create_incident(instance, INCIDENT, actor="")) == "bad-actor"
    assert _events(instance) == []


def test_incident_status_transitions(instance: Instance) -> None:
    inc = incidents.create_incident(instance, INCIDENT, actor=ANNA)
    assert _code(lambda: incidents.set_incident_status(
        instance, inc.id, "verified", actor=ANNA)) == "illegal-transition"
    assert _code(lambda: incidents.set_incident_status(
        instance, inc.id, "reported", actor=ANNA)) == "illegal-transition"
    assert _code(lambda: incidents.set_incident_status(
        instance, inc.id, "confirmed", actor=ANNA)) == "bad-choice"
    step = incidents.set_incident_status(instance, inc.id, "corroborated", actor=ANNA)
    assert step.status is IncidentStatus.CORROBORATED
    step = incidents.set_incident_status(instance, inc.id, "verified", actor=BORIS)
    assert incidents.get_incident(instance, inc.id).status is IncidentStatus.VERIFIED
    assert _code(lambda: incidents.set_incident_status(
        instance, inc.id, "corroborated", actor=ANNA)) == "note-required"
    incidents.set_incident_status(instance, inc.id, "corroborated", actor=ANNA,
                                  note="the second video turned out to be from 2019")
    assert incidents.get_incident(instance, inc.id).status is IncidentStatus.CORROBORATED
    history = changes(instance, "incident", inc.id).items
    assert [(c.change, c.note) for c in history] == [
        ("create", None), ("status", None), ("status", None),
        ("status", "the second video turned out to be from 2019")]
    _clean(instance)


def test_incident_list_pages_and_filters(instance: Instance) -> None:
    made = [incidents.create_incident(instance, {
        **INCIDENT, "title": f"incident {i}", "start": f"2020-08-{10 + i:02d}T12:00:00Z",
        "end": None,
        "violation_types": ["beating"] if i % 2 else ["torture-ill-treatment"]}, actor=ANNA)
        for i in range(7)]
    page = incidents.list_incidents(instance, limit=3, offset=0)
    assert (page.total, [i.title for i in page.items]) == (7, [
        "incident 6", "incident 5", "incident 4"])
    last = incidents.list_incidents(instance, limit=3, offset=6)
    assert [i.title for i in last.items] == ["incident 0"]
    assert incidents.list_incidents(instance, violation_type="beating").total == 3
    incidents.set_incident_status(instance, made[0].id, "corroborated", actor=BORIS)
    assert [i.id for i in incidents.list_incidents(instance, status="corroborated").items] == [
        made[0].id]
    since = incidents.list_incidents(instance, since="2020-08-15T00:00:00Z")
    assert since.total == 2
    assert _code(lambda: incidents.list_incidents(instance, limit=0)) == "bad-page"
    assert _code(lambda: incidents.list_incidents(instance, offset=-1)) == "bad-page"


def test_act_round_trip_with_a_unit_perpetrator(instance: Instance, tmp_path: Path) -> None:
    shas = _items(instance, tmp_path)
    inc = incidents.create_incident(instance, INCIDENT, actor=ANNA)
    unit = units.create_unit(instance, {"names": {"en": "Minsk OMON"}, "type": "OMON"},
                             actor=ANNA)
    act = acts.create_act(instance, {
        "incident_id": inc.id, "type": "beating", "description": "Beaten with batons.",
        "victim": {"pseudonym": "V-17", "age_band": "18-25",
                   "consent": {"share_with_prosecutors": True}},
        "perpetrator": {"kind": "unit", "unit_id": unit.id, "sources": shas[:2],
                        "confidence": "medium"},
        "evidence": [f"sha256:{shas[0]}", shas[2]]}, actor=ANNA)
    assert acts.get_act(instance, act.id) == act
    assert act.evidence == tuple(sorted([shas[0], shas[2]]))
    assert act.victim is not None
    assert act.victim.consent.share_with_prosecutors
    assert not act.victim.consent.publish_anonymised
    assert (act.perpetrator.kind, act.perpetrator.unit_id) == (PerpetratorKind.UNIT, unit.id)
    assert act.perpetrator.effect is Effect.REPORTED  # a unit counts once submitted
    claim = claims.get_claim(instance, act.perpetrator.claim_id or "")
    assert (claim.statement, claim.subject_id, claim.object_id, claim.status, claim.author) == (
        "unit_committed_act", unit.id, act.id, ClaimStatus.PENDING_REVIEW, ANNA)
    assert claim.sources == tuple(sorted(shas[:2]))

    updated = acts.update_act(instance, act.id, {"victim": None, "evidence": [shas[1]]},
                              actor=BORIS)
    assert acts.get_act(instance, act.id) == updated
    assert (updated.victim, updated.evidence) == (None, (shas[1],))
    assert acts.list_acts(instance, incident_id=inc.id).items == (updated,)
    assert acts.list_acts(instance, type="torture-ill-treatment").total == 0
    assert [(e["change"], e["entity"]) for e in _events(instance)] == [
        ("create", "incident"), ("create", "unit"), ("create", "claim"), ("create", "act"),
        ("update", "act")]
    _clean(instance)


def test_naming_a_person_as_perpetrator_waits_for_review(instance: Instance,
                                                         tmp_path: Path) -> None:
    shas = _items(instance, tmp_path, 1)
    inc = incidents.create_incident(instance, INCIDENT, actor=ANNA)
    unit = units.create_unit(instance, {"names": {"en": "OMON"}, "type": "OMON"}, actor=ANNA)
    person = persons.create_person(instance, {"name": "I. Ivanov"}, actor=ANNA)
    act = acts.create_act(instance, {
        "incident_id": inc.id, "type": "beating",
        "perpetrator": {"kind": "unit", "unit_id": unit.id, "sources": shas,
                        "confidence": "low"}}, actor=ANNA)
    first = act.perpetrator.claim_id or ""
    act = acts.update_act(instance, act.id, {"perpetrator": {
        "kind": "person", "person_id": person.id, "sources": shas, "confidence": "high"}},
        actor=ANNA)
    assert (act.perpetrator.kind, act.perpetrator.person_id) == (PerpetratorKind.PERSON,
                                                                 person.id)
    assert act.perpetrator.effect is Effect.NONE  # not until a second reviewer approves
    assert claims.get_claim(instance, first).status is ClaimStatus.DRAFT  # withdrawn
    claims.approve_claim(instance, act.perpetrator.claim_id or "", actor=BORIS,
                         rights=claims.Reviewers(frozenset({BORIS})))
    assert acts.get_act(instance, act.id).perpetrator.effect is Effect.REVIEWED
    same = acts.update_act(instance, act.id, {"perpetrator": {
        "kind": "person", "person_id": person.id, "sources": shas, "confidence": "high"}},
        actor=ANNA)
    assert same.perpetrator.claim_id == act.perpetrator.claim_id  # nothing new to claim
    unknown = acts.update_act(instance, act.id, {"perpetrator": {
        "kind": "unknown", "description": "men in balaclavas"}}, actor=ANNA)
    assert unknown.perpetrator.claim_id is None
    assert claims.get_claim(instance, act.perpetrator.claim_id or "").status is (
        ClaimStatus.APPROVED)  # a reviewed claim stands as reviewed
    _clean(instance)


def test_naming_a_rejected_perpetrator_again_makes_a_new_claim(instance: Instance,
                                                               tmp_path: Path) -> None:
    shas = _items(instance, tmp_path, 2)
    inc = incidents.create_incident(instance, INCIDENT, actor=ANNA)
    person = persons.create_person(instance, {"name": "I. Ivanov"}, actor=ANNA)
    named = {"kind": "person", "person_id": person.id, "sources": shas[:1],
             "confidence": "low"}
    act = acts.create_act(instance, {"incident_id": inc.id, "type": "beating",
                                     "perpetrator": named}, actor=ANNA)
    first = act.perpetrator.claim_id or ""
    claims.reject_claim(instance, first, actor=BORIS, reason="one blurry frame",
                        rights=claims.Reviewers(frozenset({BORIS})))
    assert acts.get_act(instance, act.id).perpetrator.effect is Effect.NONE
    again = acts.update_act(instance, act.id, {"perpetrator": {**named, "sources": shas}},
                            actor=ANNA)
    assert again.perpetrator.claim_id not in (None, first)
    renewed = claims.get_claim(instance, again.perpetrator.claim_id or "")
    assert (renewed.status, renewed.sources) == (ClaimStatus.PENDING_REVIEW,
                                                 tuple(sorted(shas)))
    assert claims.get_claim(instance, first).review_reason == "one blurry frame"
    _clean(instance)


def test_act_refusals(instance: Instance, tmp_path: Path) -> None:
    shas = _items(instance, tmp_path, 1)
    inc = incidents.create_incident(instance, INCIDENT, actor=ANNA)
    base = {"incident_id": inc.id, "type": "beating"}
    assert _code(lambda: acts.create_act(
        instance, {**base, "incident_id": MISSING}, actor=ANNA)) == "incident-not-found"
    assert _code(lambda: acts.create_act(
        instance, {**base, "type": "looting"}, actor=ANNA)) == "unknown-violation-type"
    assert _code(lambda: acts.create_act(
        instance, {**base, "evidence": ["cd" * 32]}, actor=ANNA)) == "item-not-found"
    assert _code(lambda: acts.create_act(instance, {**base, "perpetrator": {
        "kind": "person", "person_id": MISSING, "sources": shas, "confidence": "low"}},
        actor=ANNA)) == "person-not-found"
    assert _code(lambda: acts.create_act(instance, {**base, "perpetrator": {
        "kind": "unit", "unit_id": MISSING, "sources": shas, "confidence": "low"}},
        actor=ANNA)) == "unit-not-found"
    assert _code(lambda: acts.update_act(
        instance, MISSING, {"type": "beating"}, actor=ANNA)) == "act-not-found"
    assert _code(lambda: acts.update_act(instance, MISSING, {"incident_id": inc.id},
                                         actor=ANNA)) == "unknown-field"
    assert [e["entity"] for e in _events(instance)] == ["incident"]


def test_unit_round_trip_hierarchy_and_history(instance: Instance, tmp_path: Path) -> None:
    shas = _items(instance, tmp_path, 1)
    ministry = units.create_unit(instance, {
        "names": {"en": "Ministry of Internal Affairs", "ru": "МВД", "be": "МУС"},
        "type": "ministry"}, actor=ANNA)
    gu = units.create_unit(instance, {"names": {"en": "Minsk police"}, "type": "directorate",
                                      "parent_id": ministry.id}, actor=ANNA)
    omon = units.create_unit(instance, {
        "names": {"be": "АМАП", "ru": "ОМОН", "en": "OMON", "be-Latn": "AMAP"},
        "type": "OMON", "parent_id": gu.id, "area_of_operation": "Minsk",
        "notes": "Formed 1991."}, actor=ANNA)
    assert units.get_unit(instance, omon.id) == omon
    assert dict(omon.names) == {"be": "АМАП", "be-Latn": "AMAP", "en": "OMON", "ru": "ОМОН"}
    renamed = units.update_unit(instance, omon.id, {"names": {"en": "Minsk OMON"}},
                                actor=BORIS)
    assert dict(units.get_unit(instance, omon.id).names) == {"en": "Minsk OMON"}
    assert renamed.parent_id == gu.id
    assert _code(lambda: units.update_unit(instance, ministry.id, {"parent_id": omon.id},
                                           actor=ANNA)) == "unit-cycle"
    assert _code(lambda: units.update_unit(instance, gu.id, {"parent_id": gu.id},
                                           actor=ANNA)) == "unit-cycle"
    assert _code(lambda: units.create_unit(instance, {
        "names": {"en": "x"}, "type": "x", "parent_id": MISSING}, actor=ANNA)) == (
        "unit-not-found")
    assert [u.id for u in units.list_units(instance, top_level=True).items] == [ministry.id]
    assert [u.id for u in units.list_units(instance, parent_id=gu.id).items] == [omon.id]
    assert units.list_units(instance, limit=1, offset=1).items == (
        units.get_unit(instance, gu.id),)

    rights = claims.Reviewers(frozenset({BORIS}))
    commanders = []
    for name, start, end in (("A. Old", "2015", "2019-06"), ("B. New", "2019-06", None)):
        person = persons.create_person(instance, {"name": name, "rank": "colonel"}, actor=ANNA)
        claim = claims.create_claim(instance, {
            "statement": "person_commanded_unit", "subject": {"kind": "person", "id": person.id},
            "object": {"kind": "unit", "id": omon.id}, "valid_from": start, "valid_to": end,
            "sources": shas, "confidence": "high"}, actor=ANNA, submit=True)
        commanders.append((person.id, claim.id))
    history = units.unit_history(instance, omon.id)
    assert history.commanders.total == 0  # nothing counts before review
    pending = units.unit_history(instance, omon.id, include_unreviewed=True)
    assert [m.person_id for m in pending.commanders.items] == [p for p, _ in commanders]
    for _, claim_id in reversed(commanders):
        claims.approve_claim(instance, claim_id, actor=BORIS, rights=rights)
    history = units.unit_history(instance, omon.id)
    assert [(m.person_id, m.role, m.valid_from, m.valid_to) for m in history.commanders.items
            ] == [(commanders[0][0], "commander", "2015", "2019-06"),
                  (commanders[1][0], "commander", "2019-06", None)]
    assert [u.id for u in history.ancestors] == [gu.id, ministry.id]
    superior = claims.create_claim(instance, {
        "statement": "unit_subordinate_to_unit", "subject": {"kind": "unit", "id": omon.id},
        "object": {"kind": "unit", "id": ministry.id}, "valid_to": "2011",
        "sources": shas, "confidence": "medium"}, actor=ANNA, submit=True)
    assert [c.id for c in units.unit_history(instance, omon.id).superiors] == [superior.id]
    assert units.unit_history(instance, omon.id, limit=1, offset=1).commanders.items[0
        ].person_id == commanders[1][0]
    # history names persons by id only: reading it is not a view of anyone
    assert [e for e in _events(instance) if e["change"] == "view"] == []
    _clean(instance)


def test_persons_are_restricted_every_read_is_recorded(instance: Instance) -> None:
    one = persons.create_person(instance, {
        "name": "I. I. Ivanov", "rank": "major", "role": "deputy commander",
        "identifiers": [{"kind": "badge_number", "value": "0451"},
                        {"kind": "call_sign", "value": "Rys"}],
        "notes": "Seen without insignia on 10 August."}, actor=ANNA)
    two = persons.create_person(instance, {"name": "P. P. Petrov", "identifiers": [
        {"kind": "vehicle_plate", "value": "1234 AB-7"}]}, actor=ANNA)
    assert persons.get_person(instance, one.id, actor="local:carol") == one
    page = persons.list_persons(instance, actor="local:dina", limit=10)
    assert [p.name for p in page.items] == ["I. I. Ivanov", "P. P. Petrov"]
    assert persons.list_persons(instance, actor=BORIS, identifier="1234 AB-7").items == (two,)
    assert persons.list_persons(instance, actor=BORIS, identifier="nobody").items == ()
    assert persons.list_persons(instance, actor=BORIS, ids=[two.id]).items == (two,)
    updated = persons.update_person(instance, one.id, {"identifiers": []}, actor=BORIS)
    assert persons.get_person(instance, one.id, actor=BORIS).identifiers == ()
    assert updated.rank == "major"
    assert _code(lambda: persons.get_person(instance, MISSING, actor=BORIS)) == (
        "person-not-found")

    views = [(e["actor"], e["ids"]) for e in _events(instance) if e["change"] == "view"]
    assert views == [("local:carol", [one.id]), ("local:dina", sorted([one.id, two.id])),
                     (BORIS, [two.id]), (BORIS, [two.id]), (BORIS, [one.id])]
    seen = changes(instance, "person", one.id).items
    assert [(c.change, c.actor) for c in seen] == [
        ("create", ANNA), ("view", "local:carol"), ("view", "local:dina"), ("update", BORIS),
        ("view", BORIS)]
    leaves = str(_events(instance))
    assert "Ivanov" not in leaves
    assert "0451" not in leaves
    _clean(instance)


def test_vocabulary_extension(instance: Instance) -> None:
    shipped = vocabulary.list_terms(instance, limit=500)
    assert all(t.origin == "shipped" for t in shipped.items)
    with pytest.raises(BadInputError) as caught:
        incidents.create_incident(instance, {**INCIDENT, "violation_types": [
            "forced-repentance-video"]}, actor=ANNA)
    assert caught.value.code == "unknown-violation-type"
    term = vocabulary.add_term(instance, {
        "code": "forced-repentance-video",
        "labels": {"en": "Forced 'repentance' video", "ru": "Покаянное видео"},
        "description": "A detainee filmed reading a confession under duress."}, actor=ANNA)
    assert vocabulary.get_term(instance, term.code) == term
    listed = vocabulary.list_terms(instance, limit=500)
    assert listed.total == shipped.total + 1
    assert listed.items[-1] == term
    inc = incidents.create_incident(instance, {**INCIDENT, "violation_types": [
        "forced-repentance-video", "beating"]}, actor=ANNA)
    assert inc.violation_types == ("beating", "forced-repentance-video")
    acts.create_act(instance, {"incident_id": inc.id, "type": "forced-repentance-video"},
                    actor=ANNA)
    assert incidents.list_incidents(instance, violation_type="forced-repentance-video"
                                    ).total == 1
    for code in ("forced-repentance-video", "beating"):
        with pytest.raises(ConflictError) as conflict:
            vocabulary.add_term(instance, {"code": code, "labels": {"en": "x"}}, actor=BORIS)
        assert conflict.value.code == "term-exists"
    assert _code(lambda: vocabulary.get_term(instance, "nope")) == "term-not-found"
    assert vocabulary.list_terms(instance, limit=2, offset=1).items == listed.items[1:3]
    _clean(instance)


def test_case_round_trip_cites_only_claims_that_count(instance: Instance,
                                                      tmp_path: Path) -> None:
    shas = _items(instance, tmp_path, 2)
    inc = incidents.create_incident(instance, INCIDENT, actor=ANNA)
    person = persons.create_person(instance, {"name": "I. Ivanov"}, actor=ANNA)
    unit = units.create_unit(instance, {"names": {"en": "OMON"}, "type": "OMON"}, actor=ANNA)
    person_claim = claims.create_claim(instance, {
        "statement": "person_present_at_incident", "subject": {"kind": "person", "id": person.id},
        "object": {"kind": "incident", "id": inc.id}, "sources": shas[:1],
        "confidence": "high"}, actor=ANNA, submit=True)
    unit_claim = claims.create_claim(instance, {
        "statement": "unit_present_at_incident", "subject": {"kind": "unit", "id": unit.id},
        "object": {"kind": "incident", "id": inc.id}, "sources": shas[:1],
        "confidence": "medium"}, actor=ANNA, submit=True)
    base = {"title": "Pushkinskaya, 10 August", "recipient": "Prosecutor, universal "
            "jurisdiction unit", "incidents": [inc.id], "items": shas}
    with pytest.raises(ConflictError) as caught:
        cases.create_case(instance, {**base, "claims": [person_claim.id]}, actor=ANNA)
    assert caught.value.code == "claim-not-effective"
    case = cases.create_case(instance, {**base, "claims": [unit_claim.id]}, actor=ANNA)
    assert cases.get_case(instance, case.id) == case
    claims.approve_claim(instance, person_claim.id, actor=BORIS,
                         rights=claims.Reviewers(frozenset({BORIS})))
    updated = cases.update_case(instance, case.id, {
        "claims": [unit_claim.id, person_claim.id], "items": shas[:1]}, actor=ANNA)
    assert cases.get_case(instance, case.id) == updated
    assert set(updated.claim_ids) == {unit_claim.id, person_claim.id}
    assert updated.items == (shas[0],)
    assert cases.list_cases(instance).items == (updated,)
    assert _code(lambda: cases.create_case(instance, {**base, "incidents": [MISSING]},
                                           actor=ANNA)) == "incident-not-found"
    assert _code(lambda: cases.create_case(instance, {**base, "items": ["ef" * 32]},
                                           actor=ANNA)) == "item-not-found"
    assert _code(lambda: cases.create_case(instance, {**base, "claims": [MISSING]},
                                           actor=ANNA)) == "claim-not-found"
    assert _code(lambda: cases.get_case(instance, MISSING)) == "case-not-found"
    _clean(instance)


# --- red lines through the services ------------------------------------------------------

UUID = "8d6c3f5e-2b1a-4c3d-9e8f-0123456789ab"
CREATORS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "incident": (incidents.create_incident, INCIDENT),
    "act": (acts.create_act, {"incident_id": UUID, "type": "beating"}),
    "unit": (units.create_unit, {"names": {"en": "OMON"}, "type": "OMON"}),
    "person": (persons.create_person, {"name": "I. Ivanov"}),
    "claim": (claims.create_claim, {
        "statement": "person_member_of_unit", "subject": {"kind": "person", "id": UUID},
        "object": {"kind": "unit", "id": MISSING}, "sources": ["ab" * 32],
        "confidence": "low"}),
    "case": (cases.create_case, {"title": "t", "recipient": "r"}),
    "vocabulary term": (vocabulary.add_term, {"code": "x-y", "labels": {"en": "X"}}),
}


@pytest.mark.parametrize("entity", sorted(CREATORS))
def test_services_refuse_every_red_line_field_and_record_nothing(instance: Instance,
                                                                 entity: str) -> None:
    create, valid = CREATORS[entity]
    for key in sorted(RED_LINE_KEYS):
        with pytest.raises(BadInputError, match=RED_LINE_MESSAGE) as caught:
            create(instance, {**valid, key: "x"}, actor=ANNA)
        assert caught.value.code == "red-line-field", key
    with pytest.raises(BadInputError) as caught:
        create(instance, {**valid, "nested": {"homeAddress": "x"}}, actor=ANNA)
    assert caught.value.code == "red-line-field"
    assert _leaves(instance) == 0
    with read_transaction(instance.engine) as conn:
        for table in CATALOGUE_TABLES:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0


@pytest.mark.parametrize(("update", "data"), [
    ("person", {"notes": "x", "spouse": "x"}),
    ("unit", {"telegram": "@omon"}),
    ("incident", {"place": {"name": "x", "street": "x"}}),
])
def test_updates_refuse_red_lines_too(instance: Instance, update: str,
                                      data: dict[str, Any]) -> None:
    made = {"person": lambda: persons.create_person(instance, {"name": "I"}, actor=ANNA),
            "unit": lambda: units.create_unit(instance, {"names": {"en": "U"}, "type": "U"},
                                              actor=ANNA),
            "incident": lambda: incidents.create_incident(instance, INCIDENT, actor=ANNA)}
    updaters = {"person": persons.update_person, "unit": units.update_unit,
                "incident": incidents.update_incident}
    entity = made[update]()
    before = _leaves(instance)
    with pytest.raises(BadInputError) as caught:
        updaters[update](instance, entity.id, data, actor=ANNA)
    assert caught.value.code == "red-line-field"
    assert _leaves(instance) == before


# --- the custody record ------------------------------------------------------------------


def test_every_change_is_one_event_and_tampering_is_found(instance: Instance,
                                                          tmp_path: Path) -> None:
    shas = _items(instance, tmp_path, 1)
    person = persons.create_person(instance, {"name": "I. Ivanov", "rank": "major"},
                                   actor=ANNA)
    unit = units.create_unit(instance, {"names": {"en": "OMON"}, "type": "OMON"}, actor=ANNA)
    claim = claims.create_claim(instance, {
        "statement": "person_member_of_unit", "subject": {"kind": "person", "id": person.id},
        "object": {"kind": "unit", "id": unit.id}, "role": "driver", "sources": shas,
        "confidence": "low"}, actor=ANNA)
    claims.submit_claim(instance, claim.id, actor=ANNA)
    claims.reject_claim(instance, claim.id, actor=BORIS, reason="the video shows a different "
                        "badge", rights=claims.Reviewers(frozenset({BORIS})))
    with read_transaction(instance.engine) as conn:
        indexed = conn.execute(select(func.count()).select_from(catalogue_change)).scalar_one()
    assert indexed == len(_events(instance)) == 5
    _clean(instance)

    with instance.engine.begin() as conn:  # an edit behind Sprava's back
        conn.execute(text("UPDATE person SET rank = 'colonel'"))
    found = verify_catalogue(instance)
    assert [(f.code, f.subject) for f in found] == [
        ("catalogue-row-altered", f"person {person.id}")]
    with instance.engine.begin() as conn:
        conn.execute(text("UPDATE person SET rank = 'major'"))
        conn.execute(text("UPDATE claim SET status = 'approved'"))
        conn.execute(text(
            "INSERT INTO unit (id, salt, type, created_at, updated_at) VALUES "
            "(:id, '00', 'planted', '2024-01-01 00:00:00', '2024-01-01 00:00:00')"),
            {"id": MISSING})
    assert [(f.code, f.subject) for f in verify_catalogue(instance)] == [
        ("catalogue-row-unrecorded", f"unit {MISSING}"),
        ("catalogue-row-altered", f"claim {claim.id}")]
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM unit WHERE id = :id"), {"id": MISSING})
        conn.execute(text("UPDATE claim SET status = 'rejected'"))
        conn.execute(text("UPDATE catalogue_change SET actor = 'local:mallory' "
                          "WHERE change = 'reject'"))
    assert [(f.code, f.subject) for f in verify_catalogue(instance)] == [
        ("catalogue-change-mismatch", f"claim {claim.id}")]
    # The ledger itself is whole throughout; `sprava verify` reports the catalogue finding.
    assert [f.code for f in verify_instance(instance).findings] == ["catalogue-change-mismatch"]


def test_a_failed_write_leaves_no_trace(instance: Instance) -> None:
    person = persons.create_person(instance, {"name": "I"}, actor=ANNA)
    before = _leaves(instance)
    with pytest.raises(NotFoundError):
        claims.create_claim(instance, {
            "statement": "person_member_of_unit",
            "subject": {"kind": "person", "id": person.id},
            "object": {"kind": "unit", "id": MISSING}, "sources": ["ab" * 32],
            "confidence": "low"}, actor=ANNA)
    assert _leaves(instance) == before
    assert claims.list_claims(instance).total == 0
    _clean(instance)
