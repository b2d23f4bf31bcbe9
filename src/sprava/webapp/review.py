"""The review queue: claims awaiting a second pair of eyes, approved or rejected with a
reason. Only accounts with review rights see it; the services refuse a review by the
claim's author or anyone who edited it, and the page says so.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.catalogue import claims, schema
from sprava.errors import BadInputError, ReviewNotPermittedError, SpravaError
from sprava.webapp.incident_pages import unit_names
from sprava.webapp.page import _, render
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


def _reviewer(principal: Principal) -> None:
    require(principal, Capability.CATALOGUE_WRITE)
    if not principal.account.may_review:
        raise ReviewNotPermittedError("this account has no review rights",
                                      code="no-review-rights")


def _queue(request: Request, principal: Principal, *, status: int = 200,
           problem: SpravaError | None = None, claim_id: str | None = None) -> HTMLResponse:
    page = claims.list_claims(instance_of(request), status="pending_review", limit=200,
                              persons=principal.can(Capability.PERSONS))
    return render(request, "review.html", title=_("Review queue"), claims=page.items,
                  total=page.total, units=unit_names(request), status=status,
                  problem=problem, failed=claim_id, me=principal.actor,
                  done=request.query_params.get("done"))


@router.get("/review", response_class=HTMLResponse)
def review_queue(request: Request, principal: VisitorDep) -> HTMLResponse:
    _reviewer(principal)
    return _queue(request, principal)


@router.post("/review/{claim_id}", response_model=None)
async def review(request: Request, principal: VisitorDep, claim_id: str) -> Response:
    _reviewer(principal)
    claim_id = schema.entity_id(claim_id, "claim_id")
    form = await form_of(request)
    decision, reason = text_field(form, "decision"), text_field(form, "reason") or None
    rights = claims.Reviewers(frozenset({principal.actor}))
    try:
        if decision == "approve":
            claims.approve_claim(instance_of(request), claim_id, actor=principal.actor,
                                 rights=rights, reason=reason)
        elif decision == "reject":
            claims.reject_claim(instance_of(request), claim_id, actor=principal.actor,
                                rights=rights, reason=reason or "")
        else:
            raise BadInputError("choose approve or reject", code="bad-decision")
    except SpravaError as exc:
        if exc.http_status >= 500:
            raise
        return _queue(request, principal, status=exc.http_status, problem=exc,
                      claim_id=claim_id)
    raise Redirect(f"/review?done={decision}")
