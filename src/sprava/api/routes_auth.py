"""Logging in and out, one's own password, second factor and API tokens; accounts."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from sprava.accounts import service, sessions
from sprava.accounts.roles import Capability, capabilities
from sprava.accounts.sessions import Principal
from sprava.api.deps import (
    SESSION_COOKIE,
    CurrentDep,
    InstanceDep,
    PagingDep,
    active,
    needs,
)
from sprava.api.models import (
    CONFLICT,
    THROTTLED,
    AccountOut,
    CreatedAccountOut,
    NewTokenOut,
    PageOut,
    PasswordOut,
    SessionOut,
    TokenOut,
    TotpOut,
)
from sprava.catalogue import schema
from sprava.errors import BadInputError

router = APIRouter(tags=["accounts"])
Coordinator = Annotated[Principal, Depends(needs(Capability.ACCOUNTS))]
Active = Annotated[Principal, Depends(active)]
JSONObject = Annotated[dict[str, Any], Body()]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _session_out(principal: Principal) -> SessionOut:
    return SessionOut(account=AccountOut.of(principal.account),
                      csrf_token=principal.csrf_token,
                      capabilities=sorted(capabilities(principal.account.role)))


def _token_out(token: sessions.ApiToken) -> TokenOut:
    return TokenOut(id=token.id, name=token.name, created_at=token.created_at,
                    expires_at=token.expires_at, revoked_at=token.revoked_at,
                    last_used_at=token.last_used_at)


@router.post("/auth/login", response_model=SessionOut, responses=THROTTLED)
async def login(request: Request, response: Response, instance: InstanceDep,
                body: JSONObject) -> SessionOut:
    """Log in with ``{"username", "password", "code"?}`` (code: the TOTP code, once a
    second factor is enabled). Sets the session cookie; returns the CSRF token."""
    values = schema.fields(body, "login", {"username", "password", "code"},
                           required={"username", "password"})
    if isinstance(values["username"], str) and _CONTROL.search(values["username"]):
        # No user name holds one (see check_username), and PostgreSQL cannot even compare
        # text that holds NUL: refuse it before it reaches the database.
        raise BadInputError("username: holds control characters", code="bad-field")
    address = request.client.host if request.client else None
    principal, token = await run_in_threadpool(
        sessions.login, instance, values["username"], values["password"], values.get("code"),
        address=address)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/",
                        max_age=int(instance.settings.session_hours * 3600))
    return _session_out(principal)


@router.post("/auth/logout", status_code=204)
def logout(instance: InstanceDep, principal: CurrentDep, response: Response) -> Response:
    sessions.logout(instance, principal)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.status_code = 204
    return response


@router.get("/auth/me", response_model=SessionOut)
def me(principal: CurrentDep) -> SessionOut:
    return _session_out(principal)


@router.post("/auth/password", status_code=204)
def change_password(instance: InstanceDep, principal: CurrentDep,
                    body: JSONObject) -> Response:
    """Change one's own password: ``{"current", "new"}``. Other sessions end."""
    values = schema.fields(body, "password", {"current", "new"}, required={"current", "new"})
    sessions.change_password(instance, principal, values["current"], values["new"])
    return Response(status_code=204)


@router.post("/auth/totp", response_model=TotpOut)
def totp_begin(instance: InstanceDep, principal: Active) -> TotpOut:
    """Start setting up a second factor: a secret to load into an authenticator app."""
    secret, uri = sessions.totp_begin(instance, principal)
    return TotpOut(secret=secret, uri=uri)


@router.post("/auth/totp/enable", status_code=204)
def totp_enable(instance: InstanceDep, principal: Active, body: JSONObject) -> Response:
    """Require the second factor from now on: ``{"code"}`` from the app proves it works."""
    values = schema.fields(body, "totp", {"code"}, required={"code"})
    sessions.totp_enable(instance, principal, values["code"])
    return Response(status_code=204)


@router.post("/auth/totp/disable", status_code=204)
def totp_disable(instance: InstanceDep, principal: Active, body: JSONObject) -> Response:
    values = schema.fields(body, "totp", {"password", "code"}, required={"password"})
    sessions.totp_disable(instance, principal, values["password"], values.get("code"))
    return Response(status_code=204)


@router.get("/auth/tokens", response_model=PageOut[TokenOut])
def list_tokens(instance: InstanceDep, principal: Active, paging: PagingDep) -> Any:
    page = sessions.list_tokens(instance, principal, limit=paging.limit, offset=paging.offset)
    return PageOut[TokenOut](items=[_token_out(t) for t in page.items], total=page.total,
                             limit=page.limit, offset=page.offset)


@router.post("/auth/tokens", response_model=NewTokenOut, status_code=201)
def create_token(instance: InstanceDep, principal: Active, body: JSONObject) -> NewTokenOut:
    """A new API token for scripts: ``{"name", "expires_days"?}``; the secret is shown
    once. It acts as this account, with this account's role."""
    token, secret = sessions.create_token(instance, principal, body)
    return NewTokenOut(token=_token_out(token), secret=secret)


@router.delete("/auth/tokens/{token_id}", response_model=TokenOut)
def revoke_token(instance: InstanceDep, principal: Active, token_id: str) -> TokenOut:
    return _token_out(sessions.revoke_token(instance, principal, token_id))


@router.get("/users", response_model=PageOut[AccountOut])
def list_users(instance: InstanceDep, principal: Coordinator, paging: PagingDep) -> Any:
    page = service.list_accounts(instance, limit=paging.limit, offset=paging.offset)
    return PageOut[AccountOut](items=[AccountOut.of(a) for a in page.items], total=page.total,
                               limit=page.limit, offset=page.offset)


@router.post("/users", response_model=CreatedAccountOut, status_code=201, responses=CONFLICT)
def create_user(instance: InstanceDep, principal: Coordinator,
                body: JSONObject) -> CreatedAccountOut:
    """A new account: ``{"username", "role", "reviewer"?, "password"?}``. Without a
    password, a one-time password is returned once."""
    acc, password = service.create_account(instance, body, actor=principal.actor)
    return CreatedAccountOut(account=AccountOut.of(acc), one_time_password=password)


@router.get("/users/{account_id}", response_model=AccountOut)
def get_user(instance: InstanceDep, principal: Coordinator, account_id: str) -> AccountOut:
    return AccountOut.of(service.get_account(instance, account_id))


@router.patch("/users/{account_id}", response_model=AccountOut, responses=CONFLICT)
def update_user(instance: InstanceDep, principal: Coordinator, account_id: str,
                body: JSONObject) -> AccountOut:
    """Change ``role``, ``reviewer`` or ``active``; deactivating ends all access."""
    return AccountOut.of(service.update_account(instance, account_id, body,
                                                actor=principal.actor))


@router.post("/users/{account_id}/password-reset", response_model=PasswordOut)
def reset_password(instance: InstanceDep, principal: Coordinator,
                   account_id: str) -> PasswordOut:
    """A new one-time password for the account, shown once; its sessions and tokens end."""
    return PasswordOut(one_time_password=service.reset_password(
        instance, account_id, actor=principal.actor))
