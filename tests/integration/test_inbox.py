"""The insider inbox end to end through HTTP (in process), on each real database: submit,
come back with the code, talk to the team; the team reads, replies and moves files into the
vault; wrong codes, guessing, hostile input and the pages' own rules."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import API_PASSWORD, Api, _free_port, make_api, new_instance, wait_for
from sprava.accounts import service, sessions
from sprava.api.app import create_app
from sprava.audit import verify_instance
from sprava.backends.db.account_tables import login_throttle
from sprava.backends.db.catalogue_tables import catalogue_change
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.inbox_tables import inbox_object, inbox_post, inbox_submission
from sprava.backends.db.tables import item_name, ledger_leaf, source
from sprava.inbox import age, codes
from sprava.inbox.codes import KdfParams
from sprava.inbox.pages import create_inbox_app
from sprava.inbox.service import Inbox
from sprava.inbox.throttle import GuessThrottle
from sprava.instance import Instance

API = "/api/v1/inbox"
OFFLINE = age.Identity.generate()  # the investigator's key, "made with age-keygen"
_CODE = re.compile(r'id="receipt-code">([^<]+)<')


@dataclass
class World:
    api: Api
    instance: Instance
    coordinator_id: str
    investigator_id: str
    inbox: Inbox = field(init=False)

    def __post_init__(self) -> None:
        self.inbox = self.api.client.app.state.inbox  # type: ignore[attr-defined]

    def call(self, method: str, path: str, role: str = "coordinator", **kwargs: Any) -> Any:
        return self.api.call(method, API + path, role, **kwargs)

    def ok(self, method: str, path: str, role: str = "coordinator", **kwargs: Any) -> Any:
        response = self.call(method, path, role, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def insider(self) -> TestClient:
        """A browser of its own: a cookie jar that starts empty."""
        return TestClient(self.api.client.app)  # type: ignore[attr-defined]

    def submit(self, client: TestClient | None = None, message: str = "", files: Any = (),
               **kwargs: Any) -> Any:
        parts: list[Any] = [("message", (None, message))]
        parts += [("files", f) for f in files]
        return (client or self.insider()).post("/inbox/submit", files=parts, **kwargs)

    def submitted(self, message: str = "", files: Any = ()) -> tuple[str, str]:
        """A new submission's receipt code and id."""
        before = {s["id"] for s in self.listing()}
        response = self.submit(message=message, files=files)
        assert response.status_code == 200, response.text
        found = _CODE.search(response.text)
        assert found is not None
        [new] = [s["id"] for s in self.listing() if s["id"] not in before]
        return found.group(1), new

    def listing(self) -> list[dict[str, Any]]:
        return list(self.ok("GET", "/submissions", params={"limit": 500})["items"])

    def login(self, client: TestClient, code: str) -> Any:
        return client.post("/inbox/login", data={"code": code}, follow_redirects=False)

    def counts(self) -> tuple[int, int, int, int]:
        """Rows of the inbox tables, and objects stored or in flight."""
        with read_transaction(self.instance.engine) as conn:
            rows = [int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                    for t in (inbox_submission, inbox_post, inbox_object)]
        store = self.inbox.store
        return (*rows, len(list(store.stored())) + len(list(store.tmp.iterdir())))

    def rows(self, *tables: Any) -> list[int]:
        with read_transaction(self.instance.engine) as conn:
            return [int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                    for t in tables]


