"""Export and import of the whole catalogue, as one JSON document or a ZIP of CSV files.

Both forms hold the same document (docs/exchange.md): a format name and version, when
and where it was exported, and every record of every entity as its state (the fields
its custody events commit to, salt included, so that a recipient can match each record
to the event on the exporting instance's ledger).

An export is on the custody record: every person it contains is a ``view`` event naming
the exporter (persons are restricted), and the export itself is an event of kind
``catalogue_export`` carrying the SHA-256 and size of the exact bytes handed out. The
events are committed before the bytes are written out, so that no export leaves
unrecorded. With
``persons=False`` the export holds no person, no claim naming a person, and acts whose
perpetrator is a person show an unknown perpetrator with a note that it was withheld.

An import is all or nothing: the file is read within a size limit, checked whole by the
services' schemas (:mod:`sprava.catalogue.exchange_parse`), then written in one
transaction with a ``create`` event per record (:mod:`sprava.catalogue.exchange_import`).
Approved claims arrive pending review: due process is never imported by fiat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import Connection, select

from sprava.backends.db.catalogue_tables import (
    act,
    case_record,
    claim,
    incident,
    person,
    unit,
    vocabulary_term,
)
from sprava.backends.db.engine import write_transaction
from sprava.catalogue import acts, cases, claims, incidents, persons, units
from sprava.catalogue._record import Recorder, check_actor, chunks, recording
from sprava.catalogue.exchange_csv import from_zip, to_zip
from sprava.catalogue.exchange_files import MAX_BYTES, is_zip, parse_json, read_bounded
from sprava.catalogue.exchange_import import ImportSummary, apply_plan
from sprava.catalogue.exchange_parse import FORMAT, SECTIONS, VERSION, parse_document
from sprava.domain.catalogue import EntityKind, PerpetratorKind
from sprava.domain.custody import CustodyEvent, rfc3339
from sprava.errors import BadInputError
from sprava.instance import Instance
from sprava.ledger.log import LedgerAppender

__all__ = ["EXPORT", "FORMAT", "FORMATS", "VERSION", "ExportSummary", "ImportSummary",
           "build_document", "export_catalogue", "export_event", "import_catalogue"]

EXPORT = "catalogue_export"  # the custody event kind of a catalogue export
FORMATS = ("json", "csv")
WITHHELD = "a person: withheld from this export (persons are restricted)"


@dataclass(frozen=True)
class ExportSummary:
    """What an export held, and the custody event that records it."""

    format: str
    includes_persons: bool
    counts: dict[str, int]
    withheld_claims: int  # claims naming a person, left out of an export without persons
    sha256: str  # of the exact bytes written
    size: int
    exported_at: str
    leaf_index: int  # the ``catalogue_export`` event

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "includes_persons": self.includes_persons,
                "counts": self.counts, "withheld_claims": self.withheld_claims,
                "sha256": self.sha256, "size": self.size, "exported_at": self.exported_at,
                "leaf_index": self.leaf_index}


def export_event(*, fmt: str, includes_persons: bool, counts: dict[str, int], sha256: str,
                 size: int, actor: str, time: datetime) -> CustodyEvent:
    """The custody event of a catalogue export: what left, in which form, and the digest
    of the exact bytes (never their content)."""
    return CustodyEvent(EXPORT, time, actor, {
        "format": fmt, "includes_persons": includes_persons,
        "counts": dict(counts), "export_sha256": sha256, "size": size})


def _check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> str:
    if fmt not in allowed:
        raise BadInputError(f"unknown exchange format {str(fmt)[:20]!r}", code="bad-format",
                            hint=f"use one of: {', '.join(allowed)}")
    return fmt


def _ids(conn: Connection, key: Any) -> list[str]:
    return list(conn.execute(select(key).order_by(key)).scalars())


def _record(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "entity"}


def build_document(conn: Connection, *, origin: str, now: datetime,
                   persons_included: bool = True) -> tuple[dict[str, Any], int]:
    """The whole catalogue as an exchange document, every section sorted by id (code),
    and how many claims were withheld because they name a person."""
    terms = [{"code": r.code, "labels": json.loads(r.labels), "description": r.description,
              "salt": r.salt}
             for r in conn.execute(select(vocabulary_term).order_by(vocabulary_term.c.code))]
    found: dict[str, Mapping[str, Any]] = {
        "incidents": incidents.load(conn, _ids(conn, incident.c.id)),
        "units": units.load(conn, _ids(conn, unit.c.id)),
        "persons": persons.load(conn, _ids(conn, person.c.id)) if persons_included else {},
        "claims": claims.load(conn, _ids(conn, claim.c.id)),
        "acts": acts.load(conn, _ids(conn, act.c.id)),
        "cases": cases.load(conn, _ids(conn, case_record.c.id)),
    }
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "exported_at": rfc3339(now),
                           "origin": origin, "includes_persons": persons_included,
                           "vocabulary": terms}
    for section, records in found.items():
        doc[section] = [_record(records[k].state()) for k in sorted(records)]
    withheld: set[str] = set()
    if not persons_included:
        withheld = {c["id"] for c in doc["claims"]
                    if EntityKind.PERSON.value in (c["subject"]["kind"], c["object"]["kind"])}
        doc["claims"] = [c for c in doc["claims"] if c["id"] not in withheld]
        for a in doc["acts"]:
            if a["perpetrator"]["kind"] == PerpetratorKind.PERSON.value:
                a["perpetrator"] = {"kind": PerpetratorKind.UNKNOWN.value, "unit_id": None,
                                    "person_id": None, "claim_id": None,
                                    "description": WITHHELD}
        for c in doc["cases"]:
            c["claims"] = [i for i in c["claims"] if i not in withheld]
    return doc, len(withheld)


def _encode(doc: dict[str, Any], fmt: str) -> bytes:
    if fmt == "csv":
        return to_zip(doc)
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def export_catalogue(instance: Instance, out: BinaryIO, *, fmt: str, actor: str,
                     persons: bool = True) -> ExportSummary:
    """Write the whole catalogue to ``out`` as ``fmt`` (``json`` or ``csv``: a ZIP).

    One write transaction reads a consistent catalogue and records the export: a
    ``view`` event for the persons it holds (in groups of 500), then the
    ``catalogue_export`` event. The bytes are written to ``out`` once that is committed.
    Raises BadInputError ``bad-format`` or ``bad-actor``; an error while writing ``out``
    propagates after the export was recorded (the caller discards what was written).
    """
    fmt = _check_format(fmt)
    check_actor(actor)
    with write_transaction(instance.engine) as conn:
        appender = LedgerAppender(conn, instance.signer)
        rec = Recorder(conn, appender, actor)
        doc, withheld = build_document(conn, origin=instance.origin, now=rec.now,
                                       persons_included=persons)
        data = _encode(doc, fmt)
        digest = hashlib.sha256(data).hexdigest()
        counts = {s: len(doc[s]) for s in SECTIONS}
        for part in chunks([p["id"] for p in doc["persons"]]):
            rec.record_view(EntityKind.PERSON, part)
        index = appender.append(export_event(
            fmt=fmt, includes_persons=persons, counts=counts, sha256=digest, size=len(data),
            actor=actor, time=rec.now))
        rec.finish()
    out.write(data)
    out.flush()
    return ExportSummary(fmt, persons, counts, withheld, digest, len(data), doc["exported_at"],
                         index)


def import_catalogue(instance: Instance, data: BinaryIO, *, fmt: str, actor: str,
                     max_bytes: int = MAX_BYTES) -> ImportSummary:
    """Import an export of this or another instance; all or nothing.

    ``fmt`` is ``json``, ``csv`` or ``auto`` (a ZIP is CSV, anything else JSON). Raises
    TooLargeError past ``max_bytes``; BadInputError for a file that is not a readable
    export or a record the schemas refuse; NotFoundError for a reference to something
    neither in the file nor here (an item must be in the vault already: ingest it
    first); ConflictError ``id-exists`` for an id held here with other content.
    """
    fmt = _check_format(fmt, (*FORMATS, "auto"))
    check_actor(actor)
    raw = read_bounded(data, "the import file", max_bytes)
    if fmt == "auto":
        fmt = "csv" if is_zip(raw) else "json"
    doc = (from_zip(raw, "the import file", max_bytes) if fmt == "csv"
           else parse_json(raw, "the import file"))
    plan = parse_document(doc)
    summary = ImportSummary(fmt, plan.origin)
    with recording(instance, actor) as rec:
        apply_plan(rec, plan, summary)
    return summary
