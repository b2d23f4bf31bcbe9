"""The README's demo, as `make demo` runs it: generated media, ingest, a catalogued case,
its case file exported and verified offline with the instance's key, then the credentials
it prints to log in to the web pages."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import Cli

DEMO = Path(__file__).resolve().parents[2] / "demo"


def _python(*args: str | Path) -> str:
    done = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_demo_goes_from_media_to_a_verified_case_file(cli: Cli, tmp_path: Path) -> None:
    media = tmp_path / "demo-media"
    _python(DEMO / "make_media.py", media)
    ingested = cli("ingest", str(media), "--source", "demo volunteer", "--wait", timeout=600)
    assert ingested.code == 0, ingested.stderr
    case_id = _python(DEMO / "make_case.py", media, cli.home).strip()

    bag = tmp_path / "case.zip"
    exported = cli("export", "case", case_id, "--to", "Office of the Prosecutor",
                   "--out", str(bag), "--json")
    assert exported.code == 0, exported.stderr
    assert json.loads(exported.stdout)["persons"] == 0  # the demo names no one

    key = cli("ledger", "key").stdout.strip()
    verified = cli("verify", str(bag), "--key", key)
    assert verified.code == 0, verified.stdout + verified.stderr
    assert "OK" in verified.stdout

    wrong = cli("verify", str(bag), "--key", key[:-4] + "AAA=")  # another key: refused
    assert wrong.code != 0


def test_the_demo_prints_credentials_that_open_the_web_pages(cli: Cli, tmp_path: Path) -> None:
    """Each run of the demo prints a one-time password that works (a second run on the same
    instance issues a new one, and the first stops working)."""
    from fastapi.testclient import TestClient

    from sprava.api.app import create_app
    from sprava.instance import open_instance
    from sprava.settings import load_settings

    media = tmp_path / "demo-media"
    _python(DEMO / "make_media.py", media)
    assert cli("ingest", str(media), "--wait", timeout=600).code == 0
    _python(DEMO / "make_case.py", media, cli.home)
    printed = [_python(DEMO / "login.py", cli.home) for _ in range(2)]
    found = [re.search(r"Open (\S+) in a browser and log in as (\S+) with the one-time "
                       r"password (\S+)", text) for text in printed]
    assert all(found), printed
    first, second = (m.groups() for m in found if m)
    assert first[:2] == second[:2] == ("http://127.0.0.1:8740/", "coordinator")
    assert first[2] != second[2]

    instance = open_instance(load_settings(cli.home))
    try:
        client = TestClient(create_app(instance, background_jobs=False),
                            follow_redirects=False)
        for password, status in ((first[2], 401), (second[2], 303)):
            page = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            done = client.post("/login", data={"csrf": csrf.group(1), "username": "coordinator",
                                               "password": password, "next": "/"})
            assert done.status_code == status, done.text[:300]
        assert client.get("/").headers["location"].startswith("/account/password")
    finally:
        instance.close()
