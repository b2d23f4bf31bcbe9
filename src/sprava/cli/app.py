"""The command table. Each command is thin: parse, call the service, print."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from sprava.cli.app_types import JsonOpt
from sprava.cli.exitcode import ExitCode
from sprava.cli.output import console, emit_json, human_size


class _State:
    home: Path | None = None


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="sprava",
        help="Sprava: an evidence vault whose custody record anyone can verify offline.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    state = _State()

    @app.callback()
    def _root(
        home: Annotated[Path | None, typer.Option(
            "--home", help="The instance folder (default: $SPRAVA_HOME or ./sprava-data).")] = None,
    ) -> None:
        state.home = home

    def settings(**overrides: Any) -> Any:
        from sprava.settings import load_settings

        return load_settings(state.home, overrides)

    def open_current() -> Any:
        from sprava.instance import open_instance

        return open_instance(settings())

    @app.command()
    def init(
        folder: Annotated[Path | None, typer.Argument(
            help="Where to create the instance (default: --home, $SPRAVA_HOME or ./sprava-data).")
        ] = None,
        origin: Annotated[str | None, typer.Option(
            help="The ledger's name, used as checkpoint origin and key name.")] = None,
        database_url: Annotated[str | None, typer.Option(
            help="sqlite:///PATH or postgresql+psycopg://USER@HOST/DB.")] = None,
        blob_url: Annotated[str | None, typer.Option(
            help="file:///PATH or s3://BUCKET[/PREFIX] of the blob store.")] = None,
        s3_endpoint_url: Annotated[str | None, typer.Option(
            help="The S3 server's URL, for an s3:// blob store (credentials: "
                 "SPRAVA_S3_ACCESS_KEY_ID and SPRAVA_S3_SECRET_ACCESS_KEY).")] = None,
        s3_region: Annotated[str | None, typer.Option(
            help="The S3 region, for an s3:// blob store.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Create an instance: database, blob store (an S3 bucket is created if missing),
        ledger signing key. Harmless to repeat."""
        from sprava.instance import init_instance
        from sprava.settings import load_settings

        if folder is not None:
            state.home = folder
        explicit = {k: v for k, v in (("database_url", database_url), ("blob_url", blob_url),
                                      ("s3_endpoint_url", s3_endpoint_url),
                                      ("s3_region", s3_region))
                    if v is not None}
        config = load_settings(state.home, explicit)
        instance, created = init_instance(config, origin=origin or config.origin or None,
                                          explicit=explicit)
        try:
            record = {"home": str(config.home), "created": created, "origin": instance.origin,
                      "verifier_key": str(instance.verifier),
                      "database_url": _redact_url(config.database_url),
                      "blob_url": config.blob_url}
            if as_json:
                emit_json(record)
                return
            out = console()
            verb = "Created" if created else "Already an instance:"
            out.print(f"{verb} {config.home}")
            out.print(f"  ledger       {instance.origin}")
            out.print(f"  verifier key {instance.verifier}")
            out.print(f"  database     {record['database_url']}")
            out.print(f"  blobs        {config.blob_url}")
        finally:
            instance.close()

    @app.command()
    def migrate(
        revision: Annotated[str, typer.Option(help="Target revision (default: the newest).")
                            ] = "head",
    ) -> None:
        """Bring the database schema up to date (back up the database first)."""
        from sprava.backends.db.engine import make_engine, migrate, schema_revision

        config = settings()
        engine = make_engine(config.database_url)
        try:
            before = schema_revision(engine)
            migrate(engine, revision)
            console().print(f"schema: {before or 'empty'} → {schema_revision(engine)}")
        finally:
            engine.dispose()

    @app.command()
    def ingest(
        paths: Annotated[list[Path], typer.Argument(help="Files and folders (recursively).")],
        source: Annotated[str | None, typer.Option(help="Where these files came from.")] = None,
        follow_links: Annotated[bool, typer.Option(
            "--follow-links", help="Follow links that lead outside the folders given.")] = False,
        wait: Annotated[bool, typer.Option(
            "--wait", help="Wait for the analysis of what was ingested.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Store files bit for bit under their SHA-256, each with a custody event.

        Photos, videos and audio are then analysed in the background (or, with --wait,
        before the command returns).
        """
        from sprava.cli.ingest_view import run_ingest
        from sprava.cli.jobs_cmd import after_ingest, run_jobs

        instance = open_current()
        try:
            raw_paths = [os.fsencode(p) for p in paths]
            failed = run_ingest(instance, raw_paths, source=source, follow_links=follow_links,
                                as_json=as_json)
            if wait:
                run_jobs(instance, quiet=as_json)
            else:
                after_ingest(instance)
        finally:
            instance.close()
        if failed:
            raise typer.Exit(ExitCode.FAILED)

    @app.command()
    def items(
        limit: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
        offset: Annotated[int, typer.Option(min=0)] = 0,
        as_json: JsonOpt = False,
    ) -> None:
        """List held items, oldest first."""
        from sprava.backends.db.engine import read_transaction
        from sprava.store.items import count_items, list_items

        instance = open_current()
        try:
            with read_transaction(instance.engine) as conn:
                rows = list_items(conn, limit=limit, offset=offset)
                total = count_items(conn)
        finally:
            instance.close()
        if as_json:
            emit_json({"total": total, "offset": offset, "items": rows})
            return
        from rich.table import Table

        table = Table(title=f"{total} item(s) held", title_justify="left")
        for column in ("sha256", "size", "type", "first seen", "name"):
            table.add_column(column, no_wrap=column != "name")
        for r in rows:
            extra = f" (+{r['names'] - 1} more)" if r["names"] > 1 else ""
            table.add_row(r["sha256"][:16], human_size(r["size"]), r["media_type"],
                          r["first_seen"][:19], f"{r['name']}{extra}")
        console().print(table)

    @app.command()
    def show(
        ref: Annotated[str, typer.Argument(metavar="ITEM", help="A SHA-256 or a unique prefix.")],
        as_json: JsonOpt = False,
    ) -> None:
        """Show one item: its names, sources and custody events."""
        from sprava.backends.db.engine import read_transaction
        from sprava.store.items import item_record, resolve

        instance = open_current()
        try:
            with read_transaction(instance.engine) as conn:
                record = item_record(conn, resolve(conn, ref))
        finally:
            instance.close()
        if as_json:
            emit_json(record)
            return
        out = console()
        out.print(f"[bold]sha256:{record['sha256']}[/]")
        out.print(f"  size       {record['size']} bytes ({human_size(record['size'])})")
        out.print(f"  type       {record['media_type']}")
        out.print(f"  first seen {record['first_seen']}")
        out.print(f"  sources    {', '.join(record['sources']) or '-'}")
        out.print("  names")
        for n in record["names"]:
            out.print(f"    {n['name']}  (leaf {n['leaf_index']}, {n['received_at'][:19]})",
                      markup=False)
        out.print("  custody")
        for e in record["custody"]:
            ev = e["event"]
            out.print(f"    leaf {e['leaf_index']:>6}  {ev['time']}  {ev['kind']:<8} "
                      f"{ev['actor']}", markup=False)

    @app.command()
    def verify(
        casefile: Annotated[Path | None, typer.Argument(
            metavar="[CASEFILE]", help="A case file (zip or folder) to check offline, "
            "with no instance; without it, the instance is checked.")] = None,
        key: Annotated[str | None, typer.Option(
            help="Case file: the verifier key you trust (the key, or a file holding it).")
        ] = None,
        since: Annotated[Path | None, typer.Option(
            metavar="CHECKPOINT", help="Case file: a signed checkpoint you hold from earlier.")
        ] = None,
        consistency: Annotated[Path | None, typer.Option(
            metavar="FILE", help="Case file: a consistency proof (JSON) for --since.")] = None,
        pin: Annotated[bool, typer.Option(
            "--pin", help="Case file: after a clean check, remember its key for its log.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Check the whole instance, or a case file offline (docs/casefiles.md).

        Exits 0 when everything holds, 1 when anything was altered, 3 when unreadable.
        """
        if casefile is not None:
            from sprava.casefile.sprava_verify import run

            raise typer.Exit(run(casefile, key=key, since=since, consistency=consistency,
                                 pin=pin, as_json=as_json))
        if key is not None or since is not None or consistency is not None or pin:
            raise typer.BadParameter("--key, --since, --consistency and --pin check a "
                                     "CASEFILE; give one")
        from sprava.cli.verify_view import run_verify

        instance = open_current()
        try:
            ok = run_verify(instance, as_json=as_json)
        finally:
            instance.close()
        if not ok:
            raise typer.Exit(ExitCode.FAILED)

    from sprava.cli.catalogue_cmd import build_catalogue
    from sprava.cli.export_cmd import build_export
    from sprava.cli.inbox_cmd import build_inbox
    from sprava.cli.jobs_cmd import build_jobs
    from sprava.cli.ledger_cmd import build_ledger
    from sprava.cli.media_cmd import register as register_media
    from sprava.cli.move_cmd import register as register_move
    from sprava.cli.publish_cmd import register as register_publish
    from sprava.cli.serve_cmd import register as register_serve

    register_media(app, open_current)
    register_move(app, open_current)
    register_publish(app, open_current)
    register_serve(app, settings)
    app.add_typer(build_ledger(open_current), name="ledger")
    app.add_typer(build_jobs(open_current), name="jobs")
    app.add_typer(build_catalogue(open_current), name="catalogue")
    app.add_typer(build_inbox(open_current), name="inbox")
    app.add_typer(build_export(open_current), name="export")
    return app


def _redact_url(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]
