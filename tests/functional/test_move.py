"""``sprava move`` through the real CLI: an embedded instance (SQLite and a folder) with
evidence, analysis, catalogue, a case and an insider's submission moves to PostgreSQL and
SeaweedFS and back, each time verified, with every table and the ledger the same, and
stays usable (new evidence gets new ids). Bad moves change nothing."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from casefile_world import ANNA, build_world
from conftest import (
    API_PASSWORD,
    S3_KEY,
    S3_SECRET,
    Cli,
    PostgresServer,
    S3Server,
    new_instance,
    tool,
)
from sprava.accounts import service, sessions
from sprava.api.app import create_app
from sprava.backends.db.engine import make_engine, read_transaction
from sprava.catalogue import units
from sprava.cli.exitcode import ExitCode
from sprava.inbox.service import Inbox
from sprava.inbox.storage import LocalInboxStore
from sprava.move.rows import TableSum, model_tables, table_sum
from sprava.settings import load_settings

API = "/api/v1/inbox"



def _sums(url: str) -> dict[str, TableSum]:
    engine = make_engine(url)
    try:
        with read_transaction(engine) as conn:
            return {t.name: table_sum(conn, t) for t in model_tables()}
    finally:
        engine.dispose()


@dataclass
class Embedded:
    home: Path
    cli: Cli
    key: Path  # the investigator's offline age key
    photo: bytes  # what the insider sent

    def config(self) -> str:
        return (self.home / "sprava.toml").read_text()

    def database_url(self) -> str:
        return load_settings(self.home, environ={}).database_url


def _submit(instance: object, public_key: str, photo: bytes) -> None:
    headers, ids = {}, {}
    for role in ("coordinator", "investigator"):
        account, _ = service.create_account(instance, {  # type: ignore[arg-type]
            "username": role, "role": role, "password": API_PASSWORD}, actor="local:test")
        _, token = sessions.create_token(instance, sessions.Principal(account, "token"),  # type: ignore[arg-type]
                                         {"name": "test"})
        headers[role], ids[role] = {"Authorization": f"Bearer {token}"}, account.id
    app = create_app(instance, background_jobs=False)  # type: ignore[arg-type]
    app.state.inbox = Inbox(instance)  # type: ignore[arg-type]
    with TestClient(app) as client:
        for role in ("coordinator", "investigator"):
            assert client.post(f"{API}/recipients", headers=headers["coordinator"],
                               json={"account_id": ids[role]}).status_code == 201
        assert client.post(f"{API}/key", headers=headers["investigator"],
                           json={"public_key": public_key}).status_code == 200
        answer = TestClient(app).post("/inbox/submit", files=[
            ("message", (None, "The roster is attached.")),
            ("files", ("IMG_0412.jpg", photo, "image/jpeg"))])
        assert answer.status_code == 200, answer.text


@pytest.fixture
def embedded(tmp_path: Path) -> Embedded:
    """An instance on the embedded default with a little of everything in it."""
    home = tmp_path / "instance"
    instance = new_instance(home, f"sqlite:///{home / 'sprava.db'}")
    key = tmp_path / "key.txt"
    subprocess.run([tool("age-keygen"), "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run([tool("age-keygen"), "-y", str(key)], check=True,
                            capture_output=True, text=True).stdout.strip()
    photo = os.urandom(150_000)
    try:
        world = build_world(instance, tmp_path)
        parent = units.create_unit(instance, {"names": {"en": "Interior ministry"},
                                              "type": "ministry"}, actor=ANNA)
        # A parent created after its child: the copy must still insert the parent first.
        units.update_unit(instance, units.list_units(instance).items[0].id,
                          {"parent_id": parent.id}, actor=ANNA)
        _submit(instance, public, photo)
        assert world.photos
    finally:
        instance.close()
    cli = Cli(home)
    ran = cli("jobs", "run", timeout=600)
    assert ran.code == 0, ran.stderr
    return Embedded(home, cli, key, photo)


@pytest.fixture
def bare(tmp_path: Path) -> Embedded:
    """An embedded instance holding two plain files: enough for the moves that fail."""
    home = tmp_path / "instance"
    new_instance(home, f"sqlite:///{home / 'sprava.db'}").close()
    files = tmp_path / "files"
    files.mkdir()
    for name in ("a.txt", "b.txt"):
        (files / name).write_text(f"evidence {name}")
    cli = Cli(home)
    assert cli("ingest", str(files)).code == ExitCode.OK
    return Embedded(home, cli, tmp_path / "no-key", b"")


def _export_message(embedded: Embedded, cli: Cli, out: Path) -> bytes:
    done = cli("inbox", "export", "--out", str(out), "--json")
    assert done.code == 0, done.stderr
    [written] = json.loads(done.stdout)["submissions"]
    folder = written["folder"].rsplit("/", 1)[-1]
    result = subprocess.run([tool("age"), "-d", "-i", str(embedded.key),
                             str(out / folder / "post-1" / "file-1.age")],
                            capture_output=True, check=True)
    return result.stdout


class _S3Cli(Cli):
    """The CLI with the test server's S3 credentials in its environment, as an operator
    keeps them out of sprava.toml."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(SPRAVA_S3_ACCESS_KEY_ID=S3_KEY, SPRAVA_S3_SECRET_ACCESS_KEY=S3_SECRET)
        return env


