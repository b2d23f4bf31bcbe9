"""Due process on each real database: a claim that ties a person to an act or a unit counts
only once a second user with review rights approved it; nobody reviews their own claim;
a rejection keeps the claim and its reason; every step is on the custody record."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sprava.audit import verify_instance
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import ledger_leaf
from sprava.catalogue import acts, cases, claims, incidents, persons, units
from sprava.catalogue.verify import verify_catalogue
from sprava.domain.catalogue import Claim, ClaimStatus, Confidence, Effect, state_digest
from sprava.domain.custody import decode_leaf
from sprava.errors import SpravaError
from sprava.instance import Instance
from sprava.store.ingest import Ingestor

ANNA, BORIS, CAROL = "local:anna", "local:boris", "local:carol"
REVIEWERS = claims.Reviewers(frozenset({ANNA, BORIS}))  # carol may not review
MISSING = "00000000-0000-4000-8000-000000000000"


@dataclass
class World:
    instance: Instance
    sources: list[str]
    incident: str
    act: str
    unit: str
    person: str

    def claim(self, statement: str = "person_commanded_unit", *, actor: str = ANNA,
              submit: bool = True, **extra: Any) -> Claim:
        subject, obj = {
            "person_commanded_unit": (("person", self.person), ("unit", self.unit)),
            "person_member_of_unit": (("person", self.person), ("unit", self.unit)),
            "person_committed_act": (("person", self.person), ("act", self.act)),
            "unit_committed_act": (("unit", self.unit), ("act", self.act)),
            "unit_present_at_incident": (("unit", self.unit), ("incident", self.incident)),
        }[statement]
        return claims.create_claim(self.instance, {
            "statement": statement, "subject": {"kind": subject[0], "id": subject[1]},
            "object": {"kind": obj[0], "id": obj[1]}, "sources": self.sources[:1],
            "confidence": "medium", **extra}, actor=actor, submit=submit)


@pytest.fixture
def world(instance: Instance, tmp_path: Path) -> World:
    folder = tmp_path / "evidence"
    folder.mkdir()
    for i in range(2):
        (folder / f"{i}.bin").write_bytes(f"video {i}".encode() * 100)
    seen: list[str] = []
    ingestor = Ingestor(instance)
    ingestor.run(ingestor.plan([os.fsencode(folder)]), lambda r: seen.append(r.sha256 or ""))
    inc = incidents.create_incident(instance, {
        "title": "Okrestina", "start": "2020-08-12T00:00:00+03:00",
        "place": {"name": "Okrestina detention centre", "admin_area": "Minsk"}}, actor=ANNA)
    act = acts.create_act(instance, {"incident_id": inc.id, "type": "torture-ill-treatment"},
                          actor=ANNA)
    unit = units.create_unit(instance, {"names": {"en": "Detention centre staff"},
                                        "type": "detention centre"}, actor=ANNA)
    person = persons.create_person(instance, {"name": "S. Sidorov", "rank": "captain"},
                                   actor=ANNA)
    return World(instance, sorted(seen), inc.id, act.id, unit.id, person.id)


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(SpravaError) as caught:
        call()
    return caught.value.code


def _claim_events(instance: Instance, claim_id: str) -> list[dict[str, Any]]:
    with read_transaction(instance.engine) as conn:
        rows = conn.execute(select(ledger_leaf.c.data).where(ledger_leaf.c.kind == "catalogue")
                            .order_by(ledger_leaf.c.idx)).scalars()
        return [b for b in (decode_leaf(bytes(d)) for d in rows) if b.get("id") == claim_id]


def _clean(instance: Instance) -> None:
    report = verify_instance(instance)
    assert report.ok, report.findings
    assert verify_catalogue(instance) == []


@pytest.mark.parametrize("statement", [
    "person_commanded_unit", "person_member_of_unit", "person_committed_act"])
def test_a_person_claim_counts_only_after_a_second_reviewer(world: World,
                                                            statement: str) -> None:
    instance = world.instance
    claim = world.claim(statement, submit=False)
    assert (claim.status, claim.effect, claim.author) == (ClaimStatus.DRAFT, Effect.NONE, ANNA)
    claim = claims.submit_claim(instance, claim.id, actor=ANNA)
    assert (claim.status, claim.effect) == (ClaimStatus.PENDING_REVIEW, Effect.NONE)
    assert claims.list_claims(instance, about=world.person, effective_only=True).total == 0
    assert claims.list_memberships(instance, person_id=world.person).total == 0

    assert _code(lambda: claims.approve_claim(instance, claim.id, actor=ANNA,
                                              rights=REVIEWERS)) == "self-review"
    assert _code(lambda: claims.approve_claim(instance, claim.id, actor=CAROL,
                                              rights=REVIEWERS)) == "no-review-rights"
    approved = claims.approve_claim(instance, claim.id, actor=BORIS, rights=REVIEWERS,
                                    reason="badge 0451 is legible at 00:41")
    assert (approved.status, approved.effect, approved.reviewer, approved.review_reason) == (
        ClaimStatus.APPROVED, Effect.REVIEWED, BORIS, "badge 0451 is legible at 00:41")
    assert approved.reviewed_at is not None
    assert claims.get_claim(instance, claim.id) == approved
    assert [c.id for c in claims.list_claims(instance, about=world.person,
                                             effective_only=True).items] == [claim.id]
    if statement != "person_committed_act":
        memberships = claims.list_memberships(instance, unit_id=world.unit).items
        assert [(m.person_id, m.claim_id, m.effect) for m in memberships] == [
            (world.person, claim.id, Effect.REVIEWED)]

    events = _claim_events(instance, claim.id)
    assert [(e["change"], e["actor"]) for e in events] == [
        ("create", ANNA), ("submit", ANNA), ("approve", BORIS)]
    assert events[-1]["state_sha256"] == state_digest(approved.state())
    _clean(instance)


def test_anyone_who_edited_a_claim_cannot_review_it(world: World) -> None:
    instance = world.instance
    claim = world.claim(submit=False)
    edited = claims.update_claim(instance, claim.id, {"confidence": "high",
                                                      "valid_from": "2020-08"}, actor=BORIS)
    assert (edited.confidence, edited.valid_from, edited.author) == (
        Confidence.HIGH, "2020-08", ANNA)
    claims.submit_claim(instance, claim.id, actor=ANNA)
    for editor in (ANNA, BORIS):
        assert _code(lambda e=editor: claims.approve_claim(  # type: ignore[misc]
            instance, claim.id, actor=e, rights=REVIEWERS)) == "self-review"
        assert _code(lambda e=editor: claims.reject_claim(  # type: ignore[misc]
            instance, claim.id, actor=e, rights=REVIEWERS, reason="no")) == "self-review"
    dina = claims.Reviewers(frozenset({"local:dina"}))
    assert claims.approve_claim(instance, claim.id, actor="local:dina",
                                rights=dina).status is ClaimStatus.APPROVED
    _clean(instance)


def test_rejection_keeps_the_claim_and_its_reason(world: World) -> None:
    instance = world.instance
    claim = world.claim("person_committed_act")
    assert _code(lambda: claims.reject_claim(instance, claim.id, actor=BORIS,
                                             rights=REVIEWERS, reason="  ")) == "reason-required"
    rejected = claims.reject_claim(instance, claim.id, actor=BORIS, rights=REVIEWERS,
                                   reason="the face is not visible; the badge is another's")
    kept = claims.get_claim(instance, claim.id)
    assert kept == rejected
    assert (kept.status, kept.effect, kept.reviewer, kept.review_reason) == (
        ClaimStatus.REJECTED, Effect.NONE, BORIS,
        "the face is not visible; the badge is another's")
    assert claims.list_claims(instance, status="rejected").items == (kept,)
    # final: neither approved later, nor edited, nor re-submitted
    assert _code(lambda: claims.approve_claim(instance, claim.id, actor=BORIS,
                                              rights=REVIEWERS)) == "illegal-transition"
    assert _code(lambda: claims.update_claim(instance, claim.id, {"confidence": "high"},
                                             actor=ANNA)) == "claim-not-editable"
    assert _code(lambda: claims.submit_claim(instance, claim.id, actor=ANNA)) == (
        "illegal-transition")
    assert [e["change"] for e in _claim_events(instance, claim.id)] == ["create", "reject"]
    _clean(instance)


def test_a_unit_claim_counts_as_reported_without_review(world: World) -> None:
    instance = world.instance
    draft = world.claim("unit_present_at_incident", submit=False)
    assert draft.effect is Effect.NONE
    pending = claims.submit_claim(instance, draft.id, actor=ANNA)
    assert pending.effect is Effect.REPORTED
    assert claims.list_claims(instance, about=world.incident, effective_only=True).total == 1
    case = cases.create_case(instance, {"title": "t", "recipient": "r",
                                        "claims": [pending.id]}, actor=ANNA)
    assert case.claim_ids == (pending.id,)
    approved = claims.approve_claim(instance, draft.id, actor=BORIS, rights=REVIEWERS)
    assert approved.effect is Effect.REVIEWED
    assert _code(lambda: claims.approve_claim(instance, draft.id, actor=BORIS,
                                              rights=REVIEWERS)) == "illegal-transition"
    _clean(instance)


def test_only_a_draft_is_edited_and_a_withdrawn_claim_is_a_draft_again(world: World) -> None:
    instance = world.instance
    claim = world.claim("person_member_of_unit", role="driver")
    assert _code(lambda: claims.update_claim(instance, claim.id, {"role": "commander"},
                                             actor=ANNA)) == "claim-not-editable"
    assert _code(lambda: claims.approve_claim(instance, MISSING, actor=BORIS,
                                              rights=REVIEWERS)) == "claim-not-found"
    withdrawn = claims.withdraw_claim(instance, claim.id, actor=ANNA)
    assert withdrawn.status is ClaimStatus.DRAFT
    assert _code(lambda: claims.approve_claim(instance, claim.id, actor=BORIS,
                                              rights=REVIEWERS)) == "illegal-transition"
    edited = claims.update_claim(instance, claim.id, {
        "role": "deputy commander", "sources": world.sources, "comment": "two videos"},
        actor=ANNA)
    assert (edited.role, edited.sources) == ("deputy commander", tuple(world.sources))
    same = claims.update_claim(instance, claim.id, {"role": "deputy commander"}, actor=BORIS)
    assert same == edited  # nothing changed, so boris is no contributor
    assert _code(lambda: claims.update_claim(instance, claim.id, {"sources": ["cd" * 32]},
                                             actor=ANNA)) == "item-not-found"
    claims.submit_claim(instance, claim.id, actor=ANNA)
    approved = claims.approve_claim(instance, claim.id, actor=BORIS, rights=REVIEWERS)
    membership = claims.list_memberships(instance, person_id=world.person).items
    assert [(m.role, m.claim_id) for m in membership] == [("deputy commander", approved.id)]
    assert [e["change"] for e in _claim_events(instance, claim.id)] == [
        "create", "withdraw", "update", "submit", "approve"]
    _clean(instance)


def test_claims_must_name_what_exists(world: World) -> None:
    instance = world.instance

    def make(subject: tuple[str, str], obj: tuple[str, str], sources: list[str]) -> Any:
        return lambda: claims.create_claim(instance, {
            "statement": "person_commanded_unit", "subject": {"kind": subject[0],
                                                              "id": subject[1]},
            "object": {"kind": obj[0], "id": obj[1]}, "sources": sources,
            "confidence": "low"}, actor=ANNA)

    assert _code(make(("person", MISSING), ("unit", world.unit), world.sources)) == (
        "person-not-found")
    assert _code(make(("person", world.person), ("unit", MISSING), world.sources)) == (
        "unit-not-found")
    assert _code(make(("person", world.person), ("unit", world.unit), ["ef" * 32])) == (
        "item-not-found")
    assert _code(make(("person", world.person), ("unit", world.unit), [])) == (
        "sources-required")
    assert _code(make(("unit", world.unit), ("unit", world.unit), world.sources)) == (
        "statement-mismatch")
    assert claims.list_claims(instance).total == 0


def test_claim_lists_page_and_filter(world: World) -> None:
    instance = world.instance
    made = [world.claim("unit_present_at_incident", submit=i % 2 == 0) for i in range(5)]
    page = claims.list_claims(instance, limit=2, offset=2)
    assert (page.total, [c.id for c in page.items]) == (5, [made[2].id, made[3].id])
    assert claims.list_claims(instance, status="draft").total == 2
    assert claims.list_claims(instance, statement="unit_present_at_incident").total == 5
    assert claims.list_claims(instance, statement="person_committed_act").total == 0
    assert _code(lambda: claims.list_claims(instance, status="final")) == "bad-choice"
    assert _code(lambda: claims.list_claims(instance, about="nope")) == "bad-id"
    assert _code(lambda: claims.list_claims(instance, limit=501)) == "bad-page"
