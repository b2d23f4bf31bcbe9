"""Items: list, detail, content, custody history, and streaming upload.

What a reader sees depends on the role: coordinators and investigators see every item
(each view of an original's detail or content is a custody event naming them);
uploaders see only what they handed in; viewers see only redacted copies. An item out of
a reader's scope is answered exactly as an item that does not exist (404).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

import anyio
import anyio.from_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.api.deps import NO_CONTROL, InstanceDep, PagingDep, needs, needs_any
from sprava.api.models import CustodyEventOut, PageOut, UploadOut
from sprava.api.responses import SafeJSONResponse
from sprava.backends.db.engine import read_transaction
from sprava.catalogue._record import recording
from sprava.domain.digest import Digest
from sprava.errors import BadInputError, NotFoundError, SpravaError, TooLargeError
from sprava.instance import Instance
from sprava.media.redaction_job import REDACTION
from sprava.store import items as store_items
from sprava.store.ingest import Ingestor

router = APIRouter(tags=["items"])
Reader = Annotated[Principal, Depends(needs_any(
    Capability.ITEMS_ALL, Capability.ITEMS_OWN, Capability.ITEMS_REDACTED))]
Uploader = Annotated[Principal, Depends(needs(Capability.UPLOAD))]
_SHA = re.compile(r"[0-9a-f]{64}")
_NAME_BAD = re.compile(r"[\x00-\x1f\x7f]")
_CHUNK = 1 << 20


def scope(principal: Principal) -> dict[str, str | None]:
    """The item filter for this reader (see :func:`sprava.store.items.list_items`)."""
    if principal.can(Capability.ITEMS_ALL):
        return {"uploaded_by": None, "derived": None}
    if principal.can(Capability.ITEMS_OWN):
        return {"uploaded_by": principal.actor, "derived": None}
    return {"uploaded_by": None, "derived": REDACTION}


def sha_of(value: str) -> str:
    """A full SHA-256 from a path parameter; BadInputError otherwise."""
    value = value.lower().removeprefix("sha256:")
    if not _SHA.fullmatch(value):
        raise BadInputError("an item is named by its full SHA-256 (64 hex digits)",
                            code="bad-item-ref")
    return value


def _visible(instance: Instance, principal: Principal, sha: str) -> bool:
    """True if ``sha`` is an original (not a redacted copy) the reader may see; raises
    NotFoundError if the reader may not see it at all."""
    with read_transaction(instance.engine) as conn:
        if not store_items.in_scope(conn, sha, **scope(principal)):
            raise NotFoundError(f"no item sha256:{sha} is held", code="item-not-found")
        return not store_items.in_scope(conn, sha, derived=REDACTION)


def _record_view(instance: Instance, principal: Principal, sha: str, original: bool) -> None:
    if original:
        with recording(instance, principal.actor) as rec:
            rec.record_view("item", [sha])


@router.get("/items", response_model=PageOut[dict[str, Any]])
def list_items(instance: InstanceDep, principal: Reader, paging: PagingDep) -> Any:
    """Items in the order they arrived, within the reader's scope."""
    where = scope(principal)
    with read_transaction(instance.engine) as conn:
        rows = store_items.list_items(conn, limit=paging.limit, offset=paging.offset, **where)
        total = store_items.count_items(conn, **where)
    return {"items": rows, "total": total, "limit": paging.limit, "offset": paging.offset}


def _redacted_view(record: dict[str, Any]) -> dict[str, Any]:
    """What a viewer may see of a redacted copy: no names, no analysis of the original."""
    keep = ("sha256", "size", "media_type", "first_seen", "derived_from", "custody")
    return {k: record[k] for k in keep if k in record}


@router.get("/items/{sha256}", response_model=dict[str, Any])
def get_item(instance: InstanceDep, principal: Reader, sha256: str) -> Any:
    """Everything held about one item. Reading an original's record is a custody event."""
    sha = sha_of(sha256)
    original = _visible(instance, principal, sha)
    _record_view(instance, principal, sha, original)
    with read_transaction(instance.engine) as conn:
        record = store_items.item_record(conn, sha)
    if not principal.can(Capability.ITEMS_ALL) and not principal.can(Capability.ITEMS_OWN):
        return _redacted_view(record)
    return record


@router.get("/items/{sha256}/custody", response_model=list[CustodyEventOut])
def item_custody(instance: InstanceDep, principal: Reader, sha256: str) -> Any:
    """The item's custody events: each ingest and derivation, with its leaf."""
    sha = sha_of(sha256)
    _visible(instance, principal, sha)
    with read_transaction(instance.engine) as conn:
        return store_items.item_record(conn, sha)["custody"]


@router.get("/items/{sha256}/content", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def item_content(instance: InstanceDep, principal: Reader, sha256: str) -> StreamingResponse:
    """The exact bytes, as a download (never rendered). Reading an original is a custody
    event."""
    sha = sha_of(sha256)
    original = _visible(instance, principal, sha)
    _record_view(instance, principal, sha, original)
    handle = instance.blobs.open(Digest(sha))

    def body() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    return StreamingResponse(body(), media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{sha}"',
        "X-Content-Type-Options": "nosniff"})


def _upload_name(name: str) -> bytes:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in (".", "..") or _NAME_BAD.search(base):
        raise BadInputError("name: the file's name, without folders or control characters",
                            code="bad-name")
    return base.encode("utf-8", "surrogateescape")


@router.post("/items", response_model=UploadOut, status_code=201, responses={
    200: {"model": UploadOut, "description": "Already held: nothing new was stored"}},
    openapi_extra={
    "requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload(request: Request, instance: InstanceDep, principal: Uploader,
                 name: Annotated[str, Query(min_length=1, max_length=1000)],
                 source: Annotated[str | None, Query(min_length=1, max_length=200,
                                                     pattern=NO_CONTROL)] = None,
                 ) -> Any:
    """Upload one file as the raw request body (streamed: one pass, hashed as it is
    written, never overwriting). 201 when new, 200 when already held; 413 beyond
    ``upload_max_mb``, and then nothing is stored."""
    limit = instance.settings.upload_max_mb * 1024 * 1024
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"the upload is over the limit of "
                            f"{instance.settings.upload_max_mb} MiB", code="too-large")
    raw_name = _upload_name(name)
    stream = request.stream().__aiter__()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    def pull() -> bytes | None:
        return anyio.from_thread.run(next_chunk)

    def chunks() -> Iterator[bytes]:
        total = 0
        while (chunk := pull()) is not None:
            total += len(chunk)
            if total > limit:
                raise TooLargeError(f"the upload is over the limit of "
                                    f"{instance.settings.upload_max_mb} MiB")
            yield chunk

    ingestor = Ingestor(instance, source_name=source, actor=principal.actor)
    result = await anyio.to_thread.run_sync(ingestor.ingest_chunks, raw_name, chunks())
    if result.status == "failed":
        error = result.error or SpravaError("the upload could not be stored")
        raise error
    request.app.state.jobs.poke()
    out = UploadOut(name=result.name, status=result.status, sha256=result.sha256,
                    size=result.size, media_type=result.media_type,
                    leaf_index=result.leaf_index)
    if result.status == "already-held":
        return SafeJSONResponse(out.model_dump(), status_code=200)
    return out
