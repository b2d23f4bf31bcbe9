"""``sprava move``: copy the instance to other stores, verify the copy, switch to it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from sprava.cli.app_types import JsonOpt
from sprava.cli.output import console, emit_json, human_size


def register(app: typer.Typer, open_current: Callable[[], Any]) -> None:
    @app.command()
    def move(
        to: Annotated[str | None, typer.Option(
            "--to", metavar="DATABASE_URL",
            help="The database to move to: postgresql+psycopg://USER@HOST/DB or "
                 "sqlite:///PATH. It must be new and empty.")] = None,
        blobs: Annotated[str | None, typer.Option(
            "--blobs", metavar="BLOB_URL",
            help="The blob store to move to: s3://BUCKET[/PREFIX] or file:///PATH "
                 "(S3 credentials: SPRAVA_S3_ACCESS_KEY_ID and SPRAVA_S3_SECRET_ACCESS_KEY, "
                 "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).")] = None,
        s3_endpoint_url: Annotated[str | None, typer.Option(
            help="The S3 server's URL, for an s3:// target.")] = None,
        s3_region: Annotated[str | None, typer.Option(
            help="The S3 region, for an s3:// target.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Copy this instance's database and blobs to other stores (e.g. PostgreSQL and an
        S3 bucket, or back to SQLite and a folder), verify the copy end to end, then switch
        sprava.toml to it. Stop `sprava serve` and the workers first: writers are locked
        out while the move runs. The old stores are left untouched (docs/scaling.md)."""
        from sprava.move.service import move_instance, target_settings

        instance = open_current()
        try:
            target = target_settings(instance.settings, to, blobs, s3_endpoint_url, s3_region)
            err = console(stderr=True)

            def note(message: str) -> None:
                if not as_json:
                    err.print(f"{message} …", markup=False)

            report = move_instance(instance, target, note)
        finally:
            instance.close()
        overridden = [name for name in ("SPRAVA_DATABASE_URL", "SPRAVA_BLOB_URL")
                      if os.environ.get(name)]
        if as_json:
            emit_json({**report.to_dict(), "environment_overrides": overridden})
            return
        out = console()
        out.print(f"moved: {sum(report.tables.values())} row(s) in {len(report.tables)} "
                  f"table(s), {report.blobs_copied} blob(s) copied, "
                  f"{report.inbox_objects} inbox object(s)", markup=False)
        out.print(f"ledger: {report.ledger_size} leaves, root {report.ledger_root or '-'} "
                  "(the same on both sides)", markup=False)
        out.print(f"verified: {report.items_verified} item(s), "
                  f"{human_size(report.bytes_rehashed)} re-hashed from the new store",
                  markup=False)
        out.print(f"sprava.toml now names the new stores; the old settings are kept in "
                  f"{report.kept_config}. The old database and blobs were not changed: "
                  "remove them when you no longer need them.", markup=False)
        for name in overridden:
            print(f"warning: {name} is set in the environment and overrides sprava.toml: "
                  "change it to the new store before starting Sprava again", file=sys.stderr)
