"""What each record contributes to the index: its searchable text, what a hit shows, and
the values filters compare. Built from the rows as they are now, so that building a
record twice gives the same document (the indexer relies on that).

Only what the data holds is indexed, and only where its readers may see it:

* incident: title, description, place name and admin area, violation types (codes and
  their labels in every language);
* act: its type, description, victim pseudonym and the perpetrator's description, with
  its incident's title and place (never the name of a person it is attributed to);
* unit: every name, type, area of operation, notes;
* person (restricted): name, rank, role, identifiers seen in evidence, notes;
* claim: the statement, its subject and object as named in the catalogue, role, comment,
  period; restricted when its subject or object is a person;
* item: every name it arrived under and the normalised metadata found in it (camera,
  lens, software, serial, capture date, media type);
* redacted copy (for readers of redacted copies only): nothing but that it is a redacted
  copy and its media type. The item API shows such readers no file names and no
  metadata of the original, and a search on them would tell what the API withholds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from sprava.backends.db.catalogue_tables import act as act_table
from sprava.backends.db.catalogue_tables import vocabulary_term
from sprava.backends.db.tables import analysis, derived_item, item, item_name
from sprava.catalogue import acts, claims, incidents, persons, units
from sprava.catalogue.vocabulary import shipped_terms
from sprava.domain.catalogue import (
    Act,
    Claim,
    Effect,
    EntityKind,
    Incident,
    PerpetratorKind,
    Person,
    Unit,
    claim_effect,
)
from sprava.search import text

DOC_VERSION = 1
FULL, REDACTED = "full", "redacted"
REDACTION = "redaction"  # the derived_item kind of a redacted copy
_BODY = 4000  # characters of body kept for snippets
_TITLE = 500
_LANGS = ("en", "be", "ru", "uk")  # the order names are picked in for a title
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_METADATA_FIELDS = ("camera_make", "camera_model", "lens", "software", "camera_serial")


@dataclass(frozen=True)
class Doc:
    """One row of ``search_doc`` as it should be (its id aside: see :func:`doc_id`)."""

    kind: str
    ref: str
    audience: str
    title: str
    body: str
    head: str
    folded: str
    facets: str
    at_from: datetime | None = None
    at_to: datetime | None = None
    persons: str | None = None

    def row(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "audience": self.audience,
                "title": self.title, "body": self.body, "head": self.head,
                "folded": self.folded, "facets": self.facets, "at_from": self.at_from,
                "at_to": self.at_to, "persons": self.persons}


# --- ids: the order of hits --------------------------------------------------------------

# Kinds in alphabetical order; the two audiences of items are never searched together.
_ORDER = {("act", FULL): 0, ("claim", FULL): 1, ("incident", FULL): 2, ("item", FULL): 3,
          ("item", REDACTED): 4, ("person", FULL): 5, ("unit", FULL): 6}
_REF_BITS = 56
_HEX = frozenset("0123456789abcdef")


def doc_id(kind: str, audience: str, ref: str) -> int:
    """The row id a document wants: its kind's place in alphabetical order in the top
    bits, then the first 56 bits of ``ref`` (UUIDs and digests are hex, so the id orders
    rows exactly as (kind, ref) does). The index hands out matches in id order, which
    makes "then by kind, then by id" free. Two refs sharing their first 14 hex digits
    (about one pair in 10^5 at a million records) take the next free id instead."""
    digits = ref.replace("-", "").lower()
    if len(digits) < 14 or not _HEX.issuperset(digits):
        digits = hashlib.sha256(ref.encode("utf-8", "surrogatepass")).hexdigest()
    return (_ORDER[(kind, audience)] << _REF_BITS) | int(digits[:14], 16)


# --- facets: filter values as index tokens -----------------------------------------------


def _hashed(tag: str, value: str) -> str:
    return f"f{tag}{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:24]}"


def violation_facet(code: str) -> str:
    return _hashed("v", code)


def unit_facet(unit_id: str) -> str:
    return _hashed("u", unit_id)


def actor_facet(actor: str) -> str:
    return _hashed("a", actor)


def place_facet(key: str) -> str:
    return "fp" + key


def kind_facet(kind: str) -> str:
    return "fk" + kind


# Tokens every record has, and tokens only a few have. A search narrows to a large set
# by leaving out a small one ("not redacted", "not restricted"): an index walks the
# short list, where a condition on the long one would walk most of the index.
EVERY = "fe"
REDACTED_MARK = "fzredacted"  # a redacted copy, for readers of redacted copies
RESTRICTED = "fr"  # shows a person: a person, or a claim about one
LONG = "fl"  # spans more than MONTHS_SPAN months: has year tokens only


def status_facet(status: str) -> str:
    return "fs" + status.replace("_", "")


def confidence_facet(confidence: str) -> str:
    return "fc" + confidence


FIRST_YEAR, LAST_YEAR = 1900, 2100  # time tokens are clamped to these years
MONTHS_SPAN = 24


def _clamp(moment: datetime) -> tuple[int, int]:
    if moment.year < FIRST_YEAR:
        return FIRST_YEAR, 1
    if moment.year > LAST_YEAR:
        return LAST_YEAR, 12
    return moment.year, moment.month


def year_facet(year: int) -> str:
    return f"fy{year:04d}"


def month_facet(year: int, month: int) -> str:
    return f"fm{year:04d}{month:02d}"


def time_facets(start: datetime | None, end: datetime | None) -> list[str]:
    """Tokens of every year (and, for spans of up to two years, every month) a record's
    time range touches: a time filter finds candidates through them, then compares."""
    if start is None or end is None:
        return []
    (y0, m0), (y1, m1) = _clamp(start.astimezone(UTC)), _clamp(end.astimezone(UTC))
    out = [year_facet(y) for y in range(y0, y1 + 1)]
    months = (y1 - y0) * 12 + (m1 - m0) + 1
    if months > MONTHS_SPAN:
        out.append(LONG)
    else:
        out += [month_facet(y0 + (m0 - 1 + i) // 12, (m0 - 1 + i) % 12 + 1)
                for i in range(months)]
    return out


def _place_facets(*names: str | None) -> list[str]:
    return [place_facet(k) for name in names if name for k in text.coarse_keys(name)]


def _fold(*parts: str | None) -> str:
    seen: dict[str, None] = {}
    for part in parts:
        if part:
            for key in text.index_keys(part):
                seen.setdefault(key, None)
    return " ".join(seen)


def _join(parts: Iterable[str | None], sep: str = " · ") -> str:
    return sep.join(p for p in parts if p)


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _date(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).date().isoformat()


def _doc(kind: str, ref: str, *, title: str, body: str, head: Iterable[str | None],
         text: Iterable[str | None], facets: Sequence[str] = (), audience: str = FULL,
         restricted: bool = False, status: str | None = None, confidence: str | None = None,
         at_from: datetime | None = None, at_to: datetime | None = None,
         persons: str | None = None) -> Doc:
    head_keys = _fold(*head)
    seen = set(head_keys.split())
    body_keys = " ".join(k for k in _fold(*text).split() if k not in seen)
    tokens = [EVERY, kind_facet(kind), *([REDACTED_MARK] if audience == REDACTED else []),
              *([RESTRICTED] if restricted else []),
              *([status_facet(status)] if status else []),
              *([confidence_facet(confidence)] if confidence else []),
              *time_facets(at_from, at_to), *facets]
    return Doc(kind=kind, ref=ref, audience=audience, title=_clip(title, _TITLE),
               body=_clip(body, _BODY), head=head_keys, folded=body_keys,
               facets=" ".join(dict.fromkeys(tokens)), at_from=at_from, at_to=at_to,
               persons=persons)


# --- the vocabulary ----------------------------------------------------------------------


def _labels(conn: Connection) -> dict[str, dict[str, str]]:
    """Violation-type labels by code: shipped, then this instance's own."""
    out = {t.code: dict(t.labels) for t in shipped_terms()}
    for code, labels in conn.execute(select(vocabulary_term.c.code, vocabulary_term.c.labels)):
        try:
            out[code] = dict(json.loads(labels))
        except (ValueError, TypeError):
            out[code] = {}
    return out


