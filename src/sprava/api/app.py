"""The application: routes under ``/api/v1``, one error shape, limits and headers; the
team's pages at ``/`` (:mod:`sprava.webapp`, which answer in HTML with headers of their
own) and the insider inbox's pages at ``/inbox/`` are served beside them.

Every error is ``{"error": {"code", "message", "hint"?}}`` with the status its class
carries (:mod:`sprava.errors`); an unexpected failure is a 500 with no detail (the detail
goes to the server log). Request bodies are capped (JSON at :data:`JSON_MAX`, uploads at
``upload_max_mb``) before they are read. Responses carry headers that stop browsers from
sniffing, framing or caching them. There is no interactive documentation page: it would
load scripts from elsewhere; the OpenAPI description is at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sprava import __version__
from sprava.api import (
    routes_auth,
    routes_catalogue,
    routes_exchange,
    routes_items,
    routes_search,
    routes_vault,
)
from sprava.api.models import ErrorOut
from sprava.api.responses import SafeJSONResponse, error_body, error_response
from sprava.errors import SpravaError, TooLargeError
from sprava.inbox import routes as inbox_routes
from sprava.instance import Instance
from sprava.webapp import routes as web_routes

PREFIX = "/api/v1"
JSON_MAX = 4 * 1024 * 1024
# Bodies that are files, not JSON: each route holds them to its own limit.
_UPLOADS = frozenset({f"{PREFIX}/items", *(PREFIX + p for p in routes_exchange.IMPORT_PATHS)})
log = logging.getLogger("sprava.api")
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class JobPoker:
    """Starts one background ``sprava jobs run`` after uploads, unless one is running;
    with ``jobs = celery``, announces the new jobs to the Celery workers instead."""

    def __init__(self, instance: Instance, enabled: bool) -> None:
        self._home = str(instance.settings.home)
        self._enabled = enabled
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._celery: Any = None
        if enabled and instance.settings.jobs == "celery":
            from sprava.jobs.dispatch import CeleryPoker

            self._celery = CeleryPoker(instance)

    def poke(self) -> None:
        if not self._enabled:
            return
        if self._celery is not None:
            self._celery.poke()
            return
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            self._proc = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
                [sys.executable, "-m", "sprava", "--home", self._home, "jobs", "run",
                 "--quiet"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, close_fds=True)

    def stop(self) -> None:
        if self._celery is not None:
            self._celery.stop()
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
                self._proc.wait(timeout=30)


class Guard:
    """ASGI middleware: security headers on every response, and body-size caps.

    A declared Content-Length over the cap is refused before reading; a body sent in
    chunks is counted as it arrives and cut off at the cap.
    """

    def __init__(self, app: ASGIApp, upload_max: int) -> None:
        self.app = app
        self.upload_max = upload_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["method"] == "POST" and scope["path"] in _UPLOADS
        cap = self.upload_max if is_upload else JSON_MAX
        declared = dict(scope["headers"]).get(b"content-length")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in _HEADERS if k not in names]
            await send(message)

        if scope["path"].startswith("/inbox/") or scope["path"] == web_routes.UPLOAD_PATH:
            # The insider's pages and the team's upload page cap their own bodies
            # (inbox_upload_max_mb, small forms; upload_max_mb a file) and answer in
            # HTML, in the reader's language: no JSON 413 from here.
            await self.app(scope, receive, send_with_headers)
            return
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            body = SafeJSONResponse(error_body(
                "too-large", f"the request body is over the limit of {cap} bytes"),
                status_code=413)
            await body(scope, receive, send_with_headers)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise TooLargeError(f"the request body is over the limit of {cap} bytes")
            return message

        await self.app(scope, counted if not is_upload else receive, send_with_headers)


def create_app(instance: Instance, *, background_jobs: bool | None = None) -> FastAPI:
    """The API over an open instance (the caller closes it). Uploads start analysis in a
    background process when ``background_jobs`` (default: the setting) is true."""
    app = FastAPI(
        title="Sprava API", version=__version__, openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None, redoc_url=None, default_response_class=SafeJSONResponse,
        responses={422: {"model": ErrorOut}, 401: {"model": ErrorOut},
                   403: {"model": ErrorOut}, 404: {"model": ErrorOut},
                   413: {"model": ErrorOut, "description": "The request body is over "
                         "the limit (uploads: upload_max_mb; anything else: 4 MiB)"}},
        description="Evidence vault and catalogue. Log in at /api/v1/auth/login (cookie "
                    "session + X-CSRF-Token) or send `Authorization: Bearer <API token>`.")
    app.state.instance = instance
    app.state.jobs = JobPoker(instance, instance.settings.background_jobs
                              if background_jobs is None else background_jobs)

    @app.exception_handler(SpravaError)
    async def _sprava(_request: Request, exc: SpravaError) -> SafeJSONResponse:
        if exc.http_status >= 500:
            log.error("request failed: %s", exc)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> SafeJSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return SafeJSONResponse(error_body(
            "bad-request", f"{where}: {first.get('msg', 'invalid')}"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> SafeJSONResponse:
        if isinstance(exc.__cause__, SpravaError):
            # Raised while the framework read the body (the Guard's cap on a body sent in
            # chunks): the framework wraps it in a 400; answer with our own error.
            return error_response(exc.__cause__)
        if exc.status_code == 400:
            # The framework could not read the body at all (e.g. JSON that is not UTF-8):
            # the same answer as any other malformed JSON.
            return SafeJSONResponse(error_body(
                "bad-request", "body: the request body is not valid JSON"), status_code=422)
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return SafeJSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> SafeJSONResponse:
        log.exception("unexpected failure", exc_info=exc)
        return SafeJSONResponse(error_body("internal", "the server failed; see its log"),
                                status_code=500)

    @app.get(f"{PREFIX}/health", tags=["service"])
    def health() -> dict[str, Any]:
        """Whether the server is up (no login needed; says nothing about the data)."""
        return {"status": "ok", "version": __version__}

    app.include_router(routes_auth.router, prefix=PREFIX)
    app.include_router(routes_items.router, prefix=PREFIX)
    app.include_router(routes_catalogue.router, prefix=PREFIX)
    app.include_router(routes_exchange.router, prefix=PREFIX)
    app.include_router(routes_vault.router, prefix=PREFIX)
    app.include_router(routes_search.router, prefix=PREFIX)
    app.include_router(inbox_routes.router)
    app.include_router(web_routes.router())  # the team's pages at /
    inbox_routes.keep_out_of_access_log()  # the insiders' pages: no address, no time
    app.add_middleware(Guard, upload_max=instance.settings.upload_max_mb * 1024 * 1024)
    return app
