"""Writing a checked exchange document into this instance: all of it in one transaction.

Ids are kept, so that every reference in the document still holds. A record whose id is
already held here is skipped when it is the same record (same content; for claims the
same statement, parties, dates, sources, confidence and comment, whatever its review
state here), and refused otherwise (ConflictError ``id-exists``): an import never
overwrites. Every reference to something not in the document must exist here (units,
persons, incidents, acts, claims, vocabulary codes and, always, the items cited: the
export carries no evidence bytes). Each created record is a ``create`` custody event,
as the services make them, noted in the change index as imported; the importer is
therefore one of each claim's contributors and cannot review the claims they imported.
Any error raises before the transaction commits, so nothing is half-written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, insert

from sprava.backends.db.catalogue_tables import (
    act,
    case_record,
    claim,
    incident,
    person,
    unit,
    vocabulary_term,
)
from sprava.catalogue import acts, cases, claims, incidents, persons, units
from sprava.catalogue._record import Recorder, require_items, require_rows
from sprava.catalogue.exchange_parse import SECTIONS, Plan, at
from sprava.catalogue.vocabulary import check_codes, shipped_terms, term_state
from sprava.domain.catalogue import Claim, EntityKind, PerpetratorKind, Term, Unit
from sprava.errors import BadInputError, ConflictError

E = TypeVar("E", bound=Any)
_CLAIM_CONTENT = ("statement", "subject", "object", "role", "valid_from", "valid_to",
                  "sources", "confidence", "comment")


@dataclass
class ImportSummary:
    """What an import did, by section (``vocabulary``, ``incidents`` … ``cases``)."""

    format: str
    origin: str | None = None
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SECTIONS, 0))
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SECTIONS, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SECTIONS, 0))
    sent_to_review: int = 0  # claims approved elsewhere that arrived pending review
    rows: int | None = None  # SFM: data rows read
    item_sha256: str | None = None  # SFM: the file as ingested, the source of its claims
    ignored_columns: list[str] = field(default_factory=list)  # SFM: columns never read

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "origin": self.origin,
                               "created": self.created, "skipped": self.skipped,
                               "updated": self.updated, "sent_to_review": self.sent_to_review}
        if self.rows is not None:
            out.update(rows=self.rows, item_sha256=self.item_sha256,
                       ignored_columns=self.ignored_columns)
        return out


def _without_salt(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "salt"}


def _same(held: Any, new: Any) -> bool:
    if isinstance(new, Claim):
        old, now = held.state(), new.state()
        return all(old[k] == now[k] for k in _CLAIM_CONTENT)
    return _without_salt(held.state()) == _without_salt(new.state())


def _new_records(conn: Connection, section: str, kind: EntityKind,
                 load: Callable[[Connection, Sequence[str]], Mapping[str, Any]],
                 records: list[E], summary: ImportSummary) -> list[E]:
    """The records not held yet; identical ones are counted as skipped, others refused."""
    held = load(conn, [r.id for r in records])
    out = []
    for r in records:
        old = held.get(r.id)
        if old is None:
            out.append(r)
        elif _same(old, r):
            summary.skipped[section] += 1
        else:
            raise ConflictError(
                f"{kind.value} {r.id} is already held here with other content",
                code="id-exists", hint="an import never overwrites: change the record here, "
                "or leave it out of the file")
    return out


def _new_terms(conn: Connection, terms: list[tuple[Term, str]],
               summary: ImportSummary) -> list[tuple[Term, str]]:
    held = {t.code: t for t in shipped_terms()}
    rows = conn.execute(vocabulary_term.select().where(
        vocabulary_term.c.code.in_([t.code for t, _ in terms])))
    held.update({r.code: Term(r.code, json.loads(r.labels), r.description, "instance")
                 for r in rows})
    out = []
    for term, salt in terms:
        old = held.get(term.code)
        if old is None:
            out.append((term, salt))
        elif (dict(old.labels), old.description) == (dict(term.labels), term.description):
            summary.skipped["vocabulary"] += 1
        else:
            raise ConflictError(f"the vocabulary already has {term.code!r}, with other labels",
                                code="term-exists", hint="terms are never redefined")
    return out


def _require(conn: Connection, table: Table, ids: Iterable[str], what: str,
             present: set[str]) -> None:
    require_rows(conn, table, [i for i in ids if i not in present], what)


_TABLES = {EntityKind.UNIT: unit, EntityKind.PERSON: person, EntityKind.INCIDENT: incident,
           EntityKind.ACT: act}


def _unit_order(new: list[Unit]) -> list[Unit]:
    """Parents before children; ConflictError ``unit-cycle`` for a loop in the file."""
    by_id = {u.id: u for u in new}
    done: set[str] = set()
    order: list[Unit] = []
    for u in new:
        chain: list[Unit] = []
        current: Unit | None = u
        while current is not None and current.id not in done:
            if any(c.id == current.id for c in chain):
                raise ConflictError(f"units {current.id} and its parents form a loop",
                                    code="unit-cycle")
            chain.append(current)
            current = by_id.get(current.parent_id or "")
        order.extend(reversed(chain))
        done.update(c.id for c in chain)
    return order


def _check_perpetrators(conn: Connection, plan: Plan, new_acts: list[Any],
                        present: dict[EntityKind, set[str]]) -> None:
    """An act naming a unit or a person cites the ``*_committed_act`` claim that says so."""
    in_file = {c.id: c for c in plan.claims}
    wanted = [a.perpetrator.claim_id for a in new_acts if a.perpetrator.claim_id]
    held = claims.load(conn, [i for i in wanted if i not in in_file])
    for a in new_acts:
        p = a.perpetrator
        if p.kind is PerpetratorKind.UNKNOWN:
            continue
        with at(f"act {a.id}"):
            kind = EntityKind(p.kind.value)
            target = p.unit_id if kind is EntityKind.UNIT else p.person_id
            _require(conn, _TABLES[kind], [target or ""], kind.value, present[kind])
            c = in_file.get(p.claim_id or "") or held.get(p.claim_id or "")
            if c is None:
                _require(conn, claim, [p.claim_id or ""], "claim", set())
            elif (c.statement, c.subject_id, c.object_id) != (
                    f"{kind.value}_committed_act", target, a.id):
                raise BadInputError(f"perpetrator claim {c.id} does not say that {kind.value} "
                                    f"{target} committed this act", code="perpetrator-mismatch")


def apply_plan(rec: Recorder, plan: Plan, summary: ImportSummary) -> None:
    """Check every reference, then write every new record with its custody event."""
    conn = rec.conn
    terms = _new_terms(conn, plan.terms, summary)
    new_incidents = _new_records(conn, "incidents", EntityKind.INCIDENT, incidents.load,
                                 plan.incidents, summary)
    new_units = _new_records(conn, "units", EntityKind.UNIT, units.load, plan.units, summary)
    new_persons = _new_records(conn, "persons", EntityKind.PERSON, persons.load, plan.persons,
                               summary)
    new_claims = _new_records(conn, "claims", EntityKind.CLAIM, claims.load, plan.claims,
                              summary)
    new_acts = _new_records(conn, "acts", EntityKind.ACT, acts.load, plan.acts, summary)
    new_cases = _new_records(conn, "cases", EntityKind.CASE, cases.load, plan.cases, summary)

    present = {EntityKind.INCIDENT: {r.id for r in plan.incidents},
               EntityKind.UNIT: {r.id for r in plan.units},
               EntityKind.PERSON: {r.id for r in plan.persons},
               EntityKind.ACT: {r.id for r in plan.acts},
               EntityKind.CLAIM: {r.id for r in plan.claims}}
    codes = {t.code for t, _ in plan.terms}
    check_codes(conn, {c for i in new_incidents for c in i.violation_types} - codes,
                "incidents.violation_types")
    check_codes(conn, {a.type for a in new_acts} - codes, "acts.type")
    _require(conn, unit, [u.parent_id for u in new_units if u.parent_id], "unit",
             present[EntityKind.UNIT])
    for kind, table in _TABLES.items():
        _require(conn, table, [c.subject_id for c in new_claims if c.subject_kind is kind]
                 + [c.object_id for c in new_claims if c.object_kind is kind], kind.value,
                 present[kind])
    _require(conn, incident, [a.incident_id for a in new_acts], "incident",
             present[EntityKind.INCIDENT])
    _require(conn, incident, [i for c in new_cases for i in c.incident_ids], "incident",
             present[EntityKind.INCIDENT])
    _require(conn, claim, [i for c in new_cases for i in c.claim_ids], "claim",
             present[EntityKind.CLAIM])
    require_items(conn, {s for c in new_claims for s in c.sources}
                  | {s for a in new_acts for s in a.evidence}
                  | {s for c in new_cases for s in c.items})
    _check_perpetrators(conn, plan, new_acts, present)
    ordered_units = _unit_order(new_units)
    _write(rec, plan, summary, terms, new_incidents, ordered_units, new_persons, new_claims,
           new_acts, new_cases)


def _write(rec: Recorder, plan: Plan, summary: ImportSummary, terms: list[tuple[Term, str]],
           new_incidents: list[Any], new_units: list[Any], new_persons: list[Any],
           new_claims: list[Claim], new_acts: list[Any], new_cases: list[Any]) -> None:
    conn, now = rec.conn, rec.now
    note = f"imported from {plan.origin or 'an unnamed instance'}" + (
        f", export of {plan.exported_at}" if plan.exported_at else "")
    stamps = {"created_at": now, "updated_at": now}
    for term, salt in terms:
        conn.execute(insert(vocabulary_term).values(
            code=term.code, salt=salt, description=term.description, **stamps,
            labels=json.dumps(term.labels, ensure_ascii=False, sort_keys=True)))
        rec.record("create", EntityKind.TERM, term.code, term_state(term, salt), note)
    for inc in (replace(i, **stamps) for i in new_incidents):
        conn.execute(insert(incident).values(id=inc.id, salt=inc.salt, created_at=now,
                                             **incidents._columns(inc)))
        incidents._write_violations(conn, inc)
        rec.record("create", EntityKind.INCIDENT, inc.id, inc.state(), note)
    for u in (replace(u, **stamps) for u in new_units):
        conn.execute(insert(unit).values(id=u.id, salt=u.salt, created_at=now,
                                         **units._columns(u)))
        units._write_names(conn, u)
        rec.record("create", EntityKind.UNIT, u.id, u.state(), note)
    for p in (replace(p, **stamps) for p in new_persons):
        conn.execute(insert(person).values(id=p.id, salt=p.salt, created_at=now,
                                           **persons._columns(p)))
        persons._write_identifiers(conn, p)
        rec.record("create", EntityKind.PERSON, p.id, p.state(), note)
    for c in new_claims:
        c = replace(c, author=c.author or rec.actor, created_at=now, updated_at=now)
        review = plan.review_notes.get(c.id)
        summary.sent_to_review += review is not None
        claims.insert_claim(rec, c, f"{note}; {review}" if review else note)
    for a in (replace(a, **stamps) for a in new_acts):
        conn.execute(insert(act).values(id=a.id, salt=a.salt, incident_id=a.incident_id,
                                        created_at=now, **acts._columns(a)))
        acts._write_evidence(conn, a)
        rec.record("create", EntityKind.ACT, a.id, a.state(), note)
    for c in (replace(c, **stamps) for c in new_cases):
        conn.execute(insert(case_record).values(id=c.id, salt=c.salt, created_at=now,
                                                **cases._columns(c)))
        cases._write(conn, c)
        rec.record("create", EntityKind.CASE, c.id, c.state(), note)
    for section, made in (("vocabulary", terms), ("incidents", new_incidents),
                          ("units", new_units), ("persons", new_persons),
                          ("claims", new_claims), ("acts", new_acts), ("cases", new_cases)):
        summary.created[section] = len(made)
