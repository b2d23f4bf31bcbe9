"""Celery workers for the job queue: the broker says "job N is ready", the database decides.

The database queue stays the one source of truth (idempotent enqueue, leases, attempts,
what ``sprava jobs`` shows). A Celery message carries only a job's id and key; the task
claims that row with a lease and runs the job in the worker's pool process. So:

- a message delivered twice finds the job done, failed or leased by a live worker, and
  does nothing (:func:`sprava.jobs.queue.claim_job`);
- messages are acknowledged late and given back when a pool process dies
  (``acks_late``, ``reject_on_worker_lost``): a job whose worker was killed is delivered
  again and taken over, because its holder is gone; a whole worker machine that vanishes
  leaves its message unacknowledged, and Redis hands it out again after the lease
  (``visibility_timeout`` is the lease plus a minute);
- a database that cannot be reached is retried with exponential backoff, the job put back;
- handlers are idempotent and derived items content-addressed, so a job run again after a
  kill in its middle adds no second derived item and no second custody event.

Each pool process has the same limits as the in-process runner's workers: an address-space
cap and a wall-clock alarm per job; it ends with its parent worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any

from sprava.errors import BackendUnavailableError, ConfigurationError, SpravaError
from sprava.jobs import queue
from sprava.settings import Settings

log = logging.getLogger(__name__)

TASK = "sprava.run_job"
# Test hook, harmless elsewhere: hold a job's first attempt this many seconds after its
# work is recorded and before it is marked done, so that a test can kill the worker at
# the worst moment. Unset (the default): no pause.
HOLD_ENV = "SPRAVA_TEST_HOLD_JOB_SECONDS"


def _celery() -> Any:
    try:
        import celery
    except ImportError:
        raise ConfigurationError(
            "jobs = celery, but Celery is not installed", code="celery-missing",
            hint="install the celery extra: pip install 'sprava[celery]'") from None
    return celery


def queue_name(origin: str) -> str:
    """The broker queue of one instance (named after its ledger), so that instances that
    share a Redis never take each other's messages."""
    return "sprava." + hashlib.sha256(origin.encode("utf-8")).hexdigest()[:16]


def make_app(settings: Settings, origin: str) -> Any:
    """A Celery application for the instance whose ledger is ``origin``."""
    celery = _celery()
    app = celery.Celery("sprava", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json", accept_content=["json"], task_ignore_result=True,
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_default_queue=queue_name(origin), enable_utc=True,
        broker_transport_options={"visibility_timeout": settings.job_lease_seconds + 60},
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Each pool process loads the analysis code and the face detector before its first
        # job; on a busy machine that takes longer than Celery's default 4 s.
        worker_proc_alive_timeout=120.0, worker_hijack_root_logger=False,
    )
    app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(BackendUnavailableError,), retry_backoff=True,
             retry_backoff_max=600, retry_jitter=True, max_retries=10)(_run_task)
    return app


@dataclass
class _Worker:
    """What one pool process holds: set when it starts, used by each task it runs."""

    settings: Settings | None = None
    instance: Any = None


_WORKER = _Worker()


def _holder_gone(holder: str | None) -> bool:
    """Whether the worker named in a job's row is certainly not running it any more: it is
    this very process (a retry), or a process of this host that no longer runs. A holder
    on another host is only given up when its lease runs out."""
    from sprava.jobs.runner import pid_alive, worker_name

    if holder is None or holder == worker_name():
        return True
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname():
        return False
    return not pid.isdigit() or not pid_alive(int(pid))


def _open() -> Any:
    from sprava.instance import open_instance

    if _WORKER.settings is None:
        raise ConfigurationError("this process was not started by `sprava jobs worker`",
                                 code="not-a-worker")
    if _WORKER.instance is None:
        _WORKER.instance = open_instance(_WORKER.settings)
    return _WORKER.instance


def _hold_for_tests(attempt: int) -> None:
    try:
        seconds = float(os.environ.get(HOLD_ENV) or 0)
    except ValueError:
        seconds = 0.0
    if seconds > 0 and attempt == 1:
        time.sleep(seconds)


def _run_task(task: Any, job_id: int, key: str) -> str:
    """The Celery task: claim job ``job_id`` and run it here; returns what happened."""
    instance = _open()
    settings = instance.settings
    from sprava.jobs.handlers import handle
    from sprava.jobs.runner import worker_name

    worker = worker_name()
    claimed = queue.claim_job(
        instance.engine, job_id, key, worker, lease_seconds=settings.job_lease_seconds,
        max_attempts=settings.job_max_attempts, max_seconds=settings.analysis_max_seconds,
        holder_gone=_holder_gone)
    if claimed is None:
        return "nothing-to-do"
    if isinstance(claimed, queue.Held):
        return "held-elsewhere"
    # The kernel ends this pool process if the job overruns (a decoder stuck in C code
    # cannot be stopped any other way); the worker gives the message back, and the next
    # claim finds the holder gone after the limit and fails the job with `time-limit`.
    signal.alarm(max(1, int(settings.analysis_max_seconds)))
    try:
        handle(instance, claimed)
        _hold_for_tests(claimed.attempts)
    except BackendUnavailableError:
        _give_back(instance, claimed, worker)
        raise  # retried with backoff by Celery
    except SpravaError as exc:
        queue.fail(instance.engine, claimed, worker, exc.code, exc.message)
        return "failed"
    except MemoryError:
        queue.fail(instance.engine, claimed, worker, "memory-limit",
                   "the job needed more memory than analysis_max_memory_mb allows")
        return "failed"
    except Exception as exc:  # a bug, not the input: recorded, never retried in a loop
        log.exception("job %s failed unexpectedly", claimed.id)
        queue.fail(instance.engine, claimed, worker, "worker-crashed",
                   f"the job failed unexpectedly: {type(exc).__name__}")
        return "failed"
    finally:
        signal.alarm(0)
    queue.complete(instance.engine, claimed, worker)
    return "done"


def _give_back(instance: Any, claimed: queue.Job, worker: str) -> None:
    # When the database is away this fails too; a retry in this very process then finds
    # itself as the holder and goes on, one elsewhere waits for the lease to run out.
    with contextlib.suppress(SpravaError):
        queue.release(instance.engine, claimed, worker)


def _start_pool_process(**_: Any) -> None:
    """Celery's ``worker_process_init``: limits, the instance, and the analysis code loaded
    before the first job's alarm starts."""
    from sprava.jobs.runner import die_with_parent, limit_memory, warm_up

    die_with_parent()
    if _WORKER.settings is not None:
        limit_memory(_WORKER.settings.analysis_max_memory_mb)
    _WORKER.instance = None  # never share the parent's database connections
    _open()
    warm_up()


def run_worker(settings: Settings, concurrency: int, loglevel: str = "INFO") -> None:
    """Run a Celery worker for this instance until it is stopped (SIGTERM: finish the jobs
    in hand, then stop). First it puts back the jobs of dead workers of this host and
    announces every job that is ready, so messages lost with a broker restart are made
    good."""
    from sprava.instance import open_instance
    from sprava.jobs.dispatch import kick

    instance = open_instance(settings)
    try:
        origin = instance.origin
        kick(instance)
    finally:
        instance.close()
    app = make_app(settings, origin)
    _WORKER.settings = settings
    _celery().signals.worker_process_init.connect(_start_pool_process, weak=False)
    app.worker_main([
        "worker", "--pool=prefork", f"--concurrency={concurrency}", f"--loglevel={loglevel}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--hostname", f"sprava-{os.getpid()}@{socket.gethostname()}",
        "--queues", queue_name(origin)])
