"""Units and persons: the hierarchy of units, a unit's page (its chain of parents, the
incidents and acts attributed to it with confidence, review state and sources, and, for
roles that see persons, its commanders over time). A person's page is
:mod:`sprava.webapp.person_pages`.

Persons are restricted: only roles with :attr:`Capability.PERSONS` see a commander's
name or a person's page, and every person shown is a custody event naming the reader
(:func:`sprava.catalogue.persons.get_person` and ``list_persons`` record it).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.catalogue import acts, claims, persons, units
from sprava.domain.catalogue import MAX_PAGE, Claim, Unit
from sprava.errors import BadInputError, NotFoundError, SpravaError
from sprava.webapp.incident_pages import field_of
from sprava.webapp.page import _, chosen_language, render
from sprava.webapp.visitor import (
    PageRoute,
    Redirect,
    VisitorDep,
    form_of,
    instance_of,
    require,
    text_field,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
ATTRIBUTIONS = ("unit_present_at_incident", "unit_committed_act")


def name_of(unit: Unit, lang: str) -> str:
    return unit.names.get(lang) or unit.names.get("en") or next(iter(unit.names.values()),
                                                               unit.id)


@router.get("/units", response_class=HTMLResponse)
def unit_tree(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, Capability.CATALOGUE_READ)
    return _tree_page(request, principal)


UNIT_FIELDS = {"unit.names": "names", "unit.type": "type", "unit.parent_id": "parent_id",
               "unit.area_of_operation": "area_of_operation"}


def _tree_page(request: Request, principal: Principal, *, status: int = 200,
               problem: SpravaError | None = None,
               values: dict[str, str] | None = None) -> HTMLResponse:
    lang = chosen_language(request)
    found = list(units.list_units(instance_of(request), limit=MAX_PAGE).items)
    known = {u.id for u in found}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for unit in found:
        parent = unit.parent_id if unit.parent_id in known else None
        children.setdefault(parent, []).append({"id": unit.id, "name": name_of(unit, lang),
                                                "type": unit.type})

    def tree(parent: str | None) -> list[dict[str, Any]]:
        nodes = sorted(children.get(parent, []), key=lambda n: n["name"].lower())
        return [dict(node, children=tree(node["id"])) for node in nodes]

    return render(request, "units.html", title=_("Units"), tree=tree(None),
                  total=len(found), status=status, problem=problem,
                  field=field_of(problem, UNIT_FIELDS) if problem is not None else None,
                  values=values or {}, may_write=principal.can(Capability.CATALOGUE_WRITE),
                  parents=sorted(((u.id, name_of(u, lang)) for u in found),
                                 key=lambda p: p[1].lower()))


@router.post("/units", response_model=None)
async def create_unit(request: Request, principal: VisitorDep) -> Response:
    """A new unit, named in one or more of the four languages."""
    require(principal, Capability.CATALOGUE_WRITE)
    form = await form_of(request)
    values = {k: text_field(form, k) for k in (
        "name_en", "name_be", "name_ru", "name_uk", "type", "parent_id",
        "area_of_operation")}
    data: dict[str, Any] = {
        "names": {lang: values[f"name_{lang}"] for lang in ("en", "be", "ru", "uk")
                  if values[f"name_{lang}"]},
        "type": values["type"]}
    if values["parent_id"]:
        data["parent_id"] = values["parent_id"]
    if values["area_of_operation"]:
        data["area_of_operation"] = values["area_of_operation"]
    try:
        made = units.create_unit(instance_of(request), data, actor=principal.actor)
    except (BadInputError, NotFoundError) as exc:
        return _tree_page(request, principal, status=exc.http_status, problem=exc,
                          values=values)
    raise Redirect(f"/units/{made.id}")


@router.get("/units/{unit_id}", response_class=HTMLResponse)
def unit_page(request: Request, principal: VisitorDep, unit_id: str) -> HTMLResponse:
    require(principal, Capability.CATALOGUE_READ)
    instance = instance_of(request)
    lang = chosen_language(request)
    history = units.unit_history(instance, unit_id, include_unreviewed=True,
                                 limit=MAX_PAGE)
    attributed: list[tuple[Claim, str | None]] = []
    for claim in claims.list_claims(instance, about=history.unit.id, persons=False,
                                    limit=MAX_PAGE).items:
        if claim.statement not in ATTRIBUTIONS or claim.subject_id != history.unit.id:
            continue
        incident_id: str | None = claim.object_id
        if claim.statement == "unit_committed_act":
            try:
                incident_id = acts.get_act(instance, claim.object_id).incident_id
            except NotFoundError:
                incident_id = None
        attributed.append((claim, incident_id))
    commanders: list[tuple[Any, str]] = []
    if principal.can(Capability.PERSONS) and history.commanders.items:
        ids = sorted({m.person_id for m in history.commanders.items})
        # Threat: reading names of officers unseen. This list is a recorded read.
        named = {p.id: p.name for p in persons.list_persons(
            instance, actor=principal.actor, ids=ids, limit=MAX_PAGE).items}
        commanders = [(m, named.get(m.person_id, "")) for m in history.commanders.items]
    sub_units = [u for u in units.list_units(instance, parent_id=history.unit.id,
                                             limit=MAX_PAGE).items]
    return render(request, "unit.html", title=name_of(history.unit, lang),
                  unit=history.unit, ancestors=[(u.id, name_of(u, lang))
                                                for u in history.ancestors],
                  sub_units=[(u.id, name_of(u, lang)) for u in sub_units],
                  attributed=attributed, commanders=commanders,
                  persons=principal.can(Capability.PERSONS))
