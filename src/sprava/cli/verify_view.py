"""``sprava verify`` output: what was checked, and every failure by name."""

from __future__ import annotations

import sys

from rich.markup import escape

from sprava.audit import total_blob_bytes, verify_instance
from sprava.cli.output import console, emit_json, human_size
from sprava.instance import Instance


def run_verify(instance: Instance, *, as_json: bool) -> bool:
    """Verify and report; returns True when the instance is whole."""
    err = console(stderr=True)
    if not as_json and sys.stderr.isatty():
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        with Progress("re-hashing blobs", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("blobs", total=total_blob_bytes(instance))
            report = verify_instance(instance, lambda n: bar.advance(task, n))
    else:
        report = verify_instance(instance)
    if as_json:
        emit_json(report.to_dict())
        return report.ok
    out = console()
    out.print(f"checked {report.items} item(s) ({human_size(report.bytes_hashed)} re-hashed), "
              f"{report.leaves} ledger leaves, {report.checkpoints} signed checkpoint(s)",
              markup=False)
    for note in report.notes:
        out.print(f"note: {note}", markup=False)
    if report.ok:
        out.print("[bold green]OK[/]: every blob, event and checkpoint verifies", markup=True)
        return True
    for finding in report.findings:
        err.print(f"[red]FAIL[/] {escape(f'[{finding.code}]')} {escape(finding.subject)}: ",
                  end="")
        err.print(finding.message, markup=False)
    err.print(f"[bold red]{len(report.findings)} failure(s)[/]", markup=True)
    return False
