"""Hostile input against the JSON API, on each real database.

* Markup in any text field is stored as sent and comes back escaped: no response body
  holds ``<`` or ``>`` as such, while the JSON value is exactly what was sent.
* SQL injection attempts (and NUL, wildcards, very long and Cyrillic text) in every query
  parameter and path parameter of the served description fail harmlessly: a refusal or
  an empty result, never a server error, and every table is as it was.
* Red-line fields (addresses, phones, relatives, private accounts) in any request body
  are refused with 422 ``red-line-field`` and a message saying why; nothing is recorded.
* No endpoint does face matching or recognition, and the description has no field for
  what the red lines forbid.
* Oversized bodies get 413; an upload beyond ``upload_max_mb`` leaves nothing behind:
  no item, no blob, no temporary file. Malformed JSON gets 422 in the one error shape.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, inspect, select

from conftest import API_PASSWORD, Api, make_api, new_instance
from sprava.api.app import JSON_MAX, PREFIX
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import ledger_leaf, metadata
from sprava.domain.catalogue import RED_LINE_MESSAGE, is_red_line_key
from sprava.inbox.service import Inbox

MARKUP = '<script>alert("sprava")</script><img src=x onerror=alert(1)>&amp;'
UPLOAD_MAX_MB = 1
READ_WRITES = ("search_", "ledger_", "catalogue_change")
HOSTILE = [
    "' OR 1=1 --", '"; DROP TABLE incident; --', "1; DELETE FROM item", "%", "_", "%' OR '%'='",
    ") OR (1=1", "\\", "\x00", "beating\x00' OR 1=1", "x" * 10_000, "Мінск", "Минск' OR ''='",
    "ü" * 300, "*", "0x1f", "-1", "99999999999999999999999",
]


def png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (seed, 90, 30)).save(out, "PNG")
    return out.getvalue()


@dataclass
class Hostile:
    api: Api
    real: dict[str, str]  # path parameter → a record that exists

    def call(self, method: str, path: str, role: str | None = "coordinator",
             **kwargs: Any) -> Any:
        return self.api.call(method, PREFIX + path, role, **kwargs)

    def ok(self, method: str, path: str, role: str = "coordinator", **kwargs: Any) -> Any:
        response = self.call(method, path, role, **kwargs)
        assert response.status_code < 300, response.text
        assert_escaped(response)
        return response.json()

    def description(self) -> dict[str, Any]:
        found: dict[str, Any] = self.call("GET", "/openapi.json", None).json()
        return found

    def counts(self) -> dict[str, int]:
        """Rows in every table of the database but those a read may rightly write: the
        search index catching up, and the custody record of a read of a person."""
        engine = self.api.instance.engine
        present = set(inspect(engine).get_table_names())
        with read_transaction(engine) as conn:
            return {name: int(conn.execute(select(func.count()).select_from(table))
                              .scalar_one())
                    for name, table in metadata.tables.items()
                    if name in present and not name.startswith(READ_WRITES)}


@pytest.fixture(scope="module")
def hostile(module_database_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    instance = new_instance(tmp_path_factory.mktemp("hostile") / "instance",
                            module_database_url, upload_max_mb=UPLOAD_MAX_MB,
                            inbox_kdf_memory_mb=1, inbox_kdf_passes=1)
    api = make_api(instance)
    h = Hostile(api, {})
    try:
        sha = h.ok("POST", "/items", "investigator", params={"name": "a.png"},
                   content=png(1))["sha256"]
        incident = h.ok("POST", "/incidents", json={
            "title": "Okrestina", "start": "2020-08-12T00:00:00+03:00",
            "place": {"name": "Okrestina"}, "violation_types": ["beating"]})["id"]
        act = h.ok("POST", "/acts", json={"incident_id": incident, "type": "beating"})["id"]
        unit = h.ok("POST", "/units", json={"names": {"en": "OMON"}, "type": "omon"})["id"]
        person = h.ok("POST", "/persons", json={"name": "S. Sidorov"})["id"]
        claim = h.ok("POST", "/claims", json={
            "statement": "unit_present_at_incident", "subject": {"kind": "unit", "id": unit},
            "object": {"kind": "incident", "id": incident}, "sources": [sha],
            "confidence": "low"})["id"]
        case = h.ok("POST", "/cases", json={"title": "c", "recipient": "r"})["id"]
        account = h.ok("POST", "/users", json={"username": "target",
                                                "role": "viewer"})["account"]["id"]
        token = h.ok("POST", "/auth/tokens", json={"name": "spare"})["token"]["id"]
        submission, inbox_file = _inbox(h)
        h.real.update({
            "sha256": sha, "incident_id": incident, "act_id": act, "unit_id": unit,
            "person_id": person, "claim_id": claim, "case_id": case, "account_id": account,
            "token_id": token, "code": "beating", "index": "0",
            "submission_id": submission, "file_id": inbox_file})
        yield h
    finally:
        api.client.close()  # type: ignore[attr-defined]
        instance.close()


def _inbox(h: Hostile) -> tuple[str, str]:
    """The coordinator an inbox recipient with its key unlocked, and one insider
    submission with a file: its id and the file's."""
    app = h.api.client.app  # type: ignore[attr-defined]
    app.state.inbox = Inbox(h.api.instance)
    coordinator = h.api.accounts["coordinator"].id  # type: ignore[attr-defined]
    h.ok("POST", "/inbox/recipients", json={"account_id": coordinator})
    h.ok("POST", "/inbox/key", json={"password": API_PASSWORD})
    assert h.call("POST", "/inbox/unlock", json={"password": API_PASSWORD}
                  ).status_code == 204
    sent = TestClient(app).post("/inbox/submit", files=[
        ("message", (None, MARKUP)), ("files", ("a.txt", b"text", "text/plain"))])
    assert sent.status_code == 200, sent.text
    [summary] = h.ok("GET", "/inbox/submissions")["items"]
    read = h.ok("GET", f"/inbox/submissions/{summary['id']}")
    assert read["posts"][0]["message"] == MARKUP  # and escaped, as ok() checks
    return summary["id"], read["posts"][0]["files"][0]["id"]


