"""Units: security-force units with names in several languages, a parent, an area.

A unit's current parent is a field of the unit (the hierarchy as best known now); its
history is told by claims: commanders and members over time
(``person_commanded_unit``, ``person_member_of_unit``) and parents over time
(``unit_subordinate_to_unit``), each with sources and review. :func:`unit_history`
gathers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from sprava.backends.db.catalogue_tables import claim, unit, unit_name
from sprava.catalogue import claims, schema
from sprava.catalogue._record import (
    chunks,
    new_id,
    new_salt,
    page_query,
    reading,
    recording,
)
from sprava.domain.catalogue import (
    Claim,
    ClaimStatus,
    EntityKind,
    Membership,
    Page,
    Unit,
    membership_of,
)
from sprava.errors import ConflictError, NotFoundError
from sprava.instance import Instance

_MAX_DEPTH = 1000  # deeper than any real chain of command; stops a loop in bad data


def _from_row(row: Any, names: dict[str, str]) -> Unit:
    return Unit(id=row.id, salt=row.salt, names=dict(sorted(names.items())), type=row.type,
                parent_id=row.parent_id, area_of_operation=row.area_of_operation,
                notes=row.notes, created_at=row.created_at, updated_at=row.updated_at)


def load(conn: Connection, ids: Sequence[str]) -> dict[str, Unit]:
    out: dict[str, Unit] = {}
    for part in chunks(list(ids)):
        names: dict[str, dict[str, str]] = {}
        for unit_id, lang, name in conn.execute(
                select(unit_name.c.unit_id, unit_name.c.lang, unit_name.c.name)
                .where(unit_name.c.unit_id.in_(part))):
            names.setdefault(unit_id, {})[lang] = name
        for row in conn.execute(select(unit).where(unit.c.id.in_(part))):
            out[row.id] = _from_row(row, names.get(row.id, {}))
    return out


def fetch(conn: Connection, unit_id: str) -> Unit:
    found = load(conn, [unit_id]).get(unit_id)
    if found is None:
        raise NotFoundError(f"no unit {unit_id}", code="unit-not-found")
    return found


def _columns(u: Unit) -> dict[str, Any]:
    return {"type": u.type, "parent_id": u.parent_id, "area_of_operation": u.area_of_operation,
            "notes": u.notes, "updated_at": u.updated_at}


def _write_names(conn: Connection, u: Unit) -> None:
    conn.execute(delete(unit_name).where(unit_name.c.unit_id == u.id))
    conn.execute(insert(unit_name),
                 [{"unit_id": u.id, "lang": k, "name": v} for k, v in u.names.items()])


def _ancestors(conn: Connection, parent_id: str | None) -> list[str]:
    chain: list[str] = []
    while parent_id is not None and len(chain) < _MAX_DEPTH:
        chain.append(parent_id)
        parent_id = conn.execute(select(unit.c.parent_id).where(unit.c.id == parent_id)
                                 ).scalar_one_or_none()
    return chain


def _check_parent(conn: Connection, unit_id: str, parent_id: str | None) -> None:
    """The parent exists and is not the unit itself or one of its own sub-units."""
    if parent_id is None:
        return
    fetch(conn, parent_id)
    if unit_id in _ancestors(conn, parent_id):
        raise ConflictError(f"unit {parent_id} is {unit_id} or below it; a unit cannot be its "
                            "own parent", code="unit-cycle")


def create_unit(instance: Instance, data: Any, *, actor: str) -> Unit:
    values = schema.unit_input(data)
    with recording(instance, actor) as rec:
        u = Unit(id=new_id(), salt=new_salt(), names=values["names"], type=values["type"],
                 parent_id=values.get("parent_id"),
                 area_of_operation=values.get("area_of_operation"), notes=values.get("notes"),
                 created_at=rec.now, updated_at=rec.now)
        _check_parent(rec.conn, u.id, u.parent_id)
        rec.conn.execute(insert(unit).values(id=u.id, salt=u.salt, created_at=u.created_at,
                                             **_columns(u)))
        _write_names(rec.conn, u)
        rec.record("create", EntityKind.UNIT, u.id, u.state())
    return u


def update_unit(instance: Instance, unit_id: str, changes: Any, *, actor: str) -> Unit:
    """Change the given fields; ``names`` replaces all names. Raises ConflictError
    ``unit-cycle`` for a parent below the unit."""
    values = schema.unit_input(changes, partial=True)
    with recording(instance, actor) as rec:
        current = fetch(rec.conn, unit_id)
        new = replace(current, **values)
        if new.parent_id != current.parent_id:
            _check_parent(rec.conn, unit_id, new.parent_id)
        if new.state() == current.state():
            return current
        new = replace(new, updated_at=rec.now)
        rec.conn.execute(update(unit).where(unit.c.id == unit_id).values(**_columns(new)))
        _write_names(rec.conn, new)
        rec.record("update", EntityKind.UNIT, unit_id, new.state())
    return new


def get_unit(instance: Instance, unit_id: str) -> Unit:
    with reading(instance) as conn:
        return fetch(conn, schema.entity_id(unit_id, "unit_id"))


def list_units(instance: Instance, *, parent_id: str | None = None, top_level: bool = False,
               limit: int = 50, offset: int = 0) -> Page[Unit]:
    """Units in the order they were recorded: all, the sub-units of one, or the top level."""
    query = select(unit.c.id).order_by(unit.c.created_at, unit.c.id)
    if parent_id is not None:
        query = query.where(unit.c.parent_id == schema.entity_id(parent_id, "parent_id"))
    elif top_level:
        query = query.where(unit.c.parent_id.is_(None))
    with reading(instance) as conn:
        rows, total = page_query(conn, query, limit, offset)
        found = load(conn, [r.id for r in rows])
    return Page(tuple(found[r.id] for r in rows), total, limit, offset)


@dataclass(frozen=True)
class UnitHistory:
    """A unit over time. Persons appear by id only: their names are a restricted read
    (:func:`sprava.catalogue.persons.list_persons` with ``ids``), recorded as such."""

    unit: Unit
    ancestors: tuple[Unit, ...]  # parent, grand-parent, … as the unit records them now
    superiors: tuple[Claim, ...]  # unit_subordinate_to_unit claims that count
    commanders: Page[Membership]  # earliest first


def unit_history(instance: Instance, unit_id: str, *, include_unreviewed: bool = False,
                 limit: int = 50, offset: int = 0) -> UnitHistory:
    """The unit, its chain of parents, its parents over time and its commanders over time
    (approved claims only, unless ``include_unreviewed``)."""
    unit_id = schema.entity_id(unit_id, "unit_id")
    with reading(instance) as conn:
        current = fetch(conn, unit_id)
        chain = _ancestors(conn, current.parent_id)
        found = load(conn, chain)
        superior_ids = conn.execute(
            select(claim.c.id).where(claim.c.statement == "unit_subordinate_to_unit",
                                     claim.c.subject_id == unit_id,
                                     claim.c.status.in_(
                                         [ClaimStatus.APPROVED.value,
                                          ClaimStatus.PENDING_REVIEW.value]))
            .order_by(claim.c.valid_from.is_not(None), claim.c.valid_from, claim.c.id)
        ).scalars().all()
        superiors = claims.load(conn, superior_ids)
        rows, total = page_query(conn, claims.membership_query(
            unit_id=unit_id, commanders_only=True, include_unreviewed=include_unreviewed),
            limit, offset)
        commanders = claims.load(conn, [r.id for r in rows])
    return UnitHistory(
        current, tuple(found[i] for i in chain if i in found),
        tuple(superiors[i] for i in superior_ids),
        Page(tuple(membership_of(commanders[r.id]) for r in rows), total, limit, offset))
