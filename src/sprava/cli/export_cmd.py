"""``sprava export case``: a case as a case file (a signed BagIt bag) for its recipient."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from sprava.cli.app_types import JsonOpt
from sprava.cli.output import console, emit_json, human_size


def build_export(open_current: Callable[[], Any]) -> typer.Typer:
    export = typer.Typer(help="Export cases as case files that anyone can verify offline.",
                         no_args_is_help=True)

    @export.command("case")
    def case(
        case_id: Annotated[str, typer.Argument(metavar="CASE_ID", help="The case's id.")],
        to: Annotated[str, typer.Option(
            "--to", metavar="RECIPIENT",
            help="Who receives it: must be the recipient the case was prepared for.")],
        out: Annotated[Path | None, typer.Option(
            help="Where to write it (default: ./case-<id>-<time>.zip, or a folder).")] = None,
        zipped: Annotated[bool | None, typer.Option(
            "--zip/--folder", help="One zip file, or a folder (default: zip, or what --out "
            "ends with).")] = None,
        prove_from: Annotated[list[int] | None, typer.Option(
            "--prove-from", min=1, metavar="SIZE",
            help="Also carry a consistency proof from this earlier checkpoint size "
            "(repeatable; earlier exports' checkpoints are always covered).")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Write CASE_ID as a BagIt bag for RECIPIENT; the export is a custody event.

        The bag holds the items, their custody events with inclusion proofs against a
        signed checkpoint taken after the export event, the verifier key, the catalogue
        records and a report; `sprava verify CASEFILE` checks it offline.
        """
        from sprava.casefile.export import export_case

        as_zip = zipped if zipped is not None else (out is None or out.suffix == ".zip")
        instance = open_current()
        try:
            if not as_json and sys.stderr.isatty():
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    TransferSpeedColumn,
                )

                with Progress("copying evidence", BarColumn(), DownloadColumn(),
                              TransferSpeedColumn(), console=console(stderr=True),
                              transient=True) as bar:
                    task = bar.add_task("items", total=None)
                    done = export_case(instance, case_id, recipient=to, out=out,
                                       zipped=as_zip, prove_from=prove_from or (),
                                       progress=lambda n: bar.advance(task, n))
            else:
                done = export_case(instance, case_id, recipient=to, out=out, zipped=as_zip,
                                   prove_from=prove_from or ())
        finally:
            instance.close()
        if as_json:
            emit_json(done.to_dict())
            return
        console().print(
            f"wrote {done.path}\n  case {done.case} for {done.recipient!r}\n"
            f"  {done.items} item(s), {human_size(done.payload_bytes)}; {done.events} custody "
            f"event(s); {done.persons} person record(s)\n"
            f"  export recorded as leaf {done.export_leaf}; checkpoint size {done.tree_size}, "
            f"root {done.root}\n"
            f"  report: HTML{' and PDF' if done.pdf else ' (no PDF: WeasyPrint is not installed)'}"
            f"\n  check it with: sprava verify {done.path}", markup=False)

    return export
