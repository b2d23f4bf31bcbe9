"""The inbox as recipients use it: list, read (decrypt in the session), reply, move to vault.

Every read of a submission's content and every download of one of its files is a
custody event naming the reader (entity ``inbox-submission``); so is each reply and each
move into the vault. The ledger never holds a receipt code, a pseudonym, a file name or
any content: only the submission's random id and, for a move, the new item's SHA-256.

Errors: NotFoundError ``submission-not-found`` / ``file-not-found`` (also for ids that
are not ids), PermissionDeniedError ``inbox-locked`` / ``not-a-recipient`` (from
:mod:`sprava.inbox.recipients`), NotARecipientError when the content came before the
reader's key, AgeError when stored ciphertext was tampered with.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import case, func, select, update

from sprava.accounts.sessions import Principal
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.inbox_tables import inbox_object, inbox_post, inbox_submission
from sprava.catalogue import schema
from sprava.catalogue._record import page_query, recording
from sprava.domain.catalogue import Page
from sprava.errors import BadInputError, NotFoundError
from sprava.inbox import age
from sprava.inbox.intake import clean_name
from sprava.inbox.keys import open_length
from sprava.inbox.service import STAFF, Inbox, today
from sprava.store.ingest import Ingestor, IngestResult

ENTITY = "inbox-submission"
VAULT_SOURCE = "insider submission"
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_OBJECT = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class SubmissionSummary:
    id: str
    pseudonym: str
    created_day: date
    insider_day: date
    staff_day: date | None
    posts: int
    files: int
    replies: int


def _submission_id(value: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise NotFoundError("no such submission", code="submission-not-found")
    return value


def list_submissions(inbox: Inbox, *, limit: int = 50, offset: int = 0
                     ) -> Page[SubmissionSummary]:
    """Submissions, the most recently active first, with counts (no content)."""
    s, p, o = inbox_submission.c, inbox_post.c, inbox_object.c
    posts = (select(p.submission_id, func.count().label("n"))
             .group_by(p.submission_id).subquery())
    kinds = (select(p.submission_id,
                    func.sum(case((o.kind == "file", 1), else_=0)).label("files"),
                    func.sum(case((o.kind == "reply", 1), else_=0)).label("replies"))
             .select_from(inbox_object.join(inbox_post, p.id == o.post_id))
             .group_by(p.submission_id).subquery())
    query = (select(inbox_submission, posts.c.n, kinds.c.files, kinds.c.replies)
             .join(posts, posts.c.submission_id == s.id, isouter=True)
             .join(kinds, kinds.c.submission_id == s.id, isouter=True)
             .order_by(s.insider_day.desc(), s.pseudonym))
    with read_transaction(inbox.instance.engine) as conn:
        rows, total = page_query(conn, query, limit, offset)
    return Page(tuple(SubmissionSummary(r.id, r.pseudonym, r.created_day, r.insider_day,
                                        r.staff_day, int(r.n or 0), int(r.files or 0),
                                        int(r.replies or 0)) for r in rows),
                total, limit, offset)


def _load(inbox: Inbox, submission_id: str) -> tuple[Any, Sequence[Any], Sequence[Any]]:
    submission_id = _submission_id(submission_id)
    with read_transaction(inbox.instance.engine) as conn:
        sub = conn.execute(select(inbox_submission)
                           .where(inbox_submission.c.id == submission_id)).first()
        if sub is None:
            raise NotFoundError("no such submission", code="submission-not-found")
        posts = conn.execute(select(inbox_post).where(inbox_post.c.submission_id ==
                                                      submission_id)
                             .order_by(inbox_post.c.seq)).all()
        objects = conn.execute(
            select(inbox_object).join(inbox_post, inbox_post.c.id == inbox_object.c.post_id)
            .where(inbox_post.c.submission_id == submission_id)
            .order_by(inbox_object.c.kind, inbox_object.c.position)).all()
    return sub, posts, objects


def _record_view(inbox: Inbox, principal: Principal, submission_id: str) -> None:
    with recording(inbox.instance, principal.actor) as rec:
        rec.record_view(ENTITY, [submission_id])


def read(inbox: Inbox, principal: Principal, identity: age.Identity,
         submission_id: str) -> dict[str, Any]:
    """The whole conversation, decrypted with the reader's unlocked key (recorded)."""
    sub, posts, objects = _load(inbox, submission_id)
    _record_view(inbox, principal, sub.id)
    by_post: dict[str, list[Any]] = {}
    for obj in objects:
        by_post.setdefault(obj.post_id, []).append(obj)
    out = []
    for post in posts:
        mine = by_post.get(post.id, [])
        entry: dict[str, Any] = {"seq": post.seq, "day": post.day.isoformat(),
                                 "author": post.author, "actor": post.actor,
                                 "message": None, "files": []}
        if post.author == STAFF:
            reply = next((o for o in mine if o.kind == "reply"), None)
            entry["message"] = inbox.read_text(reply, [identity]) if reply else None
        else:
            manifest = next((o for o in mine if o.kind == "manifest"), None)
            parts = inbox.read_json(manifest, [identity]).get("parts", []) if manifest else []
            stored = {o.id: o for o in mine}
            for part in parts:
                obj = stored.get(part.get("object"))
                if obj is None:
                    continue
                if part.get("kind") == "message":
                    entry["message"] = inbox.read_text(obj, [identity])
                elif part.get("kind") == "file":
                    entry["files"].append({
                        "id": obj.id, "name": clean_name(str(part.get("name") or "file")),
                        "size": int(part.get("size") or 0),
                        "media_type": str(part.get("media_type") or ""),
                        "vault_sha256": obj.item_sha256})
        out.append(entry)
    return {"id": sub.id, "pseudonym": sub.pseudonym,
            "created_day": sub.created_day.isoformat(),
            "insider_day": sub.insider_day.isoformat(),
            "staff_day": sub.staff_day.isoformat() if sub.staff_day else None,
            "posts": out}


