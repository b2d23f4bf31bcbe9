"""The dashboard: counts, the latest uploads, jobs in progress, claims awaiting review, and
a chart of documented incidents per week (an SVG drawn on the server, shown as an image).
With JavaScript, the jobs in progress and the latest uploads' analysis states follow
the work as it happens (:mod:`sprava.webapp.progress`).

What it counts follows the role: an uploader sees their own uploads and nothing of the
catalogue; a viewer sees redacted copies only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sprava.accounts.roles import Capability
from sprava.api.routes_items import scope
from sprava.backends.db.engine import read_transaction
from sprava.catalogue import claims, incidents
from sprava.domain.catalogue import Claim
from sprava.publish.chart import Series, column_chart
from sprava.webapp.evidence_query import (
    ItemFilters,
    find_items,
    incidents_per_week,
    jobs_in_progress,
)
from sprava.webapp.page import HEADERS, Formatter, _, language, render
from sprava.webapp.progress import jobs_summary
from sprava.webapp.visitor import PageRoute, VisitorDep, instance_of, require

WEEKS = 12
router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, principal: VisitorDep) -> HTMLResponse:
    instance = instance_of(request)
    where = scope(principal)
    with read_transaction(instance.engine) as conn:
        latest, item_total = find_items(conn, where, ItemFilters(), limit=8, offset=0)
        jobs, job_total = jobs_in_progress(conn, where)
    catalogue = principal.can(Capability.CATALOGUE_READ)
    incident_total = pending_total = 0
    pending: list[Claim] = []
    if catalogue:
        incident_total = incidents.list_incidents(instance, limit=1).total
        page = claims.list_claims(instance, status="pending_review", limit=10,
                                  persons=principal.can(Capability.PERSONS))
        pending, pending_total = list(page.items), page.total
    lang = language(request)
    return render(request, "dashboard.html", title=_("Dashboard"), latest=latest,
                  item_total=item_total, jobs=jobs, job_total=job_total, script=True,
                  jobs_text=jobs_summary(lang.gettext, lang.ngettext, Formatter(lang.code),
                                         job_total),
                  catalogue=catalogue, incident_total=incident_total, pending=pending,
                  pending_total=pending_total,
                  may_review=principal.account.may_review)


@router.get("/charts/incidents-per-week.svg")
def chart(request: Request, principal: VisitorDep) -> Response:
    require(principal, Capability.CATALOGUE_READ)
    lang = language(request)
    say, fmt = lang.gettext, Formatter(lang.code)
    with read_transaction(instance_of(request).engine) as conn:
        weeks = incidents_per_week(conn, WEEKS)
    svg = column_chart(
        say(_("Documented incidents per week")), [fmt.day(w) for w, _n in weeks],
        [Series(say(_("Incidents")), tuple(n for _w, n in weeks))],
        desc=say(_("Incidents by the week they began, over the twelve weeks up to the "
                   "latest one.")),
        empty=say(_("No incidents yet.")))
    return Response(svg.text, media_type="image/svg+xml", headers=dict(
        HEADERS, **{"Content-Language": lang.code}))
