"""The CSV form of a catalogue exchange document: a ZIP of one CSV per entity and one per
list a record holds (docs/exchange.md names every file and column).

:func:`to_zip` turns the document that the JSON form holds into that archive and
:func:`from_zip` turns an archive back into the same document, so that both forms are
then checked by one path (:mod:`sprava.catalogue.exchange_import`). Cells are text:
empty means null, booleans are ``true``/``false``, numbers are decimal, times RFC 3339;
every cell that a spreadsheet would run as a formula is escaped with a leading ``'``
(:func:`~sprava.catalogue.exchange_files.escape_cell`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sprava.catalogue.exchange_files import MAX_BYTES, read_csv, read_zip, write_csv, write_zip
from sprava.errors import BadInputError

MANIFEST = "manifest.csv"
_CONSENT = ("publish_anonymised", "share_with_prosecutors",
            "share_with_international_mechanisms")

#: Every member of the archive and its columns, in the order they are written.
TABLES: Mapping[str, tuple[str, ...]] = {
    MANIFEST: ("key", "value"),
    "vocabulary.csv": ("code", "description", "salt"),
    "vocabulary_labels.csv": ("code", "lang", "label"),
    "incidents.csv": ("id", "salt", "title", "description", "start", "end", "place_name",
                      "place_admin_area", "place_lat", "place_lon", "place_precision_m",
                      "status"),
    "incident_violations.csv": ("incident_id", "code"),
    "units.csv": ("id", "salt", "type", "parent_id", "area_of_operation", "notes"),
    "unit_names.csv": ("unit_id", "lang", "name"),
    "persons.csv": ("id", "salt", "name", "rank", "role", "notes"),
    "person_identifiers.csv": ("person_id", "kind", "value"),
    "claims.csv": ("id", "salt", "statement", "subject_kind", "subject_id", "object_kind",
                   "object_id", "role", "valid_from", "valid_to", "confidence", "comment",
                   "status", "author", "reviewer", "review_reason", "reviewed_at"),
    "claim_sources.csv": ("claim_id", "item_sha256"),
    "acts.csv": ("id", "salt", "incident_id", "type", "description", "victim_pseudonym",
                 "victim_age_band", *(f"consent_{c}" for c in _CONSENT), "perpetrator_kind",
                 "perpetrator_unit_id", "perpetrator_person_id", "perpetrator_claim_id",
                 "perpetrator_description"),
    "act_evidence.csv": ("act_id", "item_sha256"),
    "cases.csv": ("id", "salt", "title", "recipient", "description"),
    "case_incidents.csv": ("case_id", "incident_id"),
    "case_claims.csv": ("case_id", "claim_id"),
    "case_items.csv": ("case_id", "item_sha256"),
}
_MANIFEST_KEYS = ("format", "version", "exported_at", "origin", "includes_persons")

# Lists held by records: (section, field in the record, file, parent column, value column).
_LISTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("incidents", "violation_types", "incident_violations.csv", "incident_id", "code"),
    ("claims", "sources", "claim_sources.csv", "claim_id", "item_sha256"),
    ("acts", "evidence", "act_evidence.csv", "act_id", "item_sha256"),
    ("cases", "incidents", "case_incidents.csv", "case_id", "incident_id"),
    ("cases", "claims", "case_claims.csv", "case_id", "claim_id"),
    ("cases", "items", "case_items.csv", "case_id", "item_sha256"),
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --- document → archive ------------------------------------------------------------------


def _flat(section: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """One record as the columns of its own file (lists go to their own files)."""
    if section == "incidents":
        place = record["place"]
        return {**record, **{f"place_{k}": place[k] for k in ("name", "admin_area", "lat",
                                                                "lon", "precision_m")}}
    if section == "claims":
        return {**record, "subject_kind": record["subject"]["kind"],
                "subject_id": record["subject"]["id"], "object_kind": record["object"]["kind"],
                "object_id": record["object"]["id"]}
    if section == "acts":
        victim, perp = record["victim"], record["perpetrator"]
        flat = {**record, **{f"perpetrator_{k}": v for k, v in perp.items()}}
        flat["victim_pseudonym"] = victim["pseudonym"] if victim else None
        flat["victim_age_band"] = victim["age_band"] if victim else None
        for c in _CONSENT:
            flat[f"consent_{c}"] = victim["consent"][c] if victim else None
        return flat
    return dict(record)


def to_zip(doc: Mapping[str, Any]) -> bytes:
    """The archive of a document as :func:`sprava.catalogue.exchange.build_document`
    makes it."""
    tables: dict[str, list[list[str]]] = {name: [] for name in TABLES}
    tables[MANIFEST] = [[k, _cell(doc[k])] for k in _MANIFEST_KEYS]
    files = {"vocabulary": "vocabulary.csv", "incidents": "incidents.csv",
             "units": "units.csv", "persons": "persons.csv", "claims": "claims.csv",
             "acts": "acts.csv", "cases": "cases.csv"}
    for section, name in files.items():
        for record in doc[section]:
            flat = _flat(section, record)
            tables[name].append([_cell(flat[c]) for c in TABLES[name]])
    for term in doc["vocabulary"]:
        tables["vocabulary_labels.csv"] += [[term["code"], lang, label]
                                            for lang, label in term["labels"].items()]
    for unit in doc["units"]:
        tables["unit_names.csv"] += [[unit["id"], k, v] for k, v in unit["names"].items()]
    for person in doc["persons"]:
        tables["person_identifiers.csv"] += [[person["id"], i["kind"], i["value"]]
                                             for i in person["identifiers"]]
    for section, field, name, _parent, _value in _LISTS:
        for record in doc[section]:
            tables[name] += [[record["id"], v] for v in record[field]]
    return write_zip({name: write_csv(TABLES[name], rows) for name, rows in tables.items()})


# --- archive → document ------------------------------------------------------------------


class _Rows:
    """The rows of one member, with the place of each for error messages."""

    def __init__(self, name: str, rows: list[dict[str, str]]) -> None:
        self.name = name
        self.rows = rows

    def each(self) -> list[tuple[str, dict[str, str]]]:
        return [(f"{self.name} row {i + 2}", row) for i, row in enumerate(self.rows)]


def _opt(value: str) -> str | None:
    return value if value != "" else None


def _number(value: str, where: str) -> float | None:
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise BadInputError(f"{where}: {value[:50]!r} is not a number",
                            code="bad-field") from None


def _flag(value: str, where: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise BadInputError(f"{where}: must be true or false, not {value[:20]!r}",
                            code="bad-field")
    return value.lower() == "true"


def _children(rows: _Rows, parent: str, known: set[str],
              make: Callable[[dict[str, str]], Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for where, row in rows.each():
        if row[parent] not in known:
            raise BadInputError(f"{where}: {parent} {row[parent][:64]!r} names no record of "
                                "its parent file", code="dangling-row")
        out.setdefault(row[parent], []).append(make(row))
    return out


def _manifest(rows: _Rows) -> dict[str, Any]:
    values: dict[str, str] = {}
    for where, row in rows.each():
        if row["key"] not in _MANIFEST_KEYS or row["key"] in values:
            raise BadInputError(f"{where}: unexpected or repeated key {row['key'][:50]!r}",
                                code="bad-manifest")
        values[row["key"]] = row["value"]
    version: Any = values.get("version")
    if version is not None and version.isdigit():
        version = int(version)
    return {"format": _opt(values.get("format", "")), "version": version,
            "exported_at": _opt(values.get("exported_at", "")),
            "origin": _opt(values.get("origin", "")),
            "includes_persons": _flag(values.get("includes_persons") or "false",
                                      f"{MANIFEST} includes_persons")}


def _records(section: str, rows: _Rows) -> list[dict[str, Any]]:
    out = []
    for where, r in rows.each():
        record: dict[str, Any] = {k: _opt(v) for k, v in r.items()}
        if section == "incidents":
            for k in ("name", "admin_area", "lat", "lon", "precision_m"):
                record.pop(f"place_{k}")
            record["place"] = {
                "name": r["place_name"], "admin_area": _opt(r["place_admin_area"]),
                **{k: _number(r[f"place_{k}"], f"{where}, column place_{k}")
                   for k in ("lat", "lon", "precision_m")}}
        elif section == "claims":
            for side in ("subject", "object"):
                record[side] = {"kind": record.pop(f"{side}_kind"),
                                "id": record.pop(f"{side}_id")}
        elif section == "acts":
            perp = {k: record.pop(f"perpetrator_{k}")
                    for k in ("kind", "unit_id", "person_id", "claim_id", "description")}
            consent = {c: record.pop(f"consent_{c}") for c in _CONSENT}
            pseudonym, band = record.pop("victim_pseudonym"), record.pop("victim_age_band")
            record["perpetrator"] = perp
            record["victim"] = None if pseudonym is None else {
                "pseudonym": pseudonym, "age_band": band,
                "consent": {c: _flag(v or "", f"{where}, column consent_{c}")
                            for c, v in consent.items()}}
        out.append(record)
    return out


def from_zip(data: bytes, what: str = "the archive", limit: int = MAX_BYTES) -> dict[str, Any]:
    """The document an archive holds. Missing members count as empty; unknown members,
    bad headers, rows that name no parent and cells of the wrong type are refused with
    BadInputError naming the file, row and column."""
    members = read_zip(data, what, TABLES, limit)
    if MANIFEST not in members:
        raise BadInputError(f"{what} has no {MANIFEST}: not a Sprava catalogue export",
                            code="bad-manifest")
    rows = {name: _Rows(name, read_csv(members[name], name, TABLES[name]) if name in members
                        else []) for name in TABLES}
    doc = _manifest(rows[MANIFEST])
    for section in ("vocabulary", "incidents", "units", "persons", "claims", "acts", "cases"):
        doc[section] = _records(section, rows[f"{section}.csv"])
    ids = {s: {r.get("id") or "" for r in doc[s]} for s in ("units", "persons", "incidents",
                                                             "claims", "acts", "cases")}
    labels = _children(rows["vocabulary_labels.csv"], "code",
                       {r.get("code") or "" for r in doc["vocabulary"]},
                       lambda r: (r["lang"], r["label"]))
    names = _children(rows["unit_names.csv"], "unit_id", ids["units"],
                      lambda r: (r["lang"], r["name"]))
    idents = _children(rows["person_identifiers.csv"], "person_id", ids["persons"],
                       lambda r: {"kind": r["kind"], "value": r["value"]})
    for term in doc["vocabulary"]:
        term["labels"] = _pairs(labels.get(term["code"] or "", []), f"the labels of "
                                f"{str(term['code'])[:64]!r}")
    for unit in doc["units"]:
        unit["names"] = _pairs(names.get(unit["id"] or "", []),
                               f"the names of unit {str(unit['id'])[:64]!r}")
    for person in doc["persons"]:
        person["identifiers"] = idents.get(person["id"] or "", [])
    for section, field, name, parent, value in _LISTS:
        found = _children(rows[name], parent, ids[section], itemgetter(value))
        for record in doc[section]:
            record[field] = found.get(record["id"] or "", [])
    return doc


def _pairs(pairs: Sequence[tuple[str, str]], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise BadInputError(f"{what}: the language {key[:20]!r} appears twice",
                                code="duplicate-key")
        out[key] = value
    return out
