"""The seized server: after submissions, replies and reads, every byte of the database and
of the blob store (everything but the keys folder) is searched for what was said. No
message, file, file name, reply or receipt code may appear; nor may the temporary folder
or the logs hold any of it; nor the insider's address, user agent or referrer. The
inbox's files carry the day they were written, not the moment."""

from __future__ import annotations

import logging
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from conftest import API_PASSWORD, make_api, new_instance
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.inbox_tables import inbox_object
from sprava.inbox import age
from sprava.inbox.keys import open_length
from sprava.inbox.service import Inbox
from sprava.inbox.storage import midnight, padme

API = "/api/v1/inbox"


def _forms(secret: str) -> list[bytes]:
    """The ways a text could sit on disk: UTF-8, UTF-16, hex, and a distinctive slice."""
    raw = secret.encode()
    return [raw, secret.encode("utf-16-le"), raw.hex().encode(), raw[4:-4]]


def _database_bytes(instance_engine: object) -> Iterator[bytes]:
    """Every value of every table, as the database hands it out."""
    with read_transaction(instance_engine) as conn:  # type: ignore[arg-type]
        reflected = MetaData()
        reflected.reflect(bind=conn)
        for table in reflected.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        yield bytes(value)
                    elif value is not None:
                        yield str(value).encode("utf-8", "surrogatepass")


def _files(root: Path, skip: Path) -> Iterator[tuple[Path, bytes]]:
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if skip in path.parents:
                continue
            yield path, path.read_bytes()


def test_a_seized_database_and_blob_store_reveal_nothing_said(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    began = midnight()
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    caplog.set_level(logging.DEBUG)
    instance = new_instance(tmp_path / "instance", database_url, inbox_kdf_memory_mb=1,
                            inbox_kdf_passes=1)
    api = make_api(instance)
    try:
        app = api.client.app  # type: ignore[attr-defined]
        app.state.inbox = inbox = Inbox(instance)
        offline = age.Identity.generate()

        def ok(method: str, path: str, role: str = "coordinator", **kwargs: object) -> object:
            answer = api.call(method, API + path, role, **kwargs)
            assert answer.status_code < 300, answer.text
            return answer.json() if answer.content else None

        for role in ("coordinator", "investigator"):
            ok("POST", "/recipients", json={"account_id": api.accounts[role].id})  # type: ignore[attr-defined]
        ok("POST", "/key", json={"password": API_PASSWORD})
        ok("POST", "/key", "investigator", json={"public_key": str(offline.recipient)})
        ok("POST", "/unlock", json={"password": API_PASSWORD})

        said = {name: f"{name}-{secrets.token_hex(12)}" for name in (
            "message", "file", "filename", "reply", "follow-up", "second-file")}
        # what the insider's browser and network give away, on every request
        said["user-agent"] = f"Mozilla/5.0 (insider-{secrets.token_hex(6)})"
        said["referrer"] = f"https://intranet.example/{secrets.token_hex(6)}"
        said["address"] = "203.0.113.77"
        insider = TestClient(app, client=(said["address"], 41234), headers={
            "User-Agent": said["user-agent"], "Referer": said["referrer"]})
        submitted = insider.post("/inbox/submit", files=[
            ("message", (None, f"The order came from {said['message']}.")),
            ("files", (f"{said['filename']}.pdf", f"%PDF {said['file']}".encode() * 50,
                       "application/pdf"))])
        assert submitted.status_code == 200
        found = re.search(r'id="receipt-code">([^<]+)<', submitted.text)
        assert found is not None
        code = found.group(1)
        said["code"] = code
        said["code-start"] = " ".join(code.split()[:3])

        [summary] = ok("GET", "/submissions")["items"]  # type: ignore[index]
        sid, pseudonym = summary["id"], summary["pseudonym"]
        ok("POST", f"/submissions/{sid}/replies", json={"text": f"Reply: {said['reply']}"})
        assert insider.post("/inbox/login", data={"code": code},
                            follow_redirects=False).status_code == 303
        page = insider.get("/inbox/conversation")
        assert said["reply"] in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        assert insider.post("/inbox/conversation", files=[
            ("csrf", (None, token.group(1))), ("message", (None, said["follow-up"])),
            ("files", ("b.bin", said["second-file"].encode() * 3000, "x/y"))],
            follow_redirects=False).status_code == 303
        conversation = ok("GET", f"/submissions/{sid}")
        first_file = conversation["posts"][0]["files"][0]["id"]  # type: ignore[index]
        assert said["file"].encode() in api.call(
            "GET", f"{API}/submissions/{sid}/files/{first_file}", "coordinator").content
    finally:
        api.client.close()  # type: ignore[attr-defined]

    # First, as the search below reads them: the inbox's files and folders are dated to
    # the day (the database keeps days only).
    days = {began, midnight()}  # the test may run across midnight
    for path in inbox.store.root.rglob("*"):
        times = path.stat()
        assert times.st_mtime in days, path
        if path.is_file():  # read since (replies, downloads), without touching the time
            assert times.st_atime in days, path

    leaks = []
    store_root = instance.blobs.root
    keys = instance.settings.home / "keys"
    haystacks = list(_files(instance.settings.home, keys))
    if store_root != instance.settings.home / "blobs":
        haystacks += list(_files(store_root, keys))
    haystacks += [(Path("database"), b"\x00".join(_database_bytes(instance.engine)))]
    if database_url.startswith("sqlite:///"):  # the database's own files, wherever they are
        database = Path(database_url.removeprefix("sqlite:///"))
        haystacks += [(f, f.read_bytes()) for f in database.parent.glob(f"{database.name}*")]
    haystacks += list(_files(spool, keys))
    # what the server side logged (the test's own HTTP client logs its requests: not ours)
    server_log = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}"
                           for r in caplog.records
                           if not r.name.startswith(("httpx", "httpcore", "asyncio")))
    haystacks += [(Path("log"), server_log.encode())]
    assert any(p.suffix == "" and "objects" in p.parts for p, _ in haystacks)
    # the search is not blind: what may be stored is found where it is stored
    assert any(pseudonym.encode() in data for p, data in haystacks if p.name == "database")
    if database_url.startswith("sqlite"):
        assert any(pseudonym.encode() in data for p, data in haystacks
                   if p.name.startswith(database.name))
    for path, data in haystacks:
        for name, secret in said.items():
            if any(form in data for form in _forms(secret)):
                leaks.append(f"{name} in {path}")
    assert not leaks, leaks
    assert "/inbox" not in server_log

    # and what is stored has only the size of its bucket
    with read_transaction(instance.engine) as conn:
        rows = conn.execute(select(inbox_object)).all()
    assert len(rows) >= 6
    for row in rows:
        on_disk = inbox.store.path_of(row.id).stat().st_size
        exact = open_length(inbox.secrets, row.id, row.sealed_length)
        assert on_disk == row.stored_size == padme(exact)
    instance.close()
