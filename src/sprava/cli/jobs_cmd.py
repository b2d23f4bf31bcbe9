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
    """Drain the queue with the in-process runner, with a progress line on a terminal."""
    from sprava.backends.db.engine import read_transaction
    from sprava.jobs import queue
    from sprava.jobs.runner import InProcessJobRunner

    with read_transaction(instance.engine) as conn:
        total = queue.pending(conn)
    runner = InProcessJobRunner(instance.settings, workers)
    if quiet or total == 0 or not sys.stderr.isatty():
        return runner.run_until_idle()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("analysing", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("jobs", total=total)
        return runner.run_until_idle(lambda n: bar.update(task, completed=n))


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
        workers: Annotated[int | None, typer.Option(min=1, max=256,
                                                    help="Worker processes.")] = None,
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

    return jobs
