"""The job queue on each database: once-only enqueue, leases, take-over, failure."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from sqlalchemy import select

from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.backends.db.tables import job
from sprava.instance import Instance
from sprava.jobs import queue
from sprava.jobs.kinds import ANALYSE
from sprava.store.ingest import Ingestor


def _items(instance: Instance, tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(500))
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x20ftypisom" + os.urandom(500))
    (folder / "notes.txt").write_text("statement")
    (folder / "doc.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(100))
    seen: dict[str, str] = {}
    ingestor = Ingestor(instance)
    ingestor.run(ingestor.plan([os.fsencode(folder)]),
                 lambda r: seen.__setitem__(r.name.split("/")[-1], r.sha256 or ""))
    return seen


def test_ingest_queues_analysis_for_media_only(instance: Instance, tmp_path: Path) -> None:
    items = _items(instance, tmp_path)
    with read_transaction(instance.engine) as conn:
        queued = set(conn.execute(select(job.c.item_sha256).where(job.c.kind == ANALYSE))
                     .scalars())
        assert queue.counts(conn) == {"queued": 2, "running": 0, "done": 0, "failed": 0}
    assert queued == {items["photo.jpg"], items["clip.mp4"]}


def test_enqueue_is_once_per_kind_item_and_parameters(instance: Instance,
                                                      tmp_path: Path) -> None:
    sha = _items(instance, tmp_path)["notes.txt"]
    with write_transaction(instance.engine) as conn:
        assert queue.enqueue(conn, "redact", sha, {"mode": "blur"}) is True
        assert queue.enqueue(conn, "redact", sha, {"mode": "blur"}) is False
        assert queue.enqueue(conn, "redact", sha, {"mode": "solid"}) is True


def test_lease_take_over_and_attempt_limit(instance: Instance, tmp_path: Path) -> None:
    sha = _items(instance, tmp_path)["notes.txt"]
    with write_transaction(instance.engine) as conn:
        conn.execute(job.delete())
        queue.enqueue(conn, "redact", sha, {})
    engine = instance.engine
    first = queue.claim(engine, "host:1", lease_seconds=0.3, max_attempts=2)
    assert first is not None
    assert first.attempts == 1
    assert queue.claim(engine, "host:2", lease_seconds=0.3, max_attempts=2) is None
    time.sleep(0.4)  # the first worker died: its lease runs out
    second = queue.claim(engine, "host:2", lease_seconds=0.3, max_attempts=2)
    assert second is not None
    assert (second.id, second.attempts) == (first.id, 2)
    assert queue.complete(engine, first, "host:1") is False  # the lease was lost
    time.sleep(0.4)
    assert queue.claim(engine, "host:3", lease_seconds=0.3, max_attempts=2) is None
    with read_transaction(engine) as conn:
        (failed,) = queue.failures(conn)
    assert failed["error_code"] == "too-many-attempts"


def test_complete_and_fail_by_the_holder(instance: Instance, tmp_path: Path) -> None:
    _items(instance, tmp_path)
    engine = instance.engine
    one = queue.claim(engine, "w:1", 60, 3)
    two = queue.claim(engine, "w:1", 60, 3)
    assert one is not None
    assert two is not None
    assert queue.complete(engine, one, "w:1") is True
    assert queue.fail(engine, two, "w:1", "corrupt-media", "cannot decode") is True
    with read_transaction(engine) as conn:
        assert queue.counts(conn) == {"queued": 0, "running": 0, "done": 1, "failed": 1}
        assert queue.failures(conn)[0]["error_code"] == "corrupt-media"


def test_jobs_of_dead_workers_on_this_host_are_released(instance: Instance,
                                                        tmp_path: Path) -> None:
    _items(instance, tmp_path)
    host = socket.gethostname()
    engine = instance.engine
    dead = queue.claim(engine, f"{host}:999999999", 900, 3)
    alive = queue.claim(engine, f"{host}:{os.getpid()}", 900, 3)
    assert dead is not None
    assert alive is not None
    released = queue.release_dead(engine, host, lambda pid: pid == os.getpid())
    assert released == 1
    again = queue.claim(engine, f"{host}:{os.getpid()}", 900, 3)
    assert again is not None
    assert again.id == dead.id
