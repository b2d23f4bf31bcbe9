"""Claiming the one job a broker message names (``jobs = celery``), on each database:
a duplicate message does nothing, a dead holder's job is taken over, a message for
another instance names nothing, an overrun is failed with ``time-limit``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import select

from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.backends.db.tables import job
from sprava.instance import Instance
from sprava.jobs import queue
from sprava.store.ingest import Ingestor


def _one_job(instance: Instance, tmp_path: Path) -> tuple[int, str]:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "notes.txt").write_text("statement")
    seen: list[str] = []
    ingestor = Ingestor(instance)
    ingestor.run(ingestor.plan([os.fsencode(folder)]), lambda r: seen.append(r.sha256 or ""))
    with write_transaction(instance.engine) as conn:
        queue.enqueue(conn, "redact", seen[0], {"mode": "blur"})
        row = conn.execute(select(job.c.id, job.c.key)).one()
    return int(row.id), str(row.key)


def _claim(instance: Instance, job_id: int, key: str, worker: str, *,
           gone: set[str] | None = None, lease: float = 60, max_seconds: float = 600,
           ) -> queue.Job | queue.Held | None:
    dead = gone or set()
    return queue.claim_job(instance.engine, job_id, key, worker, lease_seconds=lease,
                           max_attempts=3, max_seconds=max_seconds,
                           holder_gone=lambda holder: holder in dead)


def test_a_duplicate_message_finds_the_job_held_then_done(instance: Instance,
                                                          tmp_path: Path) -> None:
    job_id, key = _one_job(instance, tmp_path)
    first = _claim(instance, job_id, key, "a:1")
    assert isinstance(first, queue.Job)
    assert first.attempts == 1
    held = _claim(instance, job_id, key, "b:2")
    assert isinstance(held, queue.Held)
    assert held.worker == "a:1"
    assert queue.complete(instance.engine, first, "a:1")
    assert _claim(instance, job_id, key, "b:2") is None
    with read_transaction(instance.engine) as conn:
        assert queue.counts(conn)["done"] == 1
        assert queue.ready(conn) == []


def test_a_message_for_another_instance_names_nothing(instance: Instance,
                                                      tmp_path: Path) -> None:
    job_id, key = _one_job(instance, tmp_path)
    assert _claim(instance, job_id, "0" * 64, "a:1") is None
    assert _claim(instance, job_id + 1, key, "a:1") is None
    with read_transaction(instance.engine) as conn:
        assert queue.ready(conn) == [(job_id, key)]


def test_the_job_of_a_dead_holder_or_a_lapsed_lease_is_taken_over(instance: Instance,
                                                                  tmp_path: Path) -> None:
    job_id, key = _one_job(instance, tmp_path)
    first = _claim(instance, job_id, key, "a:1")
    assert isinstance(first, queue.Job)
    second = _claim(instance, job_id, key, "b:2", gone={"a:1"})
    assert isinstance(second, queue.Job)
    assert (second.id, second.attempts) == (job_id, 2)
    assert queue.complete(instance.engine, first, "a:1") is False  # the holder changed
    assert queue.release(instance.engine, second, "b:2")  # the database was away: put back
    third = _claim(instance, job_id, key, "c:3", lease=0.2)
    assert isinstance(third, queue.Job)
    time.sleep(0.4)
    with read_transaction(instance.engine) as conn:
        assert queue.ready(conn) == [(job_id, key)]  # announced again by a kick
    assert _claim(instance, job_id, key, "d:4") is None  # a fourth start: too many
    with read_transaction(instance.engine) as conn:
        (failed,) = queue.failures(conn)
    assert failed["error_code"] == "too-many-attempts"


def test_a_holder_that_died_past_the_time_limit_fails_the_job(instance: Instance,
                                                             tmp_path: Path) -> None:
    job_id, key = _one_job(instance, tmp_path)
    assert isinstance(_claim(instance, job_id, key, "a:1"), queue.Job)
    time.sleep(1.1)
    assert _claim(instance, job_id, key, "b:2", gone={"a:1"}, max_seconds=1) is None
    with read_transaction(instance.engine) as conn:
        (failed,) = queue.failures(conn)
    assert failed["error_code"] == "time-limit"
    assert failed["attempts"] == 1
