"""Hostile exchange files: every malformed JSON, ZIP or CSV is a named BadInputError, and
CSV cells can never become spreadsheet formulas. No database needed."""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sprava.catalogue.exchange_csv import TABLES, from_zip, to_zip
from sprava.catalogue.exchange_files import (
    escape_cell,
    open_regular,
    parse_json,
    read_bounded,
    read_csv,
    read_zip,
    unescape_cell,
    write_csv,
)
from sprava.catalogue.exchange_parse import FORMAT, VERSION, parse_document
from sprava.domain.catalogue import ClaimStatus
from sprava.errors import BadInputError, SpravaError, TooLargeError

UNIT = "8d6c3f5e-2b1a-4c3d-9e8f-0123456789ab"
PERSON = "7d6c3f5e-2b1a-4c3d-9e8f-0123456789ab"
CLAIM = "6d6c3f5e-2b1a-4c3d-9e8f-0123456789ab"
SHA = "ab" * 32


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(SpravaError) as caught:
        call()
    return caught.value.code


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "exported_at": "2024-05-02T09:30:00.000000Z",
        "origin": "partner.example/sprava", "includes_persons": True, "vocabulary": [],
        "incidents": [],
        "units": [{"id": UNIT, "salt": "0" * 32, "names": {"be": "АМАП"}, "type": "OMON",
                   "parent_id": None, "area_of_operation": None, "notes": None}],
        "persons": [{"id": PERSON, "salt": "1" * 32, "name": "Іван", "rank": None,
                     "role": None, "notes": None, "identifiers": []}],
        "claims": [{"id": CLAIM, "salt": "2" * 32, "statement": "person_commanded_unit",
                    "subject": {"kind": "person", "id": PERSON},
                    "object": {"kind": "unit", "id": UNIT}, "role": None,
                    "valid_from": "2020", "valid_to": None, "sources": [SHA],
                    "confidence": "high", "comment": None, "status": "approved",
                    "author": "local:anna", "reviewer": "local:boris",
                    "review_reason": "two videos",
                    "reviewed_at": "2024-05-01T10:00:00.000000Z"}],
        "acts": [], "cases": []}
    doc.update(changes)
    return doc


@given(st.text(max_size=40))
def test_cell_escaping_is_exact_and_defuses_formulas(value: str) -> None:
    escaped = escape_cell(value)
    assert unescape_cell(escaped) == value
    if escaped[:1] in ("=", "+", "-", "@", "\t", "\r"):  # left alone: only a plain number
        assert escaped == value
        assert re.fullmatch(r"-[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", value)


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+2", "'=1+2"), ("+7 commands", "'+7 commands"), ("@SUM(A1)", "'@SUM(A1)"),
    ("-2+3", "'-2+3"), ("\tx", "'\tx"), ("'quoted", "''quoted"), ("-27.4955", "-27.4955"),
    ("1e-5", "1e-5"), ("plain", "plain"), ("", "")])
def test_dangerous_cells_get_a_quote(value: str, expected: str) -> None:
    assert escape_cell(value) == expected


@given(st.lists(st.lists(st.text(max_size=20), min_size=2, max_size=2), max_size=5))
def test_csv_cells_survive_a_round_trip(rows: list[list[str]]) -> None:
    clean = [[c.replace("\r", "") for c in row] for row in rows]  # csv reads \r\n as \n
    data = write_csv(("a", "b"), clean)
    assert data.startswith("\ufeff".encode())
    back = read_csv(data, "t.csv", ("a", "b"))
    assert [[r["a"], r["b"]] for r in back] == clean


@pytest.mark.parametrize(("data", "code"), [
    (b'{"a": 1, "a": 2}', "duplicate-key"),
    (b'{"a": NaN}', "bad-json"),
    (b"[" * 100_000 + b"]" * 100_000, "bad-json"),
    (b'{"a": "\xff"}', "bad-encoding"),
    (b'{"a": ', "bad-json"),
    (b"1" * 5000, "bad-json"),  # more digits than Python converts
])
def test_hostile_json_is_refused_by_name(data: bytes, code: str) -> None:
    assert _code(lambda: parse_json(data, "the file")) == code


def test_only_regular_files_are_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # reading it would block: refused before any read
    assert _code(lambda: open_regular(fifo)) == "unreadable"
    assert _code(lambda: open_regular(tmp_path)) == "unreadable"
    assert _code(lambda: open_regular(tmp_path / "absent.json")) == "not-found"
    (tmp_path / "file.json").write_bytes(b"{}")
    with open_regular(tmp_path / "file.json") as handle:
        assert handle.read() == b"{}"


