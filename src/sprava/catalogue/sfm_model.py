"""Security Force Monitor rows gathered into units, persons, postings and parent links.

Pure: :func:`gather` reads the checked rows of :mod:`sprava.catalogue.sfm_read` (one row
per unit, per unit and parent, or per unit and posting, as SFM's downloads repeat the unit
on every row) and refuses rows that contradict each other: a unit or a person named
differently on two rows, or parents that form a loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sprava.catalogue.sfm_read import COMMANDER_ROLES, Row, Sheet
from sprava.domain.catalogue import Confidence
from sprava.errors import BadInputError, ConflictError

DEFAULT_CONFIDENCE = Confidence.MEDIUM


@dataclass
class SfmUnit:
    sfm_id: str
    name: str
    row: int  # the first row that names it
    classification: list[str] = field(default_factory=list)
    other_names: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)
    country: str | None = None
    first: str | None = None
    last: str | None = None
    sources: list[tuple[str, str]] = field(default_factory=list)
    parent: str | None = None  # the SFM id of its latest parent
    stub: bool = False  # known only as another unit's parent


@dataclass
class SfmPerson:
    sfm_id: str
    name: str
    row: int
    other_names: list[str] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)
    rank: str | None = None  # as of the latest posting
    role: str | None = None


@dataclass(frozen=True)
class Link:
    """A dated statement from one row: a posting (person in unit) or a parent link."""

    row: int
    statement: str
    subject: str  # SFM ids
    object: str
    role: str | None
    first: str | None
    last: str | None
    confidence: Confidence
    sources: tuple[tuple[str, str], ...]
    detail: str  # role, title and rank as the row gives them

    def key(self) -> tuple[str, str, str, str | None, str | None, str | None]:
        return (self.statement, self.subject, self.object, self.role, self.first, self.last)


@dataclass
class Gathered:
    units: dict[str, SfmUnit]
    persons: dict[str, SfmPerson]
    postings: list[Link]
    parents: list[Link]


def _add(values: list[str], new: tuple[str, ...] | list[str] | str | None) -> None:
    for value in [new] if isinstance(new, str) else new or ():
        if value not in values:
            values.append(value)


def _latest(row: Row, first: str, last: str) -> tuple[str, int]:
    return (row.get(last) or row.get(first) or "", row.number)


def _sources(row: Row, *groups: str) -> tuple[tuple[str, str], ...]:
    return tuple(s for g in groups for s in row.sources.get(g, []))


def _same_name(kind: str, sfm_id: str, known: str, known_row: int, row: Row, name: str,
               column: str) -> None:
    if known != name:
        raise BadInputError(
            f"row {row.number}, column {column!r}: {kind} {sfm_id} is named {name!r} here and "
            f"{known!r} on row {known_row}", code="sfm-conflict",
            hint="one id, one canonical name: put other spellings in the other-names column")


def _unit(units: dict[str, SfmUnit], row: Row, sheet: Sheet) -> SfmUnit:
    sfm_id, name = row.get("unit_id") or "", row.get("unit_name") or ""
    unit = units.get(sfm_id)
    if unit is None or unit.stub:
        unit = units[sfm_id] = SfmUnit(sfm_id, name, row.number)
    _same_name("unit", sfm_id, unit.name, unit.row, row, name,
               sheet.headers.get("unit_name", "unit:name"))
    _add(unit.classification, row.classification)
    _add(unit.other_names, row.other_names)
    _add(unit.areas, row.get("unit_area"))
    unit.country = unit.country or row.get("unit_country")
    first, last = row.get("unit_first"), row.get("unit_last")
    if first and (unit.first is None or first < unit.first):
        unit.first = first
    if last and (unit.last is None or last > unit.last):
        unit.last = last
    for s in _sources(row, "unit"):
        _add_pair(unit.sources, s)
    return unit


def _add_pair(pairs: list[tuple[str, str]], pair: tuple[str, str]) -> None:
    if pair not in pairs:
        pairs.append(pair)


def _is_command(role: str | None) -> bool:
    return role is not None and role.strip().casefold() in COMMANDER_ROLES


def _posting(row: Row, person: str, unit: str) -> Link:
    role, title, rank = row.get("role"), row.get("title"), row.get("rank")
    command = _is_command(role)
    detail = "; ".join(f"{k}: {v}" for k, v in (("role", role), ("title", title),
                                                 ("rank", rank)) if v)
    return Link(row.number, "person_commanded_unit" if command else "person_member_of_unit",
                person, unit, None if command else (role or title), row.get("posting_first"),
                row.get("posting_last"), row.posting_confidence or DEFAULT_CONFIDENCE,
                _sources(row, "posting", "person", "all"), detail)


def gather(sheet: Sheet) -> Gathered:
    """Units, persons and links from the rows; raises BadInputError ``sfm-conflict`` or
    ConflictError ``unit-cycle`` naming the rows."""
    units: dict[str, SfmUnit] = {}
    persons: dict[str, SfmPerson] = {}
    postings: dict[tuple[str, str, str, str | None, str | None, str | None], Link] = {}
    parents: dict[tuple[str, str, str, str | None, str | None, str | None], Link] = {}
    latest_parent: dict[str, tuple[tuple[str, int], str]] = {}
    latest_posting: dict[str, tuple[str, int]] = {}
    for row in sheet.rows:
        unit = _unit(units, row, sheet)
        parent = row.get("parent_id")
        if parent:
            if parent not in units:
                units[parent] = SfmUnit(parent, row.get("parent_name") or "", row.number,
                                        stub=True)
            link = Link(row.number, "unit_subordinate_to_unit", unit.sfm_id, parent, None,
                        row.get("parent_first"), row.get("parent_last"),
                        row.parent_confidence or DEFAULT_CONFIDENCE,
                        _sources(row, "parent", "all"), "")
            parents.setdefault(link.key(), link)
            when = _latest(row, "parent_first", "parent_last")
            if unit.sfm_id not in latest_parent or when >= latest_parent[unit.sfm_id][0]:
                latest_parent[unit.sfm_id] = (when, parent)
        person_id = row.get("person_id")
        if not person_id:
            continue
        name = row.get("person_name") or ""
        person = persons.setdefault(person_id, SfmPerson(person_id, name, row.number))
        _same_name("person", person_id, person.name, person.row, row, name,
                   sheet.headers.get("person_name", "person:name"))
        _add(person.other_names, row.person_other_names)
        for s in _sources(row, "person"):
            _add_pair(person.sources, s)
        when = _latest(row, "posting_first", "posting_last")
        if person_id not in latest_posting or when >= latest_posting[person_id]:
            latest_posting[person_id] = when
            person.rank = row.get("rank") or person.rank
            person.role = row.get("role") or row.get("title") or person.role
        link = _posting(row, person_id, row.get("posting_unit_id") or unit.sfm_id)
        postings.setdefault(link.key(), link)
    for child, (_when, parent) in latest_parent.items():
        units[child].parent = parent
    _check_loops(units)
    return Gathered(units, persons, _informative(postings.values()),
                    _informative(parents.values()))


def _informative(links: Iterable[Link]) -> list[Link]:
    """The links, less those that only repeat another (no dates, no sources of their
    own), as when SFM's downloads repeat a unit's parent on each of its rows."""
    links = list(links)
    informed = {link.key()[:4] for link in links if link.first or link.last or link.sources}
    return [link for link in links if link.first or link.last or link.sources
            or link.key()[:4] not in informed]


def _check_loops(units: dict[str, SfmUnit]) -> None:
    for start in units.values():
        seen = [start.sfm_id]
        current = start.parent
        while current is not None and current in units:
            if current in seen:
                raise ConflictError(f"row {start.row}: the parents of unit {start.sfm_id} "
                                    "lead back to it", code="unit-cycle")
            seen.append(current)
            current = units[current].parent
