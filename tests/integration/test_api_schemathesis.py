"""Schemathesis against the OpenAPI description the server serves, on each real database.

Every operation of ``/api/v1/openapi.json`` gets generated requests: valid ones (as the
description defines them) as a coordinator and as a viewer, and invalid ones as a
coordinator. Path parameters are both generated and taken from real records, so that
requests reach past the lookups into the code that changes things. Every answer must be
one the description documents: no server error, a documented status code, a documented
content type, a body that matches its schema, and the documented headers; an invalid
request must be refused (4xx). Rare answers the generator does not reach on its own
(throttled logins, oversized bodies, conflicts, an upload already held) are sent by hand
and checked against the description with the same checks.

The runs are bounded and deterministic: :data:`EXAMPLES` derandomised examples per
operation and mode (fewer as a viewer), with no example database, so a run is the same
every time: 10 (5 as a viewer) in the normal suite, about a minute on both back ends;
``SPRAVA_SLOW=1`` runs 20 (10).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import API_PASSWORD, SLOW, Api, make_api, new_instance
from sprava.accounts import service
from sprava.api.app import JSON_MAX, PREFIX
from sprava.inbox.service import Inbox

EXAMPLES = 20 if SLOW else 10
VIEWER_EXAMPLES = EXAMPLES // 2  # a viewer is turned away at most doors: fewer say as much
CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance,
               response_schema_conformance, response_headers_conformance]
RUN = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
               phases=[Phase.explicit, Phase.generate, Phase.shrink], print_blob=False,
               suppress_health_check=[HealthCheck.too_slow])


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (seed, 40, 200)).save(out, "PNG")
    return out.getvalue()


@dataclass
class Fuzz:
    api: Api
    schema: Any  # schemathesis OpenApiSchema
    real: dict[str, Any]  # path parameter → a record that exists

    def operations(self) -> Iterator[Any]:
        for result in self.schema.get_all_operations():
            yield result.ok()  # raises if the description has an operation it cannot read

    def operation(self, method: str, path: str) -> Any:
        return self.schema[PREFIX + path][method]


def _seed(api: Api) -> dict[str, Any]:
    def ok(method: str, path: str, role: str, **kwargs: Any) -> Any:
        response = api.call(method, PREFIX + path, role, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    sha = ok("POST", "/items", "investigator", params={"name": "a.png"},
             content=_png(1))["sha256"]
    incident = ok("POST", "/incidents", "investigator", json={
        "title": "Okrestina", "start": "2020-08-12T00:00:00+03:00",
        "place": {"name": "Okrestina detention centre"}})["id"]
    act = ok("POST", "/acts", "investigator", json={"incident_id": incident,
                                                     "type": "beating"})["id"]
    unit = ok("POST", "/units", "investigator", json={"names": {"en": "Detention centre"},
                                                      "type": "detention centre"})["id"]
    person = ok("POST", "/persons", "investigator", json={"name": "S. Sidorov"})["id"]
    claim = ok("POST", "/claims", "investigator", params={"submit": "true"}, json={
        "statement": "person_commanded_unit", "subject": {"kind": "person", "id": person},
        "object": {"kind": "unit", "id": unit}, "sources": [sha],
        "confidence": "high"})["id"]
    case = ok("POST", "/cases", "investigator", json={"title": "Okrestina",
                                                      "recipient": "Prosecutor"})["id"]
    target = ok("POST", "/users", "coordinator", json={
        "username": "target", "role": "investigator"})["account"]["id"]
    spare = ok("POST", "/auth/tokens", "coordinator", json={"name": "spare"})["token"]["id"]
    submission, inbox_file = _inbox(api, ok)
    return {"sha256": sha, "incident_id": incident, "act_id": act, "unit_id": unit,
            "person_id": person, "claim_id": claim, "case_id": case, "account_id": target,
            "token_id": spare, "code": "beating", "index": 0,
            "submission_id": submission, "file_id": inbox_file}


def _inbox(api: Api, ok: Any) -> tuple[str, str]:
    """The coordinator an inbox recipient with its key unlocked for its token, and one
    insider submission with a file: its id and the file's."""
    app = api.client.app  # type: ignore[attr-defined]
    app.state.inbox = Inbox(api.instance)
    ok("POST", "/inbox/recipients", "coordinator",
       json={"account_id": api.accounts["coordinator"].id})  # type: ignore[attr-defined]
    ok("POST", "/inbox/key", "coordinator", json={"password": API_PASSWORD})
    assert api.call("POST", f"{PREFIX}/inbox/unlock", "coordinator",
                    json={"password": API_PASSWORD}).status_code == 204
    sent = TestClient(app).post("/inbox/submit", files=[
        ("message", (None, "Orders attached.")), ("files", ("a.txt", b"text", "text/plain"))])
    assert sent.status_code == 200, sent.text
    [summary] = ok("GET", "/inbox/submissions", "coordinator")["items"]
    read = ok("GET", f"/inbox/submissions/{summary['id']}", "coordinator")
    return str(summary["id"]), str(read["posts"][0]["files"][0]["id"])


