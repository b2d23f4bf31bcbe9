"""The catalogue in and out over HTTP: export with its custody record, import all or
nothing under the importer's account, SFM import, limits and bad files."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import Api, make_api, new_instance
from sprava.backends.db.catalogue_tables import incident, unit
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import ledger_leaf

P = "/api/v1"
SFM = ("unit:id:admin,unit:name,unit:related_unit_id:admin,person:id:admin,person:name,"
       "person:posting_role,person:posting_first_cited_date,person:posting:source\r\n"
       "u-top,Міністэрства ўнутраных спраў,,,,,,\r\n"
       "u-omon,Мінскі АМАП,u-top,p-1,Дзмітрый Балаба,Commander,2012,Report A p. 4\r\n")


def _leaf(api: Api, index: int) -> dict[str, object]:
    with read_transaction(api.instance.engine) as conn:
        raw = conn.execute(select(ledger_leaf.c.data)
                           .where(ledger_leaf.c.idx == index)).scalar_one()
    found: dict[str, object] = json.loads(raw)
    return found


def _count(api: Api, table: object) -> int:
    with read_transaction(api.instance.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _fill(api: Api) -> None:
    for body in ({"title": "Okrestina", "start": "2020-08-12T00:00:00+03:00",
                  "place": {"name": "Okrestina", "admin_area": "Minsk"},
                  "violation_types": ["beating"]},):
        assert api.call("POST", f"{P}/incidents", "investigator", json=body).status_code == 201
    assert api.call("POST", f"{P}/units", "investigator", json={
        "names": {"en": "Minsk OMON", "be": "АМАП Мінск"}, "type": "omon"}).status_code == 201
    assert api.call("POST", f"{P}/persons", "investigator",
                    json={"name": "S. Sidorov"}).status_code == 201


@pytest.fixture
def other(tmp_path: Path) -> Iterator[Api]:
    """A second instance to import into, on the embedded default whatever the first."""
    harness = make_api(new_instance(tmp_path / "other", f"sqlite:///{tmp_path / 'other.db'}"))
    try:
        yield harness
    finally:
        harness.client.close()  # type: ignore[attr-defined]
        harness.instance.close()


def test_an_export_is_the_file_with_its_digest_and_custody_event(api: Api) -> None:
    _fill(api)
    got = api.call("GET", f"{P}/catalogue/export", "coordinator", params={"format": "csv"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    assert "attachment" in got.headers["content-disposition"]
    assert got.headers["x-sprava-sha256"] == hashlib.sha256(got.content).hexdigest()
    with zipfile.ZipFile(io.BytesIO(got.content)) as bundle:
        assert any(n.startswith("persons") for n in bundle.namelist())
    event = _leaf(api, int(got.headers["x-sprava-leaf-index"]))
    assert event["kind"] == "catalogue_export"
    assert event["actor"] == "user:coordinator"
    assert event["export_sha256"] == got.headers["x-sprava-sha256"]

    bare = api.call("GET", f"{P}/catalogue/export", "coordinator", params={"persons": "false"})
    assert bare.status_code == 200
    assert json.loads(bare.content)["persons"] == []
    assert b"Sidorov" not in bare.content


def test_an_export_imports_elsewhere_under_the_importers_name(api: Api, other: Api) -> None:
    _fill(api)
    exported = api.call("GET", f"{P}/catalogue/export", "coordinator").content
    done = other.call("POST", f"{P}/catalogue/import", "coordinator", content=exported)
    assert done.status_code == 200, done.text
    assert done.json()["created"]["incidents"] == 1
    listed = other.call("GET", f"{P}/incidents", "viewer").json()
    assert [i["title"] for i in listed["items"]] == ["Okrestina"]
    again = other.call("POST", f"{P}/catalogue/import", "coordinator", content=exported)
    assert again.status_code == 200
    assert again.json()["skipped"]["incidents"] == 1
    assert _count(other, incident) == 1


def test_a_bad_import_stores_nothing(api: Api, other: Api) -> None:
    _fill(api)
    doc = json.loads(api.call("GET", f"{P}/catalogue/export", "coordinator").content)
    doc["units"].append({**doc["units"][0], "id": "not an id"})  # one bad record
    before = (_count(other, incident), _count(other, unit), _count(other, ledger_leaf))
    refused = other.call("POST", f"{P}/catalogue/import", "coordinator",
                         content=json.dumps(doc).encode())
    assert refused.status_code == 422, refused.text
    assert "units[1]" in refused.json()["error"]["message"]
    assert refused.json()["error"]["message"]
    for garbage in (b"", b"not json", b"PK\x03\x04 broken zip", b'{"format": "other"}'):
        answer = other.call("POST", f"{P}/catalogue/import", "coordinator", content=garbage)
        assert answer.status_code == 422, (garbage, answer.text)
    assert (_count(other, incident), _count(other, unit), _count(other, ledger_leaf)) == before


def test_an_import_past_its_limit_is_413_and_stores_nothing(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sprava.catalogue.exchange_files.MAX_BYTES", 1000)
    before = _count(api, ledger_leaf)
    body = json.dumps({"format": "sprava-catalogue", "version": 1,
                       "origin": "x" * 2000}).encode()
    answer = api.call("POST", f"{P}/catalogue/import", "coordinator", content=body)
    assert answer.status_code == 413
    assert "limit" in answer.json()["error"]["message"]
    assert _count(api, ledger_leaf) == before


def test_sfm_import_over_http_submits_commanders_for_review(api: Api) -> None:
    done = api.call("POST", f"{P}/catalogue/import-sfm", "coordinator",
                    params={"name": "sfm-belarus.csv", "lang": "be"}, content=SFM.encode())
    assert done.status_code == 200, done.text
    summary = done.json()
    assert summary["rows"] == 2
    item = api.call("GET", f"{P}/items/{summary['item_sha256']}", "coordinator").json()
    assert "sfm-belarus.csv" in json.dumps(item["names"])
    claims = api.call("GET", f"{P}/claims", "coordinator").json()["items"]
    assert claims
    assert {c["status"] for c in claims} == {"pending_review"}
    assert all(summary["item_sha256"] in c["sources"] for c in claims)
    units = api.call("GET", f"{P}/units", "viewer").json()["items"]
    names = {u["names"].get("be") for u in units}
    assert {"Мінскі АМАП", "Міністэрства ўнутраных спраў"} <= names


def test_only_coordinators_move_the_whole_catalogue(api: Api) -> None:
    for role in ("investigator", "reviewer", "uploader", "viewer"):
        assert api.call("GET", f"{P}/catalogue/export", role).status_code == 403
        assert api.call("POST", f"{P}/catalogue/import-sfm", role,
                        content=SFM.encode()).status_code == 403
    assert api.call("GET", f"{P}/catalogue/export").status_code == 401
