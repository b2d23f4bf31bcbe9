"""The job queue on the database: enqueue once, claim with a lease, finish or fail.

Threat guarded against: losing or repeating work when a worker dies. A job is claimed by
writing a lease into its row; a worker killed mid-job simply lets the lease run out and
the next worker takes the job again. Handlers are idempotent (their results are keyed by
item and step, derived items by content), so running a job twice has the effect of
running it once. A job that keeps killing its worker is failed after ``max_attempts``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update

from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.backends.db.tables import job

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    item_sha256: str
    params: dict[str, Any]
    attempts: int


def job_key(kind: str, item_sha256: str, params: Mapping[str, Any]) -> str:
    """The identity of a piece of work: the same kind, item and parameters is one job."""
    body = rfc8785.dumps({"kind": kind, "item": item_sha256, "params": dict(params)})
    return hashlib.sha256(body).hexdigest()


def enqueue(conn: Connection, kind: str, item_sha256: str,
            params: Mapping[str, Any] | None = None) -> bool:
    """Queue a job in the caller's transaction; returns False when it was queued before."""
    params = dict(params or {})
    key = job_key(kind, item_sha256, params)
    if conn.execute(select(job.c.id).where(job.c.key == key)).first() is not None:
        return False
    now = datetime.now(UTC)
    conn.execute(insert(job).values(
        key=key, kind=kind, item_sha256=item_sha256, params=json.dumps(params, sort_keys=True),
        status=QUEUED, attempts=0, created_at=now, updated_at=now))
    return True


def requeue(conn: Connection, kind: str, item_sha256: str,
            params: Mapping[str, Any] | None = None) -> None:
    """Queue a job again even if it ran before (after an upgrade of the analysers)."""
    params = dict(params or {})
    key = job_key(kind, item_sha256, params)
    if not enqueue(conn, kind, item_sha256, params):
        conn.execute(update(job).where(job.c.key == key).values(
            status=QUEUED, attempts=0, lease_until=None, worker=None, error_code=None,
            error_message=None, updated_at=datetime.now(UTC)))


