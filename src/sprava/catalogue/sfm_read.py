"""Reading a Security Force Monitor style CSV of units and their commanders: pure, no I/O.

Accepts the column names of Security Force Monitor's data (``unit:id:admin``,
``unit:name``, ``person:posting_rank`` …, as in WhoWasInCommand downloads and SFM's
research sheets) and plain ones (``unit id``, ``person name`` …); docs/exchange.md has the
full mapping. Every cell is checked with the catalogue's schema functions, and every
problem is reported by row and column (``row 7, column 'person:posting_first_cited_date':
must be a date …``); one bad row refuses the whole file.

Only the mapped columns are ever read. Whatever else a file carries (SFM's
``person_extra:*`` columns hold dates of birth and social-media accounts) is ignored and
listed as such: Sprava keeps no private accounts of anyone.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sprava.catalogue import schema
from sprava.catalogue.exchange_files import utf8
from sprava.domain.catalogue import Confidence, is_red_line_key
from sprava.errors import BadInputError, TooLargeError

MAX_ROWS = 200_000
MAX_ERRORS = 10

#: Canonical field → the column names accepted for it (compared case-insensitively).
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "unit_id": ("unit:id:admin", "unit id", "unit_id"),
    "unit_name": ("unit:name", "unit name", "unit_name"),
    "unit_other_names": ("unit:other_names", "unit other names", "unit_other_names"),
    "unit_classification": ("unit:classification", "unit classification",
                            "unit_classification"),
    "unit_country": ("unit:country", "unit country", "unit_country"),
    "unit_area": ("unit:area_ops_name", "unit:area_of_operation", "unit area of operation",
                  "unit_area_of_operation"),
    "unit_first": ("unit:first_cited_date", "unit first cited date"),
    "unit_last": ("unit:last_cited_date", "unit last cited date"),
    "parent_id": ("unit:related_unit_id:admin", "unit parent id", "unit_parent_id"),
    "parent_name": ("unit:related_unit:name", "unit parent name", "unit_parent_name"),
    "parent_first": ("unit:related_unit_first_cited_date", "unit parent first cited date"),
    "parent_last": ("unit:related_unit_last_cited_date", "unit parent last cited date"),
    "parent_confidence": ("unit:related_unit:confidence", "unit parent confidence"),
    "person_id": ("person:id:admin", "person:admin:id", "person id", "person_id"),
    "person_name": ("person:name", "person name", "person_name"),
    "person_other_names": ("person:other_names", "person other names"),
    "posting_unit_id": ("person:posting_unit_id:admin", "posting unit id"),
    "rank": ("person:posting_rank", "person rank", "person_rank"),
    "role": ("person:posting_role", "person role", "person_role"),
    "title": ("person:posting_title", "person title", "person_title"),
    "posting_first": ("person:posting_first_cited_date", "first cited date",
                      "first_cited_date"),
    "posting_last": ("person:posting_last_cited_date", "last cited date", "last_cited_date"),
    "posting_confidence": ("person:posting:confidence", "person:posting_role:confidence",
                           "confidence"),
}
# ``unit:related_unit`` holds the parent's id in WhoWasInCommand's downloads, and its name
# in SFM's research sheets (which then have ``unit:related_unit_id:admin`` beside it).
_RELATED = "unit:related_unit"
_DATES = ("unit_first", "unit_last", "parent_first", "parent_last", "posting_first",
          "posting_last")
_PARTS = ("year", "month", "day")
_SFM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
_ZERO_PART = re.compile(r"(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?")
#: Roles that make a posting a command (``person_commanded_unit``); any other role is a
#: membership (``person_member_of_unit``) with that role.
COMMANDER_ROLES = frozenset({"commander", "commanding officer", "командир", "камандзір",
                             "командувач"})


def source_group(header: str) -> str | None:
    """Which claims a source-citation column supports: ``posting``, ``person``,
    ``parent``, ``unit``, ``all``; None when it is not a source column."""
    h = header.strip().lower()
    if not (h.endswith((":source", "_source", " source", ":sources", " sources"))
            or h in ("source", "sources", "source citation", "source citations")):
        return None
    for prefix, group in (("person:posting", "posting"), ("posting", "posting"),
                          ("person", "person"), ("unit:related_unit", "parent"),
                          ("unit parent", "parent"), ("unit_parent", "parent"),
                          ("unit", "unit")):
        if h.startswith(prefix):
            return group
    return "all"


@dataclass
class Row:
    """One data row, checked. ``number`` is the row as a spreadsheet shows it (the header
    is row 1)."""

    number: int
    values: dict[str, str | None]
    other_names: tuple[str, ...]
    person_other_names: tuple[str, ...]
    classification: tuple[str, ...]
    parent_confidence: Confidence | None
    posting_confidence: Confidence | None
    sources: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.values.get(name)


@dataclass
class Sheet:
    rows: list[Row]
    headers: dict[str, str]  # canonical field → the file's own column name
    ignored: list[str]  # columns never read


@contextmanager
def _collect(problems: list[str]) -> Iterator[None]:
    try:
        yield
    except BadInputError as exc:
        problems.append(exc.message)


def _map_headers(header: Sequence[str]) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """Canonical field → column index, source column name → index, and ignored names."""
    wanted = {name: canon for canon, names in COLUMNS.items() for name in names}
    for canon in _DATES:
        for name in COLUMNS[canon]:
            for part in _PARTS:
                wanted[f"{name}:{part}"] = wanted[f"{name}_{part}"] = f"{canon}:{part}"
    lowered = [h.strip().lower() for h in header]
    if _RELATED in lowered:
        wanted[_RELATED] = "parent_name" if any(
            n in lowered for n in COLUMNS["parent_id"]) else "parent_id"
    found: dict[str, int] = {}
    sources: dict[str, int] = {}
    ignored: list[str] = []
    for i, name in enumerate(lowered):
        target = wanted.get(name)
        if target is not None:
            if target in found:
                raise BadInputError(f"columns {header[found[target]]!r} and {header[i]!r} "
                                    f"both give {target}", code="sfm-duplicate-column")
            found[target] = i
        elif source_group(name) is not None and not is_red_line_key(name):
            sources[header[i].strip()] = i  # ("person:phone:source" is never read)
        elif name:
            ignored.append(header[i].strip())
    for canon in ("unit_id", "unit_name"):
        if canon not in found:
            raise BadInputError(f"the file has no {COLUMNS[canon][0]!r} column",
                                code="sfm-missing-column",
                                hint=f"name it one of: {', '.join(COLUMNS[canon])}")
    return found, sources, ignored


def _date(cells: Mapping[str, str], canon: str, where: str) -> str | None:
    value = cells.get(canon, "")
    if not value and cells.get(f"{canon}:year"):
        value = "-".join(cells.get(f"{canon}:{p}") or "0" for p in _PARTS)
    if not value:
        return None
    match = _ZERO_PART.fullmatch(value)
    if match:  # SFM writes an unknown month or day as 0: "2019-00-00" is "2019"
        year, month, day = match.groups()
        value = year + "".join(f"-{int(p):02d}" for p in (month, day)
                               if p is not None and int(p) != 0)
        if month is not None and int(month) == 0 and day is not None and int(day) != 0:
            raise BadInputError(f"{where}: a day without a month", code="bad-date")
    return schema.partial_date(value, where)


def _confidence(value: str, where: str) -> Confidence | None:
    if not value:
        return None
    return schema.confidence(value.strip().lower(), where)


def _list(value: str, where: str, limit: int) -> tuple[str, ...]:
    parts = [p for p in (s.strip() for s in value.split(";")) if p]
    return tuple(dict.fromkeys(schema.text(p, where, limit=limit) for p in parts))


def _row(number: int, cells: dict[str, str], headers: Mapping[str, str],
         source_cells: dict[str, str]) -> Row:
    def where(canon: str) -> str:  # the file's own column name, else SFM's for it
        base = canon.split(":")[0]
        return f"row {number}, column {headers.get(canon) or COLUMNS[base][0]!r}"

    values: dict[str, str | None] = {}
    for canon in ("unit_id", "parent_id", "person_id", "posting_unit_id"):
        value = cells.get(canon, "")
        if value and not _SFM_ID.fullmatch(value):
            raise BadInputError(f"{where(canon)}: not an id (letters, digits, '.', '_', ':', "
                                "'-', at most 100)", code="bad-id")
        values[canon] = value or None
    if not values["unit_id"]:
        raise BadInputError(f"{where('unit_id')}: every row names its unit",
                            code="missing-field")
    values["unit_name"] = schema.text(cells.get("unit_name", ""), where("unit_name"))
    for canon, limit in (("unit_country", 200), ("unit_area", 2000), ("parent_name", 500),
                         ("person_name", 500), ("rank", 200), ("role", 200),
                         ("title", 200)):
        values[canon] = schema.optional_text(cells.get(canon), where(canon), limit=limit)
    for canon in _DATES:
        values[canon] = _date(cells, canon, where(canon))
    for first, last in (("parent_first", "parent_last"), ("posting_first", "posting_last"),
                        ("unit_first", "unit_last")):
        schema.check_period(values[first], values[last], where(last))
    if values["person_name"] and not values["person_id"]:
        raise BadInputError(f"{where('person_id')}: the row names a person but not their id",
                            code="missing-field")
    if values["person_id"] and not values["person_name"]:
        raise BadInputError(f"{where('person_name')}: the row gives a person id but no name",
                            code="missing-field")
    if values["parent_id"] == values["unit_id"]:
        raise BadInputError(f"{where('parent_id')}: a unit cannot be its own parent",
                            code="unit-cycle")
    row = Row(number, values,
              _list(cells.get("unit_other_names", ""), where("unit_other_names"), 500),
              _list(cells.get("person_other_names", ""), where("person_other_names"), 500),
              _list(cells.get("unit_classification", ""), where("unit_classification"), 200),
              _confidence(cells.get("parent_confidence", ""), where("parent_confidence")),
              _confidence(cells.get("posting_confidence", ""), where("posting_confidence")))
    for name, value in source_cells.items():
        text = schema.optional_text(value, f"row {number}, column {name!r}", limit=10_000,
                                    multiline=True)
        group = source_group(name)
        if text and group:
            row.sources.setdefault(group, []).append((name, text))
    return row


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=first.count)


def read_sheet(data: bytes, what: str) -> Sheet:
    """Parse and check every row; raises BadInputError naming the first bad row and
    column (and how many others are bad), ``bad-encoding``, ``bad-csv``,
    ``sfm-missing-column`` or ``sfm-duplicate-column``."""
    text = utf8(data, what)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    problems: list[str] = []
    rows: list[Row] = []
    number = 1  # the header; records are counted, as a spreadsheet shows them
    try:
        header = next(reader, None)
        if not header:
            raise BadInputError(f"{what} is empty", code="sfm-missing-column")
        found, source_cols, ignored = _map_headers(header)
        headers = {canon: header[i].strip() for canon, i in found.items()}
        for cells in reader:
            number += 1
            if len(rows) >= MAX_ROWS:
                raise TooLargeError(f"{what} has more than {MAX_ROWS} rows",
                                    code="too-large", hint="split it into several files")
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
                problems.append(f"row {number}: more cells than the header names")
                continue
            cells += [""] * (len(header) - len(cells))
            with _collect(problems):
                rows.append(_row(number, {k: cells[i].strip() for k, i in found.items()},
                                 headers, {k: cells[i] for k, i in source_cols.items()}))
            if len(problems) > MAX_ERRORS:
                break
    except csv.Error as exc:
        raise BadInputError(f"{what} line {reader.line_num}: not valid CSV ({exc})",
                            code="bad-csv") from None
    if problems:
        more = f" (and {len(problems) - 1} more problem(s): {'; '.join(problems[1:])})" \
            if len(problems) > 1 else ""
        raise BadInputError(f"{what}: {problems[0]}{more}", code="sfm-bad-row",
                            hint="nothing was imported; correct the rows and import again")
    return Sheet(rows, headers, ignored)
