"""One post streaming in: each part encrypted as its bytes arrive, into its own object.

A post is a message and files (an insider's) or a reply (staff's). Every part is fed to
an age :class:`~sprava.inbox.age.Encryptor` for the recipients of the moment and written
straight to the store: plaintext exists only in the buffers of the request being read,
never on disk, never in a log. Memory stays flat: at most one 64 KiB chunk is held back
per part, plus the piece of the request being handled.

An :class:`Intake` either commits whole (all its objects named by database rows) or is
aborted, and then every object it wrote, finished or not, is removed: nothing is ever
left half-encrypted under a final name.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sprava.domain.mediatype import sniff
from sprava.errors import BadInputError, TooLargeError
from sprava.inbox.age import Encryptor, Recipient
from sprava.inbox.storage import LocalInboxStore, ObjectWriter, padme

MAX_FILES = 20
_NAME_MAX = 200
_WRITE_BATCH = 1 << 20


def clean_name(raw: str) -> str:
    """A file name as an insider's browser sent it, made harmless to show and store.

    Folders, control and formatting characters (bidirectional overrides among them) are
    removed; the result is never empty, ``.`` or ``..``, and at most 200 characters.
    """
    text = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    text = "".join(c for c in text if unicodedata.category(c)[0] not in ("C", "Z")
                   or c == " ")
    text = re.sub(r"\s+", " ", text).strip(" .")
    return text[:_NAME_MAX].strip(" .") or "file"


@dataclass
class StoredPart:
    """What was stored of one part; ``name`` and ``size`` go only into the encrypted
    manifest, never into the database."""

    object_id: str
    kind: str  # message, file, manifest or reply
    position: int
    name: str | None
    size: int
    media_type: str
    exact: int  # the age file's length
    padded: int  # the length on disk


@dataclass
class _Open:
    writer: ObjectWriter
    encryptor: Encryptor
    kind: str
    name: str | None
    head: bytearray = field(default_factory=bytearray)
    buffered: bytearray = field(default_factory=bytearray)


class Intake:
    """Encrypts the parts of one post into new objects; see the module docstring."""

    def __init__(self, store: LocalInboxStore, recipients: list[Recipient], *,
                 message_max: int, files_max: int = MAX_FILES) -> None:
        self.store = store
        self.recipients = recipients
        self.message_max = message_max
        self.files_max = files_max
        self.parts: list[StoredPart] = []
        self._writers: list[ObjectWriter] = []
        self._open: _Open | None = None
        self._files = 0
        self.closed = False
        # Called once, when the first content part begins (the inbox starts drawing a
        # receipt code then, so that Argon2id runs while the upload streams in).
        self.on_first_content: Callable[[], None] | None = None
        self.pending: Future[Any] | None = None

    def begin(self, kind: str, name: str | None = None) -> None:
        """Start a part: ``message`` (text typed in the form), ``file`` or ``reply``."""
        if self._open is not None:
            raise RuntimeError("a part is still open")
        if kind in ("message", "file") and self.on_first_content is not None:
            start, self.on_first_content = self.on_first_content, None
            start()
        if kind == "file":
            self._files += 1
            if self._files > self.files_max:
                raise BadInputError(f"a post holds at most {self.files_max} files",
                                    code="too-many-files",
                                    hint="send the rest in a second post, or as one archive")
        writer = self.store.writer(uuid.uuid4().hex)
        self._writers.append(writer)
        self._open = _Open(writer, Encryptor(self.recipients), kind,
                           clean_name(name) if name is not None else None)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        part = self._open
        if part is None or not data:
            return
        if part.kind == "message" and part.encryptor.plaintext_size + len(data) \
                > self.message_max:
            raise TooLargeError(
                f"the message is over {self.message_max // 1024} KiB", code="message-too-long",
                hint="attach long texts as a file instead of typing them in the form")
        if len(part.head) < 4096:
            part.head += bytes(data[: 4096 - len(part.head)])
        sealed = part.encryptor.update(data)
        if not part.buffered and len(sealed) >= _WRITE_BATCH:
            part.writer.write(sealed)  # a large piece goes straight out, uncopied
            return
        part.buffered += sealed
        if len(part.buffered) >= _WRITE_BATCH:
            part.writer.write(part.buffered)
            part.buffered = bytearray()

    def end(self) -> StoredPart | None:
        """Close the open part. An empty part (no file chosen, an empty message) leaves
        nothing behind and returns None."""
        part, self._open = self._open, None
        if part is None:
            return None
        size = part.encryptor.plaintext_size
        if size == 0 and part.kind in ("message", "file"):
            part.writer.discard()
            self._writers.remove(part.writer)
            if part.kind == "file":
                self._files -= 1
            return None
        part.buffered += part.encryptor.finish()
        part.writer.write(part.buffered)
        exact = part.writer.length  # padding and fsync come in seal(), off the event loop
        kinds = [p for p in self.parts if p.kind == part.kind]
        stored = StoredPart(part.writer.object_id, part.kind, len(kinds), part.name, size,
                            sniff(bytes(part.head)) if part.kind == "file" else "text/plain",
                            exact, padme(exact))
        self.parts.append(stored)
        return stored

    def add(self, kind: str, data: bytes, name: str | None = None) -> StoredPart:
        """A whole small part at once (a manifest, a reply)."""
        self.begin(kind, name)
        self.feed(data)
        stored = self.end()
        assert stored is not None
        return stored

    @property
    def content_parts(self) -> list[StoredPart]:
        return [p for p in self.parts if p.kind in ("message", "file")]

    def seal(self) -> None:
        """Pad every object to its bucket and make it durable, before the database rows
        that name it are written (it may wait on the disk: not on the event loop)."""
        for writer in self._writers:
            writer.finish()

    def commit(self) -> None:
        """After the database rows commit: give every object its final name."""
        self.seal()
        for writer in self._writers:
            writer.commit()
        self._writers = []
        self.closed = True

    def abort(self) -> None:
        """Remove everything this post wrote (ciphertext only, but incomplete)."""
        self._open = None
        self.on_first_content = None
        if self.pending is not None:
            self.pending.cancel()
        for writer in self._writers:
            writer.discard()
        self._writers = []
        self.parts = []
        self.closed = True
