"""A person's page: what is known of them from evidence, their memberships, the claims
about them, and the form that makes a new claim about them.

Persons are restricted (DESIGN.md, red lines): only roles with
:attr:`Capability.PERSONS` open this page, and every opening is a custody event naming
the reader (:func:`sprava.catalogue.persons.get_person` records it), the page shown again
with a refused form included. A claim made here is checked by the catalogue service as
the API's is, cites items as its sources with a confidence, and goes to the review
queue, where a person other than its author must approve it before it counts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.api.routes_items import scope
from sprava.backends.db.engine import read_transaction
from sprava.catalogue import acts, claims, incidents, persons, units, vocabulary
from sprava.domain.catalogue import MAX_PAGE, Confidence, EntityKind
from sprava.errors import BadInputError, NotFoundError, SpravaError
from sprava.webapp.evidence_query import ItemFilters, find_items
from sprava.webapp.incident_pages import field_of
from sprava.webapp.page import chosen_language, render
from sprava.webapp.unit_pages import name_of
from sprava.webapp.visitor import (
    PageRoute,
    Redirect,
    VisitorDep,
    form_of,
    instance_of,
    list_field,
    require,
    text_field,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# What a claim about a person may state, and the form field that names its object.
OBJECT_FIELDS = {
    "person_present_at_incident": (EntityKind.INCIDENT, "incident_id"),
    "person_committed_act": (EntityKind.ACT, "act_id"),
    "person_member_of_unit": (EntityKind.UNIT, "unit_id"),
    "person_commanded_unit": (EntityKind.UNIT, "unit_id"),
}
_FIELDS = {"claim.statement": "statement", "claim.sources": "sources",
           "claim.confidence": "confidence", "claim.role": "role",
           "claim.valid_from": "valid_from", "claim.valid_to": "valid_to",
           "claim.comment": "comment", "claim": "statement"}
_MISSING = {"incident-not-found": "incident_id", "act-not-found": "act_id",
            "unit-not-found": "unit_id", "item-not-found": "sources"}
_CHOICES = MAX_PAGE


def _field(problem: SpravaError, statement: str) -> str | None:
    """The form field a refusal is about: the object's own field for the object."""
    if problem.code in _MISSING:
        return _MISSING[problem.code]
    found = field_of(problem, {**_FIELDS, "claim.object": "object"})
    if found == "object":
        return OBJECT_FIELDS.get(statement, (None, "statement"))[1]
    return found


def _person_page(request: Request, principal: Principal, person_id: str, *,
                 status: int = 200, problem: SpravaError | None = None,
                 field: str | None = None, values: dict[str, Any] | None = None
                 ) -> HTMLResponse:
    instance = instance_of(request)
    lang = chosen_language(request)
    # Threat: an insider reading about officers unseen. Every showing is on the record.
    person = persons.get_person(instance, person_id, actor=principal.actor)
    memberships = claims.list_memberships(instance, person_id=person.id,
                                          include_unreviewed=True, limit=MAX_PAGE).items
    about = claims.list_claims(instance, about=person.id, limit=MAX_PAGE).items
    names = {u.id: name_of(u, lang) for u in units.list_units(instance, limit=MAX_PAGE).items}
    context: dict[str, Any] = {}
    if principal.can(Capability.CATALOGUE_WRITE):
        context = _form_choices(request, principal, lang)
    return render(request, "person.html", title=person.name, person=person,
                  memberships=memberships, claims=about, units=names, status=status,
                  problem=problem, field=field, values=values or {},
                  may_write=principal.can(Capability.CATALOGUE_WRITE),
                  submitted=request.query_params.get("claim") == "submitted", **context)


def _form_choices(request: Request, principal: Principal, lang: str) -> dict[str, Any]:
    """The incidents and acts (up to 500 of each) and the latest items the claim form
    offers."""
    instance = instance_of(request)
    found = incidents.list_incidents(instance, limit=_CHOICES).items
    titles = {i.id: i.title for i in found}
    labels = {t.code: t.labels.get(lang) or t.labels.get("en") or t.code
              for t in vocabulary.list_terms(instance, limit=100).items}
    act_page = acts.list_acts(instance, limit=_CHOICES)
    act_choices = [(a.id, f"{titles.get(a.incident_id) or a.incident_id} · "
                          f"{labels.get(a.type, a.type)}") for a in act_page.items]
    with read_transaction(instance.engine) as conn:
        recent, _total = find_items(conn, scope(principal), ItemFilters(), limit=30,
                                    offset=0)
    return {"incident_choices": [(i.id, i.title) for i in found],
            "act_choices": act_choices, "recent": recent,
            "statements": list(OBJECT_FIELDS), "confidences": list(Confidence)}


@router.get("/persons/{person_id}", response_class=HTMLResponse)
def person_page(request: Request, principal: VisitorDep, person_id: str) -> HTMLResponse:
    """A person as known from evidence: identifiers seen, memberships and claims with
    their review state. Opening it is a custody event naming the reader."""
    require(principal, Capability.PERSONS)
    return _person_page(request, principal, person_id)


@router.post("/persons/{person_id}/claims", response_model=None)
async def add_claim(request: Request, principal: VisitorDep, person_id: str) -> Response:
    """A claim about this person (present at an incident, committed an act, member or
    commander of a unit), with its sources and confidence, submitted for review."""
    require(principal, Capability.PERSONS)
    require(principal, Capability.CATALOGUE_WRITE)
    form = await form_of(request)
    statement = text_field(form, "statement")
    sources = list_field(form, "sources")
    values = {k: text_field(form, k) for k in form} | {"sources": sources}
    try:
        if statement not in OBJECT_FIELDS:
            raise BadInputError("claim.statement: choose what the claim states",
                                code="bad-statement")
        kind, field = OBJECT_FIELDS[statement]
        data: dict[str, Any] = {
            "statement": statement,
            "subject": {"kind": str(EntityKind.PERSON), "id": person_id},
            "object": {"kind": str(kind), "id": text_field(form, field)},
            "sources": sources, "confidence": text_field(form, "confidence")}
        for name in ("comment", "role", "valid_from", "valid_to"):
            if text_field(form, name):
                data[name] = text_field(form, name)
        claims.create_claim(instance_of(request), data, actor=principal.actor, submit=True)
    except (BadInputError, NotFoundError) as exc:
        if exc.code == "person-not-found":
            raise
        return _person_page(request, principal, person_id, status=exc.http_status,
                            problem=exc, field=_field(exc, statement), values=values)
    raise Redirect(f"/persons/{person_id}?claim=submitted#person-claims-heading")
