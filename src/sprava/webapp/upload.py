"""The upload page: a plain form for many files, streamed into the vault one by one.

No form reader that spools files to temporary files is used: each file part of the
``multipart/form-data`` body goes, as it arrives, to the same
:meth:`~sprava.store.ingest.Ingestor.ingest_chunks` the API's upload uses (one pass,
hashed while written, fsync, never overwriting, one transaction with its custody event).
A file is stored whole or not at all; the page lists what was stored. The CSRF token
must come before the first file; each file is held to ``upload_max_mb`` and the whole
form to :data:`MAX_FILES` of them. Uploading the same file again is harmless (it is
already held), so an interrupted batch is resumed by uploading it again.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.from_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser
from starlette.requests import ClientDisconnect

from sprava.accounts.roles import Capability
from sprava.accounts.secrets import same
from sprava.accounts.sessions import Principal
from sprava.errors import BadInputError, PermissionDeniedError, SpravaError, TooLargeError
from sprava.instance import Instance
from sprava.store.ingest import Ingestor, IngestResult
from sprava.web.multipart import PartHeaders, boundary_of
from sprava.webapp.page import _, render
from sprava.webapp.visitor import PageRoute, VisitorDep, instance_of, require

PATH = "/upload"
MAX_FILES = 50
_SMALL = 512
_NAME_BAD = re.compile(r"[\x00-\x1f\x7f]")
router = APIRouter(route_class=PageRoute, include_in_schema=False)


class _Parts:
    """python-multipart's push parser turned into a stream of events pulled one by one:
    ``("part", name, filename)``, ``("data", bytes)``, ``("end",)``."""

    def __init__(self, content_type: str, pull: Callable[[], bytes | None],
                 limit: int) -> None:
        boundary = boundary_of(content_type)
        self._pull = pull
        self._limit = limit
        self._received = 0
        self._events: deque[tuple[Any, ...]] = deque()
        self._part = PartHeaders()
        self.ended = False
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part.reset, "on_header_field": self._part.field,
            "on_header_value": self._part.value, "on_header_end": self._part.end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._data,
            "on_part_end": lambda: self._events.append(("end",)),
            "on_end": self._end}, max_header_count=8, max_header_size=4096)

    def next(self) -> tuple[Any, ...] | None:
        while not self._events:
            if self.ended:
                return None
            chunk = self._pull()
            try:
                if chunk is None:
                    self._parser.finalize()
                    if not self.ended:
                        raise BadInputError("the form ended early", code="bad-form")
                    continue
                self._received += len(chunk)
                if self._received > self._limit:
                    raise TooLargeError("the form is over the limit", code="too-large")
                self._parser.write(chunk)
            except FormParserError:
                raise BadInputError("the form could not be read", code="bad-form") from None
        return self._events.popleft()

    def _headers_finished(self) -> None:
        self._events.append(("part", *self._part.name_and_filename()))

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(("data", bytes(data[start:end])))

    def _end(self) -> None:
        self.ended = True


def _small(parts: _Parts) -> str:
    value = bytearray()
    while (event := parts.next()) is not None and event[0] == "data":
        value += event[1]
        if len(value) > _SMALL:
            raise BadInputError("a form field is too long", code="bad-form")
    return value.decode("utf-8", "replace").strip()


def _file_name(raw: bytes) -> bytes:
    base = raw.replace(b"\\", b"/").rsplit(b"/", 1)[-1].strip()
    if not base or base in (b".", b"..") or _NAME_BAD.search(base.decode("latin-1")):
        raise BadInputError("a file name holds control characters", code="bad-name")
    return base


def receive(instance: Instance, principal: Principal, parts: _Parts, per_file: int,
            results: list[IngestResult]) -> None:
    """Read the form from ``parts``, ingesting each file; results are appended as files
    are stored, so that they are known even if a later part fails."""
    fields: dict[str, str] = {}
    checked = False
    while (event := parts.next()) is not None:
        if event[0] != "part":
            continue
        _kind, name, filename = event
        if name in ("csrf", "source", "lang") and filename is None:
            fields[name] = _small(parts)
            continue
        if name != "files":
            raise BadInputError("the form holds a field it does not have",
                                code="unknown-field")
        if not checked:
            token = fields.get("csrf", "")
            if not principal.csrf_token or not same(token, principal.csrf_token):
                raise PermissionDeniedError("the form is out of date", code="csrf-failed")
            checked = True
        if not filename:  # an empty file input still sends a part without a file name
            while (event := parts.next()) is not None and event[0] == "data":
                pass
            continue
        if len(results) >= MAX_FILES:
            raise BadInputError(f"at most {MAX_FILES} files at once", code="too-many-files")
        source = fields.get("source") or None
        if source is not None and (len(source) > 200 or _NAME_BAD.search(source)):
            raise BadInputError("source: at most 200 characters", code="bad-field")

        def chunks() -> Iterator[bytes]:
            total = 0
            while (event := parts.next()) is not None and event[0] == "data":
                total += len(event[1])
                if total > per_file:
                    raise TooLargeError("the file is over the limit", code="too-large")
                yield event[1]
            if event is None:
                raise BadInputError("the form ended early", code="bad-form")

        ingestor = Ingestor(instance, source_name=source, actor=principal.actor)
        result = ingestor.ingest_chunks(_file_name(filename), chunks())
        if result.status == "failed":
            raise result.error or SpravaError("the upload could not be stored")
        results.append(result)
    if not results:
        raise BadInputError("choose at least one file", code="empty-upload")


@router.get(PATH, response_class=HTMLResponse)
def upload_page(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, Capability.UPLOAD)
    return _page(request, [])


def _page(request: Request, results: list[IngestResult], *, status: int = 200,
          problem: SpravaError | None = None) -> HTMLResponse:
    settings = instance_of(request).settings
    return render(request, "upload.html", title=_("Upload evidence"), status=status,
                  problem=problem, results=results, max_mb=settings.upload_max_mb,
                  max_files=MAX_FILES, script=True)


@router.post(PATH, response_class=HTMLResponse)
async def upload(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, Capability.UPLOAD)
    instance = instance_of(request)
    per_file = instance.settings.upload_max_mb * 1024 * 1024
    limit = per_file * MAX_FILES + (1 << 20)
    results: list[IngestResult] = []
    stream = request.stream().__aiter__()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None
        except ClientDisconnect:
            raise BadInputError("the form ended early", code="bad-form") from None

    def pull() -> bytes | None:
        return anyio.from_thread.run(next_chunk)

    try:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise TooLargeError("the form is over the limit", code="too-large")
        parts = _Parts(request.headers.get("content-type", ""), pull, limit)
        await anyio.to_thread.run_sync(receive, instance, principal, parts, per_file,
                                       results)
    except SpravaError as exc:
        if results:
            request.app.state.jobs.poke()
        return _page(request, results, status=exc.http_status, problem=exc)
    request.app.state.jobs.poke()
    return _page(request, results)
