"""``sprava ingest`` output: a progress bar on a terminal, JSON lines for programs."""

from __future__ import annotations

import sys

from sprava.cli.output import console, emit_json, human_size
from sprava.instance import Instance
from sprava.store.ingest import Ingestor, IngestResult, _Candidate

_STYLE = {"stored": "green", "already-held": "cyan", "skipped": "yellow", "failed": "red"}


def run_ingest(instance: Instance, paths: list[bytes], *, source: str | None,
               follow_links: bool, as_json: bool) -> bool:
    """Ingest and report; returns True when any file failed."""
    ingestor = Ingestor(instance, source_name=source, follow_links=follow_links)
    plan = ingestor.plan(paths)
    total_bytes = sum(e.size for e in plan if isinstance(e, _Candidate))
    out = console()
    err = console(stderr=True)

    def report(result: IngestResult) -> None:
        if as_json:
            emit_json(result.to_dict())
            return
        style = _STYLE[result.status]
        if result.error is not None:
            target = err
            detail = f"[{result.error.code}] {result.error.message}"
            if result.error.hint:
                detail += f" ({result.error.hint})"
        else:
            target = out
            detail = f"sha256:{result.sha256}  {human_size(result.size or 0)}  {result.name}"
        target.print(f"[{style}]{result.status:<12}[/] ", end="", markup=True)
        target.print(detail, markup=False)

    if not as_json and sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        files_total = sum(1 for _ in plan)
        files_done = 0
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), TimeRemainingColumn(), console=err,
                      transient=True) as bar:
            task = bar.add_task(f"0/{files_total} files", total=total_bytes)

            def on_result(result: IngestResult) -> None:
                nonlocal files_done
                files_done += 1
                bar.update(task, description=f"{files_done}/{files_total} files")
                report(result)

            summary = ingestor.run(plan, on_result, lambda n: bar.advance(task, n))
    else:
        summary = ingestor.run(plan, report)
    if not as_json:
        line = (f"{summary.stored} stored, {summary.already_held} already held, "
                f"{summary.skipped} skipped, {summary.failed} failed; "
                f"{human_size(summary.bytes)} read")
        if summary.checkpoint_size is not None:
            line += f"; ledger signed at size {summary.checkpoint_size}"
        err.print(line, markup=False)
    return summary.failed > 0