def claim(engine: Engine, worker: str, lease_seconds: float, max_attempts: int) -> Job | None:
    """Take the oldest job that is queued or whose lease ran out; None when there is none."""
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        while True:
            row = conn.execute(
                select(job.c.id, job.c.kind, job.c.item_sha256, job.c.params, job.c.attempts)
                .where(or_(job.c.status == QUEUED,
                           and_(job.c.status == RUNNING, job.c.lease_until < now)))
                .order_by(job.c.id).limit(1).with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            if row.attempts >= max_attempts:
                conn.execute(update(job).where(job.c.id == row.id).values(
                    status=FAILED, error_code="too-many-attempts",
                    error_message=f"the job stopped its worker {row.attempts} times",
                    lease_until=None, updated_at=now))
                continue
            conn.execute(update(job).where(job.c.id == row.id).values(
                status=RUNNING, attempts=row.attempts + 1, worker=worker,
                lease_until=now + timedelta(seconds=lease_seconds), updated_at=now))
            return Job(row.id, row.kind, row.item_sha256, json.loads(row.params),
                       row.attempts + 1)


@dataclass(frozen=True)
class Held:
    """Another worker that is still alive holds the job's lease: nothing to do now."""

    worker: str
    lease_until: datetime


def claim_job(engine: Engine, job_id: int, key: str, worker: str, *, lease_seconds: float,
              max_attempts: int, max_seconds: float,
              holder_gone: Callable[[str | None], bool]) -> Job | Held | None:
    """Claim the one job a message named; None when there is nothing to do.

    Threat guarded against: a message delivered twice (a broker redelivers what a killed
    worker had not acknowledged) running the work twice at once. Only a job that is queued,
    or held by a worker that is gone (``holder_gone``) or whose lease ran out, is taken;
    a job done, failed, or held by a live worker is left alone. The key must match too, so
    that a message meant for another instance on the same broker names no job here.
    A job whose holder died after running ``max_seconds`` or longer was ended by its time
    limit: it is failed with ``time-limit`` rather than run again.
    """
    with read_transaction(engine) as conn:  # most duplicates end here, without a write lock
        status = conn.execute(select(job.c.status).where(job.c.id == job_id, job.c.key == key)
                              ).scalar_one_or_none()
    if status is None or status in (DONE, FAILED):
        return None
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        row = conn.execute(
            select(job.c.id, job.c.kind, job.c.item_sha256, job.c.params, job.c.attempts,
                   job.c.status, job.c.worker, job.c.lease_until, job.c.updated_at)
            .where(job.c.id == job_id, job.c.key == key).with_for_update()).first()
        if row is None or row.status in (DONE, FAILED):
            return None
        if row.status == RUNNING:
            expired = row.lease_until is None or row.lease_until < now
            if not expired and not holder_gone(row.worker):
                return Held(row.worker, row.lease_until)
            if not expired and (now - row.updated_at).total_seconds() >= max_seconds:
                conn.execute(update(job).where(job.c.id == row.id).values(
                    status=FAILED, error_code="time-limit",
                    error_message=f"analysis took longer than {max_seconds:g} s",
                    lease_until=None, updated_at=now))
                return None
        if row.attempts >= max_attempts:
            conn.execute(update(job).where(job.c.id == row.id).values(
                status=FAILED, error_code="too-many-attempts",
                error_message=f"the job stopped its worker {row.attempts} times",
                lease_until=None, updated_at=now))
            return None
        conn.execute(update(job).where(job.c.id == row.id).values(
            status=RUNNING, attempts=row.attempts + 1, worker=worker,
            lease_until=now + timedelta(seconds=lease_seconds), updated_at=now))
        return Job(row.id, row.kind, row.item_sha256, json.loads(row.params), row.attempts + 1)


def release(engine: Engine, claimed: Job, worker: str) -> bool:
    """Put a job this worker holds back in the queue (its work could not go on for now)."""
    with write_transaction(engine) as conn:
        result = conn.execute(
            update(job).where(job.c.id == claimed.id, job.c.worker == worker,
                              job.c.status == RUNNING)
            .values(status=QUEUED, lease_until=None, worker=None,
                    updated_at=datetime.now(UTC)))
        return bool(result.rowcount)


def ready(conn: Connection, after_id: int = 0, *,
          queued: bool = True) -> list[tuple[int, str]]:
    """``(id, key)`` of the jobs a worker could take now (queued, or with a lease run out;
    only the latter when not ``queued``), oldest first, from ``after_id`` on: what a
    distributed runner announces."""
    now = datetime.now(UTC)
    lapsed = and_(job.c.status == RUNNING, job.c.lease_until < now)
    rows = conn.execute(
        select(job.c.id, job.c.key)
        .where(job.c.id > after_id, or_(job.c.status == QUEUED, lapsed) if queued else lapsed)
        .order_by(job.c.id))
    return [(int(r.id), str(r.key)) for r in rows]


def _finish(engine: Engine, claimed: Job, worker: str, **values: Any) -> bool:
    with write_transaction(engine) as conn:
        result = conn.execute(
            update(job).where(job.c.id == claimed.id, job.c.worker == worker,
                              job.c.status == RUNNING)
            .values(lease_until=None, updated_at=datetime.now(UTC), **values))
        return bool(result.rowcount)


def complete(engine: Engine, claimed: Job, worker: str) -> bool:
    """Mark done; False when the lease was lost to another worker meanwhile."""
    return _finish(engine, claimed, worker, status=DONE, error_code=None, error_message=None)


def fail(engine: Engine, claimed: Job, worker: str, code: str, message: str) -> bool:
    return _finish(engine, claimed, worker, status=FAILED, error_code=code,
                   error_message=message[:2000])


def fail_crashed(engine: Engine, job_id: int, code: str, message: str) -> None:
    """Fail a job whose worker died under it (reported by the worker's parent)."""
    with write_transaction(engine) as conn:
        conn.execute(update(job).where(job.c.id == job_id, job.c.status == RUNNING).values(
            status=FAILED, error_code=code, error_message=message, lease_until=None,
            updated_at=datetime.now(UTC)))


def release_dead(engine: Engine, host: str, is_alive: Callable[[int], bool]) -> int:
    """Put back jobs held by workers of this host whose process is gone; returns how many.

    Saves waiting out the lease after a crash or a kill of the whole runner.
    """
    with write_transaction(engine) as conn:
        held = conn.execute(select(job.c.id, job.c.worker).where(
            job.c.status == RUNNING, job.c.worker.like(host + ":%"))).all()
        dead = [row.id for row in held
                if not row.worker.rpartition(":")[2].isdigit()
                or not is_alive(int(row.worker.rpartition(":")[2]))]
        if dead:
            conn.execute(update(job).where(job.c.id.in_(dead), job.c.status == RUNNING).values(
                status=QUEUED, lease_until=None, worker=None, updated_at=datetime.now(UTC)))
        return len(dead)


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(job.c.status, func.count()).group_by(job.c.status))
    found = {status: int(n) for status, n in rows}
    return {status: found.get(status, 0) for status in (QUEUED, RUNNING, DONE, FAILED)}


def failures(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(job.c.id, job.c.kind, job.c.item_sha256, job.c.error_code, job.c.error_message,
               job.c.attempts)
        .where(job.c.status == FAILED).order_by(job.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def pending(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(job)
                            .where(job.c.status.in_((QUEUED, RUNNING)))).scalar_one())
