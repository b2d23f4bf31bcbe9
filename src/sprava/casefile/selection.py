"""What a case file holds: the case, the catalogue records it reaches, items and events.

Read in one read transaction, as of one ledger size (``head``). From the case:

* incidents: the case's, those its claims are about, and those of acts its claims are about;
* acts: every act of those incidents, and acts its claims are about;
* claims: exactly the case's (a case newly cites only claims that count);
* units: those its claims or its acts' perpetrators name;
* persons: only those that an approved claim of the case is about. Persons are
  restricted; a case file to a named recipient is the one way they leave, and the export
  event names each of them;
* items: the case's, its acts' evidence and its claims' sources, every copy derived from
  them (redacted versions), and the original of any derived copy;
* events: every ledger leaf about those items (ingest, derive) and every catalogue event
  indexed under those records (changes, reviews, views, earlier exports).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from sprava.backends.db.catalogue_tables import act, catalogue_change
from sprava.backends.db.tables import derived_item, item, ledger_leaf
from sprava.catalogue import acts, cases, claims, incidents, persons, units, vocabulary
from sprava.catalogue._record import chunks
from sprava.domain.catalogue import (
    Act,
    Case,
    Claim,
    ClaimStatus,
    EntityKind,
    Incident,
    Person,
    Unit,
)
from sprava.domain.custody import rfc3339
from sprava.ledger import log


@dataclass(frozen=True)
class ItemInfo:
    sha256: str
    size: int
    media_type: str
    derived_from: str | None = None
    derivation: str | None = None


@dataclass(frozen=True)
class TrailEntry:
    """One custody event of a record, as the change index holds it."""

    leaf_index: int
    change: str
    actor: str
    at: datetime
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"leaf_index": self.leaf_index, "change": self.change, "actor": self.actor,
                "time": rfc3339(self.at), "note": self.note}


@dataclass
class Selection:
    head: int  # ledger size when it was read; every event listed is below it
    case: Case
    incidents: list[Incident]
    acts: list[Act]
    claims: list[Claim]
    units: list[Unit]
    persons: list[Person]
    items: list[ItemInfo]
    item_events: list[int]
    trails: dict[str, list[TrailEntry]] = field(default_factory=dict)  # by record id
    leaf_hashes: dict[int, bytes] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # violation type → English label

    @property
    def record_ids(self) -> list[str]:
        return [self.case.id, *(r.id for r in self.incidents), *(r.id for r in self.acts),
                *(r.id for r in self.claims), *(r.id for r in self.units),
                *(r.id for r in self.persons)]

    @property
    def events(self) -> list[int]:
        indices = set(self.item_events)
        for trail in self.trails.values():
            indices.update(t.leaf_index for t in trail)
        return sorted(indices)

    def item(self, sha256: str) -> ItemInfo | None:
        return next((i for i in self.items if i.sha256 == sha256), None)


def _in(conn: Connection, query_for: Any, values: Iterable[str]) -> list[Any]:
    rows: list[Any] = []
    for part in chunks(sorted(set(values))):
        rows.extend(conn.execute(query_for(part)).all())
    return rows


def _items(conn: Connection, wanted: set[str]) -> list[ItemInfo]:
    """The items asked for, copies derived from them, and originals of derived ones."""
    d = derived_item.c
    copies = _in(conn, lambda part: select(d.sha256, d.original_sha256, d.kind)
                 .where(d.original_sha256.in_(part)), wanted)
    made_from = _in(conn, lambda part: select(d.sha256, d.original_sha256, d.kind)
                    .where(d.sha256.in_(part)), wanted)
    origin = {r.sha256: (r.original_sha256, r.kind) for r in [*made_from, *copies]}
    every = wanted | {r.sha256 for r in copies} | {r.original_sha256 for r in made_from}
    rows = _in(conn, lambda part: select(item.c.sha256, item.c.size, item.c.media_type)
               .where(item.c.sha256.in_(part)), every)
    return sorted((ItemInfo(r.sha256, int(r.size), r.media_type, *origin.get(r.sha256,
                                                                          (None, None)))
                   for r in rows), key=lambda i: i.sha256)


def select_case(conn: Connection, case_id: str) -> Selection:
    """Everything that goes into the case file of ``case_id``; raises NotFoundError."""
    head = log.head_size(conn)
    case = cases.fetch(conn, case_id)
    found_claims = claims.load(conn, case.claim_ids)
    claim_list = [found_claims[i] for i in case.claim_ids if i in found_claims]

    def objects(kind: EntityKind) -> set[str]:
        return {c.object_id for c in claim_list if c.object_kind is kind}

    act_ids = objects(EntityKind.ACT)
    about_acts = acts.load(conn, sorted(act_ids))
    incident_ids = set(case.incident_ids) | objects(EntityKind.INCIDENT) | {
        a.incident_id for a in about_acts.values()}
    act_ids |= {r.id for r in _in(conn, lambda part: select(act.c.id)
                                  .where(act.c.incident_id.in_(part)), incident_ids)}
    act_list = sorted(acts.load(conn, sorted(act_ids)).values(),
                      key=lambda a: (a.incident_id, a.created_at, a.id))
    incident_list = sorted(incidents.load(conn, sorted(incident_ids)).values(),
                           key=lambda i: (i.start, i.id))
    unit_ids = {c.subject_id for c in claim_list if c.subject_kind is EntityKind.UNIT}
    unit_ids |= objects(EntityKind.UNIT) | {a.perpetrator.unit_id for a in act_list
                                            if a.perpetrator.unit_id}
    unit_list = sorted(units.load(conn, sorted(unit_ids)).values(), key=lambda u: u.id)
    person_ids = {c.subject_id for c in claim_list if c.subject_kind is EntityKind.PERSON
                  and c.status is ClaimStatus.APPROVED}
    person_list = sorted(persons.load(conn, sorted(person_ids)).values(),
                         key=lambda p: (p.name, p.id))

    wanted = set(case.items) | {s for a in act_list for s in a.evidence} | {
        s for c in claim_list for s in c.sources}
    item_list = _items(conn, wanted)
    leaf = ledger_leaf.c
    item_leaves = _in(conn, lambda part: select(leaf.idx, leaf.hash).where(
        leaf.item_sha256.in_(part), leaf.idx < head), [i.sha256 for i in item_list])

    selection = Selection(head, case, incident_list, act_list, claim_list, unit_list,
                          person_list, item_list, sorted(int(r.idx) for r in item_leaves))
    selection.leaf_hashes = {int(r.idx): bytes(r.hash) for r in item_leaves}
    _trails(conn, selection)
    codes = {c for i in incident_list for c in i.violation_types} | {a.type for a in act_list}
    selection.labels = {t.code: t.labels.get("en", t.code)
                        for t in vocabulary.shipped_terms() if t.code in codes}
    return selection


def _trails(conn: Connection, selection: Selection) -> None:
    c = catalogue_change.c
    kinds = {selection.case.id: "case"}
    for kind, records in (("incident", selection.incidents), ("act", selection.acts),
                          ("claim", selection.claims), ("unit", selection.units),
                          ("person", selection.persons)):
        kinds.update({r.id: kind for r in records})
    rows = _in(conn, lambda part: select(c.entity, c.entity_id, c.leaf_index, c.change, c.actor,
                                         c.at, c.note, ledger_leaf.c.hash)
               .join(ledger_leaf, ledger_leaf.c.idx == c.leaf_index)
               .where(c.entity_id.in_(part), c.leaf_index < selection.head), kinds)
    for r in sorted(rows, key=lambda r: (r.leaf_index, r.entity_id)):
        if kinds.get(r.entity_id) != r.entity:
            continue
        selection.trails.setdefault(r.entity_id, []).append(
            TrailEntry(int(r.leaf_index), r.change, r.actor, r.at, r.note))
        selection.leaf_hashes[int(r.leaf_index)] = bytes(r.hash)


def changed_since(conn: Connection, ids: Sequence[str], head: int) -> str | None:
    """The first record of ``ids`` changed at or after ledger size ``head`` (views and
    exports change nothing), or None: an export refuses to commit to a selection that is no
    longer current."""
    c = catalogue_change.c
    for part in chunks(sorted(set(ids))):
        row = conn.execute(select(c.entity, c.entity_id).where(
            c.entity_id.in_(part), c.leaf_index >= head, c.change.notin_(("view", "export")))
            .limit(1)).first()
        if row is not None:
            return f"{row.entity} {row.entity_id}"
    return None