def _label(labels: Mapping[str, Mapping[str, str]], code: str) -> str:
    own = labels.get(code, {})
    return own.get("en") or next(iter(own.values()), code)


def _term_text(labels: Mapping[str, Mapping[str, str]], codes: Iterable[str]) -> str:
    parts: list[str] = []
    for code in codes:
        parts.append(code.replace("-", " "))
        parts.extend(labels.get(code, {}).values())
    return " ".join(parts)


# --- catalogue records -------------------------------------------------------------------


def unit_title(u: Unit) -> str:
    for lang in _LANGS:
        if u.names.get(lang):
            return u.names[lang]
    return next(iter(u.names.values()), u.type)


def _effective_unit(a: Act, attributions: Mapping[str, Claim]) -> str | None:
    """The unit an act is attributed to, while the attribution counts (a unit's claim
    counts as reported while it awaits review); None after a rejection or withdrawal."""
    p = a.perpetrator
    if p.kind is not PerpetratorKind.UNIT or p.unit_id is None or p.claim_id is None:
        return None
    c = attributions.get(p.claim_id)
    if c is None or claim_effect(c.statement, c.status) is Effect.NONE:
        return None
    return p.unit_id


def _incident_doc(inc: Incident, labels: Mapping[str, Mapping[str, str]],
                  units_of_acts: Iterable[str]) -> Doc:
    place = _join([inc.place.name, inc.place.admin_area], ", ")
    return _doc(
        "incident", inc.id, title=inc.title,
        body=_join([place, _date(inc.start), inc.description]),
        head=[inc.title, inc.place.name, inc.place.admin_area],
        text=[inc.description, _term_text(labels, inc.violation_types)],
        facets=[*_place_facets(inc.place.name, inc.place.admin_area),
                *(violation_facet(c) for c in inc.violation_types),
                *(unit_facet(u) for u in sorted(set(units_of_acts)))],
        at_from=inc.start, at_to=inc.start, status=str(inc.status))


