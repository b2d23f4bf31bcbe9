"""``sprava inbox``: the insider inbox from the server's command line.

These commands read only what the server may read without a recipient's key: the list
of submissions by pseudonym and day, the recipients, and the ciphertext (``export``,
for offline decryption with the standard ``age`` tool).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from sprava.cli.app_types import JsonOpt
from sprava.cli.output import console, emit_json, human_size


def build_inbox(open_current: Callable[[], Any]) -> typer.Typer:
    inbox_app = typer.Typer(help="The insider inbox: submissions, recipients, export.",
                            no_args_is_help=True)

    @inbox_app.command("list")
    def list_(
        limit: Annotated[int, typer.Option(min=1, max=500)] = 500,
        offset: Annotated[int, typer.Option(min=0)] = 0,
        as_json: JsonOpt = False,
    ) -> None:
        """Submissions by pseudonym, the most recently active first (no content)."""
        from sprava.inbox.service import Inbox
        from sprava.inbox.staff import list_submissions

        instance = open_current()
        try:
            page = list_submissions(Inbox(instance), limit=limit, offset=offset)
        finally:
            instance.close()
        records = [{"id": s.id, "pseudonym": s.pseudonym,
                    "created_day": s.created_day.isoformat(),
                    "insider_day": s.insider_day.isoformat(),
                    "staff_day": s.staff_day.isoformat() if s.staff_day else None,
                    "posts": s.posts, "files": s.files, "replies": s.replies}
                   for s in page.items]
        if as_json:
            emit_json({"items": records, "total": page.total})
            return
        out = console()
        for r in records:
            out.print(f"{r['id']}  {r['pseudonym']:<24} since {r['created_day']}  last "
                      f"{r['insider_day']}  {r['posts']} posts, {r['files']} files, "
                      f"{r['replies']} replies", markup=False)
        out.print(f"{page.total} submissions", markup=False)

    @inbox_app.command()
    def recipients(as_json: JsonOpt = False) -> None:
        """Who receives the inbox, and their public keys."""
        from sprava.inbox.recipients import list_recipients
        from sprava.inbox.service import Inbox

        instance = open_current()
        try:
            found = list_recipients(Inbox(instance))
        finally:
            instance.close()
        records = [{"username": r.username, "account_id": r.account_id,
                    "public_key": r.public_key, "key_on_server": r.key_on_server}
                   for r in found]
        if as_json:
            emit_json(records)
            return
        out = console()
        for r in records:
            where = "on the server" if r["key_on_server"] else "offline"
            key = r["public_key"] or "no key yet"
            out.print(f"{r['username']:<24} {key}  ({where if r['public_key'] else '-'})",
                      markup=False)

    @inbox_app.command()
    def export(
        submissions: Annotated[list[str] | None, typer.Argument(
            help="Submission ids (default: every submission).")] = None,
        out: Annotated[Path, typer.Option(
            "--out", help="Folder to write into; one sub-folder per submission.")] = Path(
            "inbox-export"),
        as_json: JsonOpt = False,
    ) -> None:
        """Write submissions' ciphertext for offline decryption with `age -d`.

        Nothing is decrypted; each export is a custody event.
        """
        from sprava.inbox.export import export as run_export
        from sprava.inbox.service import Inbox

        instance = open_current()
        try:
            written = run_export(Inbox(instance), out, submissions or None,
                                 actor=instance.settings.actor)
        finally:
            instance.close()
        if as_json:
            emit_json({"out": str(out), "submissions": written})
            return
        stream = console()
        for entry in written:
            size = sum(f["size"] for f in entry["files"])
            stream.print(f"{entry['pseudonym']}: {len(entry['files'])} files, "
                         f"{human_size(size)} → {entry['folder']}", markup=False)
        stream.print("Decrypt with: age -d -i YOUR-KEY-FILE FILE.age (see README.txt "
                     "in each folder)", markup=False)

    return inbox_app
