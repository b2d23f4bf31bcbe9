"""Exporting a case file on each real database: what goes in, what the export records, the
bag as BagIt (checked with the `bagit` library), the report, refusals, consistency with
earlier checkpoints, and the real CLI from export to offline verification."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import bagit
import pytest

from casefile_world import HOSTILE_TITLE, RECIPIENT, World, build_world
from conftest import Cli, blob_bytes, replace_blob
from sprava.audit import verify_instance
from sprava.backends.db.engine import read_transaction
from sprava.casefile import export as export_module
from sprava.casefile.export import export_case
from sprava.casefile.sprava_verify import verify
from sprava.catalogue import cases
from sprava.catalogue.history import changes
from sprava.catalogue.verify import verify_catalogue
from sprava.domain.custody import decode_leaf
from sprava.errors import SpravaError
from sprava.instance import Instance
from sprava.ledger import log
from sprava.ledger.note import NoteSigner

DOCS = Path(__file__).resolve().parents[2] / "docs" / "casefiles.md"


@pytest.fixture
def world(instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("SPRAVA_VERIFY_PINS", str(tmp_path / "no-pins"))
    return build_world(instance, tmp_path)


def _code(call: Any) -> str:
    with pytest.raises(SpravaError) as caught:
        call()
    return caught.value.code


def _leaf(instance: Instance, index: int) -> dict[str, Any]:
    with read_transaction(instance.engine) as conn:
        return decode_leaf(log.get_leaf(conn, index).data)


def _size(instance: Instance) -> int:
    with read_transaction(instance.engine) as conn:
        return log.head_size(conn)


def test_a_case_file_holds_the_case_records_its_export_and_proves_it(
        world: World, tmp_path: Path) -> None:
    instance = world.instance
    done = export_case(instance, world.case_id, recipient=RECIPIENT, out=tmp_path / "c.zip")
    assert verify(done.path, key=str(instance.verifier)).findings == []
    with zipfile.ZipFile(done.path) as archive:
        top = archive.namelist()[0].split("/")[0]
        archive.extractall(tmp_path / "x")  # our own bag: its names are safe
        assert {i.compress_type for i in archive.infolist() if "/data/" in i.filename} == {
            zipfile.ZIP_STORED}
    folder = tmp_path / "x" / top
    bagit.Bag(str(folder)).validate()  # a bag by the reference implementation's reading
    contents = (folder / "sprava" / "contents.json").read_bytes()

    # The export is the last event, covered by the bag's own checkpoint.
    event = _leaf(instance, done.export_leaf)
    assert (event["change"], event["entity"], event["id"], event["recipient"]) == (
        "export", "case", world.case_id, RECIPIENT)
    assert event["persons"] == [world.person_id]
    assert event["contents_sha256"] == hashlib.sha256(contents).hexdigest()
    checkpoint = (folder / "sprava" / "checkpoint.txt").read_text().split("\n")
    assert int(checkpoint[1]) == done.tree_size == done.export_leaf + 1
    history = changes(instance, "person", world.person_id).items
    assert [(c.change, c.actor) for c in history][-2:] == [("view", "local:carol"),
                                                         ("export", instance.settings.actor)]

    # What went in: every item named by its digest, the redacted copy beside its original.
    listed = json.loads(contents)
    names = {Path(i["path"]).stem for i in listed["items"]}
    assert names == {*world.photos, world.redacted}
    redacted = next(i for i in listed["items"] if i["sha256"] == world.redacted)
    assert (redacted["derived_from"], redacted["derivation"]) == (world.photos[0], "redaction")
    catalogue = json.loads((folder / "sprava" / "catalogue.json").read_text())
    assert [p["state"]["name"] for p in catalogue["persons"]] == [world.person_name]
    assert {len(catalogue[k]) for k in ("incidents", "claims", "units")} == {2, 1}

    # The report escapes what people typed, and shows only redacted pictures.
    page = (folder / "report" / "report.html").read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert HOSTILE_TITLE not in page
    thumbs = sorted(p.stem for p in (folder / "report" / "thumbs").iterdir())
    assert thumbs == [world.redacted]
    assert (folder / "report" / "report.pdf").read_bytes().startswith(b"%PDF-")
    assert (folder / "tools" / "sprava_verify.py").read_bytes() == Path(
        export_module.__file__).with_name("sprava_verify.py").read_bytes()

    # A later case file proves that the log extends the checkpoint this one carries.
    held = (folder / "sprava" / "checkpoint.txt").read_bytes()
    second = export_case(instance, world.case_id, recipient=RECIPIENT, out=tmp_path / "b",
                         zipped=False)
    assert verify(second.path, since=held).findings == []

    # A checkpoint of a size the bag carries no proof from: named, with what to ask for.
    with read_transaction(instance.engine) as conn:
        other = next(log.checkpoints(conn))  # the first, after the ingest
        proof = log.consistency_proof(conn, other.size, second.tree_size)
    report = verify(second.path, since=other.note.encode())
    assert [(f.code, f.subject) for f in report.findings] == [
        ("since-unproven", f"size {other.size}")]
    given = {"old_size": other.size, "new_size": second.tree_size,
             "proof": [h.hex() for h in proof]}
    assert verify(second.path, since=other.note.encode(), consistency=given).findings == []
    given["proof"][0] = "00" * 32
    assert [f.code for f in verify(second.path, since=other.note.encode(),
                                   consistency=given).findings] == ["since-inconsistent"]
    forged = NoteSigner.generate(instance.origin).sign(
        other.note.split("\n\n")[0] + "\n").encode()
    assert [f.code for f in verify(second.path, since=forged).findings] == ["since-signature"]

    # The instance stays whole: the exports' index rows agree with their signed events.
    report = verify_instance(instance)
    assert report.findings == []
    assert verify_catalogue(instance) == []


def test_refusals_leave_no_record_and_no_file(world: World, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    instance = world.instance
    before = _size(instance)
    out = tmp_path / "c.zip"
    assert _code(lambda: export_case(instance, world.case_id, recipient="someone else",
                                     out=out)) == "recipient-mismatch"
    assert _code(lambda: export_case(instance, "00000000-0000-4000-8000-000000000000",
                                     recipient=RECIPIENT, out=out)) == "case-not-found"

    def edit_meanwhile(*args: Any) -> Any:  # a teammate edits the case mid-export
        cases.update_case(instance, world.case_id, {"description": "changed"},
                          actor="local:dina")
        return real(*args)

    real = export_module._documents
    monkeypatch.setattr(export_module, "_documents", edit_meanwhile)
    assert _code(lambda: export_case(instance, world.case_id, recipient=RECIPIENT,
                                     out=out)) == "case-changed"
    monkeypatch.setattr(export_module, "_documents", real)
    assert _size(instance) == before + 1  # the edit, and no export event

    replace_blob(instance, world.photos[1], b"rotten" + blob_bytes(instance,
                                                                  world.photos[1])[6:])
    assert _code(lambda: export_case(instance, world.case_id, recipient=RECIPIENT,
                                     out=out)) == "blob-altered"
    assert _size(instance) == before + 1
    assert sorted(os.listdir(tmp_path)) == sorted(p for p in os.listdir(tmp_path)
                                                  if "c.zip" not in p)
    out.write_bytes(b"")
    assert _code(lambda: export_case(instance, world.case_id, recipient=RECIPIENT,
                                     out=out)) == "output-exists"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the CLI, once
def test_the_cli_exports_and_verifies_offline(world: World, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "case"
    done = cli("export", "case", world.case_id, "--to", RECIPIENT, "--out", str(out),
               "--folder", "--json")
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["persons"] == 1
    key = str(world.instance.verifier)
    env = {**cli.env(), "SPRAVA_HOME": str(tmp_path / "no-instance-here"),
           "SPRAVA_VERIFY_PINS": str(tmp_path / "no-pins")}

    def offline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=env, capture_output=True, text=True, check=False,
                              timeout=120)

    checked = offline(*cli.argv("verify", str(out), "--key", key))
    assert checked.returncode == 0, checked.stderr
    assert "OK: every file, event, proof and signature verifies" in checked.stdout
    standalone = offline(str(Path(sys.executable).with_name("sprava-verify")), str(out),
                         "--json")
    assert (standalone.returncode, json.loads(standalone.stdout)["ok"]) == (0, True)
    # The by-hand checks of docs/casefiles.md, exactly as written there, on this bag.
    recipe = re.findall(r"```\n(.*?)```", DOCS.read_text().split("## Checking by hand")[1],
                        flags=re.S)[0]
    by_hand = subprocess.run(["bash", "-euo", "pipefail", "-c", recipe], cwd=out,
                             capture_output=True, text=True, check=False, timeout=60)
    assert by_hand.returncode == 0, by_hand.stderr
    assert "Signature Verified Successfully" in by_hand.stdout
    first = json.loads((out / "sprava" / "events.jsonl").read_text().splitlines()[0])
    leaf_hash = hashlib.sha256(b"\0" + first["leaf"].encode()).hexdigest()
    assert by_hand.stdout.rstrip().endswith(f"{leaf_hash}  -")
    for name in ("pub.der", "pub.pem", "note-text", "note-sig"):
        (out / name).unlink()

    (out / "data" / "planted.jpg").write_bytes(b"x")
    tampered = offline(*cli.argv("verify", str(out), "--json"))
    assert tampered.returncode == 1
    assert {f["code"] for f in json.loads(tampered.stdout)["findings"]} == {
        "payload-extra", "oxum-mismatch", "item-unlisted"}
    assert offline(*cli.argv("verify", str(tmp_path / "missing.zip"))).returncode == 3
    assert offline(*cli.argv("verify", "--key", key)).returncode == 2
