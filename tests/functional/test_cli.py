"""The real ``sprava`` command, as a user and an outside checker run it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from conftest import Cli, blob_bytes, replace_blob
from sprava.cli.exitcode import ExitCode
from sprava.instance import Instance
from sprava.ledger import merkle
from sprava.ledger.note import NoteVerifier, open_checkpoint


def _media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "IMG_0001.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(3000))
    (folder / "IMG_0002.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(5000))
    (folder / "repost.jpg").write_bytes((folder / "IMG_0001.jpg").read_bytes())
    (folder / "empty").write_bytes(b"")
    return folder


def _ingested(cli: Cli, tmp_path: Path) -> list[dict]:  # type: ignore[type-arg]
    done = cli("ingest", str(_media(tmp_path)), "--source", "volunteer 7", "--json")
    assert done.code == ExitCode.OK, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_init_twice_is_harmless_and_the_key_is_private(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "inst")
    first = cli("init", "--json", "--origin", "example.org/sprava")
    assert first.code == ExitCode.OK, first.stderr
    again = cli("init", "--json")
    assert again.code == ExitCode.OK
    one, two = json.loads(first.stdout), json.loads(again.stdout)
    assert (one["created"], two["created"]) == (True, False)
    assert one["verifier_key"] == two["verifier_key"]
    assert one["origin"] == "example.org/sprava"
    key = tmp_path / "inst" / "keys" / "ledger.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    refused = cli("init", "--origin", "another.name")
    assert refused.code == ExitCode.UNUSABLE
    assert "origin-fixed" in refused.stderr


def test_ingest_json_records_and_show(cli: Cli, tmp_path: Path) -> None:
    records = _ingested(cli, tmp_path)
    by_path = {r["path"]: r for r in records}
    assert by_path["media/repost.jpg"]["status"] == "already-held"
    assert by_path["media/IMG_0002.jpg"]["media_type"] == "image/jpeg"
    assert sorted(r["leaf_index"] for r in records) == [0, 1, 2, 3]
    sha = by_path["media/IMG_0001.jpg"]["sha256"]
    shown = cli("show", sha[:10], "--json")
    assert shown.code == ExitCode.OK, shown.stderr
    record = json.loads(shown.stdout)
    assert record["sha256"] == sha
    assert [n["name"] for n in record["names"]] == ["media/IMG_0001.jpg", "media/repost.jpg"]
    assert record["sources"] == ["volunteer 7"]
    assert [e["event"]["kind"] for e in record["custody"]] == ["ingest", "ingest"]
    listed = json.loads(cli("items", "--json").stdout)
    assert listed["total"] == 3


def test_show_errors_have_named_exit_codes(cli: Cli, tmp_path: Path) -> None:
    _ingested(cli, tmp_path)
    missing = cli("show", "0000000000")
    assert missing.code == ExitCode.NOT_FOUND
    assert "item-not-found" in missing.stderr
    bad = cli("show", "not-a-digest")
    assert bad.code == ExitCode.USAGE
    assert "bad-item-ref" in bad.stderr
    assert cli("show").code == ExitCode.USAGE
    assert cli("no-such-command").code == ExitCode.USAGE


def test_outside_checker_verifies_checkpoint_leaves_and_proofs(cli: Cli, tmp_path: Path) -> None:
    _ingested(cli, tmp_path)
    (tmp_path / "later").mkdir()
    _ingested(cli, tmp_path / "later")
    verifier = NoteVerifier.parse(cli("ledger", "key").stdout)
    note = cli("ledger", "checkpoint").stdout
    checkpoint = open_checkpoint(note, verifier)
    assert checkpoint.size == 8
    lines = cli("ledger", "export").stdout.encode().splitlines()
    leaves = [line.split(b"\t", 1)[1] for line in lines]
    assert [int(line.split(b"\t", 1)[0]) for line in lines] == list(range(8))
    assert merkle.root_of(leaves) == checkpoint.root
    for index in range(8):
        proof = json.loads(cli("ledger", "prove", str(index), "--json").stdout)
        merkle.verify_inclusion(index, 8, merkle.leaf_hash(leaves[index]),
                                [bytes.fromhex(h) for h in proof["proof"]], checkpoint.root)
        assert proof["checkpoint"] == note
    old = json.loads(cli("ledger", "prove", "1", "--size", "4", "--json").stdout)
    consistency = json.loads(cli("ledger", "consistency", "4", "--json").stdout)
    merkle.verify_consistency(4, 8, [bytes.fromhex(h) for h in consistency["proof"]],
                              bytes.fromhex(old["root"]), checkpoint.root)
    out_of_range = cli("ledger", "prove", "8")
    assert out_of_range.code == ExitCode.NOT_FOUND


def test_verify_exit_codes(cli: Cli, instance: Instance, tmp_path: Path) -> None:
    records = _ingested(cli, tmp_path)
    clean = cli("verify", "--json")
    assert clean.code == ExitCode.OK, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["ok"] is True
    data = bytearray(blob_bytes(instance, records[0]["sha256"]))
    data[len(data) // 2] ^= 0x01
    replace_blob(instance, records[0]["sha256"], bytes(data))
    tampered = cli("verify")
    assert tampered.code == ExitCode.FAILED
    assert f"[blob-altered] item {records[0]['sha256']}" in tampered.stderr
    report = json.loads(cli("verify", "--json").stdout)
    assert [f["code"] for f in report["findings"]] == ["blob-altered"]


def test_unusable_instance_is_reported_clearly(cli: Cli, instance: Instance,
                                               tmp_path: Path) -> None:
    instance.settings.key_file.chmod(0o644)
    loose = cli("items")
    assert loose.code == ExitCode.UNUSABLE
    assert "key-permissions" in loose.stderr
    assert "chmod 600" in loose.stderr
    nowhere = Cli(tmp_path / "not-an-instance")("items")
    assert nowhere.code == ExitCode.UNUSABLE
    assert "no-instance" in nowhere.stderr


def test_failed_file_makes_ingest_exit_non_zero(cli: Cli, tmp_path: Path) -> None:
    folder = _media(tmp_path)
    (folder / "broken-link").symlink_to(tmp_path / "gone")
    done = cli("ingest", str(folder))
    assert done.code == ExitCode.FAILED
    assert "dangling-link" in done.stderr
    assert "3 stored, 1 already held, 0 skipped, 1 failed" in done.stderr
