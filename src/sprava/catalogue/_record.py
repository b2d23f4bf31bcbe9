"""What every catalogue write shares: one transaction, its custody events, the change index.

A write opens the write transaction, locks the ledger (the appender is made first, so
that on PostgreSQL everything read after it is read by the only writer), changes rows,
appends one custody event per change, signs a checkpoint and indexes the events in
``catalogue_change`` - all in that one transaction. So there is never a catalogue row
changed without its event, nor an event without its change.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select

from sprava.backends.db.catalogue_tables import catalogue_change
from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.backends.db.tables import item
from sprava.domain.catalogue import (
    Page,
    catalogue_event,
    check_page,
    export_event,
    state_digest,
    view_event,
)
from sprava.errors import BadInputError, NotFoundError
from sprava.instance import Instance
from sprava.ledger.log import LedgerAppender

_ACTOR = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
CHUNK = 500


def check_actor(actor: str) -> str:
    """Who is acting: a user or a process name, non-empty, at most 200 characters."""
    if not isinstance(actor, str) or not _ACTOR.fullmatch(actor) or not actor.strip():
        raise BadInputError(f"not an actor name: {actor!r}", code="bad-actor",
                            hint="name who is acting, e.g. 'local:anna'")
    return actor


def new_id() -> str:
    return str(uuid.uuid4())


def new_salt() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Change:
    """One entry of the change index, as :func:`changes` reads it back."""

    leaf_index: int
    entity: str
    entity_id: str
    change: str
    actor: str
    at: datetime
    state_sha256: str | None
    note: str | None


class Recorder:
    """Appends the custody events of one write transaction; see :func:`recording`."""

    def __init__(self, conn: Connection, appender: LedgerAppender, actor: str) -> None:
        self.conn = conn
        self.actor = actor
        self.now = datetime.now(UTC)
        self._appender = appender
        self._rows: list[dict[str, Any]] = []

    def record(self, change: str, entity: str, entity_id: str, state: Mapping[str, Any],
               note: str | None = None) -> None:
        """One change of one entity: an event carrying the SHA-256 of its new state."""
        change, entity = str(change), str(entity)  # plain text, not enum members
        digest = state_digest(state)
        index = self._appender.append(catalogue_event(
            change=change, entity=entity, entity_id=entity_id, state_sha256=digest,
            actor=self.actor, time=self.now))
        self._rows.append({"leaf_index": index, "entity": entity, "entity_id": entity_id,
                           "change": change, "actor": self.actor, "at": self.now,
                           "state_sha256": digest, "note": note})

    def record_view(self, entity: str, ids: Sequence[str]) -> None:
        """A read of restricted records: one event naming the reader and what they saw."""
        if not ids:
            return
        entity = str(entity)
        index = self._appender.append(view_event(entity=entity, ids=ids, actor=self.actor,
                                                 time=self.now))
        self._rows.extend({"leaf_index": index, "entity": entity, "entity_id": i,
                           "change": "view", "actor": self.actor, "at": self.now,
                           "state_sha256": None, "note": None} for i in sorted(set(ids)))

    def record_export(self, case_id: str, state: Mapping[str, Any], *, recipient: str,
                      persons: Sequence[str], contents_sha256: str) -> int:
        """A case file leaving for ``recipient``: one event, indexed under the case (with
        the recipient as its note) and under every person whose record leaves with it.
        Returns the event's leaf index."""
        digest = state_digest(state)
        index = self._appender.append(export_event(
            case_id=case_id, state_sha256=digest, recipient=recipient, persons=persons,
            contents_sha256=contents_sha256, actor=self.actor, time=self.now))
        row = {"leaf_index": index, "change": "export", "actor": self.actor, "at": self.now}
        self._rows.append({**row, "entity": "case", "entity_id": case_id,
                           "state_sha256": digest, "note": recipient})
        self._rows.extend({**row, "entity": "person", "entity_id": p, "state_sha256": None,
                           "note": None} for p in sorted(set(persons)))
        return index

    def finish(self) -> None:
        self._appender.finish()
        if self._rows:  # after the leaves: the index rows name them by foreign key
            self.conn.execute(insert(catalogue_change), self._rows)
        self._rows = []


@contextmanager
def recording(instance: Instance, actor: str) -> Iterator[Recorder]:
    """A write transaction with the ledger locked; events are signed when the block ends."""
    check_actor(actor)
    with write_transaction(instance.engine) as conn:
        recorder = Recorder(conn, LedgerAppender(conn, instance.signer), actor)
        yield recorder
        recorder.finish()


@contextmanager
def reading(instance: Instance) -> Iterator[Connection]:
    with read_transaction(instance.engine) as conn:
        yield conn


def page_query(conn: Connection, query: Any, limit: int, offset: int) -> tuple[list[Any], int]:
    """Rows of one page of ``query`` (already ordered) and the total it pages over."""
    check_page(limit, offset)
    total = conn.execute(select(func.count()).select_from(query.order_by(None).subquery())
                         ).scalar_one()
    return list(conn.execute(query.limit(limit).offset(offset))), int(total)


def chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def grouped(conn: Connection, key: Any, value: Any, ids: Sequence[str]) -> dict[str, list[Any]]:
    """Values of a child table grouped by their parent's id (``key``), for these parents."""
    out: dict[str, list[Any]] = {}
    for parent, found in conn.execute(select(key, value).where(key.in_(ids))):
        out.setdefault(parent, []).append(found)
    return out


def require_rows(conn: Connection, table: Table, ids: Iterable[str], what: str) -> None:
    """Raise NotFoundError ``<what>-not-found`` unless every id names a row of ``table``."""
    wanted = sorted(set(ids))
    key = table.c.sha256 if what == "item" else table.c.id
    found: set[str] = set()
    for part in chunks(wanted):
        found.update(conn.execute(select(key).where(key.in_(part))).scalars())
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = f"sha256:{missing[0]}" if what == "item" else missing[0]
        raise NotFoundError(f"no {what} {shown}", code=f"{what}-not-found",
                            hint="ingest the item first" if what == "item" else None)


def require_items(conn: Connection, digests: Iterable[str]) -> None:
    require_rows(conn, item, digests, "item")


def changes(instance: Instance, entity: str, entity_id: str, *, limit: int = 50,
            offset: int = 0) -> Page[Change]:
    """The custody history of one entity, oldest first (views included)."""
    c = catalogue_change.c
    query = (select(catalogue_change).where(c.entity == entity, c.entity_id == entity_id)
             .order_by(c.leaf_index, c.id))
    with reading(instance) as conn:
        rows, total = page_query(conn, query, limit, offset)
    return Page(tuple(Change(r.leaf_index, r.entity, r.entity_id, r.change, r.actor, r.at,
                             r.state_sha256, r.note) for r in rows), total, limit, offset)