def _act_doc(a: Act, inc: Incident | None, labels: Mapping[str, Mapping[str, str]],
             unit_id: str | None) -> Doc:
    victim = a.victim.pseudonym if a.victim is not None else None
    label = _label(labels, a.type)
    return _doc(
        "act", a.id, title=_join([label, inc.title if inc else None], " — "),
        body=_join([a.description, victim and f"victim: {victim}",
                    a.perpetrator.description]),
        head=[_term_text(labels, [a.type]), inc.title if inc else None],
        text=[a.description, victim, a.perpetrator.description,
              inc.place.name if inc else None, inc.place.admin_area if inc else None],
        facets=[*(_place_facets(inc.place.name, inc.place.admin_area) if inc else []),
                violation_facet(a.type),
                *(violation_facet(c) for c in (inc.violation_types if inc else ())),
                *([unit_facet(unit_id)] if unit_id else [])],
        at_from=inc.start if inc else None, at_to=inc.start if inc else None)


def _unit_doc(u: Unit) -> Doc:
    names = list(dict.fromkeys(u.names.values()))
    return _doc("unit", u.id, title=unit_title(u),
                body=_join([" / ".join(names), u.type, u.area_of_operation, u.notes]),
                head=names, text=[u.type, u.area_of_operation, u.notes],
                facets=[unit_facet(u.id)])


def _person_doc(p: Person) -> Doc:
    ids = " ".join(f"{i.kind.value.replace('_', ' ')} {i.value}" for i in p.identifiers)
    return _doc("person", p.id, title=p.name,
                body=_join([p.rank, p.role, ids, p.notes]),
                head=[p.name], text=[p.rank, p.role, ids, p.notes],
                restricted=True, persons=p.id)


