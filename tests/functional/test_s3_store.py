"""An instance whose blobs live in a real S3 server (SeaweedFS on loopback), through the
real CLI: init creates the bucket, ingest streams into it, verify re-hashes every object
streamed back and names the missing and the altered ones; media analysis reads from it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from conftest import S3_KEY, S3_SECRET, SHARED_BUCKET, Cli, S3Server, new_bucket, new_prefix
from sprava.cli.exitcode import ExitCode
from sprava.domain.digest import Digest
from sprava.instance import open_instance
from sprava.settings import load_settings
from sprava.store.s3 import S3BlobStore


class S3Cli(Cli):
    """The real CLI with the store's credentials in the environment, not on disk."""

    def __init__(self, home: Path, secret: str = S3_SECRET) -> None:
        super().__init__(home)
        self.secret = secret

    def env(self) -> dict[str, str]:
        env = super().env()
        env["SPRAVA_S3_ACCESS_KEY_ID"] = S3_KEY
        env["SPRAVA_S3_SECRET_ACCESS_KEY"] = self.secret
        return env


def _files(folder: Path) -> Path:
    folder.mkdir()
    (folder / "note.txt").write_bytes(b"a statement, word for word\n")
    (folder / "video.bin").write_bytes(os.urandom(11 << 20))  # past one part: multipart
    (folder / "empty.txt").write_bytes(b"")
    Image.new("RGB", (64, 48), (200, 30, 30)).save(folder / "photo.png")
    return folder


def _init(cli: S3Cli, server: S3Server, url: str) -> dict:  # type: ignore[type-arg]
    done = cli("init", "--blob-url", url, "--s3-endpoint-url", server.endpoint,
               "--database-url", f"sqlite:///{cli.home / 'sprava.db'}", "--json")
    assert done.code == ExitCode.OK, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_init_ingest_verify_and_tampering_on_s3(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = new_bucket()
    cli = S3Cli(tmp_path / "instance")
    record = _init(cli, s3_server, f"s3://{bucket}/vault")
    assert record["blob_url"] == f"s3://{bucket}/vault"
    config = (tmp_path / "instance" / "sprava.toml").read_text()
    assert s3_server.endpoint in config
    assert S3_SECRET not in config  # credentials came from the environment
    client = s3_server.client()
    client.head_bucket(Bucket=bucket)  # type: ignore[attr-defined]  # init created it

    done = cli("ingest", str(_files(tmp_path / "incoming")), "--json")
    assert done.code == ExitCode.OK, done.stderr
    records = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    assert {r["status"] for r in records.values()} == {"stored"}
    again = cli("ingest", str(tmp_path / "incoming"), "--json")
    assert {json.loads(r)["status"] for r in again.stdout.splitlines()} == {"already-held"}
    assert not (tmp_path / "instance" / "blobs").exists()  # nothing went to a local folder

    clean = cli("verify", "--json")
    assert clean.code == ExitCode.OK, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["ok"] is True

    video, note = records["video.bin"]["sha256"], records["note.txt"]["sha256"]
    key = f"vault/sha256/{video[:2]}/{video[2:4]}/{video}"
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())  # type: ignore[attr-defined]
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))  # type: ignore[attr-defined]
    client.delete_object(Bucket=bucket,  # type: ignore[attr-defined]
                         Key=f"vault/sha256/{note[:2]}/{note[2:4]}/{note}")
    tampered = cli("verify")
    assert tampered.code == ExitCode.FAILED
    assert f"[blob-altered] item {video}" in tampered.stderr
    report = json.loads(cli("verify", "--json").stdout)
    assert sorted((f["code"], f["subject"]) for f in report["findings"]) == sorted(
        [("blob-altered", f"item {video}"), ("blob-missing", f"item {note}")])


def test_init_names_wrong_credentials_and_an_unreachable_store(s3_server: S3Server,
                                                               tmp_path: Path) -> None:
    wrong = S3Cli(tmp_path / "wrong", secret="not the secret")  # noqa: S106
    denied = wrong("init", "--blob-url", f"s3://{new_bucket()}", "--s3-endpoint-url",
                   s3_server.endpoint)
    assert denied.code == ExitCode.UNUSABLE
    assert "s3-access-denied" in denied.stderr
    assert not (tmp_path / "wrong" / "keys" / "ledger.key").exists()
    nowhere = S3Cli(tmp_path / "nowhere")("init", "--blob-url", f"s3://{new_bucket()}",
                                          "--s3-endpoint-url", "http://127.0.0.1:9")
    assert nowhere.code == ExitCode.UNUSABLE
    assert "s3-unreachable" in nowhere.stderr


def test_analysis_and_case_export_read_from_s3(s3_server: S3Server, tmp_path: Path) -> None:
    cli = S3Cli(tmp_path / "instance")
    _init(cli, s3_server, f"s3://{SHARED_BUCKET}/{new_prefix()}")
    folder = tmp_path / "incoming"
    folder.mkdir()
    Image.new("RGB", (320, 240), (20, 90, 160)).save(folder / "scene.jpg", quality=90)
    done = cli("ingest", str(folder), "--wait", "--json", timeout=300)
    assert done.code == ExitCode.OK, done.stderr
    sha = json.loads(done.stdout.splitlines()[0])["sha256"]
    show = json.loads(cli("show", sha, "--json").stdout)
    assert show["analysis"]["metadata"]["status"] == "done", show["analysis"]
    assert show["analysis"]["phash"]["status"] == "done", show["analysis"]
    assert len(show["pdq"][0]["pdq"]) == 64
    thumb = show["analysis"]["thumbnail"]["result"]["sha256"]
    settings = load_settings(tmp_path / "instance", environ={
        "SPRAVA_S3_ACCESS_KEY_ID": S3_KEY, "SPRAVA_S3_SECRET_ACCESS_KEY": S3_SECRET})
    instance = open_instance(settings)
    try:
        assert isinstance(instance.blobs, S3BlobStore)
        assert instance.blobs.exists(Digest(thumb))  # the derived copy went to S3 too
        with instance.blobs.open(Digest(sha)) as handle:
            assert handle.read() == (folder / "scene.jpg").read_bytes()
    finally:
        instance.close()
    assert not list((tmp_path / "instance" / "spool").iterdir())  # local copies removed
    assert cli("verify").code == ExitCode.OK