def test_reads_stop_at_the_limit() -> None:
    with pytest.raises(TooLargeError, match="larger than 10 bytes"):
        read_bounded(io.BytesIO(b"x" * 11), "the file", 10)
    assert read_bounded(io.BytesIO(b"x" * 10), "the file", 10) == b"x" * 10


def _zip(members: list[tuple[str, bytes]], flag: int = 0) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we want
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, body in members:
                info = zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.flag_bits |= flag
                archive.writestr(info, body)
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "code"), [
    (b"not a zip", "bad-zip"),
    (_zip([("manifest.csv", b"key,value\r\n")])[:40], "bad-zip"),
    (_zip([("../../etc/passwd", b"x")]), "zip-member"),
    (_zip([("/abs/units.csv", b"x")]), "zip-member"),
    (_zip([("units.csv", b"x"), ("units.csv", b"y")]), "zip-member"),
    (_zip([(f"extra{i}.csv", b"") for i in range(40)]), "zip-member"),
    (_zip([("units.csv", b"\0" * 2_000_000)]), "too-large"),  # a bomb: 2 MB from ~2 KB
])
def test_hostile_archives_are_refused_by_name(data: bytes, code: str) -> None:
    assert _code(lambda: read_zip(data, "the archive", TABLES, limit=1_000_000)) == code


def test_an_archive_round_trips_to_the_same_document() -> None:
    doc = parse_json(json.dumps(_doc()).encode(), "x")
    back = from_zip(to_zip(doc))
    assert back == doc
    assert _code(lambda: from_zip(_zip([("units.csv", b"id\r\n")]))) == "bad-manifest"
    members = _members(to_zip(doc))
    members["unit_names.csv"] += b"nobody,en,Ghost\r\n"
    assert _code(lambda: from_zip(_zip(list(members.items())))) == "dangling-row"
    members = _members(to_zip(doc))
    members["units.csv"] = b"id,salt\r\n"
    assert _code(lambda: from_zip(_zip(list(members.items())))) == "bad-csv"


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_an_approved_claim_arrives_pending_with_its_review_noted() -> None:
    plan = parse_document(_doc())
    [claim] = plan.claims
    assert (claim.status, claim.reviewer, claim.review_reason, claim.reviewed_at) == (
        ClaimStatus.PENDING_REVIEW, None, None, None)
    assert claim.author == "local:anna"
    assert "approved on the exporting instance by local:boris" in plan.review_notes[CLAIM]
    assert plan.units[0].salt == "0" * 32  # kept, so digests can be matched


def _claim(**changes: Any) -> dict[str, Any]:
    return _doc(claims=[{**_doc()["claims"][0], **changes}])


@pytest.mark.parametrize(("doc", "code"), [
    (_doc(format="something-else"), "not-a-catalogue"),
    (_doc(version=2), "unsupported-version"),
    (_doc(version=True), "unsupported-version"),
    (_doc(extra=[]), "unknown-field"),
    (_doc(units=[{**_doc()["units"][0], "home_address": "x"}]), "red-line-field"),
    (_doc(persons=[{**_doc()["persons"][0], "identifiers": [
        {"kind": "badge_number", "value": "1", "telegram": "@x"}]}]), "red-line-field"),
    (_doc(units=[_doc()["units"][0]] * 2), "duplicate-id"),
    (_doc(units=[{**_doc()["units"][0], "salt": "short"}]), "bad-salt"),
    (_doc(units=[{**_doc()["units"][0], "parent_id": UNIT}]), "unit-cycle"),
    (_doc(units="all of them"), "bad-field"),
    (_claim(status="rejected", review_reason=None), "reason-required"),
    (_claim(status="pending_review"), "bad-review-state"),
    (_claim(statement="unit_present_at_incident"), "statement-mismatch"),
    (_claim(sources=[]), "sources-required"),
    (_claim(reviewer="bad\nactor"), "bad-actor"),
    (_doc(acts=[{"id": CLAIM, "incident_id": UNIT, "type": "beating",
                 "perpetrator": {"kind": "unit", "person_id": PERSON}}]),
     "perpetrator-mismatch"),
])
def test_bad_documents_are_refused_with_the_schema_codes(doc: dict[str, Any],
                                                         code: str) -> None:
    assert _code(lambda: parse_document(doc)) == code


def test_errors_name_the_record() -> None:
    doc = _doc(units=[{**_doc()["units"][0], "type": ""}])
    with pytest.raises(BadInputError, match=rf"units\[0\] \({UNIT}\): unit.type"):
        parse_document(doc)
