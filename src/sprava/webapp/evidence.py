"""Evidence: the grid of items with filters, an item's page, and its redacted thumbnail.

Scope as in the API: coordinators and investigators see every item, and opening an
original's page is a custody event naming them; uploaders see only what they handed
in; viewers see only redacted copies, and of those only what leaves the restricted zone
(no names, no metadata of the original). An item out of scope is answered exactly as
one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.api.routes_items import scope, sha_of
from sprava.backends.db.engine import read_transaction
from sprava.catalogue._record import recording
from sprava.domain.digest import Digest
from sprava.errors import BadInputError, NotFoundError, SpravaError
from sprava.instance import Instance
from sprava.jobs.kinds import ANALYSE
from sprava.ledger import log
from sprava.ledger.merkle import verify_inclusion
from sprava.ledger.note import open_checkpoint
from sprava.media.redaction_job import MODES, REDACTION
from sprava.store import items as store_items
from sprava.webapp.evidence_query import (
    KINDS,
    STATES,
    ItemFilters,
    find_items,
    source_names,
    thumbnail_of,
)
from sprava.webapp.page import HEADERS, _, language, render
from sprava.webapp.progress import ACTIVE, analysis_text
from sprava.webapp.visitor import (
    PageRoute,
    VisitorDep,
    instance_of,
    require,
)

PAGE = 48
_THUMB_MAX = 4 * 1024 * 1024
router = APIRouter(route_class=PageRoute, include_in_schema=False)
READERS = (Capability.ITEMS_ALL, Capability.ITEMS_OWN, Capability.ITEMS_REDACTED)
_KEPT = ("kind", "state", "source", "since", "until", "taken_from", "taken_to", "cluster")


def _day(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadInputError(f"{name}: a date as YYYY-MM-DD", code="bad-date") from None


def _offset(request: Request) -> int:
    raw = request.query_params.get("offset", "0")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


@router.get("/items", response_class=HTMLResponse)
def item_list(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, *READERS)
    params = request.query_params
    kind = params.get("kind") if params.get("kind") in KINDS else None
    state = params.get("state") if params.get("state") in STATES else None
    source = (params.get("source") or "")[:200] or None
    cluster = (params.get("cluster") or "")[:64] or None
    redacted_only = not (principal.can(Capability.ITEMS_ALL)
                         or principal.can(Capability.ITEMS_OWN))
    # The capture time is the original's metadata: not a filter for redacted copies.
    taken_from, taken_to = (None, None) if redacted_only else (
        _day(params.get("taken_from"), "taken_from"), _day(params.get("taken_to"), "taken_to"))
    if taken_from and taken_to and taken_to < taken_from:
        raise BadInputError("taken_to: the end is before the start", code="bad-period")
    filters = ItemFilters(kind=kind, source=source, state=state, cluster=cluster,
                          since=_day(params.get("since"), "since"),
                          until=_day(params.get("until"), "until"), taken_since=taken_from,
                          taken_until=taken_to + timedelta(days=1) if taken_to else None)
    offset = _offset(request)
    with read_transaction(instance_of(request).engine) as conn:
        rows, total = find_items(conn, scope(principal), filters, limit=PAGE, offset=offset)
        sources = source_names(conn) if principal.can(Capability.ITEMS_ALL) else []
    keep = {k: v for k, v in params.items() if k in _KEPT and v}
    return render(request, "items.html", title=_("Evidence"), items=rows, total=total,
                  offset=offset, page=PAGE, kinds=KINDS, states=STATES, sources=sources,
                  chosen=keep, redacted_only=redacted_only,
                  may_upload=principal.can(Capability.UPLOAD))


def original_in_scope(instance: Instance, principal: Principal, sha: str) -> bool:
    """True if ``sha`` is an original the reader may see, False for a redacted copy;
    NotFoundError if the reader may not see it at all (the same answer as for an item
    that is not held)."""
    with read_transaction(instance.engine) as conn:
        if not store_items.in_scope(conn, sha, **scope(principal)):
            raise NotFoundError(f"no item sha256:{sha} is held", code="item-not-found")
        return not store_items.in_scope(conn, sha, derived=REDACTION)


@router.get("/items/{sha256}", response_class=HTMLResponse)
def item_page(request: Request, principal: VisitorDep, sha256: str) -> HTMLResponse:
    require(principal, *READERS)
    instance = instance_of(request)
    sha = sha_of(sha256)
    original = original_in_scope(instance, principal, sha)
    if original:
        # Threat: an insider browsing originals unseen. Every opening is on the record.
        with recording(instance, principal.actor) as rec:
            rec.record_view("item", [sha])
    with read_transaction(instance.engine) as conn:
        record = store_items.item_record(conn, sha)
        thumb = thumbnail_of(conn, sha)
        where = scope(principal)
        members = [m for m in (record.get("cluster") or {}).get("members", [])
                   if m != sha and store_items.in_scope(conn, m, **where)]
        derived = [d for d in record.get("derived", [])
                   if store_items.in_scope(conn, d["sha256"], **where)]
        proofs = _proof_states(conn, instance, record.get("custody", []))
    full = principal.can(Capability.ITEMS_ALL) or principal.can(Capability.ITEMS_OWN)
    metadata: dict[str, Any] = (record.get("metadata") or {}) if full else {}
    if not full:  # what a viewer may see of a redacted copy, as in the API
        record = {k: record[k] for k in ("sha256", "size", "media_type", "first_seen",
                                         "derived_from", "custody") if k in record}
    analysed = [j["status"] for j in record.get("jobs", []) if j["kind"] == ANALYSE]
    steps = {k: str(v.get("status")) for k, v in (record.get("analysis") or {}).items()}
    gps = metadata.get("gps") if isinstance(metadata.get("gps"), dict) else None
    rows = [(k, v) for k, v in sorted(metadata.items()) if k != "gps"]
    return render(request, "item.html", title=_("Item"), item=record, full=full,
                  metadata=rows, gps=gps, thumbnail=thumb, near=members, derived=derived,
                  cluster=(record.get("cluster") or {}).get("name") if full else None,
                  analysis_text=analysis_text(language(request).gettext, (
                      analysed[-1] if analysed else "none"), steps) if full else "",
                  analysis_active=bool(analysed) and analysed[-1] in ACTIVE,
                  proofs=proofs, script=full,
                  may_redact=principal.can(Capability.ITEMS_ALL) and original
                  and str(record.get("media_type", "")).startswith(("image/", "video/")),
                  modes=MODES, queued=request.query_params.get("redaction") == "queued")


def _proof_states(conn: Connection, instance: Instance, events: list[dict[str, Any]]
                  ) -> dict[int, str]:
    """For each custody event's leaf: ``verified`` (its inclusion proof leads to the root
    of the latest signed checkpoint), ``pending`` (not yet under a checkpoint) or
    ``failed``."""
    stored = log.latest_checkpoint(conn)
    states: dict[int, str] = {}
    checkpoint = None
    if stored is not None:
        try:
            checkpoint = open_checkpoint(stored.note, instance.verifier)
        except SpravaError:
            checkpoint = None
    for event in events:
        index = int(event["leaf_index"])
        if checkpoint is None or index >= checkpoint.size:
            states[index] = "pending" if stored is None or checkpoint else "failed"
            continue
        try:
            proof = log.inclusion_proof(conn, index, checkpoint.size)
            verify_inclusion(index, checkpoint.size, bytes.fromhex(event["leaf_hash"]),
                             proof, checkpoint.root)
            states[index] = "verified"
        except SpravaError:
            states[index] = "failed"
    return states


@router.get("/items/{sha256}/thumbnail.jpg")
def thumbnail(request: Request, principal: VisitorDep, sha256: str) -> Response:
    """The redacted thumbnail of an item in the reader's scope (faces already blurred:
    opening it is not a view of the original)."""
    require(principal, *READERS)
    instance = instance_of(request)
    sha = sha_of(sha256)
    original_in_scope(instance, principal, sha)
    with read_transaction(instance.engine) as conn:
        thumb = thumbnail_of(conn, sha)
    if thumb is None:
        raise NotFoundError("no thumbnail yet", code="item-not-found")
    with instance.blobs.open(Digest(thumb)) as handle:
        data = handle.read(_THUMB_MAX)
    return Response(data, media_type="image/jpeg", headers=dict(
        HEADERS, **{"Cache-Control": "private, max-age=3600"}))
