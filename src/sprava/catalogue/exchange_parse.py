"""Checking an exchange document, record by record, with the schemas the services use.

Pure: no database. :func:`parse_document` turns the document (from JSON, or from the CSV
archive by :mod:`sprava.catalogue.exchange_csv`) into domain objects, refusing red-line
fields anywhere in it first, then unknown fields, then each value, exactly as the
services do (:mod:`sprava.catalogue.schema`). Every error names the record
(``claims[3] (id …)``) and keeps the schema's code.

Review state is the one thing an import changes (docs/exchange.md): a claim approved on
the exporting instance arrives ``pending_review`` with its reviewer cleared, because due
process here needs a second pair of eyes here; what the other instance decided is kept
as the note of the claim's ``create`` event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sprava.catalogue import schema
from sprava.catalogue._record import check_actor, new_salt
from sprava.domain.catalogue import (
    Act,
    Case,
    Claim,
    ClaimStatus,
    Incident,
    Perpetrator,
    PerpetratorKind,
    Person,
    Term,
    Unit,
)
from sprava.domain.custody import rfc3339
from sprava.errors import BadInputError, ConflictError, NotFoundError, SpravaError

FORMAT = "sprava-catalogue"
VERSION = 1
SECTIONS = ("vocabulary", "incidents", "units", "persons", "claims", "acts", "cases")
TOP_FIELDS = ("format", "version", "exported_at", "origin", "includes_persons", *SECTIONS)
_PLACEHOLDER = datetime(1970, 1, 1, tzinfo=UTC)  # replaced by the import's own time
_SALT = re.compile(r"[0-9a-f]{32}")
R = TypeVar("R")
_SINGULAR = {"vocabulary": "term", "incidents": "incident", "units": "unit",
             "persons": "person", "claims": "claim", "acts": "act", "cases": "case"}


@dataclass
class Plan:
    """What a document holds, checked: the records to import, in document order."""

    origin: str | None
    exported_at: str | None
    terms: list[tuple[Term, str]] = field(default_factory=list)  # with each term's salt
    incidents: list[Incident] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    review_notes: dict[str, str] = field(default_factory=dict)  # claim id → review elsewhere
    acts: list[Act] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)


@contextmanager
def at(where: str) -> Iterator[None]:
    """Prefix the place to an error raised inside, keeping its class, code and hint."""
    try:
        yield
    except (BadInputError, NotFoundError, ConflictError) as exc:
        cls: type[SpravaError] = type(exc)
        raise cls(f"{where}: {exc.message}", code=exc.code, hint=exc.hint) from None


def _salt(value: Any, where: str) -> str:
    if value is None:
        return new_salt()
    if not isinstance(value, str) or not _SALT.fullmatch(value):
        raise BadInputError(f"{where}.salt: must be 32 lower-case hex digits", code="bad-salt")
    return value


def _pick(data: Mapping[str, Any], keys: Any) -> dict[str, Any]:
    return {k: data[k] for k in keys if k in data}


def _term(data: Any, where: str) -> tuple[Term, str]:
    d = schema.fields(data, where, (*schema.TERM_FIELDS, "salt"), ("code", "labels"))
    v = schema.term_input(_pick(d, schema.TERM_FIELDS))
    return (Term(v["code"], v["labels"], v.get("description", ""), "instance"),
            _salt(d.get("salt"), where))


def _incident(data: Any, where: str) -> Incident:
    d = schema.fields(data, where, (*schema.INCIDENT_FIELDS, "id", "salt", "status"), ("id",))
    v = schema.incident_input(_pick(d, schema.INCIDENT_FIELDS))
    schema.check_incident_times(v["start"], v.get("end"))
    return Incident(
        id=schema.entity_id(d["id"], f"{where}.id"), salt=_salt(d.get("salt"), where),
        title=v["title"], description=v.get("description", ""), start=v["start"],
        end=v.get("end"), place=v["place"],
        status=schema.incident_status(d.get("status") or "reported"),
        violation_types=v.get("violation_types", ()), created_at=_PLACEHOLDER,
        updated_at=_PLACEHOLDER)


def _unit(data: Any, where: str) -> Unit:
    d = schema.fields(data, where, (*schema.UNIT_FIELDS, "id", "salt"), ("id",))
    v = schema.unit_input(_pick(d, schema.UNIT_FIELDS))
    u = Unit(id=schema.entity_id(d["id"], f"{where}.id"), salt=_salt(d.get("salt"), where),
             names=v["names"], type=v["type"], parent_id=v.get("parent_id"),
             area_of_operation=v.get("area_of_operation"), notes=v.get("notes"),
             created_at=_PLACEHOLDER, updated_at=_PLACEHOLDER)
    if u.parent_id == u.id:
        raise ConflictError("a unit cannot be its own parent", code="unit-cycle")
    return u


def _person(data: Any, where: str) -> Person:
    d = schema.fields(data, where, (*schema.PERSON_FIELDS, "id", "salt"), ("id",))
    v = schema.person_input(_pick(d, schema.PERSON_FIELDS))
    return Person(id=schema.entity_id(d["id"], f"{where}.id"), salt=_salt(d.get("salt"), where),
                  name=v["name"], rank=v.get("rank"), role=v.get("role"),
                  identifiers=v.get("identifiers", ()), notes=v.get("notes"),
                  created_at=_PLACEHOLDER, updated_at=_PLACEHOLDER)


_REVIEW = ("status", "author", "reviewer", "review_reason", "reviewed_at")


def _claim(data: Any, where: str, notes: dict[str, str]) -> Claim:
    d = schema.fields(data, where, (*schema.CLAIM_FIELDS, "id", "salt", *_REVIEW),
                      ("id", "statement", "subject", "object", "sources", "confidence"))
    v = schema.claim_input(_pick(d, schema.CLAIM_FIELDS))
    statement, subject, obj = v.pop("statement"), v.pop("subject"), v.pop("object")
    schema.check_claim_shape(statement, subject, obj, v)
    status = schema.enum(d.get("status") or "draft", f"{where}.status", ClaimStatus,
                         [s.value for s in ClaimStatus])
    author = None if d.get("author") is None else check_actor(d["author"])
    reviewer = None if d.get("reviewer") is None else check_actor(d["reviewer"])
    reason = schema.optional_text(d.get("review_reason"), f"{where}.review_reason",
                                  limit=schema.LONG, multiline=True)
    reviewed_at = (None if d.get("reviewed_at") is None
                   else schema.moment(d["reviewed_at"], f"{where}.reviewed_at"))
    claim_id = schema.entity_id(d["id"], f"{where}.id")
    if status in (ClaimStatus.DRAFT, ClaimStatus.PENDING_REVIEW) and (
            reviewer or reason or reviewed_at):
        raise BadInputError(f"a {status} claim has no reviewer, review reason or review time",
                            code="bad-review-state")
    if status is ClaimStatus.REJECTED and not (reviewer and reason):
        raise BadInputError("a rejected claim names its reviewer and the reason",
                            code="reason-required")
    if status is ClaimStatus.APPROVED:
        # Due process: approval elsewhere is not approval here. The claim waits for a
        # reviewer of this instance; what the other one decided stays on the record.
        when = f" at {rfc3339(reviewed_at)}" if reviewed_at else ""
        notes[claim_id] = (f"approved on the exporting instance by "
                           f"{reviewer or 'an unnamed reviewer'}{when}"
                           + (f" ({reason})" if reason else "")
                           + "; arrives pending review")
        status, reviewer, reason, reviewed_at = ClaimStatus.PENDING_REVIEW, None, None, None
    return Claim(
        id=claim_id, salt=_salt(d.get("salt"), where), statement=statement,
        subject_kind=subject[0], subject_id=subject[1], object_kind=obj[0], object_id=obj[1],
        role=v.get("role"), valid_from=v.get("valid_from"), valid_to=v.get("valid_to"),
        sources=v["sources"], confidence=v["confidence"], comment=v.get("comment"),
        status=status, author=author or "", reviewer=reviewer, review_reason=reason,
        reviewed_at=reviewed_at, created_at=_PLACEHOLDER, updated_at=_PLACEHOLDER)


def _perpetrator(value: Any, path: str) -> Perpetrator:
    """The perpetrator as an act records it: a unit or a person with the claim that names
    them (``*_committed_act``, checked against the claims on import), or unknown."""
    if value is None:
        return Perpetrator(PerpetratorKind.UNKNOWN)
    keys = ("kind", "unit_id", "person_id", "claim_id", "description")
    d = schema.fields(value, path, keys, ("kind",))
    kind = schema.enum(d["kind"], f"{path}.kind", PerpetratorKind,
                       [k.value for k in PerpetratorKind])
    ids = {k: schema.optional_id(d.get(k), f"{path}.{k}")
           for k in ("unit_id", "person_id", "claim_id")}
    wanted = {PerpetratorKind.UNIT: {"unit_id", "claim_id"},
              PerpetratorKind.PERSON: {"person_id", "claim_id"},
              PerpetratorKind.UNKNOWN: set()}[kind]
    if {k for k, v in ids.items() if v is not None} != wanted:
        raise BadInputError(
            f"{path}: a {kind} perpetrator names "
            + (" and ".join(sorted(wanted)) if wanted else "no unit, person or claim"),
            code="perpetrator-mismatch")
    return Perpetrator(kind, ids["unit_id"], ids["person_id"], ids["claim_id"],
                       schema.optional_text(d.get("description"), f"{path}.description",
                                            limit=2000))


def _act(data: Any, where: str) -> Act:
    d = schema.fields(data, where, (*schema.ACT_FIELDS, "id", "salt"), ("id",))
    v = schema.act_input(_pick(d, (k for k in schema.ACT_FIELDS if k != "perpetrator")))
    return Act(id=schema.entity_id(d["id"], f"{where}.id"), salt=_salt(d.get("salt"), where),
               incident_id=v["incident_id"], type=v["type"],
               description=v.get("description", ""), victim=v.get("victim"),
               perpetrator=_perpetrator(d.get("perpetrator"), f"{where}.perpetrator"),
               evidence=v.get("evidence", ()), created_at=_PLACEHOLDER,
               updated_at=_PLACEHOLDER)


def _case(data: Any, where: str) -> Case:
    d = schema.fields(data, where, (*schema.CASE_FIELDS, "id", "salt"), ("id",))
    v = schema.case_input(_pick(d, schema.CASE_FIELDS))
    return Case(id=schema.entity_id(d["id"], f"{where}.id"), salt=_salt(d.get("salt"), where),
                title=v["title"], recipient=v["recipient"], description=v.get("description"),
                incident_ids=v.get("incidents", ()), claim_ids=v.get("claims", ()),
                items=v.get("items", ()), created_at=_PLACEHOLDER, updated_at=_PLACEHOLDER)


def _section(doc: Mapping[str, Any], name: str, parse: Callable[[Any, str], R]) -> list[R]:
    records = doc.get(name)
    if records is None:
        return []
    if not isinstance(records, list):
        raise BadInputError(f"{name}: must be a list", code="bad-field")
    out: list[R] = []
    seen: set[Any] = set()
    for i, record in enumerate(records):
        key = record.get("code" if name == "vocabulary" else "id") if isinstance(
            record, Mapping) else None
        label = f"{name}[{i}]" + (f" ({str(key)[:64]})" if isinstance(key, str) else "")
        with at(label):
            parsed = parse(record, _SINGULAR[name])
        ident = parsed[0].code if isinstance(parsed, tuple) else getattr(parsed, "id", None)
        if ident in seen:
            raise BadInputError(f"{label}: {ident} appears twice in {name}",
                                code="duplicate-id")
        seen.add(ident)
        out.append(parsed)
    return out


def parse_document(doc: Any) -> Plan:
    """Check a whole document; raises BadInputError (``not-a-catalogue``,
    ``unsupported-version``, the schema codes, ``duplicate-id`` …) or ConflictError
    ``unit-cycle`` for a unit that is its own parent."""
    d = schema.fields(doc, "document", TOP_FIELDS, ("format", "version"))
    if d["format"] != FORMAT:
        raise BadInputError(f"not a Sprava catalogue export (format {str(d['format'])[:50]!r})",
                            code="not-a-catalogue", hint=f"expected format {FORMAT!r}")
    if isinstance(d["version"], bool) or d["version"] != VERSION:
        raise BadInputError(f"catalogue format version {str(d['version'])[:20]} is not "
                            f"supported", code="unsupported-version",
                            hint=f"this Sprava reads version {VERSION}")
    if d.get("includes_persons") is not None:
        schema.boolean(d["includes_persons"], "includes_persons")
    exported = d.get("exported_at")
    plan = Plan(origin=schema.optional_text(d.get("origin"), "origin", limit=200),
                exported_at=None if exported is None
                else rfc3339(schema.moment(exported, "exported_at")))
    plan.terms = _section(d, "vocabulary", _term)
    plan.incidents = _section(d, "incidents", _incident)
    plan.units = _section(d, "units", _unit)
    plan.persons = _section(d, "persons", _person)
    plan.claims = _section(d, "claims", lambda r, w: _claim(r, w, plan.review_notes))
    plan.acts = _section(d, "acts", _act)
    plan.cases = _section(d, "cases", _case)
    return plan