@dataclass
class OpenFile:
    name: str
    media_type: str
    size: int
    chunks: Iterator[bytes]


def _file(inbox: Inbox, identity: age.Identity, submission_id: str,
          file_id: str) -> tuple[Any, Any, dict[str, Any]]:
    sub, _posts, objects = _load(inbox, submission_id)
    obj = next((o for o in objects if o.id == file_id and o.kind == "file"), None) \
        if isinstance(file_id, str) and _OBJECT.fullmatch(file_id) else None
    if obj is None:
        raise NotFoundError("no such file in this submission", code="file-not-found")
    manifest = next(o for o in objects if o.kind == "manifest" and o.post_id == obj.post_id)
    part: dict[str, Any] = next((p for p in inbox.read_json(manifest, [identity]).get("parts", [])
                 if p.get("object") == obj.id), {})
    return sub, obj, part


def open_file(inbox: Inbox, principal: Principal, identity: age.Identity,
              submission_id: str, file_id: str) -> OpenFile:
    """One file's plaintext as a stream (recorded as a view of the submission)."""
    sub, obj, part = _file(inbox, identity, submission_id, file_id)
    _record_view(inbox, principal, sub.id)
    length = open_length(inbox.secrets, obj.id, obj.sealed_length)
    handle = inbox.store.open(obj.id)

    def chunks() -> Iterator[bytes]:
        with handle:
            yield from age.decrypt_stream(handle, [identity], length=length)

    return OpenFile(clean_name(str(part.get("name") or "file")),
                    str(part.get("media_type") or "application/octet-stream"),
                    int(part.get("size") or 0), chunks())


def reply(inbox: Inbox, principal: Principal, submission_id: str, data: Any) -> int:
    """Reply ``{"text"}``: encrypted to the insider's reply key and to every recipient.

    Returns the new post's number. Raises NotFoundError, BadInputError, ConflictError
    ``inbox-closed``.
    """
    values = schema.fields(data, "reply", {"text"}, required={"text"})
    limit = inbox.settings.inbox_message_max_kb * 1024
    text = schema.text(values["text"], "text", limit=limit, multiline=True)
    sub, _posts, _objects = _load(inbox, submission_id)
    intake = inbox.intake([age.Recipient.parse(sub.reply_key)])
    try:
        part = intake.add("reply", text.encode("utf-8", "surrogatepass"))
        intake.seal()
        day = today()
        with recording(inbox.instance, principal.actor) as rec:
            inbox._insert_post(rec.conn, sub.id, STAFF, principal.actor, [part], day)
            rec.conn.execute(update(inbox_submission).where(inbox_submission.c.id == sub.id)
                             .values(staff_day=day))
            seq = rec.conn.execute(select(func.max(inbox_post.c.seq))
                                   .where(inbox_post.c.submission_id == sub.id)).scalar_one()
            rec.record("reply", ENTITY, sub.id, {"nonce": secrets.token_hex(16)})
        intake.commit()
    except BaseException:
        intake.abort()
        raise
    return int(seq)


def move_to_vault(inbox: Inbox, principal: Principal, identity: age.Identity,
                  submission_id: str, file_id: str, data: Any) -> IngestResult:
    """Decrypt one file straight into the vault as an item with source "insider
    submission": ``{"name"?}`` (default: a neutral name, not the insider's own, which
    could identify them). The ingest is a custody event naming the mover; a second
    event ties the new item to the submission (by its random id only).
    """
    values = schema.fields(data if data is not None else {}, "move", {"name"})
    sub, obj, part = _file(inbox, identity, submission_id, file_id)
    if values.get("name") is not None:
        name = clean_name(schema.text(values["name"], "name", limit=200))
    else:
        suffix = clean_name(str(part.get("name") or "")).rpartition(".")[2][:10]
        name = f"insider-file-{uuid.uuid4().hex[:8]}" + (
            f".{suffix}" if suffix.isalnum() and suffix != "file" else "")
    length = open_length(inbox.secrets, obj.id, obj.sealed_length)
    with inbox.store.open(obj.id) as handle:
        result = Ingestor(inbox.instance, source_name=VAULT_SOURCE,
                          actor=principal.actor).ingest_chunks(
            name.encode("utf-8"), age.decrypt_stream(handle, [identity], length=length))
    if result.status == "failed" or result.sha256 is None:
        raise result.error or BadInputError("the file could not be moved", code="move-failed")
    with recording(inbox.instance, principal.actor) as rec:
        rec.conn.execute(update(inbox_object).where(inbox_object.c.id == obj.id)
                         .values(item_sha256=result.sha256))
        rec.record("move-to-vault", ENTITY, sub.id,
                   {"sha256": result.sha256, "nonce": secrets.token_hex(16)})
    return result
