"""Persons: members of security forces as known from evidence. Restricted.

A person has a name, a rank, a role, and identifiers *seen in evidence* (a badge number,
a call sign, a vehicle plate); nothing else. There is no field, and no way to add one,
for where they live, how to call them, their relatives or their private accounts
(shared/DESIGN.md, "Red lines"): the input is refused with ``red-line-field``. Persons are
never compared by face: Sprava does no face matching.

Every read of a person is a custody event naming the reader and the persons they saw
(``change: view``), in the same transaction as the read. A person is tied to a unit or an
act only by a claim, which counts only once reviewed (:mod:`sprava.catalogue.claims`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, delete, exists, insert, select, update

from sprava.backends.db.catalogue_tables import person, person_identifier
from sprava.catalogue import schema
from sprava.catalogue._record import (
    chunks,
    new_id,
    new_salt,
    page_query,
    recording,
)
from sprava.domain.catalogue import (
    EntityKind,
    Identifier,
    IdentifierKind,
    Page,
    Person,
)
from sprava.errors import NotFoundError
from sprava.instance import Instance


def _from_row(row: Any, identifiers: Sequence[Identifier]) -> Person:
    return Person(id=row.id, salt=row.salt, name=row.name, rank=row.rank, role=row.role,
                  identifiers=tuple(sorted(identifiers, key=lambda i: (i.kind.value, i.value))),
                  notes=row.notes, created_at=row.created_at, updated_at=row.updated_at)


def load(conn: Connection, ids: Sequence[str]) -> dict[str, Person]:
    """Persons by id. Internal: callers that show persons to anyone record a view."""
    out: dict[str, Person] = {}
    for part in chunks(list(ids)):
        found: dict[str, list[Identifier]] = {}
        for person_id, kind, value in conn.execute(
                select(person_identifier.c.person_id, person_identifier.c.kind,
                       person_identifier.c.value)
                .where(person_identifier.c.person_id.in_(part))):
            found.setdefault(person_id, []).append(Identifier(IdentifierKind(kind), value))
        for row in conn.execute(select(person).where(person.c.id.in_(part))):
            out[row.id] = _from_row(row, found.get(row.id, []))
    return out


def fetch(conn: Connection, person_id: str) -> Person:
    found = load(conn, [person_id]).get(person_id)
    if found is None:
        raise NotFoundError(f"no person {person_id}", code="person-not-found")
    return found


def _columns(p: Person) -> dict[str, Any]:
    return {"name": p.name, "rank": p.rank, "role": p.role, "notes": p.notes,
            "updated_at": p.updated_at}


def _write_identifiers(conn: Connection, p: Person) -> None:
    conn.execute(delete(person_identifier).where(person_identifier.c.person_id == p.id))
    if p.identifiers:
        conn.execute(insert(person_identifier), [
            {"person_id": p.id, "kind": i.kind.value, "value": i.value} for i in p.identifiers])


def create_person(instance: Instance, data: Any, *, actor: str) -> Person:
    """Record a person; raises BadInputError ``red-line-field`` for what Sprava never keeps."""
    values = schema.person_input(data)
    with recording(instance, actor) as rec:
        p = Person(id=new_id(), salt=new_salt(), name=values["name"], rank=values.get("rank"),
                   role=values.get("role"), identifiers=values.get("identifiers", ()),
                   notes=values.get("notes"), created_at=rec.now, updated_at=rec.now)
        rec.conn.execute(insert(person).values(id=p.id, salt=p.salt, created_at=p.created_at,
                                               **_columns(p)))
        _write_identifiers(rec.conn, p)
        rec.record("create", EntityKind.PERSON, p.id, p.state())
    return p


def update_person(instance: Instance, person_id: str, changes: Any, *, actor: str) -> Person:
    """Change the given fields; ``identifiers`` replaces all identifiers."""
    values = schema.person_input(changes, partial=True)
    with recording(instance, actor) as rec:
        current = fetch(rec.conn, person_id)
        new = replace(current, **values)
        if new.state() == current.state():
            rec.record_view(EntityKind.PERSON, [person_id])  # what it returns is a read
            return current
        new = replace(new, updated_at=rec.now)
        rec.conn.execute(update(person).where(person.c.id == person_id).values(**_columns(new)))
        _write_identifiers(rec.conn, new)
        rec.record("update", EntityKind.PERSON, person_id, new.state())
    return new


def get_person(instance: Instance, person_id: str, *, actor: str) -> Person:
    """Read one person; the read is a custody event naming ``actor``."""
    person_id = schema.entity_id(person_id, "person_id")
    with recording(instance, actor) as rec:
        found = fetch(rec.conn, person_id)
        rec.record_view(EntityKind.PERSON, [found.id])
    return found


def list_persons(instance: Instance, *, actor: str, ids: Sequence[str] | None = None,
                 identifier: str | None = None, limit: int = 50,
                 offset: int = 0) -> Page[Person]:
    """Persons by name; optionally only ``ids``, or those with an identifier of exactly
    this value (a badge number seen on a video). The page read is one custody event
    naming ``actor`` and every person on it."""
    query = select(person.c.id).order_by(person.c.name, person.c.id)
    if ids is not None:
        query = query.where(person.c.id.in_(schema.id_list(list(ids), "ids")))
    if identifier is not None:
        value = schema.text(identifier, "identifier", limit=100)
        query = query.where(exists().where(person_identifier.c.person_id == person.c.id,
                                           person_identifier.c.value == value))
    with recording(instance, actor) as rec:
        rows, total = page_query(rec.conn, query, limit, offset)
        found = load(rec.conn, [r.id for r in rows])
        rec.record_view(EntityKind.PERSON, [r.id for r in rows])
    return Page(tuple(found[r.id] for r in rows), total, limit, offset)
