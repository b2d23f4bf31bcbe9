"""Cases: a selection of incidents, claims and items prepared for a named recipient.

A case may cite only claims that count (:func:`sprava.domain.catalogue.claim_effect`):
a claim about a person leaves for a prosecutor only once a second reviewer approved it.
Building the case file itself (the signed, offline-verifiable bag) is
:mod:`sprava.casefile`'s work, and exporting it is a custody event of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from sprava.backends.db.catalogue_tables import (
    case_claim,
    case_incident,
    case_item,
    case_record,
    incident,
)
from sprava.catalogue import claims, schema
from sprava.catalogue._record import (
    chunks,
    new_id,
    new_salt,
    page_query,
    reading,
    recording,
    require_items,
    require_rows,
)
from sprava.domain.catalogue import Case, EntityKind, Page
from sprava.errors import ConflictError, NotFoundError
from sprava.instance import Instance

_LINKS: tuple[tuple[str, Table, str], ...] = (
    ("incident_ids", case_incident, "incident_id"),
    ("claim_ids", case_claim, "claim_id"),
    ("items", case_item, "item_sha256"),
)
_INPUT = {"incidents": "incident_ids", "claims": "claim_ids", "items": "items",
          "title": "title", "recipient": "recipient", "description": "description"}


def load(conn: Connection, ids: Sequence[str]) -> dict[str, Case]:
    out: dict[str, Case] = {}
    for part in chunks(list(ids)):
        links: dict[str, dict[str, list[str]]] = {}
        for field, table, column in _LINKS:
            for case_id, value in conn.execute(select(table.c.case_id, table.c[column])
                                               .where(table.c.case_id.in_(part))):
                links.setdefault(case_id, {}).setdefault(field, []).append(value)
        for row in conn.execute(select(case_record).where(case_record.c.id.in_(part))):
            found = links.get(row.id, {})
            out[row.id] = Case(
                id=row.id, salt=row.salt, title=row.title, recipient=row.recipient,
                description=row.description,
                incident_ids=tuple(sorted(found.get("incident_ids", []))),
                claim_ids=tuple(sorted(found.get("claim_ids", []))),
                items=tuple(sorted(found.get("items", []))),
                created_at=row.created_at, updated_at=row.updated_at)
    return out


def fetch(conn: Connection, case_id: str) -> Case:
    found = load(conn, [case_id]).get(case_id)
    if found is None:
        raise NotFoundError(f"no case {case_id}", code="case-not-found")
    return found


def _check_selection(conn: Connection, c: Case, before: Case | None = None) -> None:
    """What the case newly cites exists, and every newly cited claim counts. (A claim
    already in the case that was rejected since stays, for the export to show as such.)"""
    def added(field: str) -> list[str]:
        old = set(getattr(before, field)) if before is not None else set()
        return [v for v in getattr(c, field) if v not in old]

    require_rows(conn, incident, added("incident_ids"), "incident")
    require_items(conn, added("items"))
    new_claims = added("claim_ids")
    found = claims.load(conn, new_claims)
    for claim_id in new_claims:
        if claim_id not in found:
            raise NotFoundError(f"no claim {claim_id}", code="claim-not-found")
        if not found[claim_id].effective:
            raise ConflictError(
                f"claim {claim_id} is {found[claim_id].status} and does not count yet",
                code="claim-not-effective",
                hint="a claim about a person needs a second reviewer's approval before it can "
                "go into a case; a claim about a unit must at least be submitted")


def _write(conn: Connection, c: Case) -> None:
    for field, table, column in _LINKS:
        conn.execute(delete(table).where(table.c.case_id == c.id))
        values = getattr(c, field)
        if values:
            conn.execute(insert(table), [{"case_id": c.id, column: v} for v in values])


def _columns(c: Case) -> dict[str, Any]:
    return {"title": c.title, "recipient": c.recipient, "description": c.description,
            "updated_at": c.updated_at}


def create_case(instance: Instance, data: Any, *, actor: str) -> Case:
    """Start a case for a named recipient. Raises NotFoundError for anything it cites that
    does not exist, ConflictError ``claim-not-effective`` for a claim that does not count."""
    values = {_INPUT[k]: v for k, v in schema.case_input(data).items()}
    with recording(instance, actor) as rec:
        c = Case(id=new_id(), salt=new_salt(), title=values["title"],
                 recipient=values["recipient"], description=values.get("description"),
                 incident_ids=values.get("incident_ids", ()),
                 claim_ids=values.get("claim_ids", ()), items=values.get("items", ()),
                 created_at=rec.now, updated_at=rec.now)
        _check_selection(rec.conn, c)
        rec.conn.execute(insert(case_record).values(id=c.id, salt=c.salt,
                                                    created_at=c.created_at, **_columns(c)))
        _write(rec.conn, c)
        rec.record("create", EntityKind.CASE, c.id, c.state())
    return c


def update_case(instance: Instance, case_id: str, changes: Any, *, actor: str) -> Case:
    """Change the given fields; ``incidents``, ``claims`` and ``items`` replace the
    selection."""
    values = {_INPUT[k]: v for k, v in schema.case_input(changes, partial=True).items()}
    with recording(instance, actor) as rec:
        current = fetch(rec.conn, case_id)
        new = replace(current, **values)
        if new.state() == current.state():
            return current
        _check_selection(rec.conn, new, current)
        new = replace(new, updated_at=rec.now)
        rec.conn.execute(update(case_record).where(case_record.c.id == case_id)
                         .values(**_columns(new)))
        _write(rec.conn, new)
        rec.record("update", EntityKind.CASE, case_id, new.state())
    return new


def get_case(instance: Instance, case_id: str) -> Case:
    with reading(instance) as conn:
        return fetch(conn, schema.entity_id(case_id, "case_id"))


def list_cases(instance: Instance, *, limit: int = 50, offset: int = 0) -> Page[Case]:
    query = select(case_record.c.id).order_by(case_record.c.created_at, case_record.c.id)
    with reading(instance) as conn:
        rows, total = page_query(conn, query, limit, offset)
        found = load(conn, [r.id for r in rows])
    return Page(tuple(found[r.id] for r in rows), total, limit, offset)