def _period(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """A claim's validity as a time range; open ends reach the earliest or latest time."""
    if start is None and end is None:
        return None, None
    low = _EARLIEST if start is None else _partial(start, first=True)
    high = _LATEST if end is None else _partial(end, first=False)
    return low, high


def _partial(value: str, *, first: bool) -> datetime:
    parts = [int(p) for p in value.split("-")]
    year, month, day = [*parts, 0, 0][:3]
    if first:
        return datetime(year, month or 1, day or 1, tzinfo=UTC)
    if not month:
        return datetime(year, 12, 31, 23, 59, 59, tzinfo=UTC)
    if not day:
        nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return datetime.fromtimestamp(nxt.timestamp() - 1, UTC)
    return datetime(year, month, day, 23, 59, 59, tzinfo=UTC)


@dataclass(frozen=True)
class _Names:
    """Display names of the entities claims refer to."""

    units: Mapping[str, Unit]
    persons: Mapping[str, Person]
    incidents: Mapping[str, Incident]
    acts: Mapping[str, Act]
    act_incidents: Mapping[str, Incident]
    labels: Mapping[str, Mapping[str, str]]

    def of(self, kind: EntityKind, entity_id: str) -> str:
        if kind is EntityKind.UNIT and entity_id in self.units:
            return unit_title(self.units[entity_id])
        if kind is EntityKind.PERSON and entity_id in self.persons:
            return self.persons[entity_id].name
        if kind is EntityKind.INCIDENT and entity_id in self.incidents:
            return self.incidents[entity_id].title
        if kind is EntityKind.ACT and entity_id in self.acts:
            a = self.acts[entity_id]
            inc = self.act_incidents.get(a.incident_id)
            return _join([_label(self.labels, a.type), inc.title if inc else None], " — ")
        return f"{kind.value} {entity_id}"

    def every(self, kind: EntityKind, entity_id: str) -> str:
        """Every name of the entity, for the searchable text (units have several)."""
        if kind is EntityKind.UNIT and entity_id in self.units:
            return " ".join(self.units[entity_id].names.values())
        return self.of(kind, entity_id)


def _claim_doc(c: Claim, names: _Names) -> Doc:
    statement = c.statement.replace("_", " ")
    subject, obj = names.of(c.subject_kind, c.subject_id), names.of(c.object_kind, c.object_id)
    shown = sorted({i for k, i in ((c.subject_kind, c.subject_id), (c.object_kind, c.object_id))
                    if k is EntityKind.PERSON})
    at_from, at_to = _period(c.valid_from, c.valid_to)
    period = _join([c.valid_from, c.valid_to], " – ") if (c.valid_from or c.valid_to) else None
    return _doc(
        "claim", c.id, title=f"{subject} — {statement} — {obj}",
        body=_join([c.role, period, c.comment, f"confidence {c.confidence}",
                    str(c.status).replace("_", " ")]),
        head=[statement, names.every(c.subject_kind, c.subject_id),
              names.every(c.object_kind, c.object_id)],
        text=[c.role, c.comment, c.valid_from, c.valid_to],
        facets=[unit_facet(i) for k, i in ((c.subject_kind, c.subject_id),
                                           (c.object_kind, c.object_id))
                if k is EntityKind.UNIT],
        restricted=bool(shown), persons=" ".join(shown) or None,
        at_from=at_from, at_to=at_to, status=str(c.status), confidence=str(c.confidence))


def catalogue_docs(conn: Connection, wanted: Mapping[str, Iterable[str]]
                   ) -> dict[tuple[str, str], list[Doc]]:
    """The documents of these records by (kind, id); a record that no longer exists maps
    to no document."""
    ids = {kind: sorted(set(values)) for kind, values in wanted.items()}
    out: dict[tuple[str, str], list[Doc]] = {
        (kind, i): [] for kind, values in ids.items() for i in values}
    labels = _labels(conn)

    found_acts = acts.load(conn, ids.get("act", []))
    found_incidents = incidents.load(conn, ids.get("incident", []))
    found_claims = claims.load(conn, ids.get("claim", []))
    # what the documents refer to
    act_ids = set(found_acts)
    for c in found_claims.values():
        if c.object_kind is EntityKind.ACT:
            act_ids.add(c.object_id)
    all_acts = {**found_acts, **acts.load(conn, sorted(act_ids - set(found_acts)))}
    incident_ids = {a.incident_id for a in all_acts.values()} | {
        c.object_id for c in found_claims.values() if c.object_kind is EntityKind.INCIDENT}
    all_incidents = {**found_incidents,
                     **incidents.load(conn, sorted(incident_ids - set(found_incidents)))}
    unit_ids = set(ids.get("unit", [])) | {
        i for c in found_claims.values()
        for k, i in ((c.subject_kind, c.subject_id), (c.object_kind, c.object_id))
        if k is EntityKind.UNIT}
    person_ids = set(ids.get("person", [])) | {
        i for c in found_claims.values()
        for k, i in ((c.subject_kind, c.subject_id), (c.object_kind, c.object_id))
        if k is EntityKind.PERSON}
    all_units = units.load(conn, sorted(unit_ids))
    all_persons = persons.load(conn, sorted(person_ids))

    # units an act is attributed to, and the acts of each incident indexed here
    incident_acts: dict[str, list[Act]] = {}
    if found_incidents:
        more = _acts_of_incidents(conn, sorted(found_incidents))
        all_acts.update(more)
        for a in all_acts.values():
            if a.incident_id in found_incidents:
                incident_acts.setdefault(a.incident_id, []).append(a)
    perpetrator_claims = claims.load(conn, sorted({
        a.perpetrator.claim_id for a in all_acts.values() if a.perpetrator.claim_id}))

    for inc in found_incidents.values():
        attributed = [unit_id for a in incident_acts.get(inc.id, [])
                      if (unit_id := _effective_unit(a, perpetrator_claims)) is not None]
        out[("incident", inc.id)] = [_incident_doc(inc, labels, attributed)]
    for a in found_acts.values():
        out[("act", a.id)] = [_act_doc(a, all_incidents.get(a.incident_id), labels,
                                       _effective_unit(a, perpetrator_claims))]
    for u in all_units.values():
        if ("unit", u.id) in out:
            out[("unit", u.id)] = [_unit_doc(u)]
    for p in all_persons.values():
        if ("person", p.id) in out:
            out[("person", p.id)] = [_person_doc(p)]
    names = _Names(all_units, all_persons, all_incidents, all_acts, all_incidents, labels)
    for c in found_claims.values():
        out[("claim", c.id)] = [_claim_doc(c, names)]
    return out


def _acts_of_incidents(conn: Connection, incident_ids: Sequence[str]) -> dict[str, Act]:
    found: list[str] = []
    for start in range(0, len(incident_ids), 500):
        part = incident_ids[start:start + 500]
        found.extend(conn.execute(select(act_table.c.id)
                                  .where(act_table.c.incident_id.in_(part))).scalars())
    return acts.load(conn, found)


# --- items -------------------------------------------------------------------------------


def _metadata_text(result: str | None) -> tuple[str, list[str]]:
    """Searchable text and a short summary from a metadata analysis result."""
    if not result:
        return "", []
    try:
        fields = json.loads(result).get("fields") or {}
    except (ValueError, AttributeError):
        return "", []
    if not isinstance(fields, dict):
        return "", []
    values = [str(fields[k]) for k in _METADATA_FIELDS if isinstance(fields.get(k), str | int)]
    captured = fields.get("captured_at")
    if isinstance(captured, str):
        values.append(captured[:10])
    return " ".join(values), values


def item_docs(conn: Connection, shas: Iterable[str]) -> dict[tuple[str, str], list[Doc]]:
    """The documents of these items by ("item", sha256): the item as it is (if it arrived
    under a name) and, for a redacted copy, the copy as its readers may see it."""
    wanted = sorted(set(shas))
    out: dict[tuple[str, str], list[Doc]] = {("item", s): [] for s in wanted}
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        rows = {r.sha256: r for r in conn.execute(
            select(item.c.sha256, item.c.media_type, item.c.first_seen)
            .where(item.c.sha256.in_(part)))}
        names: dict[str, list[tuple[str, str | None]]] = {}
        for sha, name, actor in conn.execute(
                select(item_name.c.item_sha256, item_name.c.name, item_name.c.actor)
                .where(item_name.c.item_sha256.in_(part)).order_by(item_name.c.id)):
            names.setdefault(sha, []).append((name, actor))
        meta: dict[str, str | None] = {sha: result for sha, result in conn.execute(
            select(analysis.c.item_sha256, analysis.c.result)
            .where(analysis.c.item_sha256.in_(part), analysis.c.step == "metadata",
                   analysis.c.status == "done"))}
        redacted = set(conn.execute(
            select(derived_item.c.sha256).where(derived_item.c.sha256.in_(part),
                                                derived_item.c.kind == REDACTION)).scalars())
        for sha, row in rows.items():
            docs: list[Doc] = []
            own = names.get(sha, [])
            if own:
                docs.append(_item_doc(sha, row.media_type, row.first_seen, own, meta.get(sha)))
            if sha in redacted:
                docs.append(_redacted_doc(sha, row.media_type, row.first_seen))
            out[("item", sha)] = docs
    return out


def _media_words(media_type: str) -> str:
    return media_type.replace("/", " ").replace("-", " ").replace("+", " ")


def _item_doc(sha: str, media_type: str, first_seen: datetime,
              names: Sequence[tuple[str, str | None]], metadata: str | None) -> Doc:
    distinct = list(dict.fromkeys(n for n, _ in names))
    meta_text, summary = _metadata_text(metadata)
    actors = sorted({a for _, a in names if a is not None})
    return _doc("item", sha, title=distinct[0],
                body=_join([*distinct[1:6], *summary, media_type, _date(first_seen)]),
                head=distinct, text=[meta_text, _media_words(media_type)],
                facets=[actor_facet(a) for a in actors],
                at_from=first_seen, at_to=first_seen)


def _redacted_doc(sha: str, media_type: str, first_seen: datetime) -> Doc:
    return _doc("item", sha, audience=REDACTED, title=f"Redacted copy ({media_type})",
                body=_join(["redacted copy", media_type, _date(first_seen)]),
                head=["redacted copy"], text=[_media_words(media_type)],
                at_from=first_seen, at_to=first_seen)
