"""The inbox as insiders use it: submit, come back with the receipt code, read replies.

One :class:`Inbox` serves one instance for the life of a server process. It holds the
server secrets, the store, the guess throttle and the insiders' sessions, which live
only in memory: an insider's session is the submission it opened and the reply key the
code derived, kept until ``inbox_session_minutes`` pass without a request, or until the
process ends. Nothing about an insider's requests is written anywhere but the posts
themselves, dated to the day.

Errors an insider can meet: BadInputError (``empty-submission``, ``bad-receipt-code``,
``bad-form``, ``too-many-files``), TooLargeError (``too-large``,
``message-too-long``), AuthenticationError ``wrong-receipt-code`` (the same answer for a
code that matches nothing, one that matches a submission's first words only, and one
whose submission refuses codes for a while), TooManyAttemptsError ``inbox-paused`` and
ConflictError ``inbox-closed`` (no recipient has a key yet).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from sprava.accounts.roles import Capability, Role, capabilities
from sprava.accounts.secrets import token_digest
from sprava.backends.db.account_tables import account
from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.backends.db.inbox_tables import (
    inbox_object,
    inbox_post,
    inbox_recipient,
    inbox_submission,
)
from sprava.errors import AuthenticationError, BadInputError, ConflictError
from sprava.inbox import age, codes
from sprava.inbox.intake import Intake, StoredPart
from sprava.inbox.keys import ServerSecrets, load_server_secrets, open_length, seal_length
from sprava.inbox.storage import LocalInboxStore
from sprava.inbox.throttle import GuessThrottle
from sprava.instance import Instance

INSIDER = "insider"
STAFF = "staff"
_WRONG = "this receipt code does not open a submission"
_WRONG_HINT = ("check each word; if you are sure of the code, wait an hour and try again: "
               "after repeated wrong codes a submission refuses every code for a while")


def today() -> date:
    """Stored times of inbox traffic are days, never moments (UTC)."""
    return datetime.now(UTC).date()


@dataclass
class InsiderSession:
    submission_id: str
    pseudonym: str
    reply_identity: age.Identity
    csrf: str
    last_seen: float


class InsiderSessions:
    """Sessions of insiders, by the SHA-256 of their cookie, in memory only."""

    def __init__(self, idle_seconds: float, clock: Callable[[], float]) -> None:
        self._idle = idle_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, InsiderSession] = {}

    def open(self, submission_id: str, pseudonym: str,
             identity: age.Identity) -> tuple[str, InsiderSession]:
        token = secrets.token_urlsafe(32)
        session = InsiderSession(submission_id, pseudonym, identity,
                                 secrets.token_urlsafe(24), self._clock())
        with self._lock:
            now = self._clock()
            self._open = {k: v for k, v in self._open.items()
                          if now - v.last_seen < self._idle}
            self._open[token_digest(token)] = session
        return token, session

    def get(self, token: str | None) -> InsiderSession | None:
        if not token or len(token) > 100:
            return None
        with self._lock:
            key = token_digest(token)
            session = self._open.get(key)
            if session is None:
                return None
            now = self._clock()
            if now - session.last_seen >= self._idle:
                del self._open[key]
                return None
            session.last_seen = now
            return session

    def close(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._open.pop(token_digest(token), None)


@dataclass(frozen=True, repr=False)
class DrawnCode:
    code: codes.ReceiptCode
    lookup: str
    reply_key: str  # the age1… public half; the private half is never kept
    params: codes.KdfParams


@dataclass(frozen=True)
class Entry:
    """One post of a conversation as the insider sees it."""

    seq: int
    day: date
    author: str
    text: str | None  # a reply's text; the insider's own posts are not shown back
    message: bool
    files: int


class Inbox:
    """The insider inbox of one instance; see the module docstring."""

    def __init__(self, instance: Instance, *, kdf: codes.Kdf | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        settings = instance.settings
        self.instance = instance
        self.settings = settings
        self.secrets: ServerSecrets = load_server_secrets(settings.home / "keys")
        self.store = LocalInboxStore(instance.inbox_folder)
        self.store.create()
        self.store.sweep(self._known)
        self.kdf: codes.Kdf = kdf or codes.Argon2Kdf()
        self.throttle = GuessThrottle(settings.inbox_guess_limit,
                                      settings.inbox_global_guess_limit, clock)
        self.sessions = InsiderSessions(settings.inbox_session_minutes * 60, clock)
        # One worker: codes of concurrent submissions are derived one after the other,
        # so that a burst of uploads cannot hold many Argon2id buffers at once.
        self._kdf_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-kdf")

    @property
    def params(self) -> codes.KdfParams:
        return codes.KdfParams.from_settings(self.settings.inbox_kdf_memory_mb,
                                             self.settings.inbox_kdf_passes)

    def _known(self, object_id: str) -> bool:
        with read_transaction(self.instance.engine) as conn:
            return conn.execute(select(inbox_object.c.id)
                                .where(inbox_object.c.id == object_id)).first() is not None

    # --- posting ------------------------------------------------------------------------

    def recipients(self) -> list[age.Recipient]:
        """The public keys new content is encrypted to: every recipient with a key whose
        account is active and still has a role that receives the inbox."""
        with read_transaction(self.instance.engine) as conn:
            rows = conn.execute(
                select(inbox_recipient.c.public_key, account.c.role)
                .join(account, account.c.id == inbox_recipient.c.account_id)
                .where(inbox_recipient.c.public_key.is_not(None), account.c.active.is_(True))
                .order_by(inbox_recipient.c.account_id)).all()
        return [age.Recipient.parse(r.public_key) for r in rows
                if Capability.INBOX in capabilities(Role(r.role))]

    def intake(self, extra: list[age.Recipient] | None = None) -> Intake:
        """A new post's intake; ConflictError ``inbox-closed`` while no one could read it."""
        recipients = self.recipients()
        if not recipients:
            raise ConflictError("the inbox does not accept submissions yet",
                                code="inbox-closed",
                                hint="no recipient has set up a key; ask the team")
        return Intake(self.store, recipients + (extra or []),
                      message_max=self.settings.inbox_message_max_kb * 1024)

    def _manifest(self, intake: Intake) -> None:
        parts = [{"object": p.object_id, "kind": p.kind, "name": p.name, "size": p.size,
                  "media_type": p.media_type} for p in intake.content_parts]
        intake.add("manifest", json.dumps({"v": 1, "parts": parts}).encode())

    def _insert_post(self, conn: Connection, submission_id: str, author: str,
                     actor: str | None, parts: list[StoredPart], day: date) -> str:
        seq = conn.execute(select(func.coalesce(func.max(inbox_post.c.seq), 0))
                           .where(inbox_post.c.submission_id == submission_id)).scalar_one()
        post_id = str(uuid.uuid4())
        conn.execute(insert(inbox_post).values(id=post_id, submission_id=submission_id,
                                               seq=int(seq) + 1, author=author, actor=actor,
                                               day=day))
        conn.execute(insert(inbox_object), [{
            "id": p.object_id, "post_id": post_id, "kind": p.kind, "position": p.position,
            "stored_size": p.padded, "item_sha256": None,
            "sealed_length": seal_length(self.secrets, p.object_id, p.exact)} for p in parts])
        return post_id

    def submission_intake(self) -> Intake:
        """The intake of a new submission: its receipt code is drawn, and Argon2id run,
        in the background from the moment the first part begins to arrive."""
        intake = self.intake()

        def start() -> None:
            intake.pending = self._kdf_worker.submit(self.draw_code)

        intake.on_first_content = start
        return intake

    def draw_code(self) -> DrawnCode:
        """A new receipt code and what is stored of it (two Argon2id derivations)."""
        params = self.params
        code = codes.new_code()
        lookup = codes.lookup_id(self.kdf, code, self.secrets.lookup_pepper, params)
        reply = age.Identity(codes.reply_secret(self.kdf, code, self.secrets.reply_pepper,
                                                params))
        return DrawnCode(code, lookup, str(reply.recipient), params)

    def submit(self, intake: Intake) -> tuple[codes.ReceiptCode, str]:
        """Record a first post as a new submission; returns its receipt code (to show
        once) and pseudonym. On any error everything the intake wrote is removed."""
        try:
            if not intake.content_parts:
                raise BadInputError("there is nothing to send: write a message or choose "
                                    "a file", code="empty-submission")
            self._manifest(intake)
            intake.seal()
            day = today()
            pending, intake.pending = intake.pending, None
            for _ in range(8):
                drawn = pending.result() if pending is not None else self.draw_code()
                pending = None
                with write_transaction(self.instance.engine) as conn:
                    if conn.execute(select(inbox_submission.c.id)
                                    .where(inbox_submission.c.lookup == drawn.lookup)).first():
                        continue  # first words already taken (about 1 in 10^8): draw again
                    taken = set(conn.execute(select(inbox_submission.c.pseudonym)).scalars())
                    pseudonym = codes.new_pseudonym(taken)
                    submission_id = str(uuid.uuid4())
                    conn.execute(insert(inbox_submission).values(
                        id=submission_id, pseudonym=pseudonym, lookup=drawn.lookup,
                        kdf=drawn.params.text(), reply_key=drawn.reply_key, created_day=day,
                        insider_day=day, staff_day=None))
                    self._insert_post(conn, submission_id, INSIDER, None, intake.parts, day)
                intake.commit()
                return drawn.code, pseudonym
            raise ConflictError("no free receipt code was found", code="no-free-code")
        except BaseException:
            intake.abort()
            raise

    def follow_up(self, intake: Intake, session: InsiderSession) -> None:
        """Add an insider's further post to their submission."""
        try:
            if not intake.content_parts:
                raise BadInputError("there is nothing to send: write a message or choose "
                                    "a file", code="empty-submission")
            self._manifest(intake)
            intake.seal()
            day = today()
            with write_transaction(self.instance.engine) as conn:
                self._insert_post(conn, session.submission_id, INSIDER, None, intake.parts,
                                  day)
                conn.execute(update(inbox_submission)
                             .where(inbox_submission.c.id == session.submission_id)
                             .values(insider_day=day))
            intake.commit()
        except BaseException:
            intake.abort()
            raise

    # --- coming back --------------------------------------------------------------------

    def login(self, text: object) -> tuple[str, InsiderSession]:
        """Open an insider session with a receipt code; returns the cookie token.

        Every well-formed code costs the same Argon2id work (one lookup derivation per
        cost in use, and one reply derivation), whether it matches nothing, matches a
        submission's first words, or is right.
        """
        code = codes.parse_code(text)
        self.throttle.check_global()
        with read_transaction(self.instance.engine) as conn:
            in_use = sorted(set(conn.execute(select(inbox_submission.c.kdf).distinct())
                                .scalars()) | {self.params.text()})
        lookups = [codes.lookup_id(self.kdf, code, self.secrets.lookup_pepper,
                                   codes.KdfParams.parse(p)) for p in in_use]
        with read_transaction(self.instance.engine) as conn:
            row = conn.execute(select(inbox_submission)
                               .where(inbox_submission.c.lookup.in_(lookups))).first()
        params = codes.KdfParams.parse(row.kdf) if row is not None else self.params
        reply = age.Identity(codes.reply_secret(self.kdf, code, self.secrets.reply_pepper,
                                                params))
        matches = row is not None and hmac.compare_digest(
            str(reply.recipient).encode(), row.reply_key.encode())
        if row is not None and matches and not self.throttle.locked(row.id):
            self.throttle.succeeded(row.id)
            return self.sessions.open(row.id, row.pseudonym, reply)
        if not matches:
            self.throttle.failed(row.id if row is not None else None)
        raise AuthenticationError(_WRONG, code="wrong-receipt-code", hint=_WRONG_HINT)

    def conversation(self, session: InsiderSession) -> list[Entry]:
        """Every post of the insider's submission, oldest first, replies decrypted."""
        with read_transaction(self.instance.engine) as conn:
            posts = conn.execute(select(inbox_post)
                                 .where(inbox_post.c.submission_id == session.submission_id)
                                 .order_by(inbox_post.c.seq)).all()
            objects = conn.execute(
                select(inbox_object).join(inbox_post, inbox_post.c.id == inbox_object.c.post_id)
                .where(inbox_post.c.submission_id == session.submission_id)).all()
        by_post: dict[str, list[Any]] = {}
        for obj in objects:
            by_post.setdefault(obj.post_id, []).append(obj)
        entries = []
        for post in posts:
            mine = by_post.get(post.id, [])
            text = None
            if post.author == STAFF:
                reply = next((o for o in mine if o.kind == "reply"), None)
                if reply is not None:
                    text = self.read_text(reply, [session.reply_identity])
            entries.append(Entry(post.seq, post.day, post.author, text,
                                 any(o.kind == "message" for o in mine),
                                 sum(o.kind == "file" for o in mine)))
        return entries

    def read_text(self, obj: Any, identities: list[age.Identity]) -> str:
        """A stored message or reply, decrypted and decoded (bad UTF-8 shown as �)."""
        length = open_length(self.secrets, obj.id, obj.sealed_length)
        with self.store.open(obj.id) as handle:
            data = b"".join(age.decrypt_stream(handle, identities, length=length))
        return data.decode("utf-8", "replace")

    def read_json(self, obj: Any, identities: list[age.Identity]) -> dict[str, Any]:
        value = json.loads(self.read_text(obj, identities))
        if not isinstance(value, dict):
            raise BadInputError("a manifest is not an object", code="bad-manifest")
        return value
