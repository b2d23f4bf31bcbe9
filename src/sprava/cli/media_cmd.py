"""``sprava similar`` and ``sprava redact``: near-duplicates and redacted copies."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from sprava.cli.app_types import JsonOpt
from sprava.cli.output import console, emit_json
from sprava.errors import BadInputError


def _item_or_file(instance: Any, ref: str, source: str) -> str:
    """The item named by ``ref``; a path to a file is ingested first (with its event)."""
    from sprava.backends.db.engine import read_transaction
    from sprava.store.ingest import Ingestor, IngestResult
    from sprava.store.items import resolve

    if not os.path.isfile(ref):
        with read_transaction(instance.engine) as conn:
            return resolve(conn, ref)
    results: list[IngestResult] = []
    ingestor = Ingestor(instance, source_name=source)
    ingestor.run(ingestor.plan([os.fsencode(ref)]), results.append)
    (result,) = results
    if result.error is not None or result.sha256 is None:
        raise result.error or BadInputError(f"cannot ingest {ref}", code="unreadable")
    return result.sha256


def register(app: typer.Typer, open_current: Callable[[], Any]) -> None:
    @app.command()
    def similar(
        ref: Annotated[str, typer.Argument(metavar="ITEM|FILE",
                                           help="An item (digest or prefix) or a file.")],
        max_distance: Annotated[int, typer.Option(min=0, max=128,
                                                  help="Largest PDQ distance, in bits.")] = 31,
        limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
        as_json: JsonOpt = False,
    ) -> None:
        """Held items that look like ITEM or FILE, closest first (PDQ distance)."""
        from sprava.backends.db.engine import read_transaction
        from sprava.media.similarity import file_hashes, item_hashes, matches
        from sprava.store.items import resolve

        instance = open_current()
        try:
            with read_transaction(instance.engine) as conn:
                if os.path.isfile(ref):
                    own, hashes = None, file_hashes(instance, Path(ref))
                else:
                    own = resolve(conn, ref)
                    hashes = item_hashes(conn, own)
                found = [m for m in matches(instance, conn, hashes, max_distance, limit + 1)
                         if m.sha256 != own][:limit]
        finally:
            instance.close()
        if as_json:
            emit_json({"query": own or ref, "max_distance": max_distance,
                       "matches": [{"sha256": m.sha256, "distance": m.distance,
                                    "second": m.second} for m in found]})
            return
        out = console()
        if not found:
            out.print(f"no held item within distance {max_distance}", markup=False)
        for m in found:
            where = f" (at {m.second:.1f} s)" if m.second is not None else ""
            out.print(f"{m.distance:>3}  sha256:{m.sha256}{where}", markup=False)

    @app.command()
    def redact(
        ref: Annotated[str, typer.Argument(metavar="ITEM|FILE",
                                           help="An item (digest or prefix) or a file.")],
        out: Annotated[Path | None, typer.Option(help="Also write the copy here.")] = None,
        mode: Annotated[str, typer.Option(help="blur, pixelate or solid.")] = "blur",
        threshold: Annotated[float, typer.Option(help="Face detection threshold.")] = 0.2,
        keep_audio: Annotated[bool, typer.Option("--keep-audio",
                                                 help="Keep a video's sound.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Store a copy with faces obscured and identifying metadata removed."""
        from sprava.media.redaction_job import redact_item, redaction_params

        params = redaction_params(mode, threshold, keep_audio)
        if out is not None and out.exists():
            raise BadInputError(f"{out} exists; Sprava does not overwrite files",
                                code="out-exists", hint="choose another --out path")
        instance = open_current()
        try:
            sha = _item_or_file(instance, ref, "redaction request")
            derived, recorded = redact_item(instance, sha, params)
            if out is not None:
                with instance.blobs.open(_digest(derived.sha256)) as src, out.open("xb") as dst:
                    shutil.copyfileobj(src, dst)
        finally:
            instance.close()
        record = {"original": sha, "sha256": derived.sha256, "media_type": derived.media_type,
                  "size": derived.size, "leaf_index": derived.leaf_index,
                  "new": derived.created, "faces": recorded.get("faces"),
                  "out": str(out) if out else None}
        if as_json:
            emit_json(record)
            return
        console().print(f"redacted copy sha256:{derived.sha256} of sha256:{sha}: "
                        f"{record['faces']} face(s) obscured, custody leaf "
                        f"{derived.leaf_index}" + (f", written to {out}" if out else ""),
                        markup=False)


def _digest(sha: str) -> Any:
    from sprava.domain.digest import Digest

    return Digest(sha)

