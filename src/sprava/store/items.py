"""Reading held items: listing, look-up by digest prefix, and the full item record."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import Connection, exists, func, select

from sprava.backends.db.tables import (
    analysis,
    derived_item,
    item,
    item_cluster,
    item_name,
    job,
    phash,
    source,
)
from sprava.domain.custody import decode_leaf, rfc3339
from sprava.errors import BadInputError, ConflictError, NotFoundError
from sprava.ledger import log

_HEX = re.compile(r"[0-9a-f]{4,64}")


def resolve(conn: Connection, ref: str) -> str:
    """The full SHA-256 of the item named by a digest or a unique prefix of it (≥ 4 digits)."""
    prefix = ref.strip().lower().removeprefix("sha256:")
    if not _HEX.fullmatch(prefix):
        raise BadInputError(
            f"{ref!r} does not name an item", code="bad-item-ref",
            hint="give the item's SHA-256, or at least its first 4 hex digits",
        )
    matches = conn.execute(
        select(item.c.sha256).where(item.c.sha256.like(prefix + "%"))
        .order_by(item.c.sha256).limit(2)
    ).scalars().all()
    if not matches:
        raise NotFoundError(f"no item sha256:{prefix}… is held", code="item-not-found")
    if len(matches) > 1:
        raise ConflictError(
            f"sha256:{prefix}… names more than one item", code="ambiguous-item",
            hint="give more digits",
        )
    return str(matches[0])


def _scoped(query: Any, uploaded_by: str | None, derived: str | None) -> Any:
    """Only items handed in by ``uploaded_by`` (an actor), or only copies derived as
    ``derived`` (e.g. ``redaction``)."""
    if uploaded_by is not None:
        query = query.where(exists().where(item_name.c.item_sha256 == item.c.sha256,
                                           item_name.c.actor == uploaded_by))
    if derived is not None:
        query = query.where(exists().where(derived_item.c.sha256 == item.c.sha256,
                                           derived_item.c.kind == derived))
    return query


def count_items(conn: Connection, *, uploaded_by: str | None = None,
                derived: str | None = None) -> int:
    query = _scoped(select(func.count()).select_from(item), uploaded_by, derived)
    return int(conn.execute(query).scalar_one())


def in_scope(conn: Connection, sha256: str, *, uploaded_by: str | None = None,
             derived: str | None = None) -> bool:
    """Whether the item is one the scope lets its reader see."""
    query = _scoped(select(item.c.sha256).where(item.c.sha256 == sha256), uploaded_by, derived)
    return conn.execute(query).first() is not None


def list_items(conn: Connection, *, limit: int = 100, offset: int = 0,
               uploaded_by: str | None = None, derived: str | None = None
               ) -> list[dict[str, Any]]:
    """Items in the order they were first received, with the first name each arrived under
    (a derived item, which arrived under no name, says what it was derived from)."""
    first_name = (
        select(item_name.c.name).where(item_name.c.item_sha256 == item.c.sha256)
        .order_by(item_name.c.id).limit(1).scalar_subquery()
    )
    names = (
        select(func.count()).where(item_name.c.item_sha256 == item.c.sha256).scalar_subquery()
    )
    derived_kind = (select(derived_item.c.kind).where(derived_item.c.sha256 == item.c.sha256)
                    .limit(1).scalar_subquery())
    derived_from = (select(derived_item.c.original_sha256)
                    .where(derived_item.c.sha256 == item.c.sha256).limit(1).scalar_subquery())
    query = _scoped(
        select(item.c.sha256, item.c.size, item.c.media_type, item.c.first_seen,
               first_name.label("name"), names.label("names"),
               derived_kind.label("derived_kind"), derived_from.label("derived_from")),
        uploaded_by, derived)
    rows = conn.execute(
        query.order_by(item.c.first_seen, item.c.sha256).limit(limit).offset(offset)).all()
    return [
        {"sha256": r.sha256, "size": r.size, "media_type": r.media_type,
         "first_seen": _iso(r.first_seen),
         "name": r.name if r.name is not None else
         f"({r.derived_kind} of sha256:{(r.derived_from or '')[:16]})",
         "names": r.names, "derived_from": r.derived_from}
        for r in rows
    ]


def _iso(moment: Any) -> str:
    """RFC 3339 UTC with a ``Z``, as custody events write times."""
    return rfc3339(moment) if moment is not None else ""


def item_record(conn: Connection, sha256: str) -> dict[str, Any]:
    """Everything held about one item: the record ``sprava show`` prints."""
    row = conn.execute(select(item).where(item.c.sha256 == sha256)).first()
    if row is None:
        raise NotFoundError(f"no item sha256:{sha256} is held", code="item-not-found")
    names = conn.execute(
        select(item_name.c.name, item_name.c.name_raw, item_name.c.leaf_index,
               item_name.c.received_at, source.c.name.label("source"))
        .select_from(item_name.outerjoin(source, source.c.id == item_name.c.source_id))
        .where(item_name.c.item_sha256 == sha256).order_by(item_name.c.id)
    ).all()
    name_list = []
    for n in names:
        entry: dict[str, Any] = {"name": n.name, "source": n.source, "leaf_index": n.leaf_index,
                                 "received_at": _iso(n.received_at)}
        raw = bytes(n.name_raw)
        if raw.decode("utf-8", "replace").encode() != raw:
            entry["name_hex"] = raw.hex()
        name_list.append(entry)
    events = []
    for leaf in log.leaves_for_item(conn, sha256):
        events.append({"leaf_index": leaf.index, "leaf_hash": leaf.hash.hex(),
                       "event": decode_leaf(leaf.data)})
    return {
        "sha256": row.sha256,
        "size": row.size,
        "media_type": row.media_type,
        "first_seen": _iso(row.first_seen),
        "names": name_list,
        "sources": sorted({n.source for n in names if n.source is not None}),
        "custody": events,
        **_analysis_record(conn, sha256),
    }


def _analysis_record(conn: Connection, sha256: str) -> dict[str, Any]:
    """What the media pipeline found: per-step results, hashes, cluster, derivations."""
    steps: dict[str, Any] = {}
    for row in conn.execute(select(analysis).where(analysis.c.item_sha256 == sha256)
                            .order_by(analysis.c.step)):
        entry: dict[str, Any] = {"status": row.status, "tool": row.tool,
                                 "updated_at": _iso(row.updated_at)}
        if row.result is not None:
            entry["result"] = json.loads(row.result)
        if row.error_code is not None:
            entry["error"] = {"code": row.error_code, "message": row.error_message}
        steps[row.step] = entry
    jobs = [dict(r._mapping) for r in conn.execute(
        select(job.c.kind, job.c.status, job.c.attempts, job.c.error_code, job.c.error_message)
        .where(job.c.item_sha256 == sha256).order_by(job.c.id))]
    hashes = [{"second": r.frame_second, "pdq": r.hash, "quality": r.quality}
              for r in conn.execute(select(phash).where(phash.c.item_sha256 == sha256,
                                                        phash.c.variant == "full")
                                    .order_by(phash.c.id))]
    cluster = conn.execute(select(item_cluster.c.cluster)
                           .where(item_cluster.c.item_sha256 == sha256)).scalar_one_or_none()
    members: list[str] = []
    if cluster is not None:
        members = list(conn.execute(select(item_cluster.c.item_sha256)
                                    .where(item_cluster.c.cluster == cluster)
                                    .order_by(item_cluster.c.item_sha256)).scalars())
    derived = [{"sha256": r.sha256, "kind": r.kind, "settings": json.loads(r.settings),
                "leaf_index": r.leaf_index}
               for r in conn.execute(select(derived_item)
                                     .where(derived_item.c.original_sha256 == sha256)
                                     .order_by(derived_item.c.leaf_index))]
    derived_from = [{"sha256": r.original_sha256, "kind": r.kind, "leaf_index": r.leaf_index}
                    for r in conn.execute(select(derived_item)
                                          .where(derived_item.c.sha256 == sha256))]
    metadata = steps.get("metadata", {}).get("result", {}).get("fields")
    return {"metadata": metadata, "analysis": steps, "jobs": jobs, "pdq": hashes,
            "cluster": {"name": cluster, "members": members} if cluster else None,
            "derived": derived, "derived_from": derived_from}
