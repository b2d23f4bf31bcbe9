"""Incidents: the list with filters, an incident's page (acts with victims as pseudonyms,
units, evidence, claims), the forms to create and edit one, to add an act and to claim a
unit's presence.

Input is checked by the catalogue services, exactly as for the API (red lines
included); a refusal is shown next to the field it is about, and nothing is stored.
Persons are never named on these pages: an act or claim that involves one says only
that a person is linked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.api.routes_items import scope
from sprava.backends.db.engine import read_transaction
from sprava.catalogue import acts, claims, incidents, schema, units, vocabulary
from sprava.domain.catalogue import (
    AGE_BANDS,
    INCIDENT_TRANSITIONS,
    Confidence,
    EntityKind,
    IncidentStatus,
)
from sprava.errors import BadInputError, ConflictError, NotFoundError, SpravaError
from sprava.webapp.evidence_query import ItemFilters, find_items, thumbnail_of
from sprava.webapp.page import _, chosen_language, render
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
PAGE = 50
_PATH = re.compile(r"^'?([a-z_]+(?:\.[a-z_]+|\[\d+\])*)'?(?::| is )")

INCIDENT_FIELDS = {
    "incident.title": "title", "incident.start": "start", "incident.end": "end",
    "incident.place.name": "place_name", "incident.place.admin_area": "admin_area",
    "incident.place.lat": "lat", "incident.place.lon": "lon",
    "incident.place.precision_m": "precision_m", "incident.place": "lat",
    "incident.description": "description", "incident.violation_types": "violation_types",
}
ACT_FIELDS = {
    "act.type": "type", "act.description": "act_description",
    "act.victim.pseudonym": "pseudonym", "act.victim.age_band": "age_band",
    "act.victim": "pseudonym", "act.evidence": "evidence",
    "act.perpetrator.sources": "evidence", "act.perpetrator.confidence": "confidence",
    "act.perpetrator.unit_id": "unit_id", "act.perpetrator": "perpetrator",
}
CLAIM_FIELDS = {"claim.subject": "unit_id", "claim.sources": "sources",
                "claim.confidence": "confidence", "claim.comment": "comment", "claim": "sources"}


def field_of(problem: SpravaError, fields: Mapping[str, str]) -> str | None:
    """The form field a service's error is about (the longest path that names it)."""
    match = _PATH.match(problem.message)
    if match is None:
        return None
    path = match.group(1)
    best = [k for k in fields if path == k or path.startswith((k + ".", k + "["))]
    return fields[max(best, key=len)] if best else None


def _moment(value: str) -> str | None:
    """A ``datetime-local`` value (no zone) read as UTC, in RFC 3339; other text as given
    (the service then says what is wrong with it)."""
    if not value:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?", value):
        return value + (":00" if value.count(":") == 1 else "") + "+00:00"
    return value


def _number(value: str) -> Any:
    if not value:
        return None
    try:
        return float(value.replace(",", "."))
    except ValueError:
        return value  # refused by the service with the field's name


def incident_input(form: FormData) -> dict[str, Any]:
    place: dict[str, Any] = {"name": text_field(form, "place_name")}
    if text_field(form, "admin_area"):
        place["admin_area"] = text_field(form, "admin_area")
    for key in ("lat", "lon", "precision_m"):
        if text_field(form, key):
            place[key] = _number(text_field(form, key))
    data: dict[str, Any] = {"title": text_field(form, "title"), "place": place,
                            "description": text_field(form, "description"),
                            "violation_types": list_field(form, "violation_types")}
    if _moment(text_field(form, "start")) is not None:
        data["start"] = _moment(text_field(form, "start"))
    data["end"] = _moment(text_field(form, "end"))
    return data


def _terms(request: Request) -> list[tuple[str, str]]:
    lang = chosen_language(request)
    page = vocabulary.list_terms(instance_of(request), limit=100)
    return [(t.code, t.labels.get(lang) or t.labels.get("en") or t.code) for t in page.items]


def _form_values(incident: Any) -> dict[str, Any]:
    def local(moment: datetime | None) -> str:
        if moment is None:
            return ""
        moment = moment.astimezone(UTC)  # seconds only when there are any, to keep them
        return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")
    p = incident.place
    return {"title": incident.title, "start": local(incident.start),
            "end": local(incident.end), "place_name": p.name, "admin_area": p.admin_area or "",
            "lat": "" if p.lat is None else p.lat, "lon": "" if p.lon is None else p.lon,
            "precision_m": "" if p.precision_m is None else p.precision_m,
            "description": incident.description,
            "violation_types": list(incident.violation_types)}