def assert_escaped(response: Any) -> None:
    """A JSON body never carries markup as such (it is \\u-escaped)."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return
    raw = response.content.lower()
    assert b"<script" not in raw
    assert b"<img" not in raw
    assert b"<" not in raw
    assert b">" not in raw
    assert response.headers["x-content-type-options"] == "nosniff"


def _operations(h: Hostile) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in h.description()["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path.removeprefix(PREFIX), operation


def _filled(h: Hostile, path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: h.real[m.group(1)], path)


# --- markup ------------------------------------------------------------------------------

def test_markup_in_every_text_field_comes_back_escaped(hostile: Hostile) -> None:
    h, m = hostile, MARKUP
    incident = h.ok("POST", "/incidents", json={
        "title": m, "description": f"{m}\n{m}", "start": "2020-08-10T22:40:00+03:00",
        "place": {"name": m, "admin_area": m}})
    assert (incident["title"], incident["description"], incident["place"]["name"],
            incident["place"]["admin_area"]) == (m, f"{m}\n{m}", m, m)
    h.ok("POST", f"/incidents/{incident['id']}/status", json={"status": "corroborated"})
    h.ok("POST", f"/incidents/{incident['id']}/status", json={"status": "reported",
                                                              "note": m})
    notes = [c["note"] for c in h.ok("GET", f"/incidents/{incident['id']}/history")["items"]]
    assert m in notes

    act = h.ok("POST", "/acts", json={
        "incident_id": incident["id"], "type": "beating", "description": m,
        "victim": {"pseudonym": m}, "perpetrator": {"kind": "unknown", "description": m}})
    assert (act["description"], act["victim"]["pseudonym"],
            act["perpetrator"]["description"]) == (m, m, m)

    unit = h.ok("POST", "/units", json={"names": {"en": m, "be": m}, "type": m,
                                        "area_of_operation": m, "notes": m})
    assert (unit["names"], unit["type"], unit["area_of_operation"], unit["notes"]) == (
        {"be": m, "en": m}, m, m, m)

    person = h.ok("POST", "/persons", json={
        "name": m, "rank": m, "role": m, "notes": m,
        "identifiers": [{"kind": "badge_number", "value": m}]})
    assert (person["name"], person["rank"], person["role"], person["notes"],
            person["identifiers"]) == (m, m, m, m, [{"kind": "badge_number", "value": m}])

    claim = h.ok("POST", "/claims", "investigator", json={
        "statement": "person_member_of_unit", "subject": {"kind": "person", "id": person["id"]},
        "object": {"kind": "unit", "id": unit["id"]}, "sources": [h.real["sha256"]],
        "confidence": "low", "role": m, "comment": m})
    assert (claim["role"], claim["comment"]) == (m, m)
    edited = h.ok("PATCH", f"/claims/{claim['id']}", "investigator",
                  json={"comment": f"{m} (edited)"})
    assert edited["comment"] == f"{m} (edited)"
    h.ok("POST", f"/claims/{claim['id']}/submit", "investigator")
    reviewed = h.ok("POST", f"/claims/{claim['id']}/approve", json={"reason": m})
    assert reviewed["review_reason"] == m

    case = h.ok("POST", "/cases", json={"title": m, "recipient": m, "description": m})
    assert (case["title"], case["recipient"], case["description"]) == (m, m, m)
    term = h.ok("POST", "/vocabulary", json={"code": "markup-test", "labels": {"en": m},
                                             "description": m})
    assert (term["labels"], term["description"]) == ({"en": m}, m)

    reads = {
        f"/incidents/{incident['id']}": ("title", m), f"/acts/{act['id']}": ("description", m),
        f"/units/{unit['id']}": ("notes", m), f"/persons/{person['id']}": ("name", m),
        f"/claims/{claim['id']}": ("review_reason", m), f"/cases/{case['id']}": ("title", m),
        "/vocabulary/markup-test": ("description", m)}
    for path, (key, value) in reads.items():
        assert h.ok("GET", path)[key] == value, path
    for path in ("/incidents", "/acts", "/units", "/persons", "/claims", "/cases",
                 "/vocabulary", f"/units/{unit['id']}/timeline", "/memberships"):
        assert _holds(h.ok("GET", path, params={"limit": 500}), m), path


def _holds(value: Any, text: str) -> bool:
    """Whether ``text`` is one of the strings anywhere inside a JSON value."""
    if isinstance(value, dict):
        return any(_holds(v, text) for v in value.values())
    if isinstance(value, list):
        return any(_holds(v, text) for v in value)
    return value == text


def test_markup_in_names_and_in_error_messages_is_escaped(hostile: Hostile) -> None:
    h = hostile
    name = "<img src=x onerror=alert(1)>.png"
    uploaded = h.ok("POST", "/items", "investigator", params={"name": name}, content=png(7))
    assert uploaded["name"] == name
    assert name in [i["name"] for i in h.ok("GET", "/items", params={"limit": 500})["items"]]
    assert h.ok("GET", f"/items/{uploaded['sha256']}")["names"][0]["name"] == name
    for method, path, body in (
            ("POST", "/incidents", {MARKUP: 1}),
            ("POST", "/units", {"names": {"en": "x"}, "type": {"<script>": 1}}),
            ("GET", f"/vocabulary/{quote(MARKUP, safe='')}", None),
            ("POST", f"/claims/{quote(MARKUP, safe='')}/submit", None)):
        refused = h.call(method, path, json=body)
        assert 400 <= refused.status_code < 500
        assert_escaped(refused)


def test_sql_in_stored_text_is_only_text(hostile: Hostile) -> None:
    h = hostile
    before = h.counts()
    for value in HOSTILE[:8]:
        made = h.ok("POST", "/units", json={"names": {"en": value}, "type": "omon",
                                            "notes": value})
        assert h.ok("GET", f"/units/{made['id']}")["names"]["en"] == value
    after = h.counts()
    assert after["unit"] == before["unit"] + 8
    assert after["incident"] == before["incident"]


# --- injection in parameters -------------------------------------------------------------

# Hostile values that are, in fact, valid for a parameter: "-1" is a time (a Unix
# timestamp, 1969-12-31T23:59:59Z) and every incident started after it. Each must give
# exactly the answer without the filter.
VALID = {("/incidents", "since", "-1")}
# Paths where a hostile value is ordinary text to look for, which may well be found
# ("1" in "' OR 1=1 --" is a word): for them only errors and escaping are checked.
MAY_MATCH = {"/search"}


def _harmless(response: Any, may_match: bool = False) -> str | None:
    """What is wrong with the answer to a hostile parameter, or None."""
    if response.status_code >= 500:
        return f"server error {response.status_code}"
    if response.status_code >= 300 and not 400 <= response.status_code < 500:
        return f"unexpected {response.status_code}"
    assert_escaped(response)
    if response.status_code < 300 and not may_match:
        body = response.json()
        if isinstance(body, dict) and "items" in body and (body["items"] or body["total"]):
            return f"matched something: {str(body)[:200]}"
    return None


def test_injection_in_every_query_parameter_fails_harmlessly(hostile: Hostile) -> None:
    h = hostile
    before = h.counts()
    wrong, tried = [], 0
    for method, path, operation in _operations(h):
        if method != "GET":
            continue
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            for value in HOSTILE:
                tried += 1
                response = h.call(method, _filled(h, path), params={parameter["name"]: value})
                if (path, parameter["name"], value) in VALID:
                    unfiltered = h.call(method, _filled(h, path))
                    problem = None if response.json() == unfiltered.json() else "differs"
                else:
                    problem = _harmless(response, path in MAY_MATCH)
                if problem:
                    wrong.append(f"{path}?{parameter['name']}={value[:30]!r}: {problem}")
    assert tried > 200
    assert not wrong, "\n".join(wrong)
    assert h.counts() == before
    assert h.ok("GET", f"/incidents/{h.real['incident_id']}")["title"] == "Okrestina"


def test_injection_in_every_path_parameter_fails_harmlessly(hostile: Hostile) -> None:
    h = hostile
    before = h.counts()
    wrong = []
    for method, path, _operation in _operations(h):
        if method != "GET" or "{" not in path:
            continue
        for name in re.findall(r"\{(\w+)\}", path):
            for value in HOSTILE:
                target = _filled(h, path.replace("{" + name + "}", quote(value, safe="")))
                response = h.call(method, target)
                if response.status_code >= 500 or not 400 <= response.status_code < 500:
                    wrong.append(f"{path} {name}={value[:30]!r}: {response.status_code}")
                assert_escaped(response)
    assert not wrong, "\n".join(wrong)
    assert h.counts() == before


def test_injection_in_uploads_and_logins_fails_harmlessly(hostile: Hostile) -> None:
    h = hostile
    for i, value in enumerate(HOSTILE):
        answer = h.call("POST", "/items", "investigator", params={"name": value},
                        content=png(100 + i))
        assert answer.status_code in (200, 201, 422), (value[:30], answer.text)
        if answer.status_code < 300:
            assert answer.json()["name"] == value
        sourced = h.call("POST", "/items", "investigator",
                         params={"name": "s.png", "source": value}, content=png(150 + i))
        assert sourced.status_code in (200, 201, 422), (value[:30], sourced.text)
    with TestClient(h.api.client.app, client=("203.0.113.99", 1)) as client:  # type: ignore[attr-defined]
        for value in HOSTILE:
            answer = client.post(f"{PREFIX}/auth/login", json={"username": value,
                                                               "password": value})
            assert answer.status_code in (401, 422, 429), (value[:30], answer.text)
    assert h.ok("GET", "/users")["total"] >= 1


# --- red lines ---------------------------------------------------------------------------

RED_LINE_BODIES = [
    {"address": "Nezavisimosti 1"}, {"home_address": "x"}, {"homeAddress": "x"},
    {"phone": "+375 29 000 00 00"}, {"mobile_number": "x"}, {"telephone": "x"},
    {"relatives": ["mother"]}, {"mother_name": "x"}, {"next_of_kin": "x"}, {"spouse": "x"},
    {"telegram": "@x"}, {"vk": "id1"}, {"instagramHandle": "x"}, {"social_media": ["x"]},
    {"email": "a@b.c"}, {"адрес": "x"}, {"телефон": "x"},
    {"notes": {"contacts": [{"phone_number": "x"}]}},
    {"place": {"name": "x", "street": "Lenina 5"}},
    {"identifiers": [{"kind": "badge_number", "value": "1", "facebook": "x"}]},
]


def _red_line_key(value: Any) -> str | None:
    """The first field name inside ``value`` that the red lines forbid."""
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, inner in items:
        if isinstance(key, str) and is_red_line_key(key):
            return key
        found = _red_line_key(inner)
        if found:
            return found
    return None


def test_red_line_fields_in_every_body_are_refused_and_nothing_is_recorded(
        hostile: Hostile) -> None:
    h = hostile
    with read_transaction(h.api.instance.engine) as conn:
        leaves = conn.execute(select(func.count()).select_from(ledger_leaf)).scalar_one()
    wrong, operations = [], 0
    for method, path, operation in _operations(h):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        operations += 1
        for body in RED_LINE_BODIES:
            response = h.call(method, _filled(h, path), json=body)
            error = response.json().get("error", {})
            if response.status_code != 422 or error.get("code") != "red-line-field":
                wrong.append(f"{method} {path} {body}: {response.status_code} {response.text}")
            elif RED_LINE_MESSAGE not in error["message"] or not error.get("hint"):
                wrong.append(f"{method} {path} {body}: does not say why: {error}")
            elif _red_line_key(body) not in error["message"]:
                wrong.append(f"{method} {path} {body}: does not name the field: {error}")
    assert operations >= 20
    assert not wrong, "\n".join(wrong)
    with read_transaction(h.api.instance.engine) as conn:
        assert conn.execute(select(func.count()).select_from(ledger_leaf)).scalar_one() == leaves


def _property_names(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "properties" and isinstance(inner, dict):
                yield from inner
            yield from _property_names(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _property_names(inner)


def test_the_description_has_no_red_line_field_and_no_face_matching(hostile: Hostile) -> None:
    description = hostile.description()
    names = set(_property_names(description))
    for _method, _path, operation in _operations(hostile):
        names.update(p["name"] for p in operation.get("parameters", []))
    assert "title" in names
    assert sorted(n for n in names if is_red_line_key(n)) == []
    recognition = re.compile(
        r"face[\s_-]*(match|recogn|search|compar|identif|id\b|verif|embed|print)|"
        r"recogni[sz]|biometric|facial", re.IGNORECASE)
    for method, path, operation in _operations(hostile):
        assert "face" not in path.lower()
        words = " ".join(str(operation.get(k, "")) for k in (
            "operationId", "summary", "description", "tags"))
        assert not recognition.search(words), (method, path)
        assert "face" not in str(operation.get("operationId", "")).lower()
    assert not recognition.search(description["info"].get("description", ""))


# --- sizes and shapes --------------------------------------------------------------------

def _chunks(total: int, size: int = 65536, prefix: bytes = b"", suffix: bytes = b""
            ) -> Iterator[bytes]:
    yield prefix
    sent = 0
    while sent < total:
        yield b"a" * min(size, total - sent)
        sent += size
    yield suffix


def test_oversized_json_bodies_get_413_and_change_nothing(hostile: Hostile) -> None:
    h = hostile
    before = h.counts()
    json_type = {"Content-Type": "application/json"}
    targets = [("POST", "/incidents", "coordinator"),
               ("PATCH", f"/persons/{h.real['person_id']}", "coordinator"),
               ("POST", "/auth/login", None)]
    for method, path, role in targets:
        for content in (b'{"title": "' + b"a" * JSON_MAX + b'"}',
                        _chunks(JSON_MAX + 1, prefix=b'{"title": "', suffix=b'"}')):
            response = h.call(method, path, role, content=content, headers=json_type)
            assert response.status_code == 413, (method, path, response.text)
            assert response.json()["error"]["code"] == "too-large"
    assert h.counts() == before


def test_an_upload_over_the_limit_gets_413_and_leaves_nothing(hostile: Hostile) -> None:
    h = hostile
    instance = h.api.instance
    limit = UPLOAD_MAX_MB * 1024 * 1024
    blobs = set(instance.blobs.digests())
    before = h.counts()
    for content in (b"\x01" * (limit + 1), _chunks(limit + 1)):
        response = h.call("POST", "/items", "uploader", params={"name": "big.bin"},
                          content=content, headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "too-large"
        assert h.counts() == before
        assert set(instance.blobs.digests()) == blobs
        assert instance.blobs.temp_count() == 0
    assert h.ok("GET", "/items", "uploader")["total"] == 0
    exactly = h.call("POST", "/items", "uploader", params={"name": "fits.bin"},
                     content=b"\x02" * limit)
    assert exactly.status_code == 201, exactly.text
    assert instance.blobs.temp_count() == 0


MALFORMED = [b'{"title": ', b"not json", b"\xff\xfe\x00", b"[1, 2", b'{"a": 1}}', b"",
             b"[]", b"null", b'"text"', b"NaN", b'{"title": NaN}',
             b'{"title": "x", "start": "2020-01-01T00:00:00+00:00", "place": {"name": "p", '
             b'"lat": Infinity, "lon": 1, "precision_m": 1}}']


def test_malformed_json_gets_422_in_the_one_error_shape(hostile: Hostile) -> None:
    h = hostile
    before = h.counts()
    for path in ("/incidents", "/units", "/auth/tokens"):
        for content in MALFORMED:
            for content_type in ("application/json", "text/plain"):
                response = h.call("POST", path, content=content,
                                  headers={"Content-Type": content_type})
                assert response.status_code == 422, (path, content, response.text)
                body = response.json()
                assert list(body) == ["error"]
                assert set(body["error"]) - {"hint"} == {"code", "message"}
                assert all(isinstance(v, str) and v for v in body["error"].values())
    assert h.counts() == before
