"""The insider's pages under ``/inbox/``: server-rendered HTML, no JavaScript, no cookies
before a receipt code is entered, nothing from elsewhere.

Every page carries a strict Content-Security-Policy (only this server's stylesheet;
forms only to this server; no scripts, frames, fonts or images), ``no-store`` and
``no-referrer``. Nothing here logs a request, and the server's access log leaves these
paths out (:func:`keep_out_of_access_log`). Failures are answered with the page the
insider was on, the problem in their language, and the status of the error.

:func:`create_inbox_app` is the whole app of ``sprava serve --inbox-only``: these pages
and nothing else, to be published on its own (as an onion service).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from sprava.accounts.secrets import same
from sprava.errors import (
    AuthenticationError,
    BadInputError,
    PermissionDeniedError,
    SpravaError,
    TooLargeError,
    TooManyAttemptsError,
)
from sprava.inbox.form import FormReader
from sprava.inbox.intake import MAX_FILES, Intake
from sprava.inbox.service import Inbox, InsiderSession
from sprava.instance import Instance
from sprava.web import templates
from sprava.web.headers import page_headers
from sprava.web.i18n import NAMES, Catalogues, Language

PREFIX = "/inbox"
COOKIE = "sprava_inbox"
_BATCH = 1 << 20  # bytes of the body parsed and encrypted at a time
_SMALL_BODY = 4096
CSP = ("default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
HEADERS = page_headers(CSP)


def _(text: str) -> str:
    """Marks a message for translation where it is declared; translated when shown."""
    return text


# What an insider is told, in their language, for each error they can meet.
PROBLEMS: dict[str, tuple[str, str | None]] = {
    "empty-submission": (_("There is nothing to send: write a message or choose a file."),
                         None),
    "too-large": (_("This is more than can be sent at once (%(size)s MiB). Nothing was "
                    "kept."), _("Send large material in several parts.")),
    "message-too-long": (_("The message is too long to type here. Nothing was kept."),
                         _("Put long texts in a file and attach it.")),
    "too-many-files": (_("Too many files at once (at most %(files)s). Nothing was kept."),
                       _("Send the rest in a second part, or as one archive.")),
    "bad-form": (_("The form did not arrive whole. Nothing was kept."),
                 _("The connection may have been cut: please send it again.")),
    "wrong-receipt-code": (_("This receipt code does not open a submission."),
                           _("Check each word. If you are sure of the code, wait an hour "
                             "and try again: after repeated wrong codes a submission "
                             "refuses every code for a while.")),
    "bad-receipt-code": (_("A receipt code is seven words from our word list."),
                         _("Check that no word is missing or misspelt.")),
    "inbox-paused": (_("Too many wrong codes were entered here recently. Please wait a "
                       "minute and try again."), None),
    "inbox-closed": (_("The inbox does not accept submissions yet. Please try again "
                       "later."), None),
    "csrf-failed": (_("This page is out of date. Nothing was kept."),
                    _("Open the page again and resend.")),
}
_GENERIC = (_("Something went wrong on our side. Nothing was kept."),
            _("Please try again later."))

class _LeaveOutInbox(logging.Filter):
    """Drops the access log's lines about the insider's pages.

    Threat guarded against: an access log line holds the visitor's address and the
    moment of the visit (uvicorn writes ``ADDRESS - "METHOD PATH HTTP/x" STATUS`` with a
    time), exactly what a seized or subpoenaed server must not yield. The team's own
    requests stay in the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(isinstance(arg, str) and (arg == PREFIX or arg.startswith(
            (f"{PREFIX}/", f"{PREFIX}?"))) for arg in args)


def keep_out_of_access_log() -> None:
    """Leave the inbox's paths out of uvicorn's access log (once per process)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _LeaveOutInbox) for f in access.filters):
        access.addFilter(_LeaveOutInbox())


_catalogues = Catalogues()


def environment() -> Environment:
    return templates.environment("sprava.inbox")


_inbox_lock = threading.Lock()


def inbox_of(request: Request) -> Inbox:
    """The app's Inbox, made on first use (it reads or creates ``keys/inbox.key``)."""
    state = request.app.state
    with _inbox_lock:
        found: Inbox | None = getattr(state, "inbox", None)
        if found is None:
            instance: Instance = state.instance
            found = state.inbox = Inbox(instance)
        return found


