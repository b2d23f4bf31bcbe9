"""Keeping the index up to date: a catch-up run before each search, from the ledger.

Every change to the catalogue and every arrival of an item is a custody event, appended
to the ledger in the transaction that makes the change, and ledger leaves are numbered
in commit order (writers serialise on the ledger head). So the index remembers one number,
how many leaves it has caught up with (``search_state.ledger_size``), and a search first
compares it with the ledger's size. When they agree, and no item awaits indexing, that
one read is all a search costs.

Otherwise the catch-up reads the leaves it has not seen, a batch at a time: item leaves
(``ingest``, ``derive``) name their item; catalogue leaves are found through
``catalogue_change`` (views change nothing and are skipped). It then rebuilds the
document of every record named, and of the records whose documents show something of
them (an incident's acts and the claims about them, an act's incident, the claims about
a unit or a person, the act and incident a unit's attribution claim is about), from the
rows as they are now. Rebuilding is idempotent, so a batch seen twice does no harm.

An item's metadata is written by the analysis jobs, which append no ledger leaf: triggers
on ``analysis`` put the item in ``search_queue``, and the catch-up takes it from there.

Concurrent catch-ups never interleave: each batch is one write transaction (``BEGIN
IMMEDIATE`` on SQLite) that first locks the ``search_state`` row (``FOR UPDATE`` on
PostgreSQL) and re-reads it, so a second searcher waits for the first and then finds
nothing left to do. A batch that fails rolls back whole and is simply done again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, insert, select, update

from sprava.backends.db.catalogue_tables import act, catalogue_change, claim
from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.backends.db.search_tables import (
    search_doc,
    search_queue,
    search_state,
    search_term,
)
from sprava.backends.db.tables import ledger_head, ledger_leaf
from sprava.instance import Instance
from sprava.search import documents, text
from sprava.search.documents import Doc

log = logging.getLogger(__name__)

INDEX_VERSION = text.FOLD_VERSION * 1000 + documents.DOC_VERSION
LEAF_BATCH = 5000  # ledger leaves per catch-up transaction
QUEUE_BATCH = 5000  # queued items per catch-up transaction
SLACK = 1000  # leaves that change nothing searchable passed over without a write
_CHUNK = 500
_ENTITIES = ("incident", "act", "unit", "person", "claim")
_ITEM_LEAVES = ("ingest", "derive")
_COMPARED = ("title", "body", "head", "folded", "facets", "at_from", "at_to", "persons")


@dataclass(frozen=True)
class Freshness:
    """What the cheap check read: how far the index is, how far the ledger is."""

    indexed: int
    ledger: int
    version: int
    queued: bool

    @property
    def fresh(self) -> bool:
        return self.indexed >= self.ledger and self.version == INDEX_VERSION and not self.queued


def freshness(conn: Connection) -> Freshness:
    """One read: the index's state, the ledger's size, whether anything is queued."""
    head = select(ledger_head.c.size).where(ledger_head.c.id == 1).scalar_subquery()
    queued = exists().where(search_queue.c.id.is_not(None))
    row = conn.execute(select(search_state.c.ledger_size, search_state.c.version,
                              head.label("head"), queued.label("queued"))
                       .where(search_state.c.id == 1)).first()
    if row is None:
        return Freshness(0, 0, -1, False)
    return Freshness(int(row.ledger_size), int(row.head or 0), int(row.version),
                     bool(row.queued))


def ensure_fresh(instance: Instance) -> int:
    """Catch the index up if anything changed since it last did; the number of documents
    written (0 when it was up to date, after one read).

    Leaves that change nothing searchable (reads of persons, which searches themselves
    record, and other events) are passed over without a write while there are few of
    them, so that searches that show persons do not each cost a write transaction."""
    with read_transaction(instance.engine) as conn:
        state = freshness(conn)
        if state.fresh:
            return 0
        if (state.version == INDEX_VERSION and not state.queued
                and state.ledger - state.indexed <= SLACK
                and not _indexable(conn, state.indexed, state.ledger)):
            return 0
    return catch_up(instance)


def _indexable(conn: Connection, low: int, high: int) -> bool:
    """Whether any leaf in [low, high) changes what the index holds."""
    item = conn.execute(select(ledger_leaf.c.idx).where(
        ledger_leaf.c.idx >= low, ledger_leaf.c.idx < high,
        ledger_leaf.c.kind.in_(_ITEM_LEAVES)).limit(1)).first()
    if item is not None:
        return True
    c = catalogue_change.c
    return conn.execute(select(c.id).where(c.leaf_index >= low, c.leaf_index < high,
                                           c.change != "view").limit(1)).first() is not None


@dataclass
class _Work:
    """What one batch has to rebuild."""

    entities: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in _ENTITIES})
    items: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.items) or any(self.entities.values())


def catch_up(instance: Instance, *, leaf_batch: int = LEAF_BATCH) -> int:
    """Index every leaf and queued item not indexed yet, one batch per transaction, up to
    the ledger's size when it started; the number of documents written."""
    written = 0
    target: int | None = None
    last_queued: int | None = None
    while True:
        with write_transaction(instance.engine) as conn:
            state = conn.execute(select(search_state).where(search_state.c.id == 1)
                                 .with_for_update()).first()
            if state is None:
                conn.execute(insert(search_state).values(id=1, ledger_size=0, version=-1))
                continue
            if state.version != INDEX_VERSION:
                _reset(conn)
                continue
            if target is None:
                target = int(conn.execute(select(ledger_head.c.size)
                                          .where(ledger_head.c.id == 1)).scalar() or 0)
                last_queued = conn.execute(select(func.max(search_queue.c.id))).scalar()
            low = int(state.ledger_size)
            high = max(low, min(low + leaf_batch, target))
            work = _Work()
            _read_leaves(conn, low, high, work)
            queued = _read_queue(conn, last_queued, work)
            if high == low and not queued:
                return written
            _add_dependents(conn, work)
            written += _write(conn, _build(conn, work))
            if queued:
                conn.execute(delete(search_queue).where(search_queue.c.id.in_(queued)))
            conn.execute(update(search_state).where(search_state.c.id == 1)
                         .values(ledger_size=high, updated_at=datetime.now(UTC)))
            if high > low:
                log.debug("search index caught up to leaf %d", high)


