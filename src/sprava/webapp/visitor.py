"""Who is visiting: the session cookie, the CSRF token of forms, and page routes.

The session is the API's (:mod:`sprava.accounts.sessions`): a random token in an
HttpOnly, SameSite=Strict cookie (Secure over https). Every form that changes anything
carries the session's CSRF token in a ``csrf`` field; the login form, before any
session exists, carries a token that must match a short-lived cookie of its own.

:class:`PageRoute` turns what a page raises into a page: :class:`Redirect` into a 303,
"log in first" into the login page, and any :class:`~sprava.errors.SpravaError` into a
problem page in the reader's language with the error's status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from sprava.accounts import sessions
from sprava.accounts.roles import Capability
from sprava.accounts.secrets import same
from sprava.accounts.sessions import Principal
from sprava.api.deps import SESSION_COOKIE
from sprava.errors import AuthenticationError, BadInputError, PermissionDeniedError, SpravaError
from sprava.instance import Instance
from sprava.webapp.page import HEADERS, _, remember_language, render

_FORM_FIELDS = 400
log = logging.getLogger("sprava.webapp")


class Redirect(Exception):
    """Answer with a 303 to ``location`` (a path on this server)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def redirect(request: Request, location: str) -> Response:
    response = RedirectResponse(location, status_code=303, headers=HEADERS)
    remember_language(request, response)
    return response


class PageRoute(APIRoute):
    """A route whose failures are pages, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Redirect as move:
                return redirect(request, move.location)
            except AuthenticationError as exc:
                if exc.code in ("not-authenticated", "session-ended"):
                    target = request.url.path
                    if request.method != "GET":
                        target = "/"
                    return redirect(request, f"/login?next={quote(target, safe='/')}")
                return render(request, "problem.html", title=_("Something is wrong"),
                              status=exc.http_status, problem=exc)
            except SpravaError as exc:
                if exc.http_status >= 500:  # logged; the page never echoes its text
                    log.error("page failed: %s", exc)
                    exc = SpravaError("the server failed; see its log", code="internal")
                return render(request, "problem.html", title=_("Something is wrong"),
                              status=exc.http_status, problem=exc)

        return page_handler


def instance_of(request: Request) -> Instance:
    found: Instance = request.app.state.instance
    return found


def principal_of(request: Request) -> Principal:
    """The principal of the request's session cookie; AuthenticationError without one."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise AuthenticationError("log in first", code="not-authenticated")
    return sessions.from_session(instance_of(request), token)


async def form_of(request: Request) -> FormData:
    """The submitted form (URL-encoded; no files), checked against the session's CSRF
    token when there is a session."""
    try:
        form = await request.form(max_files=0, max_fields=_FORM_FIELDS)
    except Exception:  # the framework's own parse errors (malformed bodies, too many fields)
        raise BadInputError("the form could not be read", code="bad-form") from None
    return form


async def visitor(request: Request) -> Principal:
    """The logged-in principal; for a change (POST), also the form's CSRF token.

    Raises AuthenticationError (→ the login page), PermissionDeniedError ``csrf-failed``;
    an account that must change its one-time password is sent to do that first.
    """
    principal = await run_in_threadpool(principal_of, request)
    request.state.visitor = principal
    # The upload form is streamed: its CSRF token is checked as its first field arrives
    # (sprava.webapp.upload), before any file is stored.
    if request.method == "POST" and request.url.path != "/upload":
        form = await form_of(request)
        sent = form.get("csrf")
        if not isinstance(sent, str) or not principal.csrf_token or not same(
                sent, principal.csrf_token):
            raise PermissionDeniedError("the form is out of date", code="csrf-failed")
    if principal.account.must_change_password and request.url.path not in (
            "/account/password", "/logout"):
        raise Redirect("/account/password")
    return principal


VisitorDep = Annotated[Principal, Depends(visitor)]


def require(principal: Principal, *capabilities: Capability) -> None:
    """PermissionDeniedError unless the role has at least one of ``capabilities``."""
    if not any(principal.can(c) for c in capabilities):
        raise PermissionDeniedError(f"the {principal.account.role} role may not do this",
                                    code="forbidden")


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def list_field(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]
