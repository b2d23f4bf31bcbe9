"""``sprava inbox export``: the ciphertext of submissions, for offline decryption with ``age``.

SecureDrop's model: a recipient whose private key never touches the server (or who wants
to read on an air-gapped machine) takes the exported folder there and runs the standard
tool, e.g. ``age -d -i key.txt post-1/file-1.age > file-1``. Nothing is decrypted here:
each object is copied exactly as stored, less its padding (the exact length is unsealed
with the server's storage key), so every file is a plain age file.

Layout, one folder per submission, named by its pseudonym::

    quiet-heron/
      README.txt
      post-1/manifest.age   JSON: each part's kind, original name, size, media type
      post-1/message.age    the insider's message, if any
      post-1/file-1.age …   the files, in the order the manifest lists them
      post-2/reply.age      a reply (readable by the recipients and the receipt code)

Each exported submission is a custody event naming who exported it.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sprava.backends.db.engine import read_transaction
from sprava.backends.db.inbox_tables import inbox_object, inbox_post, inbox_submission
from sprava.catalogue._record import recording
from sprava.errors import ConflictError, NotFoundError
from sprava.inbox.keys import open_length
from sprava.inbox.service import Inbox
from sprava.inbox.staff import ENTITY

_README = """\
Submission "{pseudonym}", exported by Sprava.

Every file here is age-encrypted (age-encryption.org/v1) to the inbox recipients of the
day it arrived. Decrypt with the standard age tool and your identity file, e.g.:

    age -d -i key.txt post-1/manifest.age
    age -d -i key.txt -o file-1 post-1/file-1.age

manifest.age lists each part of a post: its kind, the name it was sent under, its size
and its media type. Treat every decrypted file as hostile: open it only on a machine
that is offline and holds nothing else.
"""


def folder_name(pseudonym: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", pseudonym.lower()).strip("-") or "submission"


def _copy(inbox: Inbox, obj: Any, target: Path) -> int:
    length = open_length(inbox.secrets, obj.id, obj.sealed_length)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with inbox.store.open(obj.id) as source:
            left = length
            while left:
                block = source.read(min(left, 1 << 20))
                if not block:
                    raise NotFoundError(f"inbox object {obj.id} is shorter than recorded",
                                        code="inbox-object-short")
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view):]
                left -= len(block)
        os.fsync(fd)
    finally:
        os.close(fd)
    return length


def export(inbox: Inbox, out: Path, ids: list[str] | None, *, actor: str) -> list[dict[str, Any]]:
    """Write the chosen submissions (all when ``ids`` is empty) under ``out``.

    Raises NotFoundError for an unknown id, ConflictError if a submission's folder
    already exists (nothing is ever overwritten).
    """
    with read_transaction(inbox.instance.engine) as conn:
        query = select(inbox_submission).order_by(inbox_submission.c.created_day,
                                                  inbox_submission.c.pseudonym)
        if ids:
            query = query.where(inbox_submission.c.id.in_(ids))
        subs = conn.execute(query).all()
        missing = set(ids or ()) - {s.id for s in subs}
        if missing:
            raise NotFoundError(f"no submission {sorted(missing)[0]}",
                                code="submission-not-found")
        rows = conn.execute(
            select(inbox_object, inbox_post.c.seq, inbox_post.c.submission_id)
            .join(inbox_post, inbox_post.c.id == inbox_object.c.post_id)
            .order_by(inbox_post.c.seq, inbox_object.c.kind, inbox_object.c.position)).all()
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for sub in subs:
        folder = out / folder_name(sub.pseudonym)
        if folder.exists():
            raise ConflictError(f"{folder} exists already", code="export-exists",
                                hint="export into an empty folder")
        folder.mkdir(mode=0o700)
        (folder / "README.txt").write_text(_README.format(pseudonym=sub.pseudonym), "utf-8")
        files = []
        for row in (r for r in rows if r.submission_id == sub.id):
            post = folder / f"post-{row.seq}"
            post.mkdir(mode=0o700, exist_ok=True)
            name = (f"file-{row.position + 1}.age" if row.kind == "file"
                    else f"{row.kind}.age")
            size = _copy(inbox, row, post / name)
            files.append({"path": str((post / name).relative_to(out)), "kind": row.kind,
                          "size": size})
        written.append({"id": sub.id, "pseudonym": sub.pseudonym,
                        "folder": str(folder), "files": files})
    with recording(inbox.instance, actor) as rec:
        for entry in written:
            rec.record("export", ENTITY, entry["id"], {"nonce": secrets.token_hex(16)})
    return written
