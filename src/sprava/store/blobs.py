"""Content-addressed blob storage: originals kept bit for bit under their SHA-256.

Threat guarded against: losing or silently altering evidence. A blob is written to a
temporary file while its SHA-256 is computed in the same pass, flushed to disk, and then
*linked* to its final name, which fails if that name exists: an existing blob is never
overwritten, and a half-written file never carries a final name. Blobs are read-only on
disk. Temporary files left by a killed process are never read as evidence and are
removed by :meth:`LocalBlobStore.clean_temp`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from sprava.domain.digest import Digest
from sprava.errors import (
    BackendUnavailableError,
    BadInputError,
    ConfigurationError,
    NotFoundError,
)

CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredBlob:
    digest: Digest
    size: int
    created: bool  # False when the content was already held
    head: bytes  # the first bytes, for sniffing the type without reading again


class BlobStore(Protocol):
    """Where originals live, addressed by SHA-256: :class:`LocalBlobStore` (a folder) or
    :class:`sprava.store.s3.S3BlobStore` (an S3-compatible object store).

    Readers go through :meth:`open` (a stream) or :meth:`local_path` (a seekable file
    for decoders that need one), never through a path of their own making.
    """

    def create(self) -> None:
        """Make the store ready (folders, bucket); harmless when it exists."""
        ...

    def check(self) -> None:
        """Raise ConfigurationError when the store cannot be used."""
        ...

    def put_fd(self, fd: int, progress: Callable[[int], None] | None = None) -> StoredBlob:
        """Store what can be read from ``fd`` until EOF, hashing it in the same pass."""
        ...

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredBlob:
        """Store the chunks in order, hashing them in the same pass."""
        ...

    def exists(self, digest: Digest) -> bool: ...

    def open(self, digest: Digest) -> BinaryIO:
        """A stream of the blob's bytes; NotFoundError when it is not held."""
        ...

    def local_path(self, digest: Digest) -> AbstractContextManager[Path]:
        """A local, seekable file with the blob's bytes while the context lasts."""
        ...

    def digests(self) -> Iterator[Digest]:
        """Every blob held, in order of digest."""
        ...

    def sync(self) -> None:
        """Make every blob stored so far durable (before the database records it)."""
        ...

    def clean_temp(self) -> int:
        """Remove temporaries abandoned by a killed writer; returns how many."""
        ...

    def temp_count(self) -> int:
        """Temporaries present now (live or abandoned)."""
        ...


