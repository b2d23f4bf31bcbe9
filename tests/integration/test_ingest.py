"""Ingest on each database back end: duplicates, empty files, odd names, hostile input."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
import threading
from pathlib import Path

from sqlalchemy import select

from conftest import Cli, blob_bytes, new_instance
from sprava.audit import verify_instance
from sprava.backends.db.tables import item, item_name
from sprava.domain.custody import decode_leaf
from sprava.domain.digest import Digest
from sprava.instance import Instance
from sprava.ledger import log
from sprava.store.blobs import CHUNK, LocalBlobStore
from sprava.store.ingest import Ingestor, IngestResult, IngestSummary


def ingest(instance: Instance, *paths: Path | bytes, follow_links: bool = False,
           source: str | None = None) -> tuple[IngestSummary, dict[str, IngestResult]]:
    ingestor = Ingestor(instance, source_name=source, follow_links=follow_links)
    seen: dict[str, IngestResult] = {}
    raw = [p if isinstance(p, bytes) else os.fsencode(p) for p in paths]
    summary = ingestor.run(ingestor.plan(raw), lambda r: seen.__setitem__(r.name, r))
    return summary, seen


def assert_clean(instance: Instance) -> None:
    report = verify_instance(instance)
    assert report.ok, [f.to_dict() for f in report.findings]


def test_same_content_twice_is_one_item_with_two_custody_events(
    instance: Instance, tmp_path: Path
) -> None:
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff" + b"photo" * 100)
    (tmp_path / "copy of a.jpg").write_bytes(b"\xff\xd8\xff" + b"photo" * 100)
    first, _ = ingest(instance, tmp_path / "a.jpg", source="volunteer 12")
    second, results = ingest(instance, tmp_path / "copy of a.jpg", source="telegram")
    assert (first.stored, second.stored, second.already_held) == (1, 0, 1)
    sha = results["copy of a.jpg"].sha256
    assert sha is not None
    with instance.engine.connect() as conn:
        leaves = log.leaves_for_item(conn, sha)
        names = conn.execute(select(item_name.c.name).where(item_name.c.item_sha256 == sha)
                             .order_by(item_name.c.id)).scalars().all()
        media_type = conn.execute(select(item.c.media_type)).scalar_one()
    events = [decode_leaf(leaf.data) for leaf in leaves]
    assert [(e["new"], e["source"]) for e in events] == [(True, "volunteer 12"),
                                                         (False, "telegram")]
    assert names == ["a.jpg", "copy of a.jpg"]
    assert media_type == "image/jpeg"
    assert_clean(instance)


def test_zero_byte_file_is_held_as_evidence(instance: Instance, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    summary, results = ingest(instance, tmp_path / "empty")
    assert summary.stored == 1
    assert results["empty"].sha256 == hashlib.sha256(b"").hexdigest()
    assert results["empty"].size == 0
    assert_clean(instance)


def test_names_that_are_not_utf8_are_kept_byte_for_byte(
    instance: Instance, tmp_path: Path
) -> None:
    folder = os.fsencode(tmp_path / "scans")
    os.mkdir(folder)
    raw_name = b"\xcf\xf0\xee\xf2\xee\xea\xee\xeb-\xff.txt"  # "Протокол" in cp1251, then 0xFF
    with open(folder + b"/" + raw_name, "wb") as handle:
        handle.write(b"scan")
    summary, results = ingest(instance, folder)
    assert summary.stored == 1
    (result,) = results.values()
    assert result.name_raw == b"scans/" + raw_name
    assert result.to_dict()["path_hex"] == (b"scans/" + raw_name).hex()
    with instance.engine.connect() as conn:
        stored = conn.execute(select(item_name.c.name_raw, item_name.c.name)).one()
    assert bytes(stored.name_raw) == b"scans/" + raw_name
    assert stored.name == "scans/\\xcf\\xf0\\xee\\xf2\\xee\\xea\\xee\\xeb-\\xff.txt"


def test_links_dangling_outside_and_inside(instance: Instance, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("kept elsewhere")
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "real.txt").write_text("inside")
    (folder / "dangling").symlink_to(tmp_path / "nothing-here")
    (folder / "escape").symlink_to(outside)
    (folder / "alias.txt").symlink_to(folder / "real.txt")
    (folder / "loop").symlink_to(folder)
    summary, results = ingest(instance, folder)
    assert results["media/dangling"].error is not None
    assert results["media/dangling"].error.code == "dangling-link"
    escape = results["media/escape"]
    assert escape.status == "failed"
    assert escape.error is not None
    assert escape.error.code == "link-outside"
    assert escape.error.hint is not None
    assert "--follow-links" in escape.error.hint
    # Folders are walked in name order: the link inside the folder comes first.
    assert results["media/alias.txt"].status == "stored"
    assert results["media/real.txt"].status == "already-held"
    assert (summary.stored, summary.already_held, summary.failed) == (1, 1, 2)
    followed, results = ingest(instance, folder, follow_links=True)
    assert results["media/escape"].status == "stored"
    assert followed.failed == 1  # the dangling link still fails
    assert_clean(instance)


def test_top_level_dangling_link_and_missing_path(instance: Instance, tmp_path: Path) -> None:
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    summary, results = ingest(instance, tmp_path / "gone", tmp_path / "never-existed")
    assert summary.failed == 2
    codes = sorted(r.error.code for r in results.values() if r.error is not None)
    assert codes == ["dangling-link", "not-found"]


def test_fifos_sockets_and_devices_are_skipped_without_blocking(
    instance: Instance, tmp_path: Path
) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    os.mkfifo(folder / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock"))
    (folder / "fine.txt").write_text("ok")
    outcome: dict[str, object] = {}

    def run() -> None:
        outcome["result"] = ingest(instance, folder, Path("/dev/null"), folder / "pipe")

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    server.close()
    assert not worker.is_alive(), "ingest blocked on a FIFO"
    summary, results = outcome["result"]  # type: ignore[misc]
    assert summary.stored == 1
    assert summary.skipped == 4
    assert summary.failed == 0
    assert {r.error.code for r in results.values() if r.error} == {"not-a-regular-file"}
    assert "a FIFO" in results["pipe"].error.message
    assert "a character device" in results["null"].error.message


def test_read_error_fails_that_file_and_leaves_nothing_half_written(
    instance: Instance, tmp_path: Path
) -> None:
    (tmp_path / "good.txt").write_text("good")
    # Reading /proc/self/mem from offset 0 fails with EIO after the file opened fine.
    summary, results = ingest(instance, Path("/proc/self/mem"), tmp_path / "good.txt")
    assert results["mem"].status == "failed"
    assert results["mem"].error is not None
    assert results["mem"].error.code == "read-error"
    assert results["good.txt"].status == "stored"
    assert instance.blobs.temp_count() == 0
    assert summary.failed == 1
    assert_clean(instance)


def test_large_file_streams_through_the_pipeline(instance: Instance, tmp_path: Path) -> None:
    data = os.urandom(9 * CHUNK + 123)
    (tmp_path / "clip.mp4").write_bytes(data)
    _, results = ingest(instance, tmp_path / "clip.mp4")
    sha = results["clip.mp4"].sha256
    assert sha == hashlib.sha256(data).hexdigest()
    assert sha is not None
    assert blob_bytes(instance, sha) == data
    if isinstance(instance.blobs, LocalBlobStore):
        assert stat.S_IMODE(instance.blobs.path_of(Digest(sha)).stat().st_mode) == 0o400


def test_many_files_span_several_transactions_and_checkpoints(
    tmp_path: Path, database_url: str, stack_settings: dict[str, str]
) -> None:
    inst = new_instance(tmp_path / "inst", database_url, batch_files=7, **stack_settings)
    try:
        folder = tmp_path / "many"
        folder.mkdir()
        for i in range(30):
            (folder / f"{i:03}.bin").write_bytes(f"file {i}".encode())
        summary, _ = ingest(inst, folder)
        assert summary.stored == 30
        report = verify_instance(inst)
        assert report.ok
        assert report.checkpoints == 5  # 7 + 7 + 7 + 7 + 2
    finally:
        inst.close()


def test_unreadable_file_fails_and_the_batch_goes_on(cli: Cli, tmp_path: Path) -> None:
    """Runs the real CLI. As root, it runs without the capabilities that let root read
    every file (util-linux ``setpriv``), so that file permissions apply to it."""
    media = tmp_path / "media"
    media.mkdir()
    (media / "secret.txt").write_text("no access")
    (media / "secret.txt").chmod(0o000)
    (media / "open.txt").write_text("readable")
    prefix = []
    if os.geteuid() == 0:
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    done = subprocess.run([*prefix, *cli.argv("ingest", str(media), "--json")],
                          env=cli.env(), capture_output=True, check=False)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    by_path = {r["path"]: r for r in records}
    assert done.returncode == 1, done.stderr
    assert by_path["media/secret.txt"]["status"] == "failed"
    assert by_path["media/secret.txt"]["error"]["code"] == "unreadable"
    assert by_path["media/open.txt"]["status"] == "stored"