@router.get("/incidents", response_class=HTMLResponse)
def incident_list(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, Capability.CATALOGUE_READ)
    params = request.query_params
    status = params.get("status") if params.get("status") in list(IncidentStatus) else None
    terms = _terms(request)
    violation = params.get("violation_type") if params.get("violation_type") in dict(
        terms) else None
    since = until = None
    for name in ("since", "until"):
        value = params.get(name) or ""
        if value and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise BadInputError(f"{name}: a date as YYYY-MM-DD", code="bad-date")
    if params.get("since"):
        since = params["since"] + "T00:00:00+00:00"
    if params.get("until"):
        until = params["until"] + "T00:00:00+00:00"
    raw = params.get("offset", "0")
    offset = int(raw) if raw.isdigit() and len(raw) < 10 else 0
    page = incidents.list_incidents(instance_of(request), status=status,
                                    violation_type=violation, since=since, until=until,
                                    limit=PAGE, offset=offset)
    keep = {k: v for k, v in params.items()
            if k in ("status", "violation_type", "since", "until") and v}
    return render(request, "incidents.html", title=_("Incidents"), page=page,
                  statuses=list(IncidentStatus), terms=terms, labels=dict(terms), chosen=keep,
                  may_write=principal.can(Capability.CATALOGUE_WRITE), offset=offset,
                  size=PAGE)


def _edit_page(request: Request, *, incident_id: str | None, values: dict[str, Any],
               status: int = 200, problem: SpravaError | None = None) -> HTMLResponse:
    field = field_of(problem, INCIDENT_FIELDS) if problem is not None else None
    return render(request, "incident_form.html",
                  title=_("Edit the incident") if incident_id else _("New incident"),
                  status=status, problem=problem, field=field, values=values,
                  incident_id=incident_id, terms=_terms(request))


@router.get("/incidents/new", response_class=HTMLResponse)
def new_incident(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, Capability.CATALOGUE_WRITE)
    return _edit_page(request, incident_id=None, values={"violation_types": []})


@router.post("/incidents/new", response_model=None)
async def create_incident(request: Request, principal: VisitorDep) -> Response:
    require(principal, Capability.CATALOGUE_WRITE)
    form = await form_of(request)
    try:
        found = incidents.create_incident(instance_of(request), incident_input(form),
                                          actor=principal.actor)
    except (BadInputError, NotFoundError) as exc:
        return _edit_page(request, incident_id=None, values=_echo(form), status=exc.http_status,
                          problem=exc)
    raise Redirect(f"/incidents/{found.id}")


def _echo(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {k: text_field(form, k) for k in (
        "title", "start", "end", "place_name", "admin_area", "lat", "lon", "precision_m",
        "description")}
    values["violation_types"] = list_field(form, "violation_types")
    return values


@router.get("/incidents/{incident_id}/edit", response_class=HTMLResponse)
def edit_incident(request: Request, principal: VisitorDep, incident_id: str) -> HTMLResponse:
    require(principal, Capability.CATALOGUE_WRITE)
    found = incidents.get_incident(instance_of(request), incident_id)
    return _edit_page(request, incident_id=found.id, values=_form_values(found))


@router.post("/incidents/{incident_id}/edit", response_model=None)
async def update_incident(request: Request, principal: VisitorDep,
                          incident_id: str) -> Response:
    require(principal, Capability.CATALOGUE_WRITE)
    incident_id = schema.entity_id(incident_id, "incident_id")
    form = await form_of(request)
    try:
        incidents.update_incident(instance_of(request), incident_id, incident_input(form),
                                  actor=principal.actor)
    except (BadInputError, NotFoundError) as exc:
        return _edit_page(request, incident_id=incident_id, values=_echo(form),
                          status=exc.http_status, problem=exc)
    raise Redirect(f"/incidents/{incident_id}")


def unit_names(request: Request) -> dict[str, str]:
    lang = chosen_language(request)
    page = units.list_units(instance_of(request), limit=500)
    return {u.id: u.names.get(lang) or next(iter(u.names.values()), u.id) for u in page.items}


def _incident_page(request: Request, principal: Principal, incident_id: str, *,
                   status: int = 200, problem: SpravaError | None = None,
                   form: str | None = None, field: str | None = None,
                   values: dict[str, Any] | None = None) -> HTMLResponse:
    instance = instance_of(request)
    found = incidents.get_incident(instance, incident_id)
    act_page = acts.list_acts(instance, incident_id=found.id, limit=500)
    persons = principal.can(Capability.PERSONS)
    claim_page = claims.list_claims(instance, about=found.id, persons=persons, limit=500)
    act_claims = [c for a in act_page.items
                  for c in claims.list_claims(instance, about=a.id, persons=persons,
                                              limit=100).items]
    evidence = sorted({sha for a in act_page.items for sha in a.evidence})
    recent: list[dict[str, Any]] = []
    thumbs: dict[str, str | None] = {}
    with read_transaction(instance.engine) as conn:
        if principal.can(Capability.CATALOGUE_WRITE):
            recent, _total = find_items(conn, scope(principal), ItemFilters(), limit=30,
                                        offset=0)
        if principal.can(Capability.ITEMS_ALL):
            thumbs = {sha: thumbnail_of(conn, sha) for sha in evidence}
    terms = _terms(request)
    return render(request, "incident.html", title=found.title, incident=found,
                  acts=act_page.items, claims=[*claim_page.items, *act_claims],
                  evidence=evidence, units=unit_names(request), labels=dict(terms),
                  terms=terms, recent=recent, age_bands=AGE_BANDS,
                  confidences=list(Confidence), status=status, problem=problem,
                  form=form, field=field, values=values or {},
                  may_write=principal.can(Capability.CATALOGUE_WRITE),
                  see_items=principal.can(Capability.ITEMS_ALL), thumbs=thumbs,
                  next_statuses=sorted(INCIDENT_TRANSITIONS[found.status],
                                       key=list(IncidentStatus).index))


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, principal: VisitorDep, incident_id: str) -> HTMLResponse:
    require(principal, Capability.CATALOGUE_READ)
    return _incident_page(request, principal, incident_id)