def test_an_instance_moves_to_postgresql_and_s3_and_back_unchanged(
        embedded: Embedded, postgres_server: PostgresServer, s3_server: S3Server,
        tmp_path: Path) -> None:
    cli = _S3Cli(embedded.home)
    before = _sums(embedded.database_url())
    checkpoint = cli("ledger", "checkpoint")
    assert checkpoint.code == 0, checkpoint.stderr
    items = cli("items", "--json")
    assert items.code == 0

    name = "move_" + os.urandom(6).hex()
    postgres_server.admin(f'CREATE DATABASE "{name}"')
    pg_url = postgres_server.url(name)
    bucket = f"s3://sprava-tests/move-{os.urandom(6).hex()}"
    moved = cli("move", "--to", pg_url, "--blobs", bucket,
                "--s3-endpoint-url", s3_server.endpoint, "--json", timeout=600)
    assert moved.code == 0, moved.stderr
    report = json.loads(moved.stdout)
    assert report["database_moved"]
    assert report["blobs_moved"]
    assert report["blobs_copied"] == len(json.loads(items.stdout)["items"]) > 4
    assert report["inbox_objects"] == 3  # manifest, message and file
    assert report["items_verified"] == report["blobs_copied"]
    config = embedded.config()
    assert pg_url in config
    assert bucket in config
    assert s3_server.endpoint in config
    assert S3_SECRET not in config  # credentials stay in the environment
    assert Path(report["kept_config"]).read_text().count("sqlite") == 1

    # Every table, and so the ledger, is the same; the instance works on the new stores.
    assert _sums(pg_url) == before
    assert cli("verify").code == ExitCode.OK
    assert cli("ledger", "checkpoint").stdout == checkpoint.stdout
    assert cli("items", "--json").stdout == items.stdout
    assert _export_message(embedded, cli, tmp_path / "export-1") == embedded.photo
    # New rows on PostgreSQL get ids after the copied ones (the sequences were moved on).
    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(3):
        (extra / f"{i}.txt").write_text(f"written after the move {i}")
    added = cli("ingest", str(extra), "--source", "a source new after the move")
    assert added.code == ExitCode.OK, added.stderr
    assert cli("verify").code == ExitCode.OK
    # The old stores were left as they were.
    assert _sums(f"sqlite:///{embedded.home / 'sprava.db'}") == before
    assert (embedded.home / "blobs" / "inbox" / "objects").is_dir()
    inbox = LocalInboxStore(embedded.home / "inbox")
    assert len(list(inbox.stored())) == 3

    # Back to SQLite and a folder elsewhere, still the same (the export above was recorded).
    middle = _sums(pg_url)
    assert middle["ledger_leaf"].rows == before["ledger_leaf"].rows + 4  # export, 3 files
    back = tmp_path / "back"
    returned = cli("move", "--to", f"sqlite:///{back / 'sprava.db'}",
                   "--blobs", (back / "blobs").as_uri(), "--json", timeout=600)
    assert returned.code == 0, returned.stderr
    assert _sums(f"sqlite:///{back / 'sprava.db'}") == middle
    assert "s3_endpoint_url" not in embedded.config()
    assert cli("verify").code == ExitCode.OK
    assert _export_message(embedded, cli, tmp_path / "export-2") == embedded.photo

    (extra / "3.txt").write_text("written after the second move")
    assert cli("ingest", str(extra)).code == ExitCode.OK
    assert cli("verify").code == ExitCode.OK


