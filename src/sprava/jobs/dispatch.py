"""Handing queued jobs to Celery workers, and waiting for them: the ``jobs = celery`` side
of everything that used to start worker processes itself.

A message is only ever published after the transaction that queued its job has
committed, so a worker never looks for a row that is not there yet. Messages can still be
lost (a broker restarted without persistence, a publish that failed): :func:`kick`
announces every job that is ready again; duplicates are harmless, because the worker that
receives one claims the job in the database first.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sprava.backends.db.engine import read_transaction
from sprava.errors import BackendUnavailableError, SpravaError
from sprava.jobs import queue
from sprava.jobs.runner import RunSummary, pid_alive

log = logging.getLogger(__name__)
_POLL_SECONDS = 0.25
_REKICK_SECONDS = 60.0
_IDLE_WARNING_SECONDS = 30


def _safe_url(url: str) -> str:
    head, at, tail = url.rpartition("@")
    return f"{head.split('//')[0]}//…@{tail}" if at else url


def publish(instance: Any, jobs: Sequence[tuple[int, str]]) -> int:
    """Tell the workers that these jobs (``(id, key)``) are ready; returns how many.

    Raises BackendUnavailableError when the broker cannot be reached; the jobs stay
    queued in the database and a later :func:`kick` sends them again.
    """
    if not jobs:
        return 0
    from sprava.jobs.celery_app import TASK, make_app

    settings = instance.settings
    app = make_app(settings, instance.origin)  # ConfigurationError without Celery
    from kombu.exceptions import OperationalError as BrokerError

    try:
        with app.producer_or_acquire() as producer:
            for job_id, key in jobs:
                app.send_task(TASK, args=[job_id, key], producer=producer, retry=True,
                              retry_policy={"max_retries": 3, "interval_start": 0.2,
                                            "interval_step": 0.5, "interval_max": 2})
    except (OSError, BrokerError) as exc:
        raise BackendUnavailableError(
            f"the job broker at {_safe_url(settings.broker_url)} could not be reached: "
            f"{exc}", code="broker-unavailable",
            hint="start redis-server (see docs/scaling.md); the jobs stay queued, and "
                 "`sprava jobs kick` sends them again") from None
    finally:
        app.close()
    return len(jobs)


def kick(instance: Any) -> int:
    """Put back the jobs of dead workers of this host, then announce every ready job
    (queued, or with its lease run out); returns how many were announced."""
    queue.release_dead(instance.engine, socket.gethostname(), pid_alive)
    with read_transaction(instance.engine) as conn:
        jobs = queue.ready(conn)
    return publish(instance, jobs)


class CeleryJobRunner:
    """Hands the queue to the Celery workers and waits until it is empty.

    It runs nothing itself: with no worker running it waits (the caller's progress line
    says so), which is what ``ingest --wait`` means when work is distributed.
    """

    def __init__(self, instance: Any, *, timeout: float | None = None) -> None:
        self.instance = instance
        self.timeout = timeout

    def run_until_idle(self, on_done: Callable[[int], None] | None = None) -> RunSummary:
        engine = self.instance.engine
        with read_transaction(engine) as conn:
            before = queue.counts(conn)
        kick(self.instance)
        started = last_kick = last_change = time.monotonic()
        seen, warned = -1, False
        while True:
            with read_transaction(engine) as conn:
                now = queue.counts(conn)
            finished = (now["done"] - before["done"]) + (now["failed"] - before["failed"])
            if on_done:
                on_done(max(0, finished))
            if finished != seen or now["running"]:
                seen, last_change = finished, time.monotonic()
            elif not warned and time.monotonic() - last_change > _IDLE_WARNING_SECONDS:
                log.warning("no Celery worker has taken a job for %d s: start workers with "
                            "`sprava jobs worker` (broker %s)", _IDLE_WARNING_SECONDS,
                            _safe_url(self.instance.settings.broker_url))
                warned = True
            if now["queued"] == 0 and now["running"] == 0:
                return RunSummary(done=max(0, now["done"] - before["done"]),
                                  failed=max(0, now["failed"] - before["failed"]))
            if self.timeout is not None and time.monotonic() - started > self.timeout:
                raise BackendUnavailableError(
                    f"the Celery workers did not finish the queue in {self.timeout:g} s",
                    code="workers-idle", hint="start workers with `sprava jobs worker`")
            if time.monotonic() - last_kick > _REKICK_SECONDS:
                # Jobs whose lease ran out since are announced again; queued ones only when
                # nothing moved for a while (their messages may have been lost), so that a
                # long wait does not fill the broker with duplicates.
                if time.monotonic() - last_change > _REKICK_SECONDS:
                    kick(self.instance)
                else:
                    with read_transaction(engine) as conn:
                        publish(self.instance, queue.ready(conn, queued=False))
                last_kick = time.monotonic()
            time.sleep(_POLL_SECONDS)


class CeleryPoker:
    """Announces new jobs after an upload (the API's ``jobs.poke()`` under celery).

    Publishing runs on a thread of its own so that a request never waits for the broker;
    it announces only jobs newer than the last it announced, so that a thousand uploads
    do not announce the backlog a thousand times.
    """

    def __init__(self, instance: Any) -> None:
        self._instance = instance
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wanted = False
        self._after = 0

    def poke(self) -> None:
        with self._lock:
            self._wanted = True
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._drain, name="sprava-publish",
                                            daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._wanted:
                    self._thread = None
                    return
                self._wanted = False
            try:
                with read_transaction(self._instance.engine) as conn:
                    jobs = queue.ready(conn, self._after)
                publish(self._instance, jobs)
                if jobs:
                    self._after = jobs[-1][0]
            except SpravaError as exc:
                log.warning("could not announce new jobs: %s", exc)

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