def _ignore(_size: int) -> None:
    return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def _syncfs(fd: int) -> bool:
    """Flush the whole file system holding ``fd``; False where syncfs(2) is missing."""
    if _LIBC is None or not hasattr(_LIBC, "syncfs"):
        return False
    return bool(_LIBC.syncfs(fd) == 0)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LocalBlobStore:
    """Blobs in a folder: ``sha256/ab/cd/<hex>``, temporaries in ``tmp/``."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self._objects = root / "sha256"
        self._tmp = root / "tmp"
        self._fsync = fsync
        self._dirty: set[Path] = set()

    @classmethod
    def from_url(cls, url: str) -> LocalBlobStore:
        parsed = urlparse(url)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise ConfigurationError(
                f"unsupported blob store URL {url!r}", code="bad-blob-url",
                hint="use file:///ABSOLUTE/PATH",
            )
        return cls(Path(unquote(parsed.path)))

    def create(self) -> None:
        for folder in (self.root, self._objects, self._tmp):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def check(self) -> None:
        """Refuse to start on a store folder that is missing or not writable."""
        for folder in (self._objects, self._tmp):
            if not folder.is_dir():
                raise ConfigurationError(
                    f"the blob store folder {folder} is missing", code="blob-store-missing",
                    hint="run `sprava init` for this instance, or check blob_url",
                )
        if not os.access(self._tmp, os.W_OK | os.X_OK):
            raise ConfigurationError(
                f"the blob store folder {self._tmp} is not writable", code="blob-store-readonly"
            )

    def path_of(self, digest: Digest) -> Path:
        h = digest.hex
        return self._objects / h[:2] / h[2:4] / h

    def exists(self, digest: Digest) -> bool:
        return self.path_of(digest).is_file()

    def open(self, digest: Digest) -> BinaryIO:
        try:
            return self.path_of(digest).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"no blob {digest} in the store", code="blob-missing") from None
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot read blob {digest}: {exc.strerror}", code="blob-unreadable"
            ) from exc

    def size_of(self, digest: Digest) -> int:
        return self.path_of(digest).stat().st_size

    @contextlib.contextmanager
    def local_path(self, digest: Digest) -> Iterator[Path]:
        """The blob's own file (read-only): no copy is made on a local store."""
        yield self.path_of(digest)

    def digests(self) -> Iterator[Digest]:
        if not self._objects.is_dir():
            return
        for first in sorted(self._objects.iterdir()):
            for second in sorted(first.iterdir()) if first.is_dir() else ():
                for blob in sorted(second.iterdir()) if second.is_dir() else ():
                    try:
                        yield Digest(blob.name)
                    except BadInputError:
                        continue  # not a blob: a stray file is no evidence

    def put_fd(self, fd: int, progress: Callable[[int], None] | None = None) -> StoredBlob:
        """Stream ``fd`` into the store; see the module docstring for the guarantees.

        ``progress`` is told the size of each chunk read.
        """
        return self._put(lambda out: self._copy(fd, out, progress or _ignore))

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredBlob:
        """Stream chunks (an upload) into the store, with the same guarantees as
        :meth:`put_fd`. An exception raised by the iterator (the client went away, the
        upload is too large) leaves nothing behind."""
        return self._put(lambda out: self._copy_chunks(chunks, out))

    def _put(self, fill: Callable[[int], tuple[Digest, int, bytes]]) -> StoredBlob:
        tmp = self._tmp / f"in-{secrets.token_hex(12)}"
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot write to the blob store at {self._tmp}: {exc.strerror}",
                code="blob-store-write",
            ) from exc
        try:
            # Held until the blob is committed, so that clean_temp() in another process
            # can tell a live temporary from one left by a killed process.
            fcntl.flock(out, fcntl.LOCK_EX)
            digest, size, head = fill(out)
            if self._fsync:
                os.fsync(out)
            os.fchmod(out, 0o400)
            return self._commit(tmp, digest, size, head)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(out)

    def _copy(self, src: int, out: int,
              progress: Callable[[int], None]) -> tuple[Digest, int, bytes]:
        """One pass: read a chunk, hash it, write it, into one reused buffer.

        Measured here on a 1 GiB file, this plain loop (1.0 s, then 0.35 s to flush)
        beat a three-thread pipeline (2.6 s: queue hand-offs and the GIL) and early
        write-back with sync_file_range (3.2 s: it blocks on a busy disk queue).
        """
        hasher = hashlib.sha256()
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        head = b""
        size = 0
        # Read once, start to end: let the kernel read ahead far (a pipe takes no advice).
        with contextlib.suppress(OSError):
            os.posix_fadvise(src, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while count := os.readv(src, [buffer]):
            chunk = view[:count]
            if not size:
                head = bytes(chunk[:4096])
            progress(count)
            hasher.update(chunk)
            try:
                _write_all(out, chunk)
            except OSError as exc:
                raise BackendUnavailableError(
                    f"writing to the blob store failed: {exc.strerror}",
                    code="blob-store-write") from exc
            size += count
        return Digest(hasher.hexdigest()), size, head

    def _copy_chunks(self, chunks: Iterable[bytes], out: int) -> tuple[Digest, int, bytes]:
        hasher = hashlib.sha256()
        head = b""
        size = 0
        for chunk in chunks:
            if not chunk:
                continue
            if len(head) < 4096:
                head += bytes(chunk[: 4096 - len(head)])
            hasher.update(chunk)
            try:
                _write_all(out, chunk)
            except OSError as exc:
                raise BackendUnavailableError(
                    f"writing to the blob store failed: {exc.strerror}",
                    code="blob-store-write") from exc
            size += len(chunk)
        return Digest(hasher.hexdigest()), size, head

    def _commit(self, tmp: Path, digest: Digest, size: int, head: bytes) -> StoredBlob:
        final = self.path_of(digest)
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.link(tmp, final)  # fails rather than replace: never overwrite a blob
            created = True
            self._dirty.add(final.parent)
            self._dirty.add(final.parent.parent)
            self._dirty.add(self._objects)
        except FileExistsError:
            created = False
        tmp.unlink()
        return StoredBlob(digest, size, created, head)

    def sync(self) -> None:
        """Make the new names durable: one syncfs(2) for the batch where Linux has it
        (the blobs' data was flushed one by one already), else each folder in turn."""
        if self._fsync and self._dirty:
            fd = os.open(self._objects, os.O_RDONLY | os.O_DIRECTORY)
            try:
                done = _syncfs(fd)
            finally:
                os.close(fd)
            if not done:
                for folder in sorted(self._dirty, key=lambda p: len(p.parts), reverse=True):
                    _fsync_dir(folder)
        self._dirty.clear()

    def clean_temp(self) -> int:
        """Remove temporaries left by a process that was killed mid-write."""
        removed = 0
        if not self._tmp.is_dir():
            return 0
        for leftover in self._tmp.iterdir():
            try:
                fd = os.open(leftover, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue  # committed and removed meanwhile, or not a plain file
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another process is still writing it
                leftover.unlink(missing_ok=True)
                removed += 1
            finally:
                os.close(fd)
        return removed

    def temp_count(self) -> int:
        return sum(1 for _ in self._tmp.iterdir()) if self._tmp.is_dir() else 0
