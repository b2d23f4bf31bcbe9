"""Where the inbox keeps its ciphertext: one file per object, padded to a bucket.

Threats guarded against:

* **Plaintext on disk.** Only age ciphertext is ever written here (the caller encrypts
  before :meth:`ObjectWriter.write`); there is no temporary plaintext, no spool.
* **Sizes that identify a document.** Each object is padded with random bytes to its
  Padmé bucket (at most 12 % larger, leaking O(log log n) bits of the size; never below
  :data:`MIN_BUCKET`, so every short message looks alike). The exact length is kept
  only sealed under the server's storage key (:func:`sprava.inbox.keys.seal_length`).
* **File times that date a submission.** A finished object, its folder and the
  temporary folder get the modification and access times of midnight (UTC) of the day
  they were written, as the database keeps only days, and objects are read with
  ``O_NOATIME`` (a read would date an insider's return). The inode change time (ctime)
  cannot be set from user space: it still holds the moment of the last change, which is
  why docs/inbox.md asks for an encrypted disk.
* **Half-written objects.** An object is written under ``tmp/`` while its lock is held,
  fsynced, and renamed to ``objects/`` only after the database rows naming it have
  committed. A process killed mid-way leaves a temporary that :meth:`sweep` finishes
  (if the database names it) or removes (if not). Nothing here ever holds plaintext, so
  a leftover is never a leak, only clutter.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from sprava.errors import BackendUnavailableError, NotFoundError

MIN_BUCKET = 16 * 1024
_ID = re.compile(r"[0-9a-f]{32}")
_PAD_BLOCK = 1 << 20
_WRITEBACK = 32 << 20


def padme(length: int, minimum: int = MIN_BUCKET) -> int:
    """The Padmé bucket of ``length`` (Nikitin et al., PETS 2019), at least ``minimum``."""
    size = max(length, minimum)
    exponent = size.bit_length() - 1
    low_bits = exponent - exponent.bit_length()
    mask = (1 << low_bits) - 1
    return (size + mask) & ~mask


def midnight(now: float | None = None) -> int:
    """The Unix time of the start of the current day (UTC): what file times are set to."""
    seconds = int(time.time() if now is None else now)
    return seconds - seconds % 86400


def _to_day(*paths: Path) -> None:
    day = midnight()
    for path in paths:
        with contextlib.suppress(OSError):  # a folder a concurrent writer is changing
            os.utime(path, (day, day))


def _check_id(object_id: str) -> str:
    if not isinstance(object_id, str) or not _ID.fullmatch(object_id):
        raise NotFoundError("no such inbox object", code="inbox-object-missing")
    return object_id


class InboxStore(Protocol):
    """Ciphertext objects by id (32 lower-case hex digits)."""

    def writer(self, object_id: str) -> ObjectWriter: ...

    def open(self, object_id: str) -> BinaryIO: ...

    def delete(self, object_id: str) -> None: ...

    def sweep(self, known: Callable[[str], bool]) -> int: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ObjectWriter:
    """One object being written: :meth:`write` ciphertext, :meth:`finish`, then (after
    the database commit) :meth:`commit`; :meth:`discard` on any failure."""

    def __init__(self, store: LocalInboxStore, object_id: str) -> None:
        self.object_id = _check_id(object_id)
        self._store = store
        self._tmp = store.tmp / object_id
        try:
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                               0o600)
        except OSError as exc:
            raise BackendUnavailableError(f"cannot write to the inbox store: {exc.strerror}",
                                          code="inbox-store-write") from exc
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # tells sweep() in another process: live
        self.length = 0
        self._started = 0  # where write-back was last started
        self.exact = 0
        self.padded = 0
        self._finished = False
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            raise BackendUnavailableError(f"writing to the inbox store failed: {exc.strerror}",
                                          code="inbox-store-write") from exc
        self.length += len(data)
        if self._store.fsync and self.length - self._started >= _WRITEBACK:
            # Start writing back what is behind us, without waiting for it: the final
            # fsync then waits for the tail only, and a large upload does not fill the
            # page cache (ciphertext only; nothing here needs to stay cached).
            with contextlib.suppress(OSError):
                os.posix_fadvise(self._fd, self._started, self.length - self._started,
                                 os.POSIX_FADV_DONTNEED)
            self._started = self.length

    def finish(self) -> None:
        """Pad with random bytes to the bucket, and make it durable (once; it may wait on
        the disk, so callers run it off the event loop). ``exact`` is then the age
        file's own length, ``padded`` the length on disk."""
        if self._finished:
            return
        self._finished = True
        self.exact = self.length
        self.padded = padme(self.length)
        left = self.padded - self.length
        while left:
            block = os.urandom(min(left, _PAD_BLOCK))
            self.write(block)
            left -= len(block)
        if self._store.fsync:
            os.fsync(self._fd)
        os.fchmod(self._fd, 0o400)

    def commit(self) -> None:
        """Give the object its final name (after the database rows naming it commit)."""
        self._store.place(self._tmp, self.object_id)
        self._close()

    def discard(self) -> None:
        self._tmp.unlink(missing_ok=True)
        self._close()
        _to_day(self._store.tmp)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)


class LocalInboxStore:
    """Objects in a folder: ``objects/ab/<id>``, temporaries in ``tmp/``."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        self.fsync = fsync

    def create(self) -> None:
        for folder in (self.root, self.objects, self.tmp):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path_of(self, object_id: str) -> Path:
        _check_id(object_id)
        return self.objects / object_id[:2] / object_id

    def writer(self, object_id: str) -> ObjectWriter:
        return ObjectWriter(self, object_id)

    def place(self, tmp: Path, object_id: str) -> None:
        final = self.path_of(object_id)
        final.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(tmp, final)
        _to_day(final, final.parent, self.objects, self.tmp)
        if self.fsync:
            _fsync_dir(final.parent)

    def open(self, object_id: str) -> BinaryIO:
        """Read an object without changing its access time, which would otherwise record
        the moment an insider came back to read a reply."""
        path = self.path_of(object_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOATIME)
        except PermissionError:  # O_NOATIME needs the file's owner: open it plainly
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFoundError("the inbox object is missing from the store",
                                code="inbox-object-missing") from None
        return os.fdopen(fd, "rb")

    def delete(self, object_id: str) -> None:
        self.path_of(object_id).unlink(missing_ok=True)

    def stored(self) -> Iterator[str]:
        if not self.objects.is_dir():
            return
        for folder in sorted(self.objects.iterdir()):
            for path in sorted(folder.iterdir()):
                if _ID.fullmatch(path.name):
                    yield path.name

    def sweep(self, known: Callable[[str], bool]) -> int:
        """Finish or remove the temporaries of killed processes; returns how many.

        A temporary whose lock can be taken belongs to no live writer: if the database
        names it, its rows committed and only the rename was missed; otherwise it was
        never recorded (and it is ciphertext only, so removing it loses nothing but an
        unfinished upload).
        """
        count = 0
        if not self.tmp.is_dir():
            return 0
        for path in list(self.tmp.iterdir()):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer
                if _ID.fullmatch(path.name) and known(path.name):
                    self.place(path, path.name)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                count += 1
            finally:
                os.close(fd)
        return count
