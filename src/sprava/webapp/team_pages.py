"""The team's accounts, for coordinators: who has which role, a new account with a
one-time password shown once, a password reset, and turning an account off or on.

Every change goes through :mod:`sprava.accounts.service` (each one a custody event) and
its rules hold here too: a user name is a pseudonym of Latin letters and digits, and the
last active coordinator can be neither demoted nor turned off.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sprava.accounts import service
from sprava.accounts.roles import Capability, Role
from sprava.accounts.sessions import Principal
from sprava.errors import SpravaError
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


def _page(request: Request, principal: Principal, *, status: int = 200,
          problem: SpravaError | None = None, created: tuple[str, str] | None = None,
          values: dict[str, str] | None = None) -> HTMLResponse:
    accounts = service.list_accounts(instance_of(request), limit=500)
    return render(request, "team.html", title=_("Team accounts"), status=status,
                  problem=problem, accounts=accounts.items, roles=list(Role),
                  created=created, values=values or {}, me=principal.account.id,
                  done=request.query_params.get("done"))


@router.get("/team", response_class=HTMLResponse)
def team(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, Capability.ACCOUNTS)
    return _page(request, principal)


@router.post("/team", response_model=None)
async def create(request: Request, principal: VisitorDep) -> Response:
    """A new account; its one-time password is shown on this answer only (never stored
    in the clear, never sent again)."""
    require(principal, Capability.ACCOUNTS)
    form = await form_of(request)
    values = {"username": text_field(form, "username"), "role": text_field(form, "role")}
    try:
        account, password = service.create_account(instance_of(request), {
            **values, "reviewer": text_field(form, "reviewer") == "yes"},
            actor=principal.actor)
    except SpravaError as exc:
        if exc.http_status >= 500:
            raise
        return _page(request, principal, status=exc.http_status, problem=exc, values=values)
    assert password is not None
    return _page(request, principal, created=(account.username, password))


@router.post("/team/{account_id}/reset", response_model=None)
async def reset(request: Request, principal: VisitorDep, account_id: str) -> Response:
    require(principal, Capability.ACCOUNTS)
    password = service.reset_password(instance_of(request), account_id,
                                      actor=principal.actor)
    account = service.get_account(instance_of(request), account_id)
    return _page(request, principal, created=(account.username, password))


@router.post("/team/{account_id}/active", response_model=None)
async def set_active(request: Request, principal: VisitorDep, account_id: str) -> Response:
    require(principal, Capability.ACCOUNTS)
    form = await form_of(request)
    try:
        service.update_account(instance_of(request), account_id,
                               {"active": text_field(form, "active") == "yes"},
                               actor=principal.actor)
    except SpravaError as exc:
        if exc.http_status >= 500:
            raise
        return _page(request, principal, status=exc.http_status, problem=exc)
    raise Redirect("/team?done=changed")
