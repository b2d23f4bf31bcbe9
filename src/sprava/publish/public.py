"""What the public site may say, read through an allow-list of columns, never whole records.

The site's red lines (shared/DESIGN.md) are kept here by construction, not by care:

* the publisher reads only the columns in :data:`READS`, with queries written out below;
  it never loads an incident, act, person or claim record whole, so a field added to the
  catalogue later stays out of the site until someone adds it here (a unit test pins
  the list);
* no column of a victim (pseudonym, age band, consent), of an act's description or
  evidence, of an item (digest, name, metadata, media) or of a person below commander
  level is in the list; a person's *name* is read only for a commander whose command is
  an approved claim every source of which arrived from a configured public source;
* places are read only to be coarsened (:mod:`sprava.publish.coarse`) and dates only to
  the day;
* individual incidents are described only once ``verified``; every documented incident
  is counted in the figures, by month, region and violation type.

Units are implicated in a verified incident by a claim that counts: ``unit_present_at_incident``
or ``unit_committed_act`` that is pending review (*reported*) or approved (*reviewed*);
the site tells the two apart and shows the highest confidence.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Connection, select

from sprava.backends.db.catalogue_tables import (
    act,
    claim,
    claim_source,
    incident,
    incident_violation,
    person,
    unit,
    unit_name,
    vocabulary_term,
)
from sprava.backends.db.tables import item_name, source
from sprava.catalogue._record import chunks
from sprava.catalogue.vocabulary import shipped_terms
from sprava.domain.catalogue import ClaimStatus, Confidence, IncidentStatus
from sprava.ledger import log
from sprava.publish.coarse import CoarsePlace, coarsen

#: Every column the publisher reads, by purpose. Nothing else of the catalogue or the
#: vault is read to build the site (the restricted-name check in
#: :mod:`sprava.publish.guard` reads names to make sure they are *absent*).
READS: Mapping[str, tuple[Column[Any], ...]] = {
    "figures": (incident.c.id, incident.c.start_at, incident.c.admin_area, incident.c.status,
                incident_violation.c.incident_id, incident_violation.c.code),
    "verified incidents": (incident.c.id, incident.c.title, incident.c.description,
                           incident.c.start_at, incident.c.end_at, incident.c.admin_area,
                           incident.c.lat, incident.c.lon, incident.c.precision_m),
    "acts": (act.c.id, act.c.incident_id, act.c.type),
    "claims": (claim.c.id, claim.c.statement, claim.c.subject_id, claim.c.object_id,
               claim.c.confidence, claim.c.status, claim.c.valid_from, claim.c.valid_to),
    "claim sources": (claim_source.c.claim_id, claim_source.c.item_sha256,
                      item_name.c.item_sha256, item_name.c.source_id, source.c.id,
                      source.c.name),
    "units": (unit.c.id, unit.c.type, unit.c.area_of_operation, unit_name.c.unit_id,
              unit_name.c.lang, unit_name.c.name),
    "commanders": (person.c.id, person.c.name),
    "vocabulary": (vocabulary_term.c.code, vocabulary_term.c.labels),
}

UNIT_STATEMENTS = ("unit_present_at_incident", "unit_committed_act")
COMMAND = "person_commanded_unit"
_RANK = {Confidence.LOW: 0, Confidence.MEDIUM: 1, Confidence.HIGH: 2}
STATUSES = tuple(s.value for s in IncidentStatus)


@dataclass(frozen=True)
class Link:
    """A unit tied to a verified incident: the highest confidence among the claims that
    count, and whether any of them was reviewed (approved by a second person)."""

    unit_id: str
    incident_id: str
    confidence: Confidence
    reviewed: bool


@dataclass(frozen=True)
class PublicIncident:
    id: str
    title: str
    narrative: str
    start: date
    end: date | None
    region: str | None
    place: CoarsePlace | None
    violation_types: tuple[str, ...]
    acts: tuple[tuple[str, int], ...]  # act type → how many
    links: tuple[Link, ...]


@dataclass(frozen=True)
class Commander:
    """A commander named by an approved claim sourced only to public documents."""

    name: str
    valid_from: str | None
    valid_to: str | None
    confidence: Confidence
    sources: tuple[str, ...]  # names of the public sources, never items


@dataclass(frozen=True)
class PublicUnit:
    id: str
    names: Mapping[str, str]
    type: str
    area_of_operation: str | None
    links: tuple[Link, ...]
    commanders: tuple[Commander, ...]

    def name(self, lang: str) -> str:
        for tag in (lang, "en", *sorted(self.names)):
            if tag in self.names:
                return self.names[tag]
        return self.id

    @property
    def reviewed(self) -> int:
        return sum(1 for link in self.links if link.reviewed)

    @property
    def confidence(self) -> Confidence:
        return max((link.confidence for link in self.links), key=_RANK.__getitem__)

    def by_confidence(self) -> list[tuple[Confidence, int]]:
        counts = Counter(link.confidence for link in self.links)
        return [(c, counts[c]) for c in (Confidence.HIGH, Confidence.MEDIUM, Confidence.LOW)
                if counts[c]]


@dataclass(frozen=True)
class Figures:
    """Every documented incident, counted: by status, by month and status, by region, by
    violation type."""

    total: int
    by_status: Mapping[str, int]
    months: tuple[str, ...]  # "YYYY-MM", every month from the first to the last
    by_month: Mapping[str, tuple[int, ...]]  # status → one count per month
    by_region: tuple[tuple[str | None, int], ...]
    by_violation: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Snapshot:
    """Everything the site shows, as of ledger size ``head``.

    ``persons`` holds the ids of the commanders named, for the custody record of the
    publication only: ids are never written to the site.
    """

    head: int
    precision_km: float
    figures: Figures
    incidents: tuple[PublicIncident, ...]
    units: tuple[PublicUnit, ...]
    labels: Mapping[str, Mapping[str, str]]  # violation code → language → label
    persons: tuple[str, ...] = field(default=())

    def label(self, code: str, lang: str) -> str:
        labels = self.labels.get(code, {})
        return labels.get(lang) or labels.get("en") or code


def public_sources(text: str) -> frozenset[str]:
    """The ``publish_public_sources`` setting as a set of source names."""
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def _months(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:7])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _figures(conn: Connection) -> Figures:
    rows = conn.execute(select(incident.c.id, incident.c.start_at, incident.c.admin_area,
                               incident.c.status)).all()
    codes = Counter(conn.execute(select(incident_violation.c.code).where(
        incident_violation.c.incident_id.in_(select(incident.c.id)))).scalars())
    by_status = Counter(r.status for r in rows)
    month_of = [(r.start_at.strftime("%Y-%m"), r.status) for r in rows]
    months = _months(min(m for m, _ in month_of), max(m for m, _ in month_of)) if rows else []
    per = Counter(month_of)
    regions = Counter((r.admin_area or "").strip() or None for r in rows)
    return Figures(
        total=len(rows), by_status={s: by_status[s] for s in STATUSES},
        months=tuple(months),
        by_month={s: tuple(per[(m, s)] for m in months) for s in STATUSES},
        by_region=tuple(sorted(regions.items(),
                               key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))),
        by_violation=tuple(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))))


def _links(conn: Connection, verified: Collection[str]) -> list[Link]:
    c = claim.c
    counting = (ClaimStatus.PENDING_REVIEW.value, ClaimStatus.APPROVED.value)
    rows = conn.execute(select(c.id, c.statement, c.subject_id, c.object_id, c.confidence,
                               c.status)
                        .where(c.statement.in_(UNIT_STATEMENTS), c.status.in_(counting))).all()
    act_ids = [r.object_id for r in rows if r.statement == "unit_committed_act"]
    incident_of: dict[str, str] = {}
    for part in chunks(act_ids):
        incident_of.update((r.id, r.incident_id) for r in conn.execute(
            select(act.c.id, act.c.incident_id).where(act.c.id.in_(part))))
    best: dict[tuple[str, str], tuple[Confidence, bool]] = {}
    for r in rows:
        target = r.object_id if r.statement == "unit_present_at_incident" else \
            incident_of.get(r.object_id)
        if target is None or target not in verified:
            continue
        key = (r.subject_id, target)
        confidence = Confidence(r.confidence)
        reviewed = r.status == ClaimStatus.APPROVED.value
        if key in best:
            had, was = best[key]
            confidence = max(had, confidence, key=_RANK.__getitem__)
            reviewed = reviewed or was
        best[key] = (confidence, reviewed)
    return [Link(u, i, conf, rev) for (u, i), (conf, rev) in sorted(best.items())]


def _public_claims(conn: Connection, claim_ids: Sequence[str],
                   public: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """The claims whose every source arrived (at least once) from a public source, with
    the names of those sources."""
    found: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for part in chunks(list(claim_ids)):
        query = (select(claim_source.c.claim_id, claim_source.c.item_sha256, source.c.name)
                 .select_from(claim_source
                              .outerjoin(item_name,
                                         item_name.c.item_sha256 == claim_source.c.item_sha256)
                              .outerjoin(source, source.c.id == item_name.c.source_id))
                 .where(claim_source.c.claim_id.in_(part)))
        for claim_id, sha, name in conn.execute(query):
            names = found[claim_id].setdefault(sha, set())
            if name is not None and name in public:
                names.add(name)
    return {claim_id: tuple(sorted(set().union(*items.values())))
            for claim_id, items in found.items()
            if items and all(items.values())}


def _commanders(conn: Connection, unit_ids: Collection[str], public: frozenset[str]
                ) -> tuple[dict[str, list[Commander]], list[str]]:
    if not public or not unit_ids:
        return {}, []
    c = claim.c
    rows: list[Any] = []
    for part in chunks(sorted(unit_ids)):
        rows += conn.execute(select(c.id, c.subject_id, c.object_id, c.confidence,
                                    c.valid_from, c.valid_to)
                             .where(c.statement == COMMAND,
                                    c.status == ClaimStatus.APPROVED.value,
                                    c.object_id.in_(part))).all()
    sourced = _public_claims(conn, [r.id for r in rows], public)
    rows = [r for r in rows if r.id in sourced]
    names: dict[str, str] = {}
    for part in chunks(sorted({r.subject_id for r in rows})):
        names.update((r.id, r.name) for r in conn.execute(
            select(person.c.id, person.c.name).where(person.c.id.in_(part))))
    out: dict[str, list[Commander]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r.valid_from or "", r.valid_to or "", r.id)):
        if r.subject_id in names:
            out[r.object_id].append(Commander(names[r.subject_id], r.valid_from, r.valid_to,
                                              Confidence(r.confidence), sourced[r.id]))
    return out, sorted(names)


def _units(conn: Connection, links: Sequence[Link], public: frozenset[str]
           ) -> tuple[list[PublicUnit], list[str]]:
    by_unit: dict[str, list[Link]] = defaultdict(list)
    for link in links:
        by_unit[link.unit_id].append(link)
    names: dict[str, dict[str, str]] = defaultdict(dict)
    rows: list[Any] = []
    for part in chunks(sorted(by_unit)):
        for unit_id, lang, name in conn.execute(
                select(unit_name.c.unit_id, unit_name.c.lang, unit_name.c.name)
                .where(unit_name.c.unit_id.in_(part))):
            names[unit_id][lang] = name
        rows += conn.execute(select(unit.c.id, unit.c.type, unit.c.area_of_operation)
                             .where(unit.c.id.in_(part))).all()
    commanders, persons = _commanders(conn, by_unit, public)
    units = [PublicUnit(r.id, dict(names[r.id]), r.type, r.area_of_operation,
                        tuple(by_unit[r.id]), tuple(commanders.get(r.id, ())))
             for r in rows]
    units.sort(key=lambda u: (-len(u.links), u.name("en").casefold(), u.id))
    return units, persons


def _day(moment: datetime | None) -> date | None:
    return None if moment is None else moment.date()


def _incidents(conn: Connection, precision_km: float) -> list[PublicIncident]:
    i = incident.c
    rows = conn.execute(select(i.id, i.title, i.description, i.start_at, i.end_at,
                               i.admin_area, i.lat, i.lon, i.precision_m)
                        .where(i.status == IncidentStatus.VERIFIED.value)).all()
    ids = [r.id for r in rows]
    codes: dict[str, list[str]] = defaultdict(list)
    acts: dict[str, Counter[str]] = defaultdict(Counter)
    for part in chunks(ids):
        for incident_id, code in conn.execute(
                select(incident_violation.c.incident_id, incident_violation.c.code)
                .where(incident_violation.c.incident_id.in_(part))):
            codes[incident_id].append(code)
        for incident_id, kind in conn.execute(select(act.c.incident_id, act.c.type)
                                              .where(act.c.incident_id.in_(part))):
            acts[incident_id][kind] += 1
    out = []
    for r in rows:
        place = None
        if r.lat is not None and r.lon is not None:
            place = coarsen(r.lat, r.lon, precision_km, r.precision_m)
        out.append(PublicIncident(
            id=r.id, title=r.title, narrative=r.description, start=r.start_at.date(),
            end=_day(r.end_at), region=(r.admin_area or "").strip() or None, place=place,
            violation_types=tuple(sorted(codes[r.id])),
            acts=tuple(sorted(acts[r.id].items(), key=lambda kv: (-kv[1], kv[0]))),
            links=()))
    out.sort(key=lambda x: (x.start, x.id), reverse=True)
    return out


def _labels(conn: Connection) -> dict[str, dict[str, str]]:
    labels = {t.code: dict(t.labels) for t in shipped_terms()}
    for code, text in conn.execute(select(vocabulary_term.c.code, vocabulary_term.c.labels)):
        labels[code] = {str(k): str(v) for k, v in json.loads(text).items()}
    return labels


def read_snapshot(conn: Connection, *, precision_km: float,
                  public: frozenset[str]) -> Snapshot:
    """Everything the site shows, read in one transaction through :data:`READS`."""
    head = log.head_size(conn)
    incidents = _incidents(conn, precision_km)
    links = _links(conn, {x.id for x in incidents})
    units, persons = _units(conn, links, public)
    by_incident: dict[str, list[Link]] = defaultdict(list)
    for link in links:
        by_incident[link.incident_id].append(link)
    order = {u.id: n for n, u in enumerate(units)}
    incidents = [replace(x, links=tuple(sorted(by_incident[x.id],
                                               key=lambda k: order[k.unit_id])))
                 for x in incidents]
    newest = {x.id: n for n, x in enumerate(incidents)}  # incidents are newest first
    units = [replace(u, links=tuple(sorted(u.links, key=lambda k: newest[k.incident_id])))
             for u in units]
    return Snapshot(head=head, precision_km=precision_km, figures=_figures(conn),
                    incidents=tuple(incidents), units=tuple(units), labels=_labels(conn),
                    persons=tuple(persons))
