"""Strict input schemas: a JSON-shaped dict in, checked and normalised values out.

Every parser first refuses red-line fields (:func:`sprava.domain.catalogue.refuse_red_lines`),
then unknown fields, then checks each value. Text is NFC-normalised and stripped, and may
not carry control characters other than newlines and tabs. Nothing here touches the
database: whether an id, an item or a vocabulary code exists is the services' to check.

Errors are BadInputError with codes ``red-line-field``, ``unknown-field``,
``missing-field``, ``bad-field`` and a few specific ones named where they are raised.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sprava.domain.catalogue import (
    STATEMENTS,
    Confidence,
    Consent,
    EntityKind,
    Identifier,
    IdentifierKind,
    IncidentStatus,
    PerpetratorKind,
    Place,
    Victim,
    check_age_band,
    refuse_red_lines,
)
from sprava.domain.digest import Digest
from sprava.errors import BadInputError

E = TypeVar("E")

SHORT = 500
LONG = 100_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_CODE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def _bad(path: str, what: str, code: str = "bad-field") -> BadInputError:
    return BadInputError(f"{path}: {what}", code=code)


def fields(data: Any, where: str, allowed: Collection[str],
           required: Collection[str] = ()) -> Mapping[str, Any]:
    """Check the shape of one object: red lines, then unknown fields, then missing ones."""
    if not isinstance(data, Mapping):
        raise _bad(where, "must be an object")
    refuse_red_lines(data, where)
    for key in data:
        if not isinstance(key, str):
            raise _bad(where, f"field names must be text, not {key!r}")
    unknown = sorted(k for k in data if k not in allowed)
    if unknown:
        path = f"{where}.{unknown[0]}" if where else unknown[0]
        raise BadInputError(f"unknown field {path!r}", code="unknown-field",
                            hint=f"{where or 'this object'} takes: {', '.join(sorted(allowed))}")
    missing = sorted(k for k in required if data.get(k) is None)
    if missing:
        path = f"{where}.{missing[0]}" if where else missing[0]
        raise BadInputError(f"{path!r} is required", code="missing-field")
    return data


def text(value: Any, path: str, *, limit: int = SHORT, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise _bad(path, "must be text")
    result = unicodedata.normalize("NFC", value).strip()
    if not result:
        raise _bad(path, "must not be empty", "empty-field")
    if len(result) > limit:
        raise _bad(path, f"is longer than {limit} characters")
    if _CONTROL.search(result) or (not multiline and ("\n" in result or "\t" in result)):
        raise _bad(path, "holds control characters")
    return result


def optional_text(value: Any, path: str, *, limit: int = SHORT,
                  multiline: bool = False) -> str | None:
    """Text, or None for null or an empty string."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return text(value, path, limit=limit, multiline=multiline)