def _language(request: Request) -> Language:
    return _catalogues.language(_catalogues.negotiate(
        request.query_params.get("lang"), request.headers.get("accept-language")))


def render(request: Request, template: str, *, status: int = 200, title: str,
           here: str | None = None, problem: SpravaError | None = None,
           **context: Any) -> HTMLResponse:
    lang = _language(request)
    say, limits = lang.gettext, _limits(request)
    text = hint = None
    if problem is not None:
        message, advice = PROBLEMS.get(problem.code, _GENERIC)
        text = say(message) % limits if "%(" in message else say(message)
        hint = say(advice) if advice else None
    body = environment().get_template(template).render(
        _=say, ngettext=lang.ngettext, lang=lang, title=say(title), here=here,
        languages=list(NAMES.items()), problem=text, problem_hint=hint, **limits, **context)
    headers = dict(HEADERS, **{"Content-Language": lang.code})
    if isinstance(problem, TooManyAttemptsError):
        headers["Retry-After"] = str(problem.retry_after)
    return HTMLResponse(body, status_code=status, headers=headers)


def _limits(request: Request) -> dict[str, int]:
    settings = request.app.state.instance.settings
    return {"max_files": MAX_FILES, "max_mb": settings.inbox_upload_max_mb,
            "files": MAX_FILES, "size": settings.inbox_upload_max_mb}


def _redirect(request: Request, path: str) -> RedirectResponse:
    lang = _language(request).code
    return RedirectResponse(f"{PREFIX}{path}{'&' if '?' in path else '?'}lang={lang}",
                            status_code=303, headers=HEADERS)


def _session(request: Request, inbox: Inbox) -> InsiderSession | None:
    return inbox.sessions.get(request.cookies.get(COOKIE))


