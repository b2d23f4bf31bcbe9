"""Who is asking: a bearer token (scripts) or a session cookie with its CSRF token.

A request that changes something (any method but GET, HEAD, OPTIONS) on a cookie
session must carry the session's CSRF token in ``X-CSRF-Token``; a bearer token needs
none, as a browser never sends one by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from sprava.accounts import secrets as creds
from sprava.accounts import sessions
from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.domain.catalogue import MAX_PAGE
from sprava.errors import AuthenticationError, PermissionDeniedError
from sprava.instance import Instance

SESSION_COOKIE = "sprava_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Text query parameters hold no control characters: none has a use for them, and
# PostgreSQL refuses NUL in any text it is asked to compare (a 500 otherwise).
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"

bearer = HTTPBearer(auto_error=False, description="an API token (`spt_…`)")
cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                      description="a browser session; changes also need X-CSRF-Token")


def instance_of(request: Request) -> Instance:
    found: Instance = request.app.state.instance
    return found


InstanceDep = Annotated[Instance, Depends(instance_of)]


async def current(
    request: Request,
    token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    session: Annotated[str | None, Depends(cookie)],
) -> Principal:
    """The principal of this request; AuthenticationError (401) if there is none."""
    instance = instance_of(request)
    if token is not None:
        return await run_in_threadpool(sessions.from_token, instance, token.credentials)
    if session:
        found = await run_in_threadpool(sessions.from_session, instance, session)
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not found.csrf_token or not creds.same(sent, found.csrf_token):
                raise PermissionDeniedError(
                    "the request lacks this session's CSRF token", code="csrf-failed",
                    hint=f"send the csrf_token from login in the {CSRF_HEADER} header")
        return found
    raise AuthenticationError("log in first, or send an API token", code="not-authenticated")


CurrentDep = Annotated[Principal, Depends(current)]


def needs(capability: Capability) -> Callable[..., Any]:
    """A dependency giving the principal if their role has ``capability`` (else 403)."""
    def check(principal: CurrentDep) -> Principal:
        principal.require(capability)
        return principal
    check.__name__ = f"needs_{capability.name.lower()}"
    return check


def needs_any(*caps: Capability) -> Callable[..., Any]:
    """The principal if their role has at least one of ``caps`` (else 403)."""
    def check(principal: CurrentDep) -> Principal:
        for cap in caps:
            if principal.can(cap):
                principal.require(cap)
                return principal
        principal.require(caps[0])
        return principal
    return check


def active(principal: CurrentDep) -> Principal:
    """Any logged-in account that has changed its one-time password."""
    if principal.account.must_change_password:
        principal.require(Capability.CATALOGUE_READ)  # raises password-change-required
    return principal


class Paging:
    """``limit`` and ``offset`` query parameters, the same on every list."""

    def __init__(self, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
                 offset: Annotated[int, Query(ge=0, le=2**62)] = 0) -> None:
        self.limit = limit
        self.offset = offset


PagingDep = Annotated[Paging, Depends(Paging)]