def entity_id(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _UUID.fullmatch(value.strip().lower()):
        raise _bad(path, "must be an id (a UUID)", "bad-id")
    return value.strip().lower()


def optional_id(value: Any, path: str) -> str | None:
    return None if value is None else entity_id(value, path)


def id_list(value: Any, path: str) -> tuple[str, ...]:
    return tuple(sorted({entity_id(v, f"{path}[{i}]") for i, v in enumerate(_list(value, path))}))


def _list(value: Any, path: str, limit: int = 10_000) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _bad(path, "must be a list")
    if len(value) > limit:
        raise _bad(path, f"holds more than {limit} entries")
    return list(value)


def digests(value: Any, path: str) -> tuple[str, ...]:
    """Item digests (``sha256:<hex>`` or hex), de-duplicated and sorted."""
    out = set()
    for i, v in enumerate(_list(value, path)):
        if not isinstance(v, str):
            raise _bad(f"{path}[{i}]", "must be an item digest")
        out.add(Digest.parse(v).hex)
    return tuple(sorted(out))


def enum(value: Any, path: str, kind: type[E], choices: Collection[str]) -> E:
    if not isinstance(value, str) or value not in choices:
        raise BadInputError(f"{path}: {value!r} is not one of {', '.join(choices)}",
                            code="bad-choice")
    return kind(value)  # type: ignore[call-arg]


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(path, "must be true or false")
    return value


def moment(value: Any, path: str) -> datetime:
    """An RFC 3339 time with a zone (or an aware datetime), as UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _bad(path, "is not an RFC 3339 time", "bad-time") from None
    if not isinstance(value, datetime):
        raise _bad(path, "must be a time", "bad-time")
    if value.tzinfo is None:
        raise _bad(path, "must carry a time zone (e.g. 2020-08-10T22:40:00+03:00)", "bad-time")
    return value.astimezone(UTC)


def partial_date(value: Any, path: str) -> str | None:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``: sources often date things only so far."""
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    match = _PARTIAL_DATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _bad(path, "must be a date: YYYY, YYYY-MM or YYYY-MM-DD", "bad-date")
    year, month, day = (int(g) if g else 1 for g in match.groups())
    try:
        date(year, month, day)
    except ValueError:
        raise _bad(path, "is not a calendar date", "bad-date") from None
    return match.group(0)


def check_period(start: str | None, end: str | None, path: str) -> None:
    """Refuse an end before the start, comparing only as far as both are known."""
    if start and end:
        n = min(len(start), len(end))
        if start[:n] > end[:n]:
            raise _bad(path, f"ends ({end}) before it starts ({start})", "bad-period")


def number(value: Any, path: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(path, "must be a number")
    result = float(value)
    if not math.isfinite(result) or not low <= result <= high:
        raise _bad(path, f"must be between {low:g} and {high:g}")
    return result


def names(value: Any, path: str) -> dict[str, str]:
    """A name in several languages: ``{"be": "…", "ru": "…", "en": "…"}``, at least one."""
    if not isinstance(value, Mapping) or not value:
        raise _bad(path, "must be an object of language tag → name, with at least one")
    refuse_red_lines(value, path)
    out = {}
    for lang, name in value.items():
        if not isinstance(lang, str) or not _LANG.fullmatch(lang):
            raise _bad(path, f"{lang!r} is not a language tag (be, ru, uk, en, be-Latn …)",
                       "bad-language")
        out[lang] = text(name, f"{path}.{lang}")
    return dict(sorted(out.items()))


def vocabulary_code(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _CODE.fullmatch(value) or len(value) > 64:
        raise _bad(path, "must be a code such as 'arbitrary-detention' (a-z, 0-9, hyphens)",
                   "bad-code")
    return value


def _pick(data: Mapping[str, Any], parsers: Mapping[str, Callable[[Any, str], Any]],
          where: str) -> dict[str, Any]:
    return {k: parsers[k](v, f"{where}.{k}" if where else k) for k, v in data.items()}


# --- incidents and acts ------------------------------------------------------------------


def place(value: Any, path: str) -> Place:
    data = fields(value, path, ("name", "admin_area", "lat", "lon", "precision_m"), ("name",))
    lat, lon, precision = data.get("lat"), data.get("lon"), data.get("precision_m")
    if (lat is None) != (lon is None):
        raise _bad(path, "give both lat and lon, or neither", "bad-coordinates")
    if lat is not None and precision is None:
        raise _bad(path, "coordinates need precision_m: how far off the true place may be "
                   "(in metres)", "precision-required")
    return Place(
        name=text(data["name"], f"{path}.name"),
        admin_area=optional_text(data.get("admin_area"), f"{path}.admin_area"),
        lat=None if lat is None else number(lat, f"{path}.lat", -90, 90),
        lon=None if lon is None else number(lon, f"{path}.lon", -180, 180),
        precision_m=None if precision is None
        else number(precision, f"{path}.precision_m", 0.01, 1e7))


INCIDENT_FIELDS: Mapping[str, Callable[[Any, str], Any]] = {
    "title": text,
    "description": lambda v, p: optional_text(v, p, limit=LONG, multiline=True) or "",
    "start": moment,
    "end": lambda v, p: None if v is None else moment(v, p),
    "place": place,
    "violation_types": lambda v, p: tuple(sorted(
        {vocabulary_code(c, f"{p}[{i}]") for i, c in enumerate(_list(v, p))})),
}


def incident_input(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Fields of an incident (all but the status, which changes by its own rule)."""
    data = fields(data, "incident", INCIDENT_FIELDS,
                  () if partial else ("title", "start", "place"))
    return _pick(data, INCIDENT_FIELDS, "incident")


def check_incident_times(start: datetime, end: datetime | None) -> None:
    if end is not None and end < start:
        raise _bad("incident.end", "is before the start", "bad-period")


def incident_status(value: Any) -> IncidentStatus:
    return enum(value, "status", IncidentStatus, [s.value for s in IncidentStatus])


def victim(value: Any, path: str) -> Victim | None:
    if value is None:
        return None
    data = fields(value, path, ("pseudonym", "age_band", "consent"), ("pseudonym",))
    consent = Consent()
    if data.get("consent") is not None:
        flags = fields(data["consent"], f"{path}.consent", Consent().state())
        consent = Consent(**{k: boolean(v, f"{path}.consent.{k}") for k, v in flags.items()})
    band = data.get("age_band") or "unknown"
    if not isinstance(band, str):
        raise _bad(f"{path}.age_band", "must be text")
    return Victim(text(data["pseudonym"], f"{path}.pseudonym", limit=200),
                  check_age_band(band.strip()), consent)


@dataclass(frozen=True)
class PerpetratorInput:
    """An act's perpetrator as given: a unit or person comes with what a claim needs."""

    kind: PerpetratorKind
    target_id: str | None = None
    description: str | None = None
    sources: tuple[str, ...] = ()
    confidence: Confidence | None = None
    comment: str | None = None


def perpetrator(value: Any, path: str) -> PerpetratorInput:
    if value is None:
        return PerpetratorInput(PerpetratorKind.UNKNOWN)
    if not isinstance(value, Mapping):
        raise _bad(path, "must be an object")
    refuse_red_lines(value, path)
    kind = enum(value.get("kind"), f"{path}.kind", PerpetratorKind,
                [k.value for k in PerpetratorKind])
    if kind is PerpetratorKind.UNKNOWN:
        data = fields(value, path, ("kind", "description"))
        return PerpetratorInput(kind, description=optional_text(
            data.get("description"), f"{path}.description", limit=2000))
    key = f"{kind.value}_id"
    data = fields(value, path, ("kind", key, "sources", "confidence", "comment"),
                  (key, "sources", "confidence"))
    return PerpetratorInput(
        kind, entity_id(data[key], f"{path}.{key}"),
        sources=nonempty_sources(data["sources"], f"{path}.sources"),
        confidence=confidence(data["confidence"], f"{path}.confidence"),
        comment=optional_text(data.get("comment"), f"{path}.comment", limit=LONG,
                              multiline=True))


ACT_FIELDS: Mapping[str, Callable[[Any, str], Any]] = {
    "incident_id": entity_id,
    "type": vocabulary_code,
    "description": lambda v, p: optional_text(v, p, limit=LONG, multiline=True) or "",
    "victim": victim,
    "perpetrator": perpetrator,
    "evidence": digests,
}


def act_input(data: Any, *, partial: bool = False) -> dict[str, Any]:
    allowed = {k: v for k, v in ACT_FIELDS.items() if not (partial and k == "incident_id")}
    data = fields(data, "act", allowed, () if partial else ("incident_id", "type"))
    return _pick(data, ACT_FIELDS, "act")


# --- units and persons -------------------------------------------------------------------

UNIT_FIELDS: Mapping[str, Callable[[Any, str], Any]] = {
    "names": names,
    "type": lambda v, p: text(v, p, limit=200),
    "parent_id": optional_id,
    "area_of_operation": lambda v, p: optional_text(v, p, limit=LONG, multiline=True),
    "notes": lambda v, p: optional_text(v, p, limit=LONG, multiline=True),
}


def unit_input(data: Any, *, partial: bool = False) -> dict[str, Any]:
    data = fields(data, "unit", UNIT_FIELDS, () if partial else ("names", "type"))
    return _pick(data, UNIT_FIELDS, "unit")


def identifiers(value: Any, path: str) -> tuple[Identifier, ...]:
    out = set()
    for i, entry in enumerate(_list(value, path, limit=200)):
        where = f"{path}[{i}]"
        data = fields(entry, where, ("kind", "value"), ("kind", "value"))
        out.add(Identifier(
            enum(data["kind"], f"{where}.kind", IdentifierKind, [k.value for k in IdentifierKind]),
            text(data["value"], f"{where}.value", limit=100)))
    return tuple(sorted(out, key=lambda i: (i.kind.value, i.value)))


PERSON_FIELDS: Mapping[str, Callable[[Any, str], Any]] = {
    "name": text,
    "rank": lambda v, p: optional_text(v, p, limit=200),
    "role": lambda v, p: optional_text(v, p, limit=200),
    "identifiers": identifiers,
    "notes": lambda v, p: optional_text(v, p, limit=LONG, multiline=True),
}


def person_input(data: Any, *, partial: bool = False) -> dict[str, Any]:
    data = fields(data, "person", PERSON_FIELDS, () if partial else ("name",))
    return _pick(data, PERSON_FIELDS, "person")


# --- claims and cases --------------------------------------------------------------------


def confidence(value: Any, path: str) -> Confidence:
    return enum(value, path, Confidence, [c.value for c in Confidence])


def nonempty_sources(value: Any, path: str) -> tuple[str, ...]:
    found = digests(value, path)
    if not found:
        raise BadInputError(f"{path}: a claim needs at least one source item",
                            code="sources-required",
                            hint="cite the items (by sha256) the statement rests on")
    return found


def reference(value: Any, path: str) -> tuple[EntityKind, str]:
    data = fields(value, path, ("kind", "id"), ("kind", "id"))
    kinds = [EntityKind.UNIT, EntityKind.PERSON, EntityKind.INCIDENT, EntityKind.ACT]
    return (enum(data["kind"], f"{path}.kind", EntityKind, [k.value for k in kinds]),
            entity_id(data["id"], f"{path}.id"))


CLAIM_EDITABLE: Mapping[str, Callable[[Any, str], Any]] = {
    "role": lambda v, p: optional_text(v, p, limit=200),
    "valid_from": partial_date,
    "valid_to": partial_date,
    "sources": nonempty_sources,
    "confidence": confidence,
    "comment": lambda v, p: optional_text(v, p, limit=LONG, multiline=True),
}
CLAIM_FIELDS: Mapping[str, Callable[[Any, str], Any]] = {
    "statement": lambda v, p: enum(v, p, str, list(STATEMENTS)),
    "subject": reference,
    "object": reference,
    **CLAIM_EDITABLE,
}


def claim_input(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """A claim's fields; on update (``partial``) only what a draft may change."""
    spec = CLAIM_EDITABLE if partial else CLAIM_FIELDS
    data = fields(data, "claim", spec,
                  () if partial else ("statement", "subject", "object", "sources", "confidence"))
    return _pick(data, spec, "claim")


def check_claim_shape(statement: str, subject: tuple[EntityKind, str],
                      obj: tuple[EntityKind, str], values: Mapping[str, Any]) -> None:
    """The subject and object are of the kinds the statement links; dates and a role only
    where the statement holds over a period or names a role."""
    rule = STATEMENTS[statement]
    if (subject[0], obj[0]) != (rule.subject, rule.object):
        raise BadInputError(
            f"{statement} links a {rule.subject} to a {rule.object}, not a {subject[0]} to a "
            f"{obj[0]}", code="statement-mismatch")
    if subject == obj:
        raise _bad("claim", "a claim cannot link something to itself", "statement-mismatch")
    if not rule.dated and (values.get("valid_from") or values.get("valid_to")):
        raise _bad("claim", f"{statement} is not dated (its object has its own time)",
                   "dates-not-applicable")
    if not rule.has_role and values.get("role"):
        raise _bad("claim.role", f"{statement} takes no role", "role-not-applicable")
    check_period(values.get("valid_from"), values.get("valid_to"), "claim")


CASE_FIELDS: Mapping[str, Callable[[Any, str], Any]] = {
    "title": text,
    "recipient": text,
    "description": lambda v, p: optional_text(v, p, limit=LONG, multiline=True),
    "incidents": id_list,
    "claims": id_list,
    "items": digests,
}


def case_input(data: Any, *, partial: bool = False) -> dict[str, Any]:
    data = fields(data, "case", CASE_FIELDS, () if partial else ("title", "recipient"))
    return _pick(data, CASE_FIELDS, "case")


TERM_FIELDS: Mapping[str, Callable[[Any, str], Any]] = {
    "code": vocabulary_code,
    "labels": names,
    "description": lambda v, p: optional_text(v, p, limit=LONG, multiline=True) or "",
}


def term_input(data: Any) -> dict[str, Any]:
    data = fields(data, "term", TERM_FIELDS, ("code", "labels"))
    return _pick(data, TERM_FIELDS, "term")


#: Every field name any catalogue input accepts (a test checks none is a red line).
ALL_FIELD_NAMES = frozenset(
    [*INCIDENT_FIELDS, *ACT_FIELDS, *UNIT_FIELDS, *PERSON_FIELDS, *CLAIM_FIELDS, *CASE_FIELDS,
     *TERM_FIELDS, "name", "admin_area", "lat", "lon", "precision_m", "pseudonym", "age_band",
     "consent", *Consent().state(), "kind", "unit_id", "person_id", "sources", "confidence",
     "comment", "id", "value"])
