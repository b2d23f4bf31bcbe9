"""The README's demo, as `make demo` runs it: generated media, ingest, a catalogued case,
its case file exported and verified offline with the instance's key."""

from __future__ import annotations

import json
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