@pytest.fixture(scope="module")
def fuzz(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    instance = new_instance(tmp_path_factory.mktemp("fuzz") / "instance", module_database_url,
                            inbox_kdf_memory_mb=1, inbox_kdf_passes=1)
    api = make_api(instance)
    try:
        real = _seed(api)
        app = api.client.app  # type: ignore[attr-defined]
        yield Fuzz(api, schemathesis.openapi.from_asgi(f"{PREFIX}/openapi.json", app), real)
    finally:
        shutdown_lifespans()
        api.client.close()  # type: ignore[attr-defined]
        instance.close()


def _strategy(fuzz: Fuzz, operation: Any, mode: GenerationMode,
              headers: dict[str, str]) -> Any:
    generated = operation.as_strategy(mode, headers=headers)
    names = [p.name for p in operation.path_parameters]
    if not names:
        return generated
    return st.one_of(generated, operation.as_strategy(
        mode, headers=headers, path_parameters={n: fuzz.real[n] for n in names}))


def negatable(operation: Any) -> bool:
    """Whether a request to the operation can be made invalid: it takes a body, a query,
    or a path parameter that is not free text. (Any text is a valid ``{claim_id}``: the
    server, not the description, tells an id from other text.)"""
    described = operation.definition.raw
    parameters = described.get("parameters", [])
    return "requestBody" in described or any(
        p["in"] == "query" or (p["in"] == "path" and p["schema"].get("type") != "string")
        for p in parameters)


def _run(fuzz: Fuzz, role: str, mode: GenerationMode, checks: list[Any],
         examples: int = EXAMPLES) -> dict[str, str]:
    """Failures by operation: what schemathesis reports for the first failing example."""
    headers = fuzz.api.headers(role)
    failures = {}
    for operation in fuzz.operations():
        if mode is GenerationMode.NEGATIVE and not negatable(operation):
            continue

        @settings(RUN, max_examples=examples)
        @given(case=_strategy(fuzz, operation, mode, headers))
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=checks)

        try:
            check()
        except Exception as exc:  # collected, and reported together below
            failures[operation.label] = str(exc)
    return failures


def _report(failures: dict[str, str]) -> str:
    return "\n\n".join(f"=== {label}\n{text}" for label, text in failures.items())


@pytest.mark.parametrize(("role", "examples"), [("coordinator", EXAMPLES),
                                                ("viewer", VIEWER_EXAMPLES)])
def test_valid_requests_get_documented_answers(fuzz: Fuzz, role: str, examples: int) -> None:
    failures = _run(fuzz, role, GenerationMode.POSITIVE, CONFORMANCE, examples)
    assert not failures, _report(failures)


def test_invalid_requests_are_refused_as_documented(fuzz: Fuzz) -> None:
    failures = _run(fuzz, "coordinator", GenerationMode.NEGATIVE,
                    [*CONFORMANCE, negative_data_rejection])
    assert not failures, _report(failures)


def _conforms(fuzz: Fuzz, method: str, path: str, response: Any) -> None:
    case = fuzz.operation(method, path).Case()
    case.validate_response(response, checks=CONFORMANCE)


def test_rare_answers_conform_too(fuzz: Fuzz) -> None:
    """Answers the generator seldom reaches, sent by hand and checked the same way."""
    bearer = fuzz.api.headers("investigator")
    acc, _ = service.create_account(fuzz.api.instance, {
        "username": "throttled", "role": "viewer", "password": API_PASSWORD},
        actor="local:test")
    with TestClient(fuzz.api.client.app, client=("203.0.113.50", 1)) as client:  # type: ignore[attr-defined]
        answers = []
        for _ in range(fuzz.api.instance.settings.login_max_failures + 1):
            answers.append(client.post(f"{PREFIX}/auth/login", json={
                "username": acc.username, "password": "not the passphrase"}))
        assert [a.status_code for a in answers][-2:] == [401, 429]
        for answer in answers[-2:]:
            _conforms(fuzz, "POST", "/auth/login", answer)

        held = client.post(f"{PREFIX}/items", params={"name": "again.png"}, content=_png(1),
                           headers=bearer)
        assert held.status_code == 200
        _conforms(fuzz, "POST", "/items", held)

        def chunks() -> Iterator[bytes]:
            yield b'{"title": "'
            for _ in range(JSON_MAX // 65536 + 1):
                yield b"a" * 65536
            yield b'"}'

        json_type = {**bearer, "Content-Type": "application/json"}
        for content in (b"x" * (JSON_MAX + 1), chunks()):
            too_large = client.post(f"{PREFIX}/incidents", content=content, headers=json_type)
            assert too_large.status_code == 413
            _conforms(fuzz, "POST", "/incidents", too_large)
        for content in (b'{"title": ', b"\xff\xfe", b"[1, 2"):
            malformed = client.post(f"{PREFIX}/units", content=content, headers=json_type)
            assert malformed.status_code == 422
            _conforms(fuzz, "POST", "/units", malformed)

        claim = fuzz.real["claim_id"]
        approved = client.post(f"{PREFIX}/claims/{claim}/approve",
                               headers=fuzz.api.headers("coordinator"))
        assert approved.status_code in (200, 409)  # the fuzzing may have moved it on
        again = client.post(f"{PREFIX}/claims/{claim}/approve",
                            headers=fuzz.api.headers("coordinator"))
        assert again.status_code == 409
        _conforms(fuzz, "POST", "/claims/{claim_id}/approve", again)

        for path in ("/ledger/key", "/ledger/checkpoint"):
            for role in ("investigator", "viewer"):
                answer = client.get(PREFIX + path, headers=fuzz.api.headers(role))
                assert answer.status_code == (200 if role == "investigator" else 403)
                _conforms(fuzz, "GET", path, answer)

