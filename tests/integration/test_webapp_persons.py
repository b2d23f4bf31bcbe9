"""Claims about a person from their page, in process, on SQLite and PostgreSQL: only the
roles that see persons and write the catalogue make them, each showing of the page is on
the record, a refusal is placed next to its field with nothing stored, and a claim goes
to the review queue for a second person."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_webapp import _browser, _ledger_size, _photo, login

from conftest import Api, make_api
from sprava.catalogue import acts, claims, incidents, persons, units
from sprava.instance import Instance
from sprava.store.ingest import Ingestor


@pytest.fixture
def web(instance: Instance) -> Iterator[Api]:
    harness = make_api(instance)
    try:
        yield harness
    finally:
        harness.client.close()  # type: ignore[attr-defined]


def _world(instance: Instance) -> dict[str, str]:
    sha = Ingestor(instance, actor="user:investigator").ingest_chunks(
        b"badge.jpg", iter([_photo((40, 40, 40))])).sha256
    assert sha is not None
    unit = units.create_unit(instance, {"names": {"en": "Minsk OMON"},
                                        "type": "riot police"}, actor="local:test").id
    found = incidents.create_incident(instance, {
        "title": "Dispersal on Nemiga", "start": "2020-08-09T23:10:00+03:00",
        "place": {"name": "Minsk"}}, actor="local:test").id
    act = acts.create_act(instance, {"incident_id": found, "type": "beating",
                                     "evidence": [sha]}, actor="local:test").id
    person = persons.create_person(instance, {"name": "Officer Example", "rank": "captain"},
                                   actor="local:test").id
    return {"sha": sha, "unit": unit, "incident": found, "act": act, "person": person}


def test_a_claim_about_a_person_goes_to_review_from_their_page(web: Api) -> None:
    world = _world(web.instance)
    address = f"/persons/{world['person']}"
    client = _browser(web)
    csrf = login(client, "investigator")
    size = _ledger_size(web.instance)
    page = client.get(address)
    assert f'action="{address}/claims"' in page.text
    assert "Dispersal on Nemiga · Beating" in page.text  # the act, by incident and type
    assert _ledger_size(web.instance) == size + 1  # the view is on the record

    no_source = client.post(f"{address}/claims", data={
        "csrf": csrf, "statement": "person_member_of_unit", "unit_id": world["unit"],
        "role": "driver", "confidence": "medium"})
    assert no_source.status_code == 422
    assert 'id="sources-error"' in no_source.text
    assert 'value="driver"' in no_source.text  # what was typed stays
    assert _ledger_size(web.instance) == size + 2  # shown again: recorded again
    no_incident = client.post(f"{address}/claims", data={
        "csrf": csrf, "statement": "person_present_at_incident", "sources": world["sha"],
        "confidence": "high"})
    assert no_incident.status_code == 422
    assert 'id="incident_id-error"' in no_incident.text
    commander_role = client.post(f"{address}/claims", data={
        "csrf": csrf, "statement": "person_commanded_unit", "unit_id": world["unit"],
        "role": "driver", "sources": world["sha"], "confidence": "high"})
    assert commander_role.status_code == 422
    assert 'id="role-error"' in commander_role.text
    unknown = client.post(f"{address}/claims", data={
        "csrf": csrf, "statement": "person_committed_act", "act_id": world["incident"],
        "sources": world["sha"], "confidence": "low"})
    assert unknown.status_code == 404
    assert 'id="act_id-error"' in unknown.text
    assert claims.list_claims(web.instance).total == 0  # nothing stored

    made = client.post(f"{address}/claims", data={
        "csrf": csrf, "statement": "person_member_of_unit", "unit_id": world["unit"],
        "role": "driver", "valid_from": "2019", "sources": world["sha"],
        "confidence": "medium", "comment": "Badge 0417 visible."})
    assert made.status_code == 303, made.text
    assert made.headers["location"].startswith(f"{address}?claim=submitted")
    acted = client.post(f"{address}/claims", data={
        "csrf": csrf, "statement": "person_committed_act", "act_id": world["act"],
        "sources": world["sha"], "confidence": "low"})
    assert acted.status_code == 303
    pending = claims.list_claims(web.instance, status="pending_review").items
    assert sorted((c.statement, c.object_id, c.author) for c in pending) == sorted([
        ("person_member_of_unit", world["unit"], "user:investigator"),
        ("person_committed_act", world["act"], "user:investigator")])
    member = next(c for c in pending if c.statement == "person_member_of_unit")
    assert (member.subject_id, member.role, member.valid_from, member.confidence) == (
        world["person"], "driver", "2019", "medium")
    assert "The claim was submitted for review." in client.get(made.headers["location"]).text

    own = client.post(f"/review/{member.id}", data={"csrf": csrf, "decision": "approve"})
    assert own.status_code == 403  # no review rights, and the author besides
    reviewer = _browser(web)
    token = login(reviewer, "coordinator")
    assert f'action="/review/{member.id}"' in reviewer.get("/review").text  # queued
    approved = reviewer.post(f"/review/{member.id}", data={
        "csrf": token, "decision": "approve", "reason": "The badge matches."})
    assert approved.status_code == 303
    assert claims.get_claim(web.instance, member.id).status == "approved"


def test_only_roles_that_see_persons_and_write_may_claim_about_one(web: Api) -> None:
    world = _world(web.instance)
    address = f"/persons/{world['person']}"
    form = {"statement": "person_present_at_incident", "incident_id": world["incident"],
            "sources": world["sha"], "confidence": "high"}
    for role in ("viewer", "uploader"):
        client = _browser(web)
        csrf = login(client, role)
        assert client.get(address).status_code == 403, role
        assert client.post(f"{address}/claims", data={**form, "csrf": csrf}
                           ).status_code == 403, role
    investigator = _browser(web)
    login(investigator, "investigator")
    assert investigator.post(f"{address}/claims", data=form).status_code == 403  # no CSRF
    missing = investigator.get(f"/persons/{'0' * 8}-0000-4000-8000-{'0' * 12}")
    assert missing.status_code == 404
    assert claims.list_claims(web.instance).total == 0