def test_a_target_that_holds_data_is_refused_and_nothing_changes(
        bare: Embedded, postgres_server: PostgresServer, tmp_path: Path) -> None:
    name = "move_" + os.urandom(6).hex()
    postgres_server.admin(f'CREATE DATABASE "{name}"')
    url = postgres_server.url(name)
    other = new_instance(tmp_path / "other", url)
    other.close()
    other_cli = Cli(tmp_path / "other")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.txt").write_text("someone else's evidence")
    assert other_cli("ingest", str(tmp_path / "one")).code == ExitCode.OK
    config, sums = bare.config(), _sums(url)

    refused = bare.cli("move", "--to", url)
    assert refused.code == ExitCode.USAGE
    assert "move-target-not-empty" in refused.stderr
    assert bare.config() == config
    assert _sums(url) == sums
    assert bare.cli("verify").code == ExitCode.OK


def test_a_database_of_something_else_is_refused(bare: Embedded, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    engine = make_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE payroll (id INTEGER PRIMARY KEY, name TEXT)")
    engine.dispose()
    config = bare.config()
    refused = bare.cli("move", "--to", f"sqlite:///{other}")
    assert refused.code == ExitCode.USAGE
    assert "payroll" in refused.stderr
    assert bare.config() == config
    engine = make_engine(f"sqlite:///{other}")
    with engine.connect() as conn:
        tables = [r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
    engine.dispose()
    assert tables == ["payroll"]


def test_an_instance_in_use_is_not_moved(bare: Embedded, tmp_path: Path) -> None:
    engine = make_engine(bare.database_url())
    target = tmp_path / "target"
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM item").scalar()
            refused = bare.cli("move", "--to", f"sqlite:///{target / 'sprava.db'}")
    finally:
        engine.dispose()
    assert refused.code == ExitCode.USAGE
    assert "move-instance-in-use" in refused.stderr
    assert str(os.getpid()) in refused.stderr
    assert not (target / "sprava.db").exists()


def test_an_altered_blob_stops_the_move_before_anything_is_switched(
        bare: Embedded, tmp_path: Path) -> None:
    config = bare.config()
    objects = bare.home / "blobs" / "sha256"
    victim = next(p for p in sorted(objects.rglob("*")) if p.is_file())
    victim.chmod(0o600)
    victim.write_bytes(victim.read_bytes() + b"tampered")
    target = tmp_path / "target"
    failed = bare.cli("move", "--to", f"sqlite:///{target / 'sprava.db'}",
                          "--blobs", (target / "blobs").as_uri())
    assert failed.code == ExitCode.FAILED
    assert "move-blob-altered" in failed.stderr
    assert bare.config() == config
    assert not (target / "blobs" / "sha256" / victim.parent.parent.name / victim.parent.name
                / victim.name).exists()


@pytest.mark.parametrize(("args", "code", "exit_code"), [
    ((), "move-nowhere", ExitCode.USAGE),
    (("--to", "mysql://localhost/x"), "bad-database-url", ExitCode.UNUSABLE),
    (("--blobs", "ftp://host/x"), "bad-blob-url", ExitCode.UNUSABLE),
])
def test_a_move_to_nowhere_or_to_an_unknown_store_is_refused(
        bare: Embedded, args: tuple[str, ...], code: str, exit_code: ExitCode) -> None:
    config = bare.config()
    refused = bare.cli("move", *args)
    assert refused.code == exit_code
    assert code in refused.stderr
    assert bare.config() == config


def test_moving_onto_the_stores_in_use_is_refused(bare: Embedded) -> None:
    refused = bare.cli("move", "--to", bare.database_url())
    assert refused.code == ExitCode.USAGE
    assert "move-nowhere" in refused.stderr
