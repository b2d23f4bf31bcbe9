"""``sprava publish``: the public transparency site as plain files (docs/publish.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from sprava.cli.app_types import JsonOpt
from sprava.cli.output import console, emit_json


def register(app: typer.Typer, open_current: Callable[[], Any]) -> None:
    @app.command()
    def publish(
        out: Annotated[Path, typer.Option(
            "--out", metavar="DIR",
            help="The site's folder: new, empty, or a site published here before (it is "
            "replaced whole).")],
        as_json: JsonOpt = False,
    ) -> None:
        """Write the public transparency site into DIR; the publication is a custody event.

        Figures of every documented incident, verified incidents, units implicated and
        their commanders (only from reviewed claims resting on public documents), in
        English, Belarusian, Russian and Ukrainian, and how to check it all. Names no
        victim, witness or officer below commander level; places only to
        publish_precision_km.
        """
        from sprava.publish import publish_site

        instance = open_current()
        try:
            done = publish_site(instance, out)
        finally:
            instance.close()
        if as_json:
            emit_json(done.to_dict())
            return
        console().print(
            f"wrote {done.path} ({done.files} files, {', '.join(done.languages)})\n"
            f"  {done.incidents} incident(s) documented, {done.verified} verified; "
            f"{done.units} unit(s) implicated; {done.commanders} commander(s) named\n"
            f"  publication recorded as leaf {done.leaf}; checkpoint size {done.tree_size}, "
            f"root {done.root}\n"
            f"  data/public.json sha256:{done.data_sha256}", markup=False)
