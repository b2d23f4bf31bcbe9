"""``sprava catalogue``: export and import of the catalogue, and bulk import of SFM data."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from sprava.cli.app_types import JsonOpt
from sprava.cli.output import console, emit_json, human_size
from sprava.errors import BadInputError, ConflictError, NotFoundError

_SECTIONS = ("vocabulary", "incidents", "units", "persons", "claims", "acts", "cases")


def _counts(counts: dict[str, int]) -> str:
    shown = [f"{n} {section}" for section, n in counts.items() if n]
    return ", ".join(shown) or "nothing"


def _write_export(instance: Any, out: Path, fmt: str, persons: bool) -> Any:
    """Export into a private temporary file beside ``out``, renamed into place only once
    complete, so that a failed export leaves no partial file (persons are restricted:
    the file is readable by its owner only)."""
    from sprava.catalogue.exchange import export_catalogue

    if out.exists() or out.is_symlink():
        raise ConflictError(f"{out} exists already", code="file-exists",
                            hint="choose another name; an export never overwrites a file")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise NotFoundError(f"no folder {folder}", code="not-found")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".sprava-export-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            summary = export_catalogue(instance, handle, fmt=fmt, actor=instance.settings.actor,
                                       persons=persons)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return summary


def build_catalogue(open_current: Callable[[], Any]) -> typer.Typer:
    catalogue = typer.Typer(help="The catalogue: export, import, and bulk import of units and "
                            "commanders from Security Force Monitor style CSV.",
                            no_args_is_help=True)

    @catalogue.command("export")
    def export(
        out: Annotated[Path, typer.Option("--out", help="The file to write (never overwritten).")],
        fmt: Annotated[str, typer.Option("--format", help="json, or csv (a ZIP of CSV files).")
                       ] = "json",
        no_persons: Annotated[bool, typer.Option(
            "--no-persons", help="Leave out persons and every claim naming a person.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Export the whole catalogue; the export and every person in it are recorded."""
        if fmt not in ("json", "csv"):
            raise BadInputError(f"unknown format {fmt!r}", code="bad-format",
                                hint="use --format json or --format csv")
        instance = open_current()
        try:
            summary = _write_export(instance, out, fmt, not no_persons)
        finally:
            instance.close()
        if as_json:
            emit_json({"out": str(out), **summary.to_dict()})
            return
        text = console()
        text.print(f"Exported {_counts(summary.counts)} to {out} ({human_size(summary.size)})",
                   markup=False)
        text.print(f"  sha256:{summary.sha256}, recorded as ledger leaf {summary.leaf_index}",
                   markup=False)
        if not summary.includes_persons:
            text.print(f"  persons left out; {summary.withheld_claims} claim(s) naming a "
                       "person withheld", markup=False)

    @catalogue.command("import")
    def import_(
        file: Annotated[Path, typer.Argument(help="A catalogue export (JSON, or a ZIP of CSV).")],
        fmt: Annotated[str, typer.Option("--format", help="json, csv or auto.")] = "auto",
        as_json: JsonOpt = False,
    ) -> None:
        """Import a catalogue export: all of it or nothing. Approved claims arrive
        pending review; the evidence items they cite must be in the vault already."""
        from sprava.catalogue.exchange import import_catalogue
        from sprava.catalogue.exchange_files import open_regular

        instance = open_current()
        try:
            with open_regular(file) as handle:
                summary = import_catalogue(instance, handle, fmt=fmt,
                                           actor=instance.settings.actor)
        finally:
            instance.close()
        _report(summary, as_json)

    @catalogue.command("import-sfm")
    def import_sfm(
        file: Annotated[Path, typer.Argument(help="A CSV of units and commanders, with "
                                             "Security Force Monitor's column names.")],
        source: Annotated[str | None, typer.Option(
            help="Where the file came from, recorded at ingest.")] = None,
        lang: Annotated[str, typer.Option(
            help="Language tag of the unit names (be, ru, uk, en …; und: undetermined).")
                        ] = "und",
        as_json: JsonOpt = False,
    ) -> None:
        """Import units, persons and claims (submitted for review) from an SFM style CSV;
        the file itself is ingested and cited as the source of every claim."""
        from sprava.catalogue.sfm import import_sfm as run

        instance = open_current()
        try:
            summary = run(instance, file, actor=instance.settings.actor, source=source,
                          lang=lang)
        finally:
            instance.close()
        _report(summary, as_json)

    return catalogue


def _report(summary: Any, as_json: bool) -> None:
    if as_json:
        emit_json(summary.to_dict())
        return
    text = console()
    if summary.item_sha256:
        text.print(f"Read {summary.rows} row(s); the file is item sha256:{summary.item_sha256}",
                   markup=False)
    text.print(f"created: {_counts(summary.created)}", markup=False)
    for label, counts in (("filled in", summary.updated), ("already held", summary.skipped)):
        if any(counts.values()):
            text.print(f"{label}: {_counts(counts)}", markup=False)
    if summary.sent_to_review:
        text.print(f"{summary.sent_to_review} claim(s) approved elsewhere arrive pending "
                   "review here", markup=False)
    if summary.ignored_columns:
        text.print(f"columns not read: {', '.join(summary.ignored_columns)}", markup=False)
