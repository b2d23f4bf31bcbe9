"""Incidents: an event in time and place, with violation types and a status.

An incident is created ``reported``; its status then moves by
:data:`sprava.domain.catalogue.INCIDENT_TRANSITIONS` only, through
:func:`set_incident_status` (a step back needs a note). Every create, update and status
change is a custody event in the same transaction as the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, insert, select, update

from sprava.backends.db.catalogue_tables import incident, incident_violation
from sprava.catalogue import schema
from sprava.catalogue._record import (
    chunks,
    grouped,
    new_id,
    new_salt,
    page_query,
    reading,
    recording,
)
from sprava.catalogue.vocabulary import check_codes
from sprava.domain.catalogue import (
    EntityKind,
    Incident,
    IncidentStatus,
    Page,
    Place,
    check_incident_transition,
)
from sprava.errors import NotFoundError
from sprava.instance import Instance


def _from_row(row: Any, violations: Sequence[str]) -> Incident:
    return Incident(
        id=row.id, salt=row.salt, title=row.title, description=row.description,
        start=row.start_at, end=row.end_at,
        place=Place(row.place_name, row.admin_area, row.lat, row.lon, row.precision_m),
        status=IncidentStatus(row.status), violation_types=tuple(sorted(violations)),
        created_at=row.created_at, updated_at=row.updated_at)


def load(conn: Connection, ids: Sequence[str]) -> dict[str, Incident]:
    """Incidents by id (those that exist), with their violation types."""
    out: dict[str, Incident] = {}
    for part in chunks(list(ids)):
        codes = grouped(conn, incident_violation.c.incident_id, incident_violation.c.code,
                        part)
        for row in conn.execute(select(incident).where(incident.c.id.in_(part))):
            out[row.id] = _from_row(row, codes.get(row.id, []))
    return out


def fetch(conn: Connection, incident_id: str) -> Incident:
    found = load(conn, [incident_id]).get(incident_id)
    if found is None:
        raise NotFoundError(f"no incident {incident_id}", code="incident-not-found")
    return found


def _columns(inc: Incident) -> dict[str, Any]:
    return {"title": inc.title, "description": inc.description, "start_at": inc.start,
            "end_at": inc.end, "place_name": inc.place.name, "admin_area": inc.place.admin_area,
            "lat": inc.place.lat, "lon": inc.place.lon, "precision_m": inc.place.precision_m,
            "status": str(inc.status), "updated_at": inc.updated_at}


def _write_violations(conn: Connection, inc: Incident) -> None:
    conn.execute(delete(incident_violation).where(incident_violation.c.incident_id == inc.id))
    if inc.violation_types:
        conn.execute(insert(incident_violation),
                     [{"incident_id": inc.id, "code": c} for c in inc.violation_types])


def create_incident(instance: Instance, data: Any, *, actor: str) -> Incident:
    """Record a new incident (status ``reported``); raises BadInputError on bad input."""
    values = schema.incident_input(data)
    schema.check_incident_times(values["start"], values.get("end"))
    with recording(instance, actor) as rec:
        check_codes(rec.conn, values.get("violation_types", ()), "incident.violation_types")
        inc = Incident(
            id=new_id(), salt=new_salt(), title=values["title"],
            description=values.get("description", ""), start=values["start"],
            end=values.get("end"), place=values["place"], status=IncidentStatus.REPORTED,
            violation_types=values.get("violation_types", ()), created_at=rec.now,
            updated_at=rec.now)
        rec.conn.execute(insert(incident).values(
            id=inc.id, salt=inc.salt, created_at=inc.created_at, **_columns(inc)))
        _write_violations(rec.conn, inc)
        rec.record("create", EntityKind.INCIDENT, inc.id, inc.state())
    return inc


def update_incident(instance: Instance, incident_id: str, changes: Any, *,
                    actor: str) -> Incident:
    """Change the given fields (not the status); an update that changes nothing records
    nothing."""
    values = schema.incident_input(changes, partial=True)
    with recording(instance, actor) as rec:
        current = fetch(rec.conn, incident_id)
        new = replace(current, **values)
        schema.check_incident_times(new.start, new.end)
        if "violation_types" in values:
            check_codes(rec.conn, new.violation_types, "incident.violation_types")
        if new.state() == current.state():
            return current
        new = replace(new, updated_at=rec.now)
        rec.conn.execute(update(incident).where(incident.c.id == new.id).values(**_columns(new)))
        _write_violations(rec.conn, new)
        rec.record("update", EntityKind.INCIDENT, new.id, new.state())
    return new


def set_incident_status(instance: Instance, incident_id: str, status: str, *, actor: str,
                        note: str | None = None) -> Incident:
    """Move an incident to ``status``.

    Raises ConflictError ``illegal-transition`` for a move the rules do not allow (a skip,
    or to the same status), BadInputError ``note-required`` for a step back without a note.
    """
    target = schema.incident_status(status)
    note = schema.optional_text(note, "note", limit=schema.LONG, multiline=True)
    with recording(instance, actor) as rec:
        current = fetch(rec.conn, incident_id)
        check_incident_transition(current.status, target, note)
        new = replace(current, status=target, updated_at=rec.now)
        rec.conn.execute(update(incident).where(incident.c.id == new.id)
                         .values(status=str(target), updated_at=rec.now))
        rec.record("status", EntityKind.INCIDENT, new.id, new.state(), note)
    return new


def get_incident(instance: Instance, incident_id: str) -> Incident:
    with reading(instance) as conn:
        return fetch(conn, schema.entity_id(incident_id, "incident_id"))


def list_incidents(instance: Instance, *, status: str | None = None,
                   violation_type: str | None = None, since: datetime | str | None = None,
                   until: datetime | str | None = None, limit: int = 50,
                   offset: int = 0) -> Page[Incident]:
    """Incidents, latest start first; optionally by status, violation type, and start
    within [``since``, ``until``) (aware datetimes or RFC 3339 text)."""
    query = select(incident.c.id).order_by(incident.c.start_at.desc(), incident.c.id)
    if status is not None:
        query = query.where(incident.c.status == str(schema.incident_status(status)))
    if violation_type is not None:
        query = query.where(exists().where(
            incident_violation.c.incident_id == incident.c.id,
            incident_violation.c.code == violation_type))
    if since is not None:
        query = query.where(incident.c.start_at >= schema.moment(since, "since"))
    if until is not None:
        query = query.where(incident.c.start_at < schema.moment(until, "until"))
    with reading(instance) as conn:
        rows, total = page_query(conn, query, limit, offset)
        found = load(conn, [r.id for r in rows])
    return Page(tuple(found[r.id] for r in rows), total, limit, offset)