@pytest.fixture(scope="module")
def world(module_database_url: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    instance = new_instance(tmp_path_factory.mktemp("inbox") / "instance", module_database_url,
                            inbox_kdf_memory_mb=1, inbox_kdf_passes=1, inbox_upload_max_mb=16,
                            inbox_message_max_kb=64)
    api = make_api(instance)
    api.client.app.state.inbox = Inbox(instance)  # type: ignore[attr-defined]
    coordinator = api.accounts["coordinator"].id  # type: ignore[attr-defined]
    investigator = api.accounts["investigator"].id  # type: ignore[attr-defined]
    try:
        w = World(api, instance, coordinator, investigator)
        closed = w.submit(message="too early")
        assert closed.status_code == 409  # no recipient has a key yet
        for account_id in (coordinator, investigator):
            w.ok("POST", "/recipients", json={"account_id": account_id})
        w.ok("POST", "/key", json={"password": API_PASSWORD})
        w.ok("POST", "/key", "investigator", json={"public_key": str(OFFLINE.recipient)})
        w.ok("POST", "/unlock", json={"password": API_PASSWORD})
        yield w
    finally:
        api.client.close()  # type: ignore[attr-defined]
        instance.close()


def test_an_insider_and_the_team_talk_and_a_file_reaches_the_vault(world: World) -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 300
    code, sid = world.submitted("Orders for 9 August attached.",
                                [("orders.pdf", pdf, "application/pdf"),
                                 ("roster.txt", b"unit 1\nunit 2\n", "text/plain")])
    summary = next(s for s in world.listing() if s["id"] == sid)
    assert (summary["posts"], summary["files"], summary["replies"]) == (1, 2, 0)
    assert re.fullmatch(r"[a-z]+ [a-z]+", summary["pseudonym"])

    read = world.ok("GET", f"/submissions/{sid}")
    [post] = read["posts"]
    assert post["message"] == "Orders for 9 August attached."
    assert [(f["name"], f["size"]) for f in post["files"]] == [
        ("orders.pdf", len(pdf)), ("roster.txt", 14)]
    assert post["files"][0]["media_type"] == "application/pdf"
    file_id = post["files"][0]["id"]
    download = world.call("GET", f"/submissions/{sid}/files/{file_id}")
    assert download.status_code == 200
    assert download.content == pdf
    assert "attachment" in download.headers["content-disposition"]

    assert world.ok("POST", f"/submissions/{sid}/replies",
                    json={"text": "Thank you. Is the second page dated?"}) == {"seq": 2}

    insider = world.insider()
    assert insider.get("/inbox/conversation", follow_redirects=False).status_code == 303
    entered = world.login(insider, code.upper().replace(" ", "  "))
    assert entered.status_code == 303
    cookie = entered.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/inbox" in cookie
    page = insider.get("/inbox/conversation")
    assert "Is the second page dated?" in page.text
    assert "Orders for 9 August" not in page.text  # the insider's own words are not shown back
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    more = insider.post("/inbox/conversation", files=[
        ("csrf", (None, csrf.group(1))), ("message", (None, "Yes: 8 August."))],
        follow_redirects=False)
    assert more.status_code == 303
    posts = world.ok("GET", f"/submissions/{sid}")["posts"]
    assert [(p["author"], p["message"]) for p in posts] == [
        ("insider", "Orders for 9 August attached."),
        ("staff", "Thank you. Is the second page dated?"), ("insider", "Yes: 8 August.")]
    assert posts[1]["actor"] == "user:coordinator"

    moved = world.ok("POST", f"/submissions/{sid}/files/{file_id}/vault")
    assert moved["status"] == "stored"
    assert moved["name"].startswith("insider-file-")
    assert moved["name"].endswith(".pdf")  # a neutral name, not the insider's own
    with read_transaction(world.instance.engine) as conn:
        names = conn.execute(select(item_name.c.name, source.c.name, item_name.c.actor)
                             .join(source, source.c.id == item_name.c.source_id)
                             .where(item_name.c.item_sha256 == moved["sha256"])).all()
    assert [tuple(n)[1:] for n in names] == [("insider submission", "user:coordinator")]
    assert world.ok("GET", f"/submissions/{sid}")["posts"][0]["files"][0][
        "vault_sha256"] == moved["sha256"]
    report = verify_instance(world.instance)
    assert report.ok, report.findings


def test_the_team_cannot_read_without_being_a_recipient_with_an_unlocked_key(
        world: World) -> None:
    _code, sid = world.submitted("for the recipients only")
    for role, code in (("reviewer", "not-a-recipient"), ("uploader", "forbidden"),
                       ("viewer", "forbidden")):
        answer = world.call("GET", f"/submissions/{sid}", role)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == code
    offline = world.call("POST", "/unlock", "investigator", json={"password": API_PASSWORD})
    assert offline.status_code == 422
    assert offline.json()["error"]["code"] == "key-offline"
    # an unlocked key is bound to the credential (here: a token) that unlocked it
    fresh = world.api.client.post("/api/v1/auth/login", json={  # type: ignore[attr-defined]
        "username": "coordinator", "password": API_PASSWORD})
    assert fresh.status_code == 200
    session = world.api.client.get(f"{API}/submissions/{sid}")  # type: ignore[attr-defined]
    assert session.status_code == 403
    assert session.json()["error"]["code"] == "inbox-locked"
    world.api.client.cookies.clear()  # type: ignore[attr-defined]
    # a missing or malformed id is simply not found
    for bad in ("nope", "00000000-0000-0000-0000-000000000000", "../../etc"):
        assert world.call("GET", f"/submissions/{bad}").status_code == 404
        assert world.call("GET", f"/submissions/{sid}/files/{bad}").status_code == 404


def test_recipients_are_managed_by_coordinators_only(world: World) -> None:
    target = world.api.accounts["reviewer"].id  # type: ignore[attr-defined]
    refused = world.call("POST", "/recipients", "investigator", json={"account_id": target})
    assert refused.status_code == 403
    viewer = world.api.accounts["viewer"].id  # type: ignore[attr-defined]
    wrong = world.call("POST", "/recipients", json={"account_id": viewer})
    assert wrong.json()["error"]["code"] == "not-eligible"
    again = world.call("POST", "/recipients", json={"account_id": world.coordinator_id})
    assert again.status_code == 409
    listed = world.ok("GET", "/recipients", "investigator")
    assert {r["username"]: r["key_on_server"] for r in listed} == {
        "coordinator": True, "investigator": False}
    assert world.call("POST", "/key", "investigator",
                      json={"public_key": "age1notakey"}).status_code == 422
    assert world.call("POST", "/key", "investigator", json={
        "public_key": str(age.Identity.generate().recipient)}).status_code == 409
    assert world.call("POST", "/unlock", json={"password": "wrong password 123"}
                      ).status_code == 401
    assert world.call("POST", "/key", "reviewer",
                      json={"password": API_PASSWORD}).status_code == 403


def test_wrong_codes_get_one_answer_for_the_same_work(world: World) -> None:
    """A code that matches nothing, one that shares a submission's first words, and one
    whose submission refuses codes for now are answered alike, after the same Argon2id
    derivations as a right code."""
    code, sid = world.submitted("a submission to guess at")

    class Counting:
        def __init__(self) -> None:
            self.calls: list[KdfParams] = []
            self.real = codes.Argon2Kdf()

        def derive(self, secret: bytes, salt: bytes, params: KdfParams) -> bytes:
            self.calls.append(params)
            return self.real.derive(secret, salt, params)

    kdf = Counting()
    app = create_app(world.instance, background_jobs=False)
    app.state.inbox = Inbox(world.instance, kdf=kdf)
    client = TestClient(app)
    words = code.split()
    same_start = " ".join(words[:3] + ["abacus"] * 4)
    unknown = " ".join(["zoom"] * 7)
    answers: dict[str, Any] = {}
    work: dict[str, list[KdfParams]] = {}
    for name, text in (("right", code), ("same-start", same_start), ("unknown", unknown)):
        kdf.calls.clear()
        answers[name] = world.login(TestClient(app), text)
        work[name] = list(kdf.calls)
    app.state.inbox.throttle = GuessThrottle(1, 1000)
    assert world.login(client, same_start).status_code == 401  # locks the submission
    kdf.calls.clear()
    answers["locked-right"] = world.login(client, code)
    work["locked-right"] = list(kdf.calls)
    assert answers["right"].status_code == 303
    wrong = [answers[n] for n in ("same-start", "unknown", "locked-right")]
    assert {a.status_code for a in wrong} == {401}
    bodies = {re.sub(r'name="csrf" value="[^"]*"', "", a.text) for a in wrong}
    assert len(bodies) == 1
    assert "does not open a submission" in wrong[0].text
    # the same Argon2id derivations, at the same costs, whatever the code found
    assert len(work["right"]) == 2
    assert all(calls == work["right"] for calls in work.values()), work
    del sid


def test_wrong_codes_take_as_long_as_right_ones(world: World) -> None:
    """Measured: with a real Argon2id cost, a code that matches nothing, one that
    matches a submission's first words and the right one take the same time (the
    fastest of several interleaved tries of each, to see the work and not the noise).
    Skipping the reply derivation for an unknown code would halve its time."""
    costly = dataclasses.replace(world.instance, settings=dataclasses.replace(
        world.instance.settings, inbox_kdf_memory_mb=16, inbox_kdf_passes=2))
    app = create_app(world.instance, background_jobs=False)
    inbox = app.state.inbox = Inbox(costly)
    inbox.throttle = GuessThrottle(10**6, 10**6)
    intake = inbox.submission_intake()
    intake.add("message", b"timed")
    code, _pseudonym = inbox.submit(intake)
    words = str(code).split()
    tries = {"right": str(code), "same-start": " ".join(words[:3] + ["abacus"] * 4),
             "unknown": " ".join(["zoom"] * 7)}
    client = TestClient(app)
    fastest = dict.fromkeys(tries, float("inf"))
    for _ in range(7):
        for name, text in tries.items():
            began = time.perf_counter()
            answer = world.login(client, text)
            fastest[name] = min(fastest[name], time.perf_counter() - began)
            assert answer.status_code == (303 if name == "right" else 401)
    assert fastest["right"] > 0.01, fastest  # the derivations are what is timed
    for name in ("same-start", "unknown"):
        assert 0.75 < fastest[name] / fastest["right"] < 1.33, fastest


def test_guessing_is_throttled_per_submission_and_for_the_whole_inbox(world: World) -> None:
    code, _sid = world.submitted("throttled")
    now = [1000.0]
    app = create_app(world.instance, background_jobs=False)
    inbox = app.state.inbox = Inbox(world.instance, clock=lambda: now[0])
    inbox.throttle = GuessThrottle(per_submission=3, per_minute=8, clock=lambda: now[0])
    addresses = iter(range(1, 255))

    def elsewhere() -> TestClient:
        """Each guess from another address: the counters do not look at addresses."""
        return TestClient(app, client=(f"198.51.100.{next(addresses)}", 40000))

    throttled_before = world.rows(login_throttle)
    words = code.split()
    near = " ".join(words[:3] + ["acid"] * 4)
    for _ in range(3):
        assert world.login(elsewhere(), near).status_code == 401
    assert world.login(elsewhere(), code).status_code == 401  # its own code too, for an hour
    now[0] += 3601
    assert world.login(elsewhere(), code).status_code == 303
    for _ in range(8):
        world.login(elsewhere(), " ".join(["zoom"] * 7))
    paused = world.login(elsewhere(), code)
    assert paused.status_code == 429
    assert int(paused.headers["retry-after"]) > 0
    assert "wait a minute" in paused.text
    now[0] += 61
    assert world.login(elsewhere(), code).status_code == 303
    # nothing about the guesses was written (the team's login throttle keeps addresses)
    assert world.rows(login_throttle) == throttled_before


MILLION_LINES = "".join(f"line {n}\n" for n in range(1_000_000))


@pytest.mark.parametrize(("case", "status", "words"), [
    ("empty", 422, "nothing to send"),
    ("empty-file", 422, "nothing to send"),
    ("too-large", 413, "more than can be sent at once"),
    ("too-large-chunked", 413, "more than can be sent at once"),
    ("million-line-message", 413, "too long to type here"),
    ("too-many-files", 422, "Too many files"),
    ("malformed", 422, "did not arrive whole"),
    ("not-a-form", 422, "did not arrive whole"),
])
def test_bad_input_gets_a_clear_answer_and_nothing_is_kept(world: World, case: str,
                                                           status: int, words: str) -> None:
    before = world.counts()
    client = world.insider()
    big = b"x" * (16 * 1024 * 1024 + 1)
    if case == "empty":
        answer = world.submit(client, message="")
    elif case == "empty-file":
        answer = world.submit(client, files=[("", b"", "application/octet-stream")])
    elif case == "too-large":
        answer = world.submit(client, message="x", files=[("big.bin", big, "x/y")])
    elif case == "too-large-chunked":
        def chunks() -> Iterator[bytes]:
            yield (b'--b\r\nContent-Disposition: form-data; name="files"; filename="a"\r\n\r\n')
            for _ in range(16 * 16 + 1):
                yield b"y" * 65536
            yield b"\r\n--b--\r\n"
        answer = client.post("/inbox/submit", content=chunks(),
                             headers={"Content-Type": "multipart/form-data; boundary=b"})
    elif case == "million-line-message":
        answer = world.submit(client, message=MILLION_LINES)
    elif case == "too-many-files":
        answer = world.submit(client, files=[(f"{n}.txt", b"x", "text/plain")
                                             for n in range(21)])
    elif case == "malformed":
        answer = client.post("/inbox/submit", content=b"--b\r\nnonsense",
                             headers={"Content-Type": "multipart/form-data; boundary=b"})
    else:
        answer = client.post("/inbox/submit", json={"message": "hello"})
    assert answer.status_code == status, answer.text[:500]
    assert words in answer.text
    assert "text/html" in answer.headers["content-type"]
    assert world.counts() == before
    assert "set-cookie" not in answer.headers


def test_a_million_line_message_in_a_file_arrives_whole(world: World) -> None:
    data = MILLION_LINES.encode()
    assert data.count(b"\n") == 1_000_000
    _code, sid = world.submitted(files=[("notes.txt", data, "text/plain")])
    [post] = world.ok("GET", f"/submissions/{sid}")["posts"]
    assert post["message"] is None
    download = world.call("GET", f"/submissions/{sid}/files/{post['files'][0]['id']}")
    assert download.content == data


def test_hostile_file_names_are_kept_only_harmless_and_encrypted(world: World) -> None:
    names = ["../../etc/passwd", "C:\\Windows\\evil.exe", "re\u202egnp.exe", "..",
             "<script>alert(1)</script>.html", "x" * 400]
    _code, sid = world.submitted(files=[(n, b"content", "application/octet-stream")
                                        for n in names[:5]])
    shown = [f["name"] for f in world.ok("GET", f"/submissions/{sid}")["posts"][0]["files"]]
    assert shown == ["passwd", "evil.exe", "regnp.exe", "file",
                     "script>.html"]
    raw = world.call("GET", f"/submissions/{sid}").content
    assert b"<script>" not in raw  # JSON escapes markup


def test_the_pages_are_plain_strict_and_in_four_languages(world: World) -> None:
    client = world.insider()
    titles = {"en": "Send us information safely", "ru": "Передайте нам информацию безопасно",
              "uk": "Передайте нам інформацію безпечно",
              "be": "Перадайце нам інфармацыю бяспечна"}
    for lang, title in titles.items():
        page = client.get("/inbox/", params={"lang": lang})
        assert page.status_code == 200
        assert title in page.text
        assert page.headers["content-language"] == lang
        assert f'<html lang="{lang}">' in page.text
    page = client.get("/inbox/", headers={"Accept-Language": "uk-UA,uk;q=0.9"})
    assert titles["uk"] in page.text
    for path in ("/inbox/", "/inbox/return", "/inbox/style.css"):
        answer = client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src" not in csp
        assert "form-action 'self'" in csp
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "set-cookie" not in answer.headers
        assert "<script" not in answer.text.lower()
        assert not re.search(r"(src|href|action)=\"(https?:)?//", answer.text)
    assert client.cookies == {} or len(client.cookies) == 0


def test_an_insider_session_needs_its_token_and_ends_on_leaving(world: World) -> None:
    code, _sid = world.submitted("session rules")
    client = world.insider()
    assert world.login(client, code).status_code == 303
    before = world.counts()
    stale = client.post("/inbox/conversation", files=[
        ("csrf", (None, "not the token")), ("message", (None, "forged"))])
    assert stale.status_code == 403
    assert "out of date" in stale.text
    assert world.counts() == before
    page = client.get("/inbox/conversation")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    left = client.post("/inbox/logout", data={"csrf": token.group(1)}, follow_redirects=False)
    assert left.status_code == 303
    assert client.get("/inbox/conversation", follow_redirects=False).status_code == 303


def test_an_insider_leaves_no_event_and_no_time_of_day(world: World) -> None:
    """Custody events carry a time to the second: an insider's submit, return and
    follow-up write none; the rows they write hold days only."""
    before = world.rows(catalogue_change, ledger_leaf)
    code, sid = world.submitted("no events for me")
    client = world.insider()
    assert world.login(client, code).status_code == 303
    page = client.get("/inbox/conversation")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    assert client.post("/inbox/conversation", files=[
        ("csrf", (None, token.group(1))), ("message", (None, "more"))],
        follow_redirects=False).status_code == 303
    assert world.rows(catalogue_change, ledger_leaf) == before
    with read_transaction(world.instance.engine) as conn:
        values = [*conn.execute(select(inbox_submission).where(
                      inbox_submission.c.id == sid)).one(),
                  *(v for row in conn.execute(select(inbox_post).where(
                      inbox_post.c.submission_id == sid)) for v in row)]
    assert not [v for v in values if hasattr(v, "hour")], values


@contextlib.contextmanager
def serving(world: World) -> Iterator[int]:
    """The team's app (with the inbox) under a real uvicorn on loopback, access log on;
    yields its port."""
    app = create_app(world.instance, background_jobs=False)
    app.state.inbox = world.inbox
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="info", log_config=None,
                                           access_log=True, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_the_access_log_leaves_out_the_inbox(world: World, caplog: pytest.LogCaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A real uvicorn with its access log on (more than ``sprava serve`` turns on):
    the team's requests are logged, with their address; the insider's pages are not."""
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "propagate", True)
    with serving(world) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        assert http.get("/inbox/", params={"lang": "be"}).status_code == 200
        assert http.post("/inbox/login", data={"code": "zoom " * 7}).status_code == 401
        assert http.post("/inbox/submit", files={"message": (None, "")}).status_code == 422
        assert http.get("/inbox/style.css").status_code == 200
        assert http.get("/api/v1/health").status_code == 200
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/api/v1/health" in line and "127.0.0.1" in line for line in access), access
    assert not [line for line in access if "/inbox" in line], access


def test_a_connection_cut_mid_upload_leaves_nothing(world: World) -> None:
    """An insider's connection drops halfway through a file: what was already encrypted
    and written is removed, and no row names it."""
    before = world.counts()
    boundary = "cut"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n"
            f"half a story\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f"name=\"files\"; filename=\"roster.pdf\"\r\n\r\n").encode()
    with serving(world) as port:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /inbox/submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: multipart/form-data; boundary=" + boundary.encode()
                         + b"\r\nContent-Length: 8000000\r\n\r\n" + head)
            for _ in range(48):  # 3 MiB of the 8 MB promised
                sock.sendall(b"z" * 65536)

            def writing() -> bool:
                return len(list(world.inbox.store.tmp.iterdir())) >= 2

            wait_for(writing, timeout=30)  # the message and the file, encrypted so far
        wait_for(lambda: world.counts() == before, timeout=30)
    assert world.counts() == before


def test_the_inbox_only_app_serves_the_pages_and_nothing_else(world: World) -> None:
    app = create_inbox_app(world.instance)
    app.state.inbox = world.inbox
    client = TestClient(app)
    assert client.get("/inbox/").status_code == 200
    for path in ("/api/v1/health", "/api/v1/openapi.json", "/docs", f"{API}/submissions"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert "text/html" in answer.headers["content-type"]
    assert client.get("/", follow_redirects=False).headers["location"] == "/inbox/"
    code, _sid = world.submitted("via the onion service")
    assert world.login(client, code).status_code == 303


def test_a_reply_is_readable_with_the_code_alone(world: World) -> None:
    """What the server keeps of the insider is the public half of the reply key: the reply
    opens with the key the code derives, and with a recipient's key."""
    code, sid = world.submitted("will you reply?")
    world.ok("POST", f"/submissions/{sid}/replies", json={"text": "Yes, we will."})
    with read_transaction(world.instance.engine) as conn:
        row = conn.execute(select(inbox_object).join(
            inbox_post, inbox_post.c.id == inbox_object.c.post_id).where(
            inbox_post.c.submission_id == sid, inbox_object.c.kind == "reply")).one()
        stored = conn.execute(select(inbox_submission.c.kdf)
                              .where(inbox_submission.c.id == sid)).scalar_one()
    reply_key = age.Identity(codes.reply_secret(
        codes.Argon2Kdf(), codes.parse_code(code), world.inbox.secrets.reply_pepper,
        KdfParams.parse(stored)))
    assert world.inbox.read_text(row, [reply_key]) == "Yes, we will."
    assert world.inbox.read_text(row, [OFFLINE]) == "Yes, we will."
    assert world.call("POST", f"/submissions/{sid}/replies", json={"text": ""}
                      ).status_code == 422


def test_an_account_that_may_no_longer_receive_gets_nothing_new(world: World) -> None:
    account, _ = service.create_account(world.instance, {
        "username": "leaver", "role": "investigator", "password": API_PASSWORD},
        actor="local:test")
    _, token = sessions.create_token(world.instance, sessions.Principal(account, "token"),
                                     {"name": "test"})
    world.ok("POST", "/recipients", json={"account_id": account.id})
    key = age.Identity.generate()
    assert world.api.client.post(f"{API}/key", json={  # type: ignore[attr-defined]
        "public_key": str(key.recipient)}, headers={"Authorization": f"Bearer {token}"}
        ).status_code == 200
    assert key.recipient in world.inbox.recipients()
    service.update_account(world.instance, account.id, {"active": False}, actor="local:test")
    assert key.recipient not in world.inbox.recipients()
    assert OFFLINE.recipient in world.inbox.recipients()
    world.ok("DELETE", f"/recipients/{account.id}")
    assert world.call("DELETE", f"/recipients/{account.id}").status_code == 404