async def _small_form(request: Request) -> dict[str, str]:
    """A small urlencoded form (a code, a token), read with a cap."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _SMALL_BODY:
            raise BadInputError("the form is too long", code="bad-form")
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=4, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise BadInputError("the form could not be read", code="bad-form") from None
    return {k: v[0] for k, v in parsed.items() if v}


async def _receive(request: Request, inbox: Inbox, intake: Intake,
                   check_csrf: Callable[[str | None], None] | None) -> None:
    """Stream the body into the intake, a megabyte at a time, on the event loop itself.

    Measured on a 1 GiB upload (2 vCPUs): handing each megabyte to a worker thread cost
    3.9 s of CPU against 2.3 s here (the two threads fight over the GIL: parsing and
    encryption hold it), for no gain in wall time. Each megabyte blocks the loop for a
    few milliseconds; the writes do not wait on the disk, since write-back of what is
    written starts at once (see :mod:`sprava.inbox.storage`)."""
    limit = inbox.settings.inbox_upload_max_mb * 1024 * 1024
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLargeError("the submission is over the limit", code="too-large")
    reader = FormReader(request.headers.get("content-type", ""), intake, limit=limit,
                        check_csrf=check_csrf)
    batch: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            batch.append(chunk)
            size += len(chunk)
            if size >= _BATCH:
                reader.feed(b"".join(batch))
                batch, size = [], 0
    except ClientDisconnect:
        raise BadInputError("the form ended early", code="bad-form") from None
    reader.feed(b"".join(batch))
    reader.close()


router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    return render(request, "index.html", title=_("Send us information safely"),
                  here=f"{PREFIX}/")


@router.get("/style.css")
def stylesheet() -> Response:
    css = (resources.files("sprava.inbox") / "static" / "style.css").read_bytes()
    return Response(css, media_type="text/css", headers=dict(
        HEADERS, **{"Cache-Control": "public, max-age=86400"}))


@router.post("/submit", response_class=HTMLResponse)
async def submit(request: Request) -> HTMLResponse:
    """A new submission: the form streams in, encrypted as it arrives; the receipt code
    is shown once."""
    intake: Intake | None = None
    try:
        inbox = await anyio.to_thread.run_sync(inbox_of, request)
        intake = await anyio.to_thread.run_sync(inbox.submission_intake)
        await _receive(request, inbox, intake, None)
        code, _pseudonym = await anyio.to_thread.run_sync(inbox.submit, intake)
    except SpravaError as exc:
        if intake is not None:
            intake.abort()
        return render(request, "index.html", status=exc.http_status, problem=exc,
                      title=_("Send us information safely"), here=f"{PREFIX}/")
    except BaseException:
        if intake is not None:
            intake.abort()
        raise
    return render(request, "submitted.html", title=_("Received. Thank you."), code=str(code))


@router.get("/return", response_class=HTMLResponse)
def return_page(request: Request) -> HTMLResponse:
    return render(request, "return.html", title=_("Come back with your receipt code"),
                  here=f"{PREFIX}/return")


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    try:
        inbox = await anyio.to_thread.run_sync(inbox_of, request)
        form = await _small_form(request)
        token, _opened = await anyio.to_thread.run_sync(inbox.login, form.get("code"))
    except (AuthenticationError, BadInputError) as exc:
        return render(request, "return.html", status=exc.http_status, problem=exc,
                      title=_("Come back with your receipt code"), here=f"{PREFIX}/return")
    response = _redirect(request, "/conversation")
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path=PREFIX)
    return response


@router.get("/conversation", response_model=None)
async def conversation(request: Request) -> Response:
    inbox = await anyio.to_thread.run_sync(inbox_of, request)
    session = _session(request, inbox)
    if session is None:
        return _redirect(request, "/return")
    return await _conversation_page(request, inbox, session, sent=bool(
        request.query_params.get("sent")))


async def _conversation_page(request: Request, inbox: Inbox, session: InsiderSession, *,
                             sent: bool = False, status: int = 200,
                             problem: SpravaError | None = None) -> HTMLResponse:
    entries = await anyio.to_thread.run_sync(inbox.conversation, session)
    return render(request, "conversation.html", status=status, problem=problem,
                  title=_("Your conversation"), here=f"{PREFIX}/conversation",
                  entries=entries, csrf=session.csrf, sent=sent,
                  has_reply=any(e.author == "staff" for e in entries))


@router.post("/conversation", response_model=None)
async def follow_up(request: Request) -> Response:
    """The insider adds to their submission (the form's CSRF token comes first)."""
    inbox = await anyio.to_thread.run_sync(inbox_of, request)
    session = _session(request, inbox)
    if session is None:
        return _redirect(request, "/return")

    def check(value: str | None) -> None:
        if not value or not same(value, session.csrf):
            raise PermissionDeniedError("the form is out of date", code="csrf-failed")

    intake: Intake | None = None
    try:
        intake = await anyio.to_thread.run_sync(inbox.intake)
        await _receive(request, inbox, intake, check)
        await anyio.to_thread.run_sync(inbox.follow_up, intake, session)
    except SpravaError as exc:
        if intake is not None:
            intake.abort()
        return await _conversation_page(request, inbox, session, status=exc.http_status,
                                        problem=exc)
    except BaseException:
        if intake is not None:
            intake.abort()
        raise
    return _redirect(request, "/conversation?sent=1")


@router.post("/logout", response_model=None)
async def logout(request: Request) -> Response:
    inbox = await anyio.to_thread.run_sync(inbox_of, request)
    session = _session(request, inbox)
    try:
        form = await _small_form(request)
    except BadInputError:
        form = {}
    if session is not None and same(form.get("csrf", ""), session.csrf):
        inbox.sessions.close(request.cookies.get(COOKIE))
    response = _redirect(request, "/")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


def create_inbox_app(instance: Instance) -> FastAPI:
    """The inbox pages alone (``sprava serve --inbox-only``): no API, no documentation,
    no other path; anything else is a plain 404 page."""
    keep_out_of_access_log()
    app = FastAPI(title="Sprava inbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.instance = instance
    app.include_router(router)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return render(request, "problem.html", status=exc.status_code,
                      title=_("Not found"), back=f"{PREFIX}/")

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=303, headers=HEADERS)

    return app
