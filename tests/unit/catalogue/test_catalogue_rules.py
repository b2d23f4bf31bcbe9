"""Domain rules: status transitions, due process, state commitments, pages."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import rfc8785

from sprava.domain.catalogue import (
    INCIDENT_TRANSITIONS,
    STATEMENTS,
    Claim,
    ClaimStatus,
    Confidence,
    Effect,
    EntityKind,
    IncidentStatus,
    catalogue_event,
    check_claim_transition,
    check_incident_transition,
    check_page,
    check_review,
    claim_effect,
    membership_of,
    state_digest,
    view_event,
)
from sprava.domain.custody import decode_leaf
from sprava.errors import BadInputError, ConflictError

T = datetime(2024, 5, 1, tzinfo=UTC)
R, C, V = IncidentStatus.REPORTED, IncidentStatus.CORROBORATED, IncidentStatus.VERIFIED
ALLOWED = {(R, C), (C, V), (C, R), (V, C)}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(IncidentStatus,
                                                                        IncidentStatus)))
def test_incident_transitions(current: IncidentStatus, target: IncidentStatus) -> None:
    if (current, target) in ALLOWED:
        check_incident_transition(current, target, "a source was withdrawn")
    else:
        with pytest.raises(ConflictError, match=f"from {current} to {target}") as caught:
            check_incident_transition(current, target, "note")
        assert caught.value.code == "illegal-transition"
    assert {(a, b) for a, bs in INCIDENT_TRANSITIONS.items() for b in bs} == ALLOWED


@pytest.mark.parametrize(("current", "target"), [(C, R), (V, C)])
def test_a_step_back_needs_a_note(current: IncidentStatus, target: IncidentStatus) -> None:
    with pytest.raises(BadInputError) as caught:
        check_incident_transition(current, target, None)
    assert caught.value.code == "note-required"


def _claim(statement: str = "person_commanded_unit", status: ClaimStatus = ClaimStatus.DRAFT,
           author: str = "anna") -> Claim:
    rule = STATEMENTS[statement]
    return Claim(id="c1", salt="00" * 16, statement=statement, subject_kind=rule.subject,
                 subject_id="s1", object_kind=rule.object, object_id="o1", role=None,
                 valid_from=None, valid_to=None, sources=("ab" * 32,),
                 confidence=Confidence.MEDIUM, comment=None, status=status, author=author,
                 reviewer=None, review_reason=None, reviewed_at=None, created_at=T,
                 updated_at=T)


@pytest.mark.parametrize("statement", sorted(STATEMENTS))
@pytest.mark.parametrize("status", list(ClaimStatus))
def test_claim_effect(statement: str, status: ClaimStatus) -> None:
    person = STATEMENTS[statement].subject is EntityKind.PERSON
    expected = {
        ClaimStatus.DRAFT: Effect.NONE,
        ClaimStatus.PENDING_REVIEW: Effect.NONE if person else Effect.REPORTED,
        ClaimStatus.APPROVED: Effect.REVIEWED,
        ClaimStatus.REJECTED: Effect.NONE,
    }[status]
    assert claim_effect(statement, status) is expected
    assert _claim(statement, status).effective is (expected is not Effect.NONE)
    assert _claim(statement, status).links_person is person


def test_person_statements_are_exactly_those_with_a_person_subject() -> None:
    persons = {n for n, s in STATEMENTS.items() if s.subject is EntityKind.PERSON}
    assert {"person_committed_act", "person_member_of_unit", "person_commanded_unit"} <= persons
    assert all(n.startswith("person_") for n in persons)


@pytest.mark.parametrize(("status", "change", "target"), [
    (ClaimStatus.DRAFT, "submit", ClaimStatus.PENDING_REVIEW),
    (ClaimStatus.PENDING_REVIEW, "withdraw", ClaimStatus.DRAFT),
    (ClaimStatus.PENDING_REVIEW, "approve", ClaimStatus.APPROVED),
    (ClaimStatus.PENDING_REVIEW, "reject", ClaimStatus.REJECTED),
])
def test_claim_transitions(status: ClaimStatus, change: str, target: ClaimStatus) -> None:
    assert check_claim_transition(_claim(status=status), change) is target


@pytest.mark.parametrize(("status", "change"), [
    (ClaimStatus.DRAFT, "approve"), (ClaimStatus.DRAFT, "reject"),
    (ClaimStatus.DRAFT, "withdraw"), (ClaimStatus.APPROVED, "reject"),
    (ClaimStatus.APPROVED, "withdraw"), (ClaimStatus.REJECTED, "approve"),
    (ClaimStatus.REJECTED, "submit"), (ClaimStatus.PENDING_REVIEW, "submit"),
])
def test_final_and_out_of_order_claim_changes_are_refused(status: ClaimStatus,
                                                          change: str) -> None:
    with pytest.raises(ConflictError) as caught:
        check_claim_transition(_claim(status=status), change)
    assert caught.value.code == "illegal-transition"


def test_review_by_author_or_editor_is_refused() -> None:
    claim = _claim(status=ClaimStatus.PENDING_REVIEW)
    for reviewer, contributors in (("anna", set()), ("boris", {"anna", "boris"})):
        with pytest.raises(ConflictError, match="cannot review it") as caught:
            check_review(claim, reviewer, contributors)
        assert caught.value.code == "self-review"
    check_review(claim, "carol", {"anna", "boris"})


def test_membership_of_a_command_claim() -> None:
    claim = replace(_claim(status=ClaimStatus.APPROVED), valid_from="2019", valid_to="2021")
    membership = membership_of(claim)
    assert (membership.role, membership.valid_from, membership.effect) == (
        "commander", "2019", Effect.REVIEWED)
    member = replace(claim, statement="person_member_of_unit", role=None)
    assert membership_of(member).role == "member"


def test_state_digest_is_sha256_of_canonical_json() -> None:
    state = {"b": [1, "Мінск"], "a": None, "c": 0.5}
    assert state_digest(state) == hashlib.sha256(rfc8785.dumps(state)).hexdigest()
    assert state_digest(dict(reversed(list(state.items())))) == state_digest(state)


def test_salt_hides_the_state() -> None:
    """Two records identical but for the salt commit to unrelated digests, so nobody can
    confirm a guessed name from the ledger alone."""
    one = _claim().state()
    other = {**one, "salt": "11" * 16}
    assert state_digest(one) != state_digest(other)


def test_events_carry_no_state_only_its_digest() -> None:
    leaf = catalogue_event(change="create", entity="person", entity_id="p1",
                           state_sha256="cd" * 32, actor="anna", time=T).to_leaf()
    assert set(decode_leaf(leaf)) == {"v", "kind", "time", "actor", "change", "entity", "id",
                                      "state_sha256"}
    viewed = decode_leaf(view_event(entity="person", ids=["p2", "p1"], actor="carol",
                                    time=T).to_leaf())
    assert (viewed["change"], viewed["ids"], viewed["actor"]) == ("view", ["p1", "p2"], "carol")
    assert "sha256" not in viewed  # catalogue events are not item events


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (501, 0), (10, -1), (True, 0), (1.5, 0)])
def test_bad_pages(limit: object, offset: object) -> None:
    with pytest.raises(BadInputError) as caught:
        check_page(limit, offset)  # type: ignore[arg-type]
    assert caught.value.code == "bad-page"
