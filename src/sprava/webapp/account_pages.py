"""Logging in and out, changing one's password, and setting up a second factor.

The login form needs the user name, the password and, once the account has a second
factor, the TOTP code; a wrong answer never says which part was wrong, and repeated
failures are throttled (:mod:`sprava.accounts.throttle`). An account with a one-time
password (the first coordinator that ``sprava serve`` prints, or a reset) is sent to
change it before any other page opens.
"""

from __future__ import annotations

import re
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from sprava.accounts import sessions
from sprava.accounts.secrets import same
from sprava.api.deps import SESSION_COOKIE
from sprava.errors import BadInputError, PermissionDeniedError, SpravaError
from sprava.webapp.page import _, render
from sprava.webapp.visitor import (
    PageRoute,
    VisitorDep,
    form_of,
    instance_of,
    redirect,
    text_field,
)

LOGIN_COOKIE = "sprava_login"
_NEXT = re.compile(r"/(?![/\\])[\w\-./?=&%]*")
router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _next_of(value: str | None) -> str:
    """Where to go after login: a path on this server only (never another site)."""
    return value if value and _NEXT.fullmatch(value) and "//" not in value else "/"


def _login_page(request: Request, *, status: int = 200, problem: SpravaError | None = None,
                username: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", title=_("Log in"), status=status,
                      problem=problem, login_token=token, username=username,
                      next=_next_of(request.query_params.get("next")))
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/login", max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    form = await form_of(request)
    username = text_field(form, "username")
    try:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not same(text_field(form, "csrf"), expected):
            raise PermissionDeniedError("the login form is out of date", code="csrf-failed")
        if not username or re.search(r"[\x00-\x1f\x7f]", username):
            raise BadInputError("give a user name", code="login-failed")
        address = request.client.host if request.client else None
        password = form.get("password")
        principal, token = await run_in_threadpool(
            sessions.login, instance_of(request), username,
            password if isinstance(password, str) else "",
            text_field(form, "code") or None, address=address)
    except SpravaError as exc:
        status = exc.http_status if exc.code != "login-failed" else 401
        return _login_page(request, status=status, problem=exc, username=username[:64])
    target = "/account/password" if principal.account.must_change_password else _next_of(
        text_field(form, "next"))
    response = redirect(request, target)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/",
                        max_age=int(instance_of(request).settings.session_hours * 3600))
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout", response_model=None)
def logout(request: Request, principal: VisitorDep) -> Response:
    sessions.logout(instance_of(request), principal)
    response = redirect(request, "/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, principal: VisitorDep) -> HTMLResponse:
    return render(request, "account.html", title=_("Your account"), account=principal.account,
                  done=request.query_params.get("done"))


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, principal: VisitorDep) -> HTMLResponse:
    return render(request, "password.html", title=_("Change your password"),
                  forced=principal.account.must_change_password)


@router.post("/account/password", response_model=None)
async def change_password(request: Request, principal: VisitorDep) -> Response:
    form = await form_of(request)
    new, again = form.get("new"), form.get("again")
    try:
        if new != again:
            raise BadInputError("the two new passwords differ", code="passwords-differ")
        current = form.get("current")
        await run_in_threadpool(sessions.change_password, instance_of(request), principal,
                                current if isinstance(current, str) else "", new)
    except SpravaError as exc:
        if exc.code == "login-failed":
            exc = BadInputError("the current password is wrong", code="wrong-password")
        return render(request, "password.html", title=_("Change your password"),
                      status=exc.http_status, problem=exc,
                      forced=principal.account.must_change_password,
                      field="current" if exc.code == "wrong-password" else "new")
    return redirect(request, "/account?done=password")


@router.post("/account/totp", response_class=HTMLResponse)
def totp_begin(request: Request, principal: VisitorDep) -> HTMLResponse:
    """A new secret to load into an authenticator app, shown as text and as its
    ``otpauth://`` address; the factor is required only once a code proves it works."""
    secret, uri = sessions.totp_begin(instance_of(request), principal)
    return render(request, "totp.html", title=_("Set up a second factor"), secret=secret,
                  uri=uri)


@router.post("/account/totp/enable", response_model=None)
async def totp_enable(request: Request, principal: VisitorDep) -> Response:
    form = await form_of(request)
    try:
        await run_in_threadpool(sessions.totp_enable, instance_of(request), principal,
                                text_field(form, "code"))
    except SpravaError as exc:
        return render(request, "totp.html", title=_("Set up a second factor"),
                      status=exc.http_status, problem=exc, secret=None, uri=None)
    return redirect(request, "/account?done=totp")
