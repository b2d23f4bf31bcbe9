"""The vault beyond single items: analysis jobs, near-duplicates, redaction requests, and
the ledger's key, checkpoint and proofs (what a checker needs, over HTTP)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.api.deps import InstanceDep, needs
from sprava.api.routes_items import sha_of
from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.catalogue import schema
from sprava.errors import BadInputError, NotFoundError
from sprava.jobs import queue
from sprava.jobs.kinds import REDACT
from sprava.ledger import log
from sprava.store.items import item_record

router = APIRouter()
AllItems = Annotated[Principal, Depends(needs(Capability.ITEMS_ALL))]
Ledger = Annotated[Principal, Depends(needs(Capability.LEDGER))]
# Text on success, the JSON error shape otherwise. (Declared with the plain Response class
# so that the description keeps the errors as application/json, as they are sent.)
_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}


@router.get("/jobs", response_model=dict[str, Any], tags=["items"])
def jobs(instance: InstanceDep, principal: AllItems) -> Any:
    """How many analysis jobs are queued, running, done and failed, and why failures
    failed."""
    with read_transaction(instance.engine) as conn:
        return {"counts": queue.counts(conn), "failures": queue.failures(conn)}


@router.get("/items/{sha256}/similar", response_model=dict[str, Any], tags=["items"])
def similar(instance: InstanceDep, principal: AllItems, sha256: str,
            max_distance: Annotated[int, Query(ge=0, le=128)] = 31,
            limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
    """Held items that look like this one (PDQ perceptual hashes of the pictures, closest
    first): re-posts, re-encodes, crops. Never faces: nothing here compares people."""
    from sprava.media.similarity import item_hashes, matches

    sha = sha_of(sha256)
    with read_transaction(instance.engine) as conn:
        item_record(conn, sha)  # 404 if not held
        found = [m for m in matches(instance, conn, item_hashes(conn, sha), max_distance,
                                    limit + 1) if m.sha256 != sha][:limit]
    return {"sha256": sha, "max_distance": max_distance,
            "matches": [{"sha256": m.sha256, "distance": m.distance, "second": m.second}
                        for m in found]}


@router.post("/items/{sha256}/redactions", response_model=dict[str, Any], status_code=202,
             tags=["items"])
def request_redaction(request: Request, instance: InstanceDep, principal: AllItems,
                      sha256: str,
                      body: Annotated[dict[str, Any] | None, Body()] = None) -> Any:
    """Queue a redacted copy (faces obscured, identifying metadata removed):
    ``{"mode"?: blur|pixelate|solid, "threshold"?, "keep_audio"?}``. The copy appears as
    a derived item when the job is done."""
    from sprava.media.redaction_job import MODES, redaction_params

    values = schema.fields(body or {}, "redaction", {"mode", "threshold", "keep_audio"})
    mode = schema.enum(values.get("mode", "blur"), "mode", str, MODES)
    threshold = schema.number(values.get("threshold", 0.2), "threshold", 0.01, 0.99)
    keep_audio = schema.boolean(values.get("keep_audio", False), "keep_audio")
    params = redaction_params(mode, threshold, keep_audio)
    sha = sha_of(sha256)
    with write_transaction(instance.engine) as conn:
        record = item_record(conn, sha)
        if not record["media_type"].startswith(("image/", "video/")):
            raise BadInputError(f"sha256:{sha} is {record['media_type']}, not a photo or "
                                "a video: there is nothing to redact", code="not-redactable")
        queued = queue.enqueue(conn, REDACT, sha, params)
    request.app.state.jobs.poke()
    return {"sha256": sha, "media_type": record["media_type"], "params": dict(params),
            "queued": queued}


@router.get("/ledger/key", response_class=Response, responses=_TEXT, tags=["ledger"])
def ledger_key(instance: InstanceDep, principal: Ledger) -> PlainTextResponse:
    """The note verifier key (name+keyid+base64key) that checks every checkpoint."""
    return PlainTextResponse(str(instance.verifier) + "\n")


def _latest(conn: Any) -> Any:
    stored = log.latest_checkpoint(conn)
    if stored is None:
        raise NotFoundError("the ledger is empty: nothing has been signed yet",
                            code="no-checkpoint")
    return stored


@router.get("/ledger/checkpoint", response_class=Response, responses=_TEXT, tags=["ledger"])
def ledger_checkpoint(instance: InstanceDep, principal: Ledger) -> PlainTextResponse:
    """The latest signed checkpoint, exactly as signed (C2SP signed-note)."""
    with read_transaction(instance.engine) as conn:
        note: str = _latest(conn).note
    return PlainTextResponse(note)


@router.get("/ledger/inclusion/{index}", response_model=dict[str, Any], tags=["ledger"])
def inclusion(instance: InstanceDep, principal: Ledger,
              index: Annotated[int, Path(ge=0, le=2**62)],
              size: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> Any:
    """Inclusion proof of one leaf in the tree of ``size`` leaves (default: the latest
    checkpoint), RFC 9162 §2.1.3, hashes bottom-up in hex."""
    with read_transaction(instance.engine) as conn:
        tree = size or _latest(conn).size
        proof = log.inclusion_proof(conn, index, tree)
        leaf = log.get_leaf(conn, index)
        signed = log.checkpoint_at(conn, tree)
        return {"index": index, "size": tree, "leaf_hash": leaf.hash.hex(),
                "root": log.root_at(conn, tree).hex(), "proof": [h.hex() for h in proof],
                "checkpoint": signed.note if signed else None}


@router.get("/ledger/consistency", response_model=dict[str, Any], tags=["ledger"])
def consistency(instance: InstanceDep, principal: Ledger,
                old: Annotated[int, Query(ge=1, le=2**62)],
                new: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> Any:
    """Consistency proof from tree size ``old`` to ``new`` (default: the latest
    checkpoint), RFC 9162 §2.1.4."""
    with read_transaction(instance.engine) as conn:
        tree = new or _latest(conn).size
        proof = log.consistency_proof(conn, old, tree)
        return {"old_size": old, "new_size": tree, "old_root": log.root_at(conn, old).hex(),
                "new_root": log.root_at(conn, tree).hex(), "proof": [h.hex() for h in proof]}
