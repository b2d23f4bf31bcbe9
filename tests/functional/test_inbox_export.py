"""``sprava inbox export`` as a recipient uses it: the real CLI writes the ciphertext, and the
standard ``age`` tool (Debian's package) decrypts every file with a key made by
``age-keygen``, to exactly what the insider sent and the team replied."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import API_PASSWORD, Cli, tool
from sprava.accounts import service, sessions
from sprava.api.app import create_app
from sprava.backends.db.catalogue_tables import catalogue_change
from sprava.inbox.service import Inbox
from sprava.instance import Instance

API = "/api/v1/inbox"



def test_export_decrypts_with_the_agetool(instance: Instance, cli: Cli,
                                           tmp_path: Path) -> None:
    key = tmp_path / "key.txt"
    subprocess.run([tool("age-keygen"), "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run([tool("age-keygen"), "-y", str(key)], check=True,
                            capture_output=True, text=True).stdout.strip()
    headers, ids = {}, {}
    for role in ("coordinator", "investigator"):  # two accounts are all this needs
        account, _ = service.create_account(instance, {
            "username": role, "role": role, "password": API_PASSWORD}, actor="local:test")
        _, token = sessions.create_token(instance, sessions.Principal(account, "token"),
                                         {"name": "test"})
        headers[role], ids[role] = {"Authorization": f"Bearer {token}"}, account.id
    app = create_app(instance, background_jobs=False)
    app.state.inbox = Inbox(instance)
    with TestClient(app) as client:
        for role in ("coordinator", "investigator"):
            assert client.post(f"{API}/recipients", headers=headers["coordinator"], json={
                "account_id": ids[role]}).status_code == 201
        assert client.post(f"{API}/key", headers=headers["investigator"],
                           json={"public_key": public}).status_code == 200
        photo, roster = os.urandom(200_000), b"Ivanov\nPetrov\n"
        answer = TestClient(app).post("/inbox/submit", files=[
            ("message", (None, "Two files: a photo and the roster.")),
            ("files", ("IMG_0412.jpg", photo, "image/jpeg")),
            ("files", ("../roster.txt", roster, "text/plain"))])
        assert answer.status_code == 200
        [summary] = client.get(f"{API}/submissions", headers=headers["investigator"]
                               ).json()["items"]
        assert client.post(f"{API}/submissions/{summary['id']}/replies",
                           headers=headers["investigator"],
                           json={"text": "Received, thank you."}).status_code == 201

    listed = cli("inbox", "list", "--json")
    assert listed.code == 0, listed.stderr
    assert json.loads(listed.stdout)["items"][0]["pseudonym"] == summary["pseudonym"]
    out = tmp_path / "export"
    done = cli("inbox", "export", "--out", str(out), "--json")
    assert done.code == 0, done.stderr
    [written] = json.loads(done.stdout)["submissions"]
    paths = sorted(f["path"] for f in written["files"])
    folder = written["folder"].rsplit("/", 1)[-1]
    assert paths == [f"{folder}/post-1/file-1.age", f"{folder}/post-1/file-2.age",
                     f"{folder}/post-1/manifest.age", f"{folder}/post-1/message.age",
                     f"{folder}/post-2/reply.age"]

    def plain(relative: str) -> bytes:
        result = subprocess.run([tool("age"), "-d", "-i", str(key), str(out / relative)],
                                capture_output=True, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert plain(f"{folder}/post-1/message.age") == b"Two files: a photo and the roster."
    assert plain(f"{folder}/post-1/file-1.age") == photo
    assert plain(f"{folder}/post-1/file-2.age") == roster
    assert plain(f"{folder}/post-2/reply.age") == b"Received, thank you."
    manifest = json.loads(plain(f"{folder}/post-1/manifest.age"))
    assert [(p["kind"], p["name"], p["size"]) for p in manifest["parts"]] == [
        ("message", None, 34), ("file", "IMG_0412.jpg", len(photo)),
        ("file", "roster.txt", len(roster))]
    assert (out / folder / "README.txt").read_text().startswith("Submission")

    again = cli("inbox", "export", "--out", str(out))
    assert again.code == 2
    assert "export-exists" in again.stderr
    with instance.engine.connect() as conn:
        exports = conn.execute(select(catalogue_change.c.actor).where(
            catalogue_change.c.change == "export")).scalars().all()
    assert len(exports) == 1