@router.post("/incidents/{incident_id}/status", response_model=None)
async def set_status(request: Request, principal: VisitorDep, incident_id: str) -> Response:
    """Move the incident one step (reported → corroborated → verified); a step back needs
    a note, which the record keeps."""
    require(principal, Capability.CATALOGUE_WRITE)
    incident_id = schema.entity_id(incident_id, "incident_id")
    form = await form_of(request)
    try:
        incidents.set_incident_status(instance_of(request), incident_id,
                                      text_field(form, "status"), actor=principal.actor,
                                      note=text_field(form, "note") or None)
    except (BadInputError, ConflictError) as exc:
        return _incident_page(request, principal, incident_id, status=exc.http_status,
                              problem=exc, form="status", field="status-note")
    raise Redirect(f"/incidents/{incident_id}")


@router.post("/incidents/{incident_id}/acts", response_model=None)
async def add_act(request: Request, principal: VisitorDep, incident_id: str) -> Response:
    """An act in this incident; naming a unit makes the claim that the unit did it, with
    the chosen evidence as its sources, submitted for review."""
    require(principal, Capability.CATALOGUE_WRITE)
    incident_id = schema.entity_id(incident_id, "incident_id")
    form = await form_of(request)
    evidence = list_field(form, "evidence")
    data: dict[str, Any] = {"incident_id": incident_id, "type": text_field(form, "type"),
                            "description": text_field(form, "act_description"),
                            "evidence": evidence}
    if text_field(form, "pseudonym"):
        data["victim"] = {"pseudonym": text_field(form, "pseudonym"),
                          "age_band": text_field(form, "age_band") or "unknown",
                          "consent": {k: text_field(form, k) == "yes" for k in (
                              "publish_anonymised", "share_with_prosecutors",
                              "share_with_international_mechanisms")}}
    if text_field(form, "unit_id"):
        data["perpetrator"] = {"kind": "unit", "unit_id": text_field(form, "unit_id"),
                               "sources": evidence,
                               "confidence": text_field(form, "confidence")}
    elif text_field(form, "perpetrator_description"):
        data["perpetrator"] = {"kind": "unknown",
                               "description": text_field(form, "perpetrator_description")}
    try:
        acts.create_act(instance_of(request), data, actor=principal.actor)
    except (BadInputError, NotFoundError) as exc:
        return _incident_page(request, principal, incident_id, status=exc.http_status, problem=exc,
                              form="act", field=field_of(exc, ACT_FIELDS),
                              values={k: text_field(form, k) for k in form} | {
                                  "evidence": evidence})
    raise Redirect(f"/incidents/{incident_id}#acts")


@router.post("/incidents/{incident_id}/claims", response_model=None)
async def add_claim(request: Request, principal: VisitorDep, incident_id: str) -> Response:
    """A claim that a unit was present at this incident, submitted for review."""
    require(principal, Capability.CATALOGUE_WRITE)
    incident_id = schema.entity_id(incident_id, "incident_id")
    form = await form_of(request)
    sources = list_field(form, "sources")
    data: dict[str, Any] = {
        "statement": "unit_present_at_incident",
        "subject": {"kind": str(EntityKind.UNIT), "id": text_field(form, "unit_id")},
        "object": {"kind": str(EntityKind.INCIDENT), "id": incident_id},
        "sources": sources, "confidence": text_field(form, "confidence")}
    if text_field(form, "comment"):
        data["comment"] = text_field(form, "comment")
    try:
        claims.create_claim(instance_of(request), data, actor=principal.actor, submit=True)
    except (BadInputError, NotFoundError) as exc:
        return _incident_page(request, principal, incident_id, status=exc.http_status, problem=exc,
                              form="claim", field=field_of(exc, CLAIM_FIELDS),
                              values={k: text_field(form, k) for k in form} | {
                                  "sources": sources})
    raise Redirect(f"/incidents/{incident_id}#claims")
