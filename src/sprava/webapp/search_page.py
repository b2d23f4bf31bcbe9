"""Search from every page: results grouped by kind, in the reader's scope (the API's
:func:`~sprava.api.routes_search.scope_of`: persons only for roles that see them, items
as the evidence pages show them). Latin and Cyrillic spellings find each other."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from sprava.accounts.roles import Capability
from sprava.api.routes_search import scope_of
from sprava.catalogue import vocabulary
from sprava.domain.catalogue import ClaimStatus, Confidence, IncidentStatus
from sprava.errors import BadInputError
from sprava.search import KINDS, Hit, SearchFilters, search
from sprava.webapp.page import _, chosen_language, render
from sprava.webapp.visitor import PageRoute, VisitorDep, instance_of, require

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LIMIT = 100
LINKS = {"incident": "/incidents/", "item": "/items/", "unit": "/units/",
         "person": "/persons/"}  # a person's page is a recorded read, as its hit is
KIND_NAMES = {"incident": _("Incidents"), "act": _("Acts"), "unit": _("Units"),
              "person": _("Persons"), "claim": _("Claims"), "item": _("Items")}


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, Capability.CATALOGUE_READ, Capability.ITEMS_ALL,
            Capability.ITEMS_OWN, Capability.ITEMS_REDACTED)
    params = request.query_params
    query = (params.get("q") or "")[:500]
    kind = params.get("kind")
    dates = {}
    for name in ("since", "until"):
        value = params.get(name) or ""
        if value:
            try:
                dates[name] = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                raise BadInputError(f"{name}: a date as YYYY-MM-DD", code="bad-date") from None
    lang = chosen_language(request)
    terms = [(t.code, t.labels.get(lang) or t.labels.get("en") or t.code)
             for t in vocabulary.list_terms(instance_of(request), limit=100).items]
    statuses = [*IncidentStatus, *ClaimStatus]
    chosen = {
        "violation_type": params.get("violation_type") if params.get(
            "violation_type") in dict(terms) else None,
        "status": params.get("status") if params.get("status") in statuses else None,
        "confidence": params.get("confidence") if params.get(
            "confidence") in list(Confidence) else None,
        "place": (params.get("place") or "").strip()[:200] or None}
    filters = SearchFilters(kinds=frozenset({kind}) if kind in KINDS else None,
                            since=dates.get("since"), until=dates.get("until"), **chosen)
    groups: dict[str, list[Hit]] = {}
    total = 0
    if query.strip() or filters.any():
        page = search(instance_of(request), query, scope=scope_of(principal),
                      filters=filters, limit=LIMIT)
        total = page.total
        for hit in page.items:
            groups.setdefault(hit.kind, []).append(hit)
    ordered = [(k, groups[k]) for k in KIND_NAMES if k in groups]
    return render(request, "search.html", title=_("Search"), groups=ordered, total=total,
                  kind_names=KIND_NAMES, kind=kind if kind in KINDS else "", terms=terms,
                  statuses=statuses, confidences=list(Confidence),
                  chosen={k: v for k, v in chosen.items() if v},
                  since=params.get("since") if "since" in dates else "",
                  until=params.get("until") if "until" in dates else "",
                  searched=bool(query.strip() or filters.any()), links=LINKS)
