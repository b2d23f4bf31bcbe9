"""Incidents, acts, units, persons, claims and their review, cases, the vocabulary.

Thin: each endpoint checks the role, then calls the catalogue service that the CLI and
the tests use; input is checked there (red-line fields included: 422 with the reason).
Persons are restricted: only roles with :attr:`Capability.PERSONS` see them, or claims
that name them, and every read of a person is a custody event naming the reader.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.api.deps import NO_CONTROL, InstanceDep, PagingDep, needs
from sprava.api.models import CONFLICT, ChangeOut, PageOut
from sprava.catalogue import acts, cases, claims, incidents, persons, schema, units, vocabulary
from sprava.catalogue.history import changes
from sprava.domain.catalogue import (
    Act,
    Case,
    Claim,
    EntityKind,
    Incident,
    Membership,
    Page,
    Person,
    Term,
    Unit,
)
from sprava.errors import NotFoundError

router = APIRouter()
Reader = Annotated[Principal, Depends(needs(Capability.CATALOGUE_READ))]
Writer = Annotated[Principal, Depends(needs(Capability.CATALOGUE_WRITE))]
PersonsRole = Annotated[Principal, Depends(needs(Capability.PERSONS))]
Vocab = Annotated[Principal, Depends(needs(Capability.VOCABULARY))]
JSONObject = Annotated[dict[str, Any], Body()]
Text = Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL)]


def page_out(page: Page[Any]) -> dict[str, Any]:
    return {"items": list(page.items), "total": page.total, "limit": page.limit,
            "offset": page.offset}


def _history(instance: Any, entity: EntityKind, entity_id: str, paging: Any) -> Any:
    entity_id = schema.entity_id(entity_id, "id")
    return page_out(changes(instance, entity.value, entity_id, limit=paging.limit,
                            offset=paging.offset))


# --- incidents ---------------------------------------------------------------------------

@router.get("/incidents", response_model=PageOut[Incident], tags=["incidents"])
def list_incidents(instance: InstanceDep, principal: Reader, paging: PagingDep,
                   status: Text = None, violation_type: Text = None,
                   since: datetime | None = None, until: datetime | None = None) -> Any:
    """Incidents, latest start first; by status, violation type, start in [since, until)."""
    return page_out(incidents.list_incidents(
        instance, status=status, violation_type=violation_type,
        since=schema.moment(since.isoformat(), "since") if since else None,
        until=schema.moment(until.isoformat(), "until") if until else None,
        limit=paging.limit, offset=paging.offset))


@router.post("/incidents", response_model=Incident, status_code=201, tags=["incidents"])
def create_incident(instance: InstanceDep, principal: Writer, body: JSONObject) -> Any:
    """``{"title", "start", "end"?, "description"?, "place": {"name", "admin_area"?,
    "lat"?, "lon"?, "precision_m"?}, "violation_types"?: [code]}``"""
    return incidents.create_incident(instance, body, actor=principal.actor)


@router.get("/incidents/{incident_id}", response_model=Incident, tags=["incidents"])
def get_incident(instance: InstanceDep, principal: Reader, incident_id: str) -> Any:
    return incidents.get_incident(instance, incident_id)


@router.patch("/incidents/{incident_id}", response_model=Incident, tags=["incidents"])
def update_incident(instance: InstanceDep, principal: Writer, incident_id: str,
                    body: JSONObject) -> Any:
    return incidents.update_incident(instance, schema.entity_id(incident_id, "incident_id"),
                                     body, actor=principal.actor)


@router.post("/incidents/{incident_id}/status", response_model=Incident, tags=["incidents"],
             responses=CONFLICT)
def set_incident_status(instance: InstanceDep, principal: Writer, incident_id: str,
                        body: JSONObject) -> Any:
    """``{"status", "note"?}``: reported → corroborated → verified; a step back needs a
    note."""
    values = schema.fields(body, "status", {"status", "note"}, required={"status"})
    return incidents.set_incident_status(
        instance, schema.entity_id(incident_id, "incident_id"), values["status"],
        actor=principal.actor, note=values.get("note"))


@router.get("/incidents/{incident_id}/history", response_model=PageOut[ChangeOut],
            tags=["incidents"])
def incident_history(instance: InstanceDep, principal: Reader, incident_id: str,
                     paging: PagingDep) -> Any:
    return _history(instance, EntityKind.INCIDENT, incident_id, paging)


# --- acts --------------------------------------------------------------------------------

@router.get("/acts", response_model=PageOut[Act], tags=["acts"])
def list_acts(instance: InstanceDep, principal: Reader, paging: PagingDep,
              incident_id: Text = None, type: Text = None) -> Any:
    return page_out(acts.list_acts(
        instance, incident_id=schema.entity_id(incident_id, "incident_id")
        if incident_id else None, type=type, limit=paging.limit, offset=paging.offset))


@router.post("/acts", response_model=Act, status_code=201, tags=["acts"])
def create_act(instance: InstanceDep, principal: Writer, body: JSONObject) -> Any:
    return acts.create_act(instance, body, actor=principal.actor)


@router.get("/acts/{act_id}", response_model=Act, tags=["acts"])
def get_act(instance: InstanceDep, principal: Reader, act_id: str) -> Any:
    return acts.get_act(instance, act_id)


@router.patch("/acts/{act_id}", response_model=Act, tags=["acts"])
def update_act(instance: InstanceDep, principal: Writer, act_id: str, body: JSONObject) -> Any:
    return acts.update_act(instance, schema.entity_id(act_id, "act_id"), body,
                           actor=principal.actor)


@router.get("/acts/{act_id}/history", response_model=PageOut[ChangeOut], tags=["acts"])
def act_history(instance: InstanceDep, principal: Reader, act_id: str,
                paging: PagingDep) -> Any:
    return _history(instance, EntityKind.ACT, act_id, paging)


# --- units -------------------------------------------------------------------------------

@router.get("/units", response_model=PageOut[Unit], tags=["units"])
def list_units(instance: InstanceDep, principal: Reader, paging: PagingDep,
               parent_id: Text = None, top_level: bool = False) -> Any:
    return page_out(units.list_units(
        instance, parent_id=schema.entity_id(parent_id, "parent_id") if parent_id else None,
        top_level=top_level, limit=paging.limit, offset=paging.offset))


@router.post("/units", response_model=Unit, status_code=201, tags=["units"])
def create_unit(instance: InstanceDep, principal: Writer, body: JSONObject) -> Any:
    return units.create_unit(instance, body, actor=principal.actor)


@router.get("/units/{unit_id}", response_model=Unit, tags=["units"])
def get_unit(instance: InstanceDep, principal: Reader, unit_id: str) -> Any:
    return units.get_unit(instance, unit_id)


@router.patch("/units/{unit_id}", response_model=Unit, tags=["units"], responses=CONFLICT)
def update_unit(instance: InstanceDep, principal: Writer, unit_id: str,
                body: JSONObject) -> Any:
    return units.update_unit(instance, schema.entity_id(unit_id, "unit_id"), body,
                             actor=principal.actor)


@router.get("/units/{unit_id}/history", response_model=PageOut[ChangeOut], tags=["units"])
def unit_changes(instance: InstanceDep, principal: Reader, unit_id: str,
                 paging: PagingDep) -> Any:
    return _history(instance, EntityKind.UNIT, unit_id, paging)


@router.get("/units/{unit_id}/timeline", response_model=dict[str, Any], tags=["units"])
def unit_timeline(instance: InstanceDep, principal: Reader, unit_id: str,
                  paging: PagingDep, include_unreviewed: bool = False) -> Any:
    """The unit, its parents, its superiors and (for roles that see persons) its
    commanders over time, approved claims only unless ``include_unreviewed``."""
    found = units.unit_history(instance, unit_id, include_unreviewed=include_unreviewed,
                               limit=paging.limit, offset=paging.offset)
    commanders = (page_out(found.commanders) if principal.can(Capability.PERSONS)
                  else {"items": [], "total": 0, "limit": paging.limit,
                        "offset": paging.offset})
    return {"unit": found.unit, "ancestors": list(found.ancestors),
            "superiors": list(found.superiors), "commanders": commanders}


# --- persons (restricted) ----------------------------------------------------------------

@router.get("/persons", response_model=PageOut[Person], tags=["persons"])
def list_persons(instance: InstanceDep, principal: PersonsRole, paging: PagingDep,
                 identifier: Text = None) -> Any:
    """Persons by name; each person listed is a recorded view."""
    return page_out(persons.list_persons(instance, actor=principal.actor,
                                         identifier=identifier, limit=paging.limit,
                                         offset=paging.offset))


@router.post("/persons", response_model=Person, status_code=201, tags=["persons"])
def create_person(instance: InstanceDep, principal: PersonsRole, body: JSONObject) -> Any:
    """``{"name", "rank"?, "role"?, "identifiers"?: [{"kind", "value"}]}``. There is no
    field for an address, a phone, a relative or a private account, and never will be."""
    return persons.create_person(instance, body, actor=principal.actor)


@router.get("/persons/{person_id}", response_model=Person, tags=["persons"])
def get_person(instance: InstanceDep, principal: PersonsRole, person_id: str) -> Any:
    """One person; the read is a custody event naming the reader."""
    return persons.get_person(instance, person_id, actor=principal.actor)


@router.patch("/persons/{person_id}", response_model=Person, tags=["persons"])
def update_person(instance: InstanceDep, principal: PersonsRole, person_id: str,
                  body: JSONObject) -> Any:
    return persons.update_person(instance, schema.entity_id(person_id, "person_id"), body,
                                 actor=principal.actor)


@router.get("/persons/{person_id}/history", response_model=PageOut[ChangeOut],
            tags=["persons"])
def person_history(instance: InstanceDep, principal: PersonsRole, person_id: str,
                   paging: PagingDep) -> Any:
    return _history(instance, EntityKind.PERSON, person_id, paging)


@router.get("/memberships", response_model=PageOut[Membership], tags=["persons"])
def list_memberships(instance: InstanceDep, principal: PersonsRole, paging: PagingDep,
                     unit_id: Text = None, person_id: Text = None,
                     commanders_only: bool = False, include_unreviewed: bool = False) -> Any:
    return page_out(claims.list_memberships(
        instance, unit_id=schema.entity_id(unit_id, "unit_id") if unit_id else None,
        person_id=schema.entity_id(person_id, "person_id") if person_id else None,
        commanders_only=commanders_only, include_unreviewed=include_unreviewed,
        limit=paging.limit, offset=paging.offset))


# --- claims and review -------------------------------------------------------------------

def _names_person(c: Claim) -> bool:
    return EntityKind.PERSON in (c.subject_kind, c.object_kind)


def _claim_for(principal: Principal, found: Claim) -> Claim:
    if _names_person(found) and not principal.can(Capability.PERSONS):
        raise NotFoundError(f"no claim {found.id}", code="claim-not-found")
    return found


def _rights(principal: Principal) -> claims.Reviewers:
    return claims.Reviewers(frozenset({principal.actor} if principal.account.may_review
                                      else ()))


@router.get("/claims", response_model=PageOut[Claim], tags=["claims"])
def list_claims(instance: InstanceDep, principal: Reader, paging: PagingDep,
                statement: Text = None, status: Text = None, about: Text = None,
                effective_only: bool = False) -> Any:
    """Claims, oldest first (those naming persons only for roles that see persons)."""
    return page_out(claims.list_claims(
        instance, statement=statement, status=status, about=about,
        effective_only=effective_only, persons=principal.can(Capability.PERSONS),
        limit=paging.limit, offset=paging.offset))


@router.post("/claims", response_model=Claim, status_code=201, tags=["claims"])
def create_claim(instance: InstanceDep, principal: Writer, body: JSONObject,
                 submit: bool = False) -> Any:
    """``{"statement", "subject": {"kind", "id"}, "object": {"kind", "id"}, "sources":
    [sha256], "confidence", "role"?, "valid_from"?, "valid_to"?, "comment"?}``; a draft,
    or pending review at once with ``?submit=true``."""
    return claims.create_claim(instance, body, actor=principal.actor, submit=submit)


@router.get("/claims/{claim_id}", response_model=Claim, tags=["claims"])
def get_claim(instance: InstanceDep, principal: Reader, claim_id: str) -> Any:
    return _claim_for(principal, claims.get_claim(instance, claim_id))


@router.patch("/claims/{claim_id}", response_model=Claim, tags=["claims"], responses=CONFLICT)
def update_claim(instance: InstanceDep, principal: Writer, claim_id: str,
                 body: JSONObject) -> Any:
    """Edit a draft."""
    return claims.update_claim(instance, schema.entity_id(claim_id, "claim_id"), body,
                               actor=principal.actor)


@router.post("/claims/{claim_id}/submit", response_model=Claim, tags=["claims"],
             responses=CONFLICT)
def submit_claim(instance: InstanceDep, principal: Writer, claim_id: str) -> Any:
    return claims.submit_claim(instance, schema.entity_id(claim_id, "claim_id"),
                               actor=principal.actor)


@router.post("/claims/{claim_id}/withdraw", response_model=Claim, tags=["claims"],
             responses=CONFLICT)
def withdraw_claim(instance: InstanceDep, principal: Writer, claim_id: str) -> Any:
    return claims.withdraw_claim(instance, schema.entity_id(claim_id, "claim_id"),
                                 actor=principal.actor)


@router.post("/claims/{claim_id}/approve", response_model=Claim, tags=["claims"],
             responses=CONFLICT)
def approve_claim(instance: InstanceDep, principal: Writer, claim_id: str,
                  body: Annotated[dict[str, Any] | None, Body()] = None) -> Any:
    """Approve as the second pair of eyes (``{"reason"?}``): needs review rights, and is
    refused to anyone who wrote or edited the claim."""
    values = schema.fields(body or {}, "review", {"reason"})
    return claims.approve_claim(instance, schema.entity_id(claim_id, "claim_id"),
                                actor=principal.actor, rights=_rights(principal),
                                reason=values.get("reason"))


@router.post("/claims/{claim_id}/reject", response_model=Claim, tags=["claims"],
             responses=CONFLICT)
def reject_claim(instance: InstanceDep, principal: Writer, claim_id: str,
                 body: JSONObject) -> Any:
    """Reject with ``{"reason"}``; the claim and the reason are kept."""
    values = schema.fields(body, "review", {"reason"}, required={"reason"})
    return claims.reject_claim(instance, schema.entity_id(claim_id, "claim_id"),
                               actor=principal.actor, rights=_rights(principal),
                               reason=values["reason"])


@router.get("/claims/{claim_id}/history", response_model=PageOut[ChangeOut], tags=["claims"])
def claim_history(instance: InstanceDep, principal: Reader, claim_id: str,
                  paging: PagingDep) -> Any:
    _claim_for(principal, claims.get_claim(instance, claim_id))
    return _history(instance, EntityKind.CLAIM, claim_id, paging)


# --- cases -------------------------------------------------------------------------------

@router.get("/cases", response_model=PageOut[Case], tags=["cases"])
def list_cases(instance: InstanceDep, principal: Writer, paging: PagingDep) -> Any:
    return page_out(cases.list_cases(instance, limit=paging.limit, offset=paging.offset))


@router.post("/cases", response_model=Case, status_code=201, tags=["cases"],
             responses=CONFLICT)
def create_case(instance: InstanceDep, principal: Writer, body: JSONObject) -> Any:
    """``{"title", "recipient", "description"?, "incidents"?, "claims"?, "items"?}``"""
    return cases.create_case(instance, body, actor=principal.actor)


@router.get("/cases/{case_id}", response_model=Case, tags=["cases"])
def get_case(instance: InstanceDep, principal: Writer, case_id: str) -> Any:
    return cases.get_case(instance, case_id)


@router.patch("/cases/{case_id}", response_model=Case, tags=["cases"], responses=CONFLICT)
def update_case(instance: InstanceDep, principal: Writer, case_id: str,
                body: JSONObject) -> Any:
    return cases.update_case(instance, schema.entity_id(case_id, "case_id"), body,
                             actor=principal.actor)


@router.get("/cases/{case_id}/history", response_model=PageOut[ChangeOut], tags=["cases"])
def case_history(instance: InstanceDep, principal: Writer, case_id: str,
                 paging: PagingDep) -> Any:
    return _history(instance, EntityKind.CASE, case_id, paging)


# --- vocabulary --------------------------------------------------------------------------

@router.get("/vocabulary", response_model=PageOut[Term], tags=["vocabulary"])
def list_terms(instance: InstanceDep, principal: Reader, paging: PagingDep) -> Any:
    return page_out(vocabulary.list_terms(instance, limit=paging.limit, offset=paging.offset))


@router.get("/vocabulary/{code}", response_model=Term, tags=["vocabulary"])
def get_term(instance: InstanceDep, principal: Reader, code: str) -> Any:
    return vocabulary.get_term(instance, code)


@router.post("/vocabulary", response_model=Term, status_code=201, tags=["vocabulary"],
             responses=CONFLICT)
def add_term(instance: InstanceDep, principal: Vocab, body: JSONObject) -> Any:
    """``{"code", "labels": {lang: text}, "description"?}``"""
    return vocabulary.add_term(instance, body, actor=principal.actor)
