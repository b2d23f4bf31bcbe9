"""The whole catalogue in and out, over HTTP: what ``sprava catalogue`` does, for
coordinators (the ``exchange`` capability; an export with persons also needs ``persons``).

An export answers with the file itself and records itself as the CLI's does (a view of
every person it holds, then a ``catalogue_export`` event with the SHA-256 of the exact
bytes, given back in headers). Imports take the file as the raw request body, are all or
nothing, and carry the importer's account as the actor (docs/exchange.md).
"""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.api.deps import NO_CONTROL, InstanceDep, needs
from sprava.errors import PermissionDeniedError, TooLargeError

router = APIRouter(tags=["catalogue"])
Exchanger = Annotated[Principal, Depends(needs(Capability.EXCHANGE))]
IMPORT_PATHS = ("/catalogue/import", "/catalogue/import-sfm")
_MEDIA = {"json": "application/json", "csv": "application/zip"}
_BINARY_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


async def _body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"{what} is over the limit of {limit // (1024 * 1024)} MiB",
                            code="too-large")
    parts, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise TooLargeError(f"{what} is over the limit of {limit // (1024 * 1024)} MiB",
                                code="too-large")
        parts.append(chunk)
    return b"".join(parts)


@router.get("/catalogue/export", response_class=Response, responses={200: {"content": {
    "application/json": {"schema": {"type": "object"}},
    "application/zip": {"schema": {"type": "string", "format": "binary"}}}}})
def export(instance: InstanceDep, principal: Exchanger,
           format: Literal["json", "csv"] = "json",
           persons: bool = True) -> Response:
    """The whole catalogue as JSON, or as a ZIP of CSV files; ``persons=false`` leaves
    out persons and the claims naming them. Recorded in the ledger; the headers carry
    the SHA-256 of the body and the leaf index of the export event."""
    from sprava.catalogue.exchange import export_catalogue

    if persons and not principal.can(Capability.PERSONS):
        raise PermissionDeniedError("an export with persons needs the right to see persons",
                                    code="forbidden", hint="ask with persons=false")
    out = io.BytesIO()
    summary = export_catalogue(instance, out, fmt=format, actor=principal.actor,
                               persons=persons)
    name = f"catalogue-{summary.exported_at[:10]}.{'zip' if format == 'csv' else 'json'}"
    return Response(out.getvalue(), media_type=_MEDIA[format], headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Sprava-Sha256": summary.sha256, "X-Sprava-Leaf-Index": str(summary.leaf_index)})


@router.post("/catalogue/import", response_model=dict[str, Any], openapi_extra=_BINARY_BODY)
async def import_(request: Request, instance: InstanceDep, principal: Exchanger,
                  format: Literal["json", "csv", "auto"] = "auto",
                  ) -> Any:
    """Import a catalogue export (the raw body: JSON, or a ZIP of CSV): all of it or
    nothing. Approved claims arrive pending review; cited items must be held already."""
    from sprava.catalogue.exchange import import_catalogue
    from sprava.catalogue.exchange_files import MAX_BYTES

    data = await _body(request, MAX_BYTES, "the import file")
    summary = await anyio.to_thread.run_sync(lambda: import_catalogue(
        instance, io.BytesIO(data), fmt=format, actor=principal.actor))
    return summary.to_dict()


@router.post("/catalogue/import-sfm", response_model=dict[str, Any],
             openapi_extra=_BINARY_BODY)
async def import_sfm(request: Request, instance: InstanceDep, principal: Exchanger,
                     name: Annotated[str, Query(min_length=1, max_length=200,
                                                pattern=NO_CONTROL)] = "sfm.csv",
                     source: Annotated[str | None, Query(min_length=1, max_length=200,
                                                         pattern=NO_CONTROL)] = None,
                     lang: Annotated[str, Query(min_length=2, max_length=35,
                                                pattern=NO_CONTROL)] = "und") -> Any:
    """Import units, persons and claims (submitted for review) from a Security Force
    Monitor style CSV (the raw body); the file is ingested as ``name`` and cited as the
    source of every claim."""
    from sprava.catalogue.sfm import MAX_BYTES, import_sfm_bytes

    data = await _body(request, MAX_BYTES, "the CSV file")
    summary = await anyio.to_thread.run_sync(lambda: import_sfm_bytes(
        instance, data, name=name, actor=principal.actor, source=source, lang=lang))
    request.app.state.jobs.poke()
    return summary.to_dict()
