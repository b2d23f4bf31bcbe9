"""Streaming ingest of files and folders into the vault, with a custody event for each.

Per file, one pass: the content is hashed while it streams into the blob store. Files are
then recorded in groups: the blobs are made durable first, and a single database
transaction writes the items, their names and the custody events, and signs a checkpoint.
A process killed at any moment leaves at most blobs that nothing names yet (harmless, and
re-used if the same content comes again) and temporaries that are cleaned on the next
start: never an item without its blob, nor an event without its item.

Hostile input is expected: unreadable files, dangling links, links that lead out of the
folder being ingested, FIFOs and devices (skipped without being opened for reading in a
way that could block), and names that are not valid UTF-8 (kept byte for byte).
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, insert, select

from sprava.backends.db.engine import write_transaction
from sprava.backends.db.tables import item, item_name, source
from sprava.domain.custody import ingest_event
from sprava.domain.mediatype import sniff
from sprava.errors import BadInputError, SpravaError
from sprava.instance import Instance
from sprava.jobs import queue
from sprava.jobs.kinds import ANALYSE, analysable
from sprava.ledger.log import LedgerAppender
from sprava.store.blobs import StoredBlob

Status = Literal["stored", "already-held", "skipped", "failed"]
_MAX_BATCH_SECONDS = 1.0


def display_name(raw: bytes) -> str:
    """A printable form of a file name; bytes that are not UTF-8 appear as ``\\xNN``."""
    return raw.decode("utf-8", "backslashreplace")


@dataclass
class IngestResult:
    """What happened to one file; ``error`` is set for failed and skipped files."""

    name_raw: bytes
    status: Status
    sha256: str | None = None
    size: int | None = None
    media_type: str | None = None
    leaf_index: int | None = None
    error: SpravaError | None = None

    @property
    def name(self) -> str:
        return display_name(self.name_raw)

    def to_dict(self) -> dict[str, object]:
        record: dict[str, object] = {"path": self.name, "status": self.status}
        try:
            self.name_raw.decode("utf-8")
        except UnicodeDecodeError:
            record["path_hex"] = self.name_raw.hex()
        if self.sha256 is not None:
            record.update(sha256=self.sha256, size=self.size, media_type=self.media_type,
                          leaf_index=self.leaf_index)
        if self.error is not None:
            record["error"] = self.error.to_dict()
        return record


@dataclass(frozen=True)
class _Candidate:
    path: bytes  # where to open it
    name: bytes  # the name it is recorded under
    size: int
    nofollow: bool  # open with O_NOFOLLOW: it was a plain file when walked


def _failed(name: bytes, code: str, message: str, hint: str | None = None) -> IngestResult:
    return IngestResult(name, "failed", error=BadInputError(message, code=code, hint=hint))


def _skipped(name: bytes, message: str) -> IngestResult:
    return IngestResult(name, "skipped", error=BadInputError(message, code="not-a-regular-file"))


def _kind(mode: int) -> str:
    for test, label in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return label
    return "not a regular file"


def _within(path: bytes, root: bytes) -> bool:
    return path == root or path.startswith(root.rstrip(b"/") + b"/")


class _Walker:
    """Turns the command's paths into files to ingest, and results for what cannot be."""

    def __init__(self, follow_links: bool) -> None:
        self.follow_links = follow_links
        self._visited: set[tuple[int, int]] = set()

    def walk(self, paths: Iterable[bytes]) -> Iterator[_Candidate | IngestResult]:
        for path in paths:
            yield from self._top(path)

    def _top(self, path: bytes) -> Iterator[_Candidate | IngestResult]:
        name = os.path.basename(path.rstrip(b"/")) or path
        try:
            lst = os.lstat(path)
        except FileNotFoundError:
            yield _failed(path, "not-found", f"{display_name(path)}: no such file or folder")
            return
        except OSError as exc:
            yield _failed(path, "unreadable", f"{display_name(path)}: {exc.strerror}")
            return
        is_link = stat.S_ISLNK(lst.st_mode)
        try:
            st = os.stat(path) if is_link else lst
        except OSError:
            yield _failed(path, "dangling-link",
                          f"{display_name(path)}: the link leads to nothing")
            return
        if stat.S_ISDIR(st.st_mode):
            root = os.path.realpath(path)
            self._visited.add((st.st_dev, st.st_ino))
            yield from self._folder(path, name, root)
        elif stat.S_ISREG(st.st_mode):
            yield _Candidate(path, name, st.st_size, nofollow=not is_link)
        else:
            yield _skipped(name, f"{display_name(name)} is {_kind(st.st_mode)}; skipped")

    def _folder(self, path: bytes, name: bytes, root: bytes) -> Iterator[_Candidate | IngestResult]:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            yield _failed(name, "unreadable",
                          f"cannot list {display_name(name)}: {exc.strerror}")
            return
        for entry in entries:
            child = os.path.join(name, entry.name)
            try:
                yield from self._entry(entry, child, root)
            except OSError as exc:
                yield _failed(child, "unreadable", f"{display_name(child)}: {exc.strerror}")

    def _entry(self, entry: os.DirEntry[bytes], name: bytes,
               root: bytes) -> Iterator[_Candidate | IngestResult]:
        lst = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(lst.st_mode):
            target = os.path.realpath(entry.path)
            try:
                st = os.stat(entry.path)
            except OSError:
                yield _failed(name, "dangling-link",
                              f"{display_name(name)}: the link leads to nothing")
                return
            if not self.follow_links and not _within(target, root):
                yield _failed(
                    name, "link-outside",
                    f"{display_name(name)}: the link leads outside the folder being ingested",
                    hint="pass --follow-links to ingest what such links lead to",
                )
                return
            nofollow = False
        else:
            st, nofollow = lst, True
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in self._visited:  # a loop, or a folder already walked through a link
                return
            self._visited.add(key)
            yield from self._folder(entry.path, name, root)
        elif stat.S_ISREG(st.st_mode):
            yield _Candidate(entry.path, name, st.st_size, nofollow)
        else:
            yield _skipped(name, f"{display_name(name)} is {_kind(st.st_mode)}; skipped")