def _reset(conn: Connection) -> None:
    """Start again from the first leaf with the current folding and documents."""
    conn.execute(delete(search_doc))
    conn.execute(delete(search_term))
    conn.execute(delete(search_queue))
    conn.execute(update(search_state).where(search_state.c.id == 1)
                 .values(ledger_size=0, version=INDEX_VERSION, updated_at=datetime.now(UTC)))


def _read_leaves(conn: Connection, low: int, high: int, work: _Work) -> None:
    if high <= low:
        return
    for sha in conn.execute(select(ledger_leaf.c.item_sha256).where(
            ledger_leaf.c.idx >= low, ledger_leaf.c.idx < high,
            ledger_leaf.c.kind.in_(_ITEM_LEAVES), ledger_leaf.c.item_sha256.is_not(None))
            ).scalars():
        work.items.add(sha)
    c = catalogue_change.c
    for entity, entity_id in conn.execute(
            select(c.entity, c.entity_id).where(c.leaf_index >= low, c.leaf_index < high,
                                                c.change != "view").distinct()):
        if entity in work.entities:
            work.entities[entity].add(entity_id)


def _read_queue(conn: Connection, last: int | None, work: _Work) -> list[int]:
    if last is None:
        return []
    rows = conn.execute(select(search_queue.c.id, search_queue.c.kind, search_queue.c.ref)
                        .where(search_queue.c.id <= last).order_by(search_queue.c.id)
                        .limit(QUEUE_BATCH)).all()
    for row in rows:
        if row.kind == "item":
            work.items.add(row.ref)
        elif row.kind in work.entities:
            work.entities[row.kind].add(row.ref)
    return [row.id for row in rows]


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start:start + _CHUNK]


