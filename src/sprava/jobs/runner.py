"""Running queued jobs: an in-process pool of worker processes on one machine.

Each worker is a separate process that claims jobs from the database queue; the Celery
workers of :mod:`sprava.jobs.celery_app` (``jobs = celery``) claim from the same queue
with the same handlers and limits.
Hostile files are expected: every job runs under a memory cap (``RLIMIT_AS``) and a wall
clock alarm in its worker; a worker that dies or is killed by its alarm is replaced, and
its job is marked failed with the reason, never retried forever.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sprava.errors import SpravaError
from sprava.jobs import queue
from sprava.settings import Settings

_IDLE = 0


class JobRunner(Protocol):
    """Whatever runs queued jobs until none is left."""

    def run_until_idle(self, on_done: Callable[[int], None] | None = None) -> RunSummary: ...


@dataclass
class RunSummary:
    done: int = 0
    failed: int = 0
    crashed: int = 0
    errors: list[str] = field(default_factory=list)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def limit_memory(megabytes: int) -> None:
    if megabytes > 0:
        cap = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def run_one(instance: Any, claimed: queue.Job, worker: str) -> bool:
    """Run one claimed job in this process; returns True when it succeeded."""
    from sprava.jobs.handlers import handle

    try:
        handle(instance, claimed)
    except SpravaError as exc:
        queue.fail(instance.engine, claimed, worker, exc.code, exc.message)
        return False
    except MemoryError:
        queue.fail(instance.engine, claimed, worker, "memory-limit",
                   "the job needed more memory than analysis_max_memory_mb allows")
        return False
    queue.complete(instance.engine, claimed, worker)
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process runs; a zombie (killed, not yet reaped) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"])


def die_with_parent() -> None:
    """Ask Linux to end this worker when its parent dies, so no orphan keeps working."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def warm_up() -> None:
    """Load the analysis code and the face detector before the first job's time limit
    starts: on a busy machine the imports and the model take seconds, which belong to the
    worker's start, not to the job. A part that cannot load fails later, in the job that
    needs it, with that job's own message."""
    try:
        import sprava.jobs.handlers
        import sprava.media.metadata
        import sprava.media.phash
        import sprava.media.pipeline
        import sprava.media.similarity  # noqa: F401
        from sprava.media.thumbnail import shared_detector

        shared_detector()
    except (ImportError, SpravaError):
        pass


def _worker_main(settings: Settings, current: Any, results: Any) -> None:
    """A worker process: claim and run jobs until the queue is empty."""
    from sprava.instance import open_instance

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    limit_memory(settings.analysis_max_memory_mb)
    instance = open_instance(settings)
    worker = worker_name()
    warm_up()
    try:
        while True:
            claimed = queue.claim(instance.engine, worker, settings.job_lease_seconds,
                                  settings.job_max_attempts)
            if claimed is None:
                return
            current.value = claimed.id
            # The kernel ends this process if one job overruns: a decoder stuck in C code
            # cannot be interrupted any other way. The parent reports it.
            signal.alarm(max(1, int(settings.analysis_max_seconds)))
            ok = run_one(instance, claimed, worker)
            signal.alarm(0)
            current.value = _IDLE
            results.put(ok)
    finally:
        instance.close()


class InProcessJobRunner:
    """Runs the queue to empty with ``workers`` processes on this machine."""

    def __init__(self, settings: Settings, workers: int | None = None) -> None:
        self.settings = settings
        self.workers = max(1, workers or settings.workers)

    def run_until_idle(self, on_done: Callable[[int], None] | None = None) -> RunSummary:
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        summary = RunSummary()
        slots: list[tuple[Any, Any]] = []

        def start() -> tuple[Any, Any]:
            current = context.Value("q", _IDLE)
            process = context.Process(target=_worker_main, args=(self.settings, current,
                                                                 results), daemon=True)
            process.start()
            return process, current

        from sprava.instance import open_instance

        instance = open_instance(self.settings)
        try:
            queue.release_dead(instance.engine, socket.gethostname(), pid_alive)
        finally:
            instance.close()
        slots = [start() for _ in range(self.workers)]
        try:
            while slots:
                time.sleep(0.05)
                while not results.empty():
                    ok = results.get()
                    summary.done += ok
                    summary.failed += not ok
                    if on_done:
                        on_done(summary.done + summary.failed + summary.crashed)
                alive = []
                for process, current in slots:
                    if process.is_alive():
                        alive.append((process, current))
                        continue
                    process.join()
                    if process.exitcode != 0 and current.value != _IDLE:
                        self._report_crash(current.value, process.exitcode, summary)
                        if on_done:
                            on_done(summary.done + summary.failed + summary.crashed)
                        alive.append(start())  # the queue may still hold work
                slots = alive
        finally:
            for process, _ in slots:
                process.terminate()
                process.join(5)
        while not results.empty():
            ok = results.get()
            summary.done += ok
            summary.failed += not ok
        return summary

    def _report_crash(self, job_id: int, exitcode: int | None, summary: RunSummary) -> None:
        from sprava.instance import open_instance

        if exitcode == -signal.SIGALRM:
            code, message = "time-limit", (
                f"analysis took longer than {self.settings.analysis_max_seconds:g} s")
        elif exitcode == -signal.SIGKILL:
            code, message = "worker-killed", "the worker was killed (out of memory?)"
        else:
            code, message = "worker-crashed", f"the worker ended with status {exitcode}"
        summary.crashed += 1
        summary.errors.append(f"job {job_id}: {message}")
        instance = open_instance(self.settings)
        try:
            queue.fail_crashed(instance.engine, job_id, code, message)
        finally:
            instance.close()
