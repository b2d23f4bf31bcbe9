"""Bulk import of units and commanders from a Security Force Monitor style CSV.

The whole file is read (within a size limit) and every row checked before anything is
stored (:mod:`sprava.catalogue.sfm_read`, :mod:`sprava.catalogue.sfm_model`). The file
itself is then ingested into the vault, bit for bit with its ``ingest`` event, and cited
as the source of every claim it yields; each row's own source citations are kept in the
claim's comment. Then one catalogue transaction writes it all:

* units, with their names (under one language tag), classification as type, current
  parent and areas of operation; a unit known only as another's parent is created from
  the parent-name column;
* persons, with name, rank and role as of their latest posting;
* claims, all submitted for review and never approved: ``person_commanded_unit`` for a
  commander's posting, ``person_member_of_unit`` (with the role) for any other posting,
  ``unit_subordinate_to_unit`` for a parent link, dated from first to last cited.

A unit or person keeps its SFM id as the first line of its notes (``Security Force
Monitor unit: <id>``); a later import finds it there and never duplicates it, and never
overwrites what is held: it only fills empty fields. A statement already claimed (same
parties, role and dates) is not claimed again, unless its only claim was rejected and the
file is a new one. Rows that cannot resolve (a parent with no row, no name and no record
here) are refused before the file is ingested; should the catalogue transaction still
fail, the file stays in the vault (harmless, found again by the next import) and nothing
else is stored.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from sprava.backends.db.catalogue_tables import claim, person, unit
from sprava.catalogue import claims, persons, schema, units
from sprava.catalogue._record import (
    Recorder,
    check_actor,
    chunks,
    new_id,
    new_salt,
    reading,
    recording,
)
from sprava.catalogue.exchange_files import open_regular, read_bounded
from sprava.catalogue.exchange_import import ImportSummary
from sprava.catalogue.sfm_model import Gathered, Link, SfmPerson, SfmUnit, gather
from sprava.catalogue.sfm_read import read_sheet
from sprava.domain.catalogue import ClaimStatus, EntityKind, Person, Unit
from sprava.errors import BadInputError, NotFoundError
from sprava.instance import Instance
from sprava.store.ingest import Ingestor

MAX_BYTES = 64 * 1024 * 1024
DEFAULT_SOURCE = "Security Force Monitor"
UNIT_MARK = "Security Force Monitor unit: "
PERSON_MARK = "Security Force Monitor person: "
UNKNOWN_TYPE = "unknown"


def import_sfm(instance: Instance, path: Path, *, actor: str, source: str | None = None,
               lang: str = "und", max_bytes: int = MAX_BYTES) -> ImportSummary:
    """Import the units and commanders of an SFM style CSV file (see the module).

    ``source`` names where the file came from at ingest (default ``Security Force
    Monitor``); ``lang`` is the language tag of the unit names in it (default ``und``,
    undetermined). Raises BadInputError naming the row and column of a bad row
    (``sfm-bad-row``, ``sfm-conflict`` …), TooLargeError past ``max_bytes``, NotFoundError
    for a parent or posting unit neither in the file nor here, ConflictError
    ``unit-cycle``.
    """
    check_actor(actor)
    with open_regular(path) as handle:
        data = read_bounded(handle, path.name, max_bytes)
    return import_sfm_bytes(instance, data, name=path.name, actor=actor, source=source,
                            lang=lang)


def import_sfm_bytes(instance: Instance, data: bytes, *, name: str, actor: str,
                     source: str | None = None, lang: str = "und") -> ImportSummary:
    """As :func:`import_sfm`, for content already read (an upload); ``name`` is the file
    name to record at ingest."""
    check_actor(actor)
    lang = next(iter(schema.names({lang: "x"}, "lang")))
    # The name is the sender's to choose: it goes into notes and comments as plain text.
    name = re.sub(r"[\x00-\x1f\x7f]", "_", os.path.basename(name))[:200] or "sfm.csv"
    sheet = read_sheet(data, name)
    found = gather(sheet)
    with reading(instance) as conn:  # refuse what cannot resolve before storing anything
        _resolvable(found, _known(conn, unit, UNIT_MARK))
    ingestor = Ingestor(instance, source_name=source or DEFAULT_SOURCE, actor=actor)
    result = ingestor.ingest_chunks(os.fsencode(name), [data])
    if result.error is not None or result.sha256 is None:
        raise result.error or BadInputError(f"{name} could not be ingested", code="unreadable")
    summary = ImportSummary("sfm-csv", rows=len(sheet.rows), item_sha256=result.sha256,
                            ignored_columns=sheet.ignored)
    with recording(instance, actor) as rec:
        _Writer(rec, found, result.sha256, name, lang, summary).run()
    return summary


def _known(conn: Connection, table: Table, mark: str) -> dict[str, str]:
    """SFM id → Sprava id of the records whose notes start with the mark (the oldest id
    wins). Only the first line counts: a citation quoted further down the notes cannot
    pass one record off as another."""
    out: dict[str, str] = {}
    rows = conn.execute(select(table.c.id, table.c.notes)
                        .where(table.c.notes.like(f"{mark}%")).order_by(table.c.id))
    for entity_id, notes in rows:
        first = notes.split("\n", 1)[0]
        if first.startswith(mark):  # LIKE ignores case on SQLite
            out.setdefault(first[len(mark):].strip(), entity_id)
    return out


def _missing_unit(row: int, sfm_id: str) -> NotFoundError:
    return NotFoundError(f"row {row}: no unit with SFM id {sfm_id} in the file or here",
                         code="unit-not-found",
                         hint="add a row for it, or give its name in the parent-name column")


def _resolvable(found: Gathered, known: dict[str, str]) -> None:
    """Every unit named only as a parent or a posting's unit is here already, or has a
    name to be created with; raises NotFoundError ``unit-not-found`` naming the row."""
    for u in found.units.values():
        if u.stub and not u.name and u.sfm_id not in known:
            raise _missing_unit(u.row, u.sfm_id)
    for link in found.postings:
        if link.object not in found.units and link.object not in known:
            raise _missing_unit(link.row, link.object)


def _notes(mark: str, sfm_id: str, lines: list[tuple[str, Any]], where: str) -> str | None:
    body = [f"{mark}{sfm_id}"] + [f"{label}: {value}" for label, value in lines if value]
    return schema.optional_text("\n".join(body), where, limit=schema.LONG, multiline=True)


def _cited(sources: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> str:
    return "; ".join(f"{column}: {text}" for column, text in sources)


class _Writer:
    """One import's writes, inside one recording transaction."""

    def __init__(self, rec: Recorder, found: Gathered, sha: str, name: str, lang: str,
                 summary: ImportSummary) -> None:
        self.rec, self.found, self.sha, self.name, self.lang = rec, found, sha, name, lang
        self.summary = summary
        self.units = _known(rec.conn, unit, UNIT_MARK)
        self.persons = _known(rec.conn, person, PERSON_MARK)
        self.note = f"Security Force Monitor import of {name}"

    def run(self) -> None:
        done: set[str] = set()
        for u in self.found.units.values():
            self._unit(u, done)
        for p in self.found.persons.values():
            self._person(p)
        self._claims()

    def _count(self, what: str, section: str) -> None:
        getattr(self.summary, what)[section] += 1

    def _unit(self, u: SfmUnit, done: set[str]) -> str:
        """The Sprava id of ``u``, created (parents first) or completed as needed."""
        if u.sfm_id in done:
            return self.units[u.sfm_id]
        done.add(u.sfm_id)  # the file's loops were refused already
        parent = self._parent(u, done)
        held = self.units.get(u.sfm_id)
        if held is not None:
            self._complete_unit(held, u, parent)
            return held
        if u.stub and not u.name:
            raise _missing_unit(u.row, u.sfm_id)
        where = f"row {u.row}, unit {u.sfm_id}"
        now = self.rec.now
        new = Unit(
            id=new_id(), salt=new_salt(), names=schema.names({self.lang: u.name}, where),
            type=schema.text(" / ".join(u.classification) or UNKNOWN_TYPE, where, limit=200),
            parent_id=parent,
            area_of_operation=schema.optional_text("; ".join(u.areas), where, limit=schema.LONG),
            notes=_notes(UNIT_MARK, u.sfm_id, [
                ("Other names", "; ".join(u.other_names)), ("Country", u.country),
                ("First cited", u.first), ("Last cited", u.last),
                ("Sources", _cited(u.sources))], where),
            created_at=now, updated_at=now)
        self.rec.conn.execute(insert(unit).values(id=new.id, salt=new.salt, created_at=now,
                                                  **units._columns(new)))
        units._write_names(self.rec.conn, new)
        self.rec.record("create", EntityKind.UNIT, new.id, new.state(),
                        f"{self.note}, row {u.row}")
        self.units[u.sfm_id] = new.id
        self._count("created", "units")
        return new.id

    def _parent(self, u: SfmUnit, done: set[str]) -> str | None:
        if u.parent is None:
            return None
        return self._unit(self.found.units[u.parent], done)

    def _complete_unit(self, unit_id: str, u: SfmUnit, parent: str | None) -> None:
        current = units.fetch(self.rec.conn, unit_id)
        names = dict(current.names)
        if not u.stub:
            names.setdefault(self.lang, u.name)
        new = replace(current, names=names,
                      parent_id=current.parent_id or parent,
                      area_of_operation=current.area_of_operation or (
                          "; ".join(u.areas) or None))
        if new.state() == current.state():
            self._count("skipped", "units")
            return
        if new.parent_id != current.parent_id:
            units._check_parent(self.rec.conn, unit_id, new.parent_id)
        new = replace(new, updated_at=self.rec.now)
        self.rec.conn.execute(update(unit).where(unit.c.id == unit_id)
                              .values(**units._columns(new)))
        units._write_names(self.rec.conn, new)
        self.rec.record("update", EntityKind.UNIT, unit_id, new.state(),
                        f"{self.note}, row {u.row}: empty fields filled")
        self._count("updated", "units")

    def _person(self, p: SfmPerson) -> None:
        where = f"row {p.row}, person {p.sfm_id}"
        held = self.persons.get(p.sfm_id)
        now = self.rec.now
        if held is not None:
            current = persons.fetch(self.rec.conn, held)
            new = replace(current, rank=current.rank or p.rank, role=current.role or p.role)
            if new.state() == current.state():
                self._count("skipped", "persons")
                return
            new = replace(new, updated_at=now)
            self.rec.conn.execute(update(person).where(person.c.id == held)
                                  .values(**persons._columns(new)))
            self.rec.record("update", EntityKind.PERSON, held, new.state(),
                            f"{self.note}, row {p.row}: empty fields filled")
            self._count("updated", "persons")
            return
        values = schema.person_input({"name": p.name, "rank": p.rank, "role": p.role})
        made = Person(id=new_id(), salt=new_salt(), name=values["name"],
                      rank=values.get("rank"), role=values.get("role"), identifiers=(),
                      notes=_notes(PERSON_MARK, p.sfm_id, [
                          ("Other names", "; ".join(p.other_names)),
                          ("Sources", _cited(p.sources))], where),
                      created_at=now, updated_at=now)
        self.rec.conn.execute(insert(person).values(id=made.id, salt=made.salt, created_at=now,
                                                    **persons._columns(made)))
        self.rec.record("create", EntityKind.PERSON, made.id, made.state(),
                        f"{self.note}, row {p.row}")
        self.persons[p.sfm_id] = made.id
        self._count("created", "persons")

    def _held_claims(self, subjects: list[str]) -> set[tuple[Any, ...]]:
        """Keys of the statements already claimed about these subjects: by any claim not
        rejected, or by a rejected one that this same file yielded (a rejection is
        revisited only on a new source)."""
        ids: list[str] = []
        for part in chunks(sorted(set(subjects))):
            ids += self.rec.conn.execute(select(claim.c.id).where(
                claim.c.subject_id.in_(part))).scalars()
        return {(c.statement, c.subject_id, c.object_id, c.role, c.valid_from, c.valid_to)
                for c in claims.load(self.rec.conn, ids).values()
                if c.status is not ClaimStatus.REJECTED or self.sha in c.sources}

    def _claims(self) -> None:
        links = [(link, EntityKind.PERSON, self.persons) for link in self.found.postings] + [
            (link, EntityKind.UNIT, self.units) for link in self.found.parents]
        held = self._held_claims([ids[link.subject] for link, _kind, ids in links])
        for link, kind, ids in links:
            obj = self._unit_for(link)
            key = (link.statement, ids[link.subject], obj, link.role, link.first, link.last)
            if key in held:
                self._count("skipped", "claims")
                continue
            held.add(key)
            where = f"row {link.row}"
            c = claims.new_claim(
                self.rec, statement=link.statement, subject=(kind, ids[link.subject]),
                obj=(EntityKind.UNIT, obj), status=ClaimStatus.PENDING_REVIEW, values={
                    "role": link.role, "valid_from": link.first, "valid_to": link.last,
                    "sources": (self.sha,), "confidence": link.confidence,
                    "comment": schema.optional_text(self._comment(link), where,
                                                    limit=schema.LONG, multiline=True)})
            claims.insert_claim(self.rec, c, f"{self.note}, row {link.row}")
            self._count("created", "claims")

    def _unit_for(self, link: Link) -> str:
        if link.object in self.units:
            return self.units[link.object]
        raise _missing_unit(link.row, link.object)

    def _comment(self, link: Link) -> str:
        what = {"person_commanded_unit": "commanded", "person_member_of_unit": "served in",
                "unit_subordinate_to_unit": "was subordinate to"}[link.statement]
        subject = "person" if link.statement.startswith("person") else "unit"
        period = ", ".join(f"{label} {value}" for label, value in (
            ("first cited", link.first), ("last cited", link.last)) if value)
        lines = [f"Security Force Monitor, {self.name} row {link.row}: {subject} "
                 f"{link.subject} {what} unit {link.object}"
                 + (f" ({period})" if period else "")]
        if link.detail:
            lines.append(link.detail)
        lines += [f"{column}: {text}" for column, text in link.sources]
        return "\n".join(lines)