def _ids(conn: Connection, query: Any, column: Any, values: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for part in _chunks(values):
        out.update(v for v in conn.execute(query.where(column.in_(part))).scalars() if v)
    return out


def _add_dependents(conn: Connection, work: _Work) -> None:
    """Add the records whose documents show something of the records that changed."""
    e = work.entities
    changed_incidents, changed_acts = set(e["incident"]), set(e["act"])
    # a unit's attribution claim decides which unit an act (and its incident) is by
    attributed = _ids(conn, select(claim.c.object_id).where(
        claim.c.statement == "unit_committed_act"), claim.c.id, e["claim"])
    incident_acts = _ids(conn, select(act.c.id), act.c.incident_id, changed_incidents)
    e["act"] |= incident_acts | attributed
    e["incident"] |= _ids(conn, select(act.c.incident_id), act.c.id,
                          changed_acts | attributed)
    # claims name their subject and object
    e["claim"] |= _ids(conn, select(claim.c.id), claim.c.object_id,
                       changed_incidents | changed_acts | incident_acts | e["unit"])
    e["claim"] |= _ids(conn, select(claim.c.id), claim.c.subject_id, e["unit"] | e["person"])


def _build(conn: Connection, work: _Work) -> dict[tuple[str, str], list[Doc]]:
    docs: dict[tuple[str, str], list[Doc]] = {}
    if any(work.entities.values()):
        docs.update(documents.catalogue_docs(conn, work.entities))
    if work.items:
        docs.update(documents.item_docs(conn, work.items))
    return docs


def _write(conn: Connection, docs: Mapping[tuple[str, str], Sequence[Doc]]) -> int:
    """Make the index rows of these records what ``docs`` says: insert, update what
    differs, delete what is no longer there. The number of rows written."""
    by_kind: dict[str, list[str]] = {}
    for kind, ref in docs:
        by_kind.setdefault(kind, []).append(ref)
    existing: dict[tuple[str, str, str], Any] = {}
    d = search_doc.c
    for kind, refs in by_kind.items():
        for part in _chunks(refs):
            for row in conn.execute(select(search_doc).where(d.kind == kind, d.ref.in_(part))):
                existing[(row.kind, row.ref, row.audience)] = row
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    keep: set[tuple[str, str, str]] = set()
    for found in docs.values():
        for doc in found:
            key = (doc.kind, doc.ref, doc.audience)
            keep.add(key)
            stored = existing.get(key)
            values = doc.row()
            if stored is None:
                inserts.append(values)
            elif any(getattr(stored, name) != values[name] for name in _COMPARED):
                updates.append({"_id": stored.id, **{n: values[n] for n in _COMPARED}})
    gone = [row.id for key, row in existing.items() if key not in keep]
    if gone:
        conn.execute(delete(search_doc).where(d.id.in_(gone)))
    if updates:
        conn.execute(update(search_doc).where(d.id == bindparam("_id"))
                     .values({n: bindparam(n) for n in _COMPARED}), updates)
    if inserts:
        _assign_ids(conn, inserts)
        conn.execute(insert(search_doc), inserts)
    _add_terms(conn, [*inserts, *updates])
    return len(inserts) + len(updates) + len(gone)


def _add_terms(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Note every key of these rows in ``search_term`` (prefixes are looked up there)."""
    found = {k for row in rows for column in ("head", "folded") for k in row[column].split()}
    if not found:
        return
    known: set[str] = set()
    for part in _chunks(found):
        known.update(conn.execute(select(search_term.c.key)
                                  .where(search_term.c.key.in_(part))).scalars())
    new = sorted(found - known)
    if new:
        conn.execute(insert(search_term), [{"key": k} for k in new])


def _assign_ids(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Give each new row the id that orders it (:func:`documents.doc_id`), or the next
    free one when another row holds it already."""
    for row in rows:
        row["id"] = documents.doc_id(row["kind"], row["audience"], row["ref"])
    wanted = sorted({row["id"] for row in rows})
    taken: set[int] = set()
    for start in range(0, len(wanted), _CHUNK):
        part = wanted[start:start + _CHUNK]
        taken.update(conn.execute(select(search_doc.c.id).where(search_doc.c.id.in_(part)))
                     .scalars())
    for row in sorted(rows, key=lambda r: (r["id"], r["ref"])):
        while row["id"] in taken:
            row["id"] += 1
            if conn.execute(select(search_doc.c.id).where(search_doc.c.id == row["id"])
                            ).first() is not None:
                continue
        taken.add(row["id"])


def rebuild(instance: Instance) -> int:
    """Drop the index and build it again from the ledger (after a repair, or to check
    that catching up and building afresh agree)."""
    with write_transaction(instance.engine) as conn:
        conn.execute(select(search_state.c.id).where(search_state.c.id == 1).with_for_update())
        _reset(conn)
    return catch_up(instance)


def pending(conn: Connection) -> int:
    """How many leaves the index has still to read (for status displays)."""
    state = freshness(conn)
    return max(0, state.ledger - state.indexed) if state.version == INDEX_VERSION else (
        state.ledger)

