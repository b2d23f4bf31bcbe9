"""``sprava jobs``: what the analysis workers are doing, and running them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from sprava.cli.app_types import JsonOpt
from sprava.cli.output import console, emit_json


def run_jobs(instance: Any, workers: int | None = None, *, quiet: bool = False) -> Any:
    """Drain the queue, with a progress line on a terminal: with worker processes of our
    own (``jobs = inprocess``), or by handing it to the Celery workers and waiting."""
    from sprava.backends.db.engine import read_transaction
    from sprava.jobs import queue
    from sprava.jobs.runner import InProcessJobRunner, JobRunner

    with read_transaction(instance.engine) as conn:
        total = queue.pending(conn)
    runner: JobRunner
    label = "analysing"
    if instance.settings.jobs == "celery":
        from sprava.jobs.dispatch import CeleryJobRunner

        runner = CeleryJobRunner(instance)
        label = "analysing (Celery workers)"
    else:
        runner = InProcessJobRunner(instance.settings, workers)
    if quiet or total == 0 or not sys.stderr.isatty():
        return runner.run_until_idle()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(label, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("jobs", total=total)
        return runner.run_until_idle(lambda n: bar.update(task, completed=n))


def after_ingest(instance: Any) -> None:
    """What follows an ingest without --wait: announce the new jobs to the Celery workers
    (``jobs = celery``), or analyse in a background process (``background_jobs``). A
    broker that cannot be reached is reported, not fatal: the files are stored and their
    jobs stay queued."""
    if instance.settings.jobs == "celery":
        from sprava.errors import BackendUnavailableError
        from sprava.jobs.dispatch import kick

        try:
            kick(instance)
        except BackendUnavailableError as exc:
            console(stderr=True).print(f"warning: {exc}", markup=False)
    elif instance.settings.background_jobs:
        start_background(str(instance.settings.home))


def start_background(home: str) -> None:
    """Analyse in a detached process that ends when the queue is empty."""
    subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "sprava", "--home", home, "jobs", "run", "--quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, env=dict(os.environ))


def build_jobs(open_current: Callable[[], Any]) -> typer.Typer:
    jobs = typer.Typer(help="Background analysis: status, and running the workers.",
                       invoke_without_command=True)

    @jobs.callback()
    def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
        """How many jobs are queued, running, done and failed, and why the failures failed."""
        if ctx.invoked_subcommand is not None:
            return
        from sprava.backends.db.engine import read_transaction
        from sprava.jobs import queue

        instance = open_current()
        try:
            with read_transaction(instance.engine) as conn:
                counts = queue.counts(conn)
                failed = queue.failures(conn)
        finally:
            instance.close()
        if as_json:
            emit_json({"counts": counts, "failures": failed})
            return
        out = console()
        out.print("  ".join(f"{name} {n}" for name, n in counts.items()), markup=False)
        for f in failed:
            out.print(f"failed job {f['id']} ({f['kind']} of {f['item_sha256'][:16]}): "
                      f"[{f['error_code']}] {f['error_message']}", markup=False)

    @jobs.command("run")
    def run(
        workers: Annotated[int | None, typer.Option(
            min=1, max=256, help="Worker processes (jobs = inprocess; with jobs = celery "
            "this hands the queue to the workers of `sprava jobs worker` and waits).")
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing.")] = False,
    ) -> None:
        """Run queued jobs until none is left."""
        instance = open_current()
        try:
            summary = run_jobs(instance, workers, quiet=quiet)
        finally:
            instance.close()
        if not quiet:
            console(stderr=True).print(
                f"{summary.done} job(s) done, {summary.failed} failed, {summary.crashed} "
                "stopped by a limit or a crash", markup=False)

    @jobs.command("kick")
    def kick_cmd(as_json: JsonOpt = False) -> None:
        """Announce every ready job to the Celery workers again (after a broker restart,
        or from cron): duplicates are harmless, lost messages are made good."""
        from sprava.jobs.dispatch import kick

        instance = open_current()
        try:
            sent = kick(instance)
        finally:
            instance.close()
        if as_json:
            emit_json({"announced": sent})
            return
        console().print(f"{sent} job(s) announced to the workers", markup=False)

    @jobs.command("worker")
    def worker_cmd(
        concurrency: Annotated[int | None, typer.Option(
            min=1, max=256, help="Pool processes of this worker (default: the `workers` "
            "setting).")] = None,
        loglevel: Annotated[str, typer.Option(help="Celery's log level.")] = "INFO",
    ) -> None:
        """Run a Celery worker for this instance (jobs = celery) until stopped; SIGTERM
        lets it finish the jobs in hand. Start as many as you like, on any machine that
        reaches the database, the blob store and the broker."""
        from sprava.jobs.celery_app import run_worker

        instance = open_current()
        settings = instance.settings
        instance.close()
        run_worker(settings, concurrency or settings.workers, loglevel.upper())

    return jobs