@dataclass
class IngestSummary:
    stored: int = 0
    already_held: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    checkpoint_size: int | None = None
    results: list[IngestResult] = field(default_factory=list)

    def count(self, result: IngestResult) -> None:
        if result.status == "stored":
            self.stored += 1
        elif result.status == "already-held":
            self.already_held += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1


@dataclass
class _Pending:
    candidate: _Candidate
    blob: StoredBlob
    received: datetime


def _source_id(conn: Connection, name: str | None) -> int | None:
    if name is None:
        return None
    found = conn.execute(select(source.c.id).where(source.c.name == name)).scalar_one_or_none()
    if found is not None:
        return int(found)
    conn.execute(insert(source).values(name=name, created_at=datetime.now(UTC)))
    return int(conn.execute(select(source.c.id).where(source.c.name == name)).scalar_one())


class Ingestor:
    """Ingests files into one instance. One object per command; not thread-safe."""

    def __init__(self, instance: Instance, *, source_name: str | None = None,
                 actor: str | None = None, follow_links: bool = False) -> None:
        if source_name is not None and not 0 < len(source_name) <= 200:
            raise BadInputError("a source name has 1 to 200 characters", code="bad-source")
        self.instance = instance
        self.source_name = source_name
        self.actor = actor or instance.settings.actor
        self.follow_links = follow_links
        self.batch_files = instance.settings.batch_files

    def plan(self, paths: Iterable[bytes]) -> list[_Candidate | IngestResult]:
        """Walk the paths first, so that progress can show totals."""
        return list(_Walker(self.follow_links).walk(paths))

    def run(
        self,
        plan: Iterable[_Candidate | IngestResult],
        on_result: Callable[[IngestResult], None] = lambda _r: None,
        on_bytes: Callable[[int], None] = lambda _n: None,
    ) -> IngestSummary:
        summary = IngestSummary()
        self.instance.blobs.clean_temp()
        pending: list[_Pending] = []
        started = time.monotonic()

        def emit(result: IngestResult) -> None:
            summary.count(result)
            on_result(result)

        for entry in plan:
            if isinstance(entry, IngestResult):
                emit(entry)
                continue
            reported = 0

            def progress(size: int) -> None:
                nonlocal reported
                reported += size
                on_bytes(size)

            outcome = self._store(entry, progress)
            if isinstance(outcome, IngestResult):
                emit(outcome)
            else:
                pending.append(outcome)
                summary.bytes += outcome.blob.size
            if reported < entry.size:  # failed, or shrank since the walk: keep totals right
                on_bytes(entry.size - reported)
            if pending and (len(pending) >= self.batch_files
                            or time.monotonic() - started > _MAX_BATCH_SECONDS):
                for result in self._record(pending, summary):
                    emit(result)
                pending, started = [], time.monotonic()
        if pending:
            for result in self._record(pending, summary):
                emit(result)
        return summary

    def ingest_chunks(self, name: bytes, chunks: Iterable[bytes]) -> IngestResult:
        """Ingest one upload arriving as chunks, recorded under ``name``.

        The same guarantees as files: one pass, fsync, a link that never overwrites, then
        one transaction with its custody event. An exception from ``chunks`` (too large,
        the client went away) is raised after removing the partial upload.
        """
        self.instance.blobs.clean_temp()
        blob = self.instance.blobs.put_chunks(chunks)
        pending = _Pending(_Candidate(b"", name, blob.size, True), blob, datetime.now(UTC))
        summary = IngestSummary()
        [result] = self._record([pending], summary)
        return result

    def _store(self, cand: _Candidate,
               progress: Callable[[int], None]) -> _Pending | IngestResult:
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
        if cand.nofollow:
            flags |= os.O_NOFOLLOW
        try:
            fd = os.open(cand.path, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return _failed(cand.name, "changed-during-ingest",
                               f"{display_name(cand.name)} became a link while being ingested")
            if exc.errno in (errno.ENXIO, errno.EWOULDBLOCK):
                return _skipped(cand.name, f"{display_name(cand.name)} is not a regular file")
            return _failed(cand.name, "unreadable", f"{display_name(cand.name)}: {exc.strerror}")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # swapped for a FIFO or device since the walk
                return _skipped(cand.name,
                                f"{display_name(cand.name)} is {_kind(st.st_mode)}; skipped")
            try:
                blob = self.instance.blobs.put_fd(fd, progress)
            except OSError as exc:
                return _failed(cand.name, "read-error",
                               f"reading {display_name(cand.name)} failed: {exc.strerror}")
            except SpravaError as exc:
                return IngestResult(cand.name, "failed", error=exc)
            return _Pending(cand, blob, datetime.now(UTC))
        finally:
            os.close(fd)

    def _record(self, pending: list[_Pending], summary: IngestSummary) -> list[IngestResult]:
        """Make the batch's blobs durable, then record all of it in one transaction."""
        try:
            self.instance.blobs.sync()
            results = self._transaction(pending, summary)
        except SpravaError as exc:
            return [IngestResult(p.candidate.name, "failed", error=exc) for p in pending]
        return results

    def _transaction(self, pending: list[_Pending], summary: IngestSummary) -> list[IngestResult]:
        results: list[IngestResult] = []
        with write_transaction(self.instance.engine) as conn:
            appender = LedgerAppender(conn, self.instance.signer)
            source_id = _source_id(conn, self.source_name)
            digests = sorted({p.blob.digest.hex for p in pending})
            held = set(conn.execute(select(item.c.sha256).where(item.c.sha256.in_(digests)))
                       .scalars())
            new_items: list[dict[str, Any]] = []
            names: list[dict[str, Any]] = []
            for p in pending:
                sha = p.blob.digest.hex
                is_new = sha not in held
                media_type = sniff(p.blob.head)
                if is_new:
                    held.add(sha)
                    new_items.append({"sha256": sha, "size": p.blob.size,
                                      "media_type": media_type, "first_seen": p.received})
                index = appender.append(ingest_event(
                    sha256=sha, size=p.blob.size, actor=self.actor, time=p.received,
                    source=self.source_name, new=is_new))
                names.append({"item_sha256": sha, "name_raw": p.candidate.name,
                              "name": display_name(p.candidate.name), "source_id": source_id,
                              "leaf_index": index, "received_at": p.received,
                              "actor": self.actor})
                results.append(IngestResult(
                    p.candidate.name, "stored" if is_new else "already-held", sha,
                    p.blob.size, media_type, index))
            if new_items:
                conn.execute(insert(item), new_items)
                for new in new_items:  # queued with the item: a crash cannot lose the job
                    if analysable(new["media_type"]):
                        queue.enqueue(conn, ANALYSE, new["sha256"])
            conn.execute(insert(item_name), names)
            checkpoint = appender.finish()
        if checkpoint is not None:
            summary.checkpoint_size = checkpoint.size
        return results
