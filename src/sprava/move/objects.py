"""Copying the originals and the inbox's ciphertext from one store into another.

Blobs go through the :class:`~sprava.store.blobs.BlobStore` interface of each side, so
any pair of stores works (a folder, an S3 bucket). The target hashes every blob as it
writes it, in the same pass, and the copy is accepted only when that hash is the digest
the blob is filed under: a source blob that was altered on disk stops the move instead
of spreading. Writes never overwrite (a blob already in the target is left as it is,
and checked later by ``verify``).

The inbox's objects are age ciphertext in a folder of their own (they never go to an
object store): each is copied to the target folder under a temporary name, fsynced,
compared by SHA-256 with its source, given the source's day-rounded file times, and
only then renamed into place.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from sqlalchemy import Connection, select

from sprava.backends.db.tables import item
from sprava.domain.digest import Digest
from sprava.errors import IntegrityError, NotFoundError
from sprava.inbox.storage import LocalInboxStore
from sprava.store.blobs import CHUNK, BlobStore, LocalBlobStore

THREADS = 8


def item_digests(conn: Connection) -> Iterator[tuple[Digest, int]]:
    """Every item the database records (originals and derived copies), with its size."""
    rows = conn.execution_options(stream_results=True, yield_per=5000).execute(
        select(item.c.sha256, item.c.size).order_by(item.c.sha256))
    for sha256, size in rows:
        yield Digest(sha256), int(size)


def _chunks(reader: Callable[[int], bytes]) -> Iterator[bytes]:
    while True:
        chunk = reader(CHUNK)
        if not chunk:
            return
        yield chunk


def copy_blob(source: BlobStore, target: BlobStore, digest: Digest) -> int:
    """Copy one blob; returns the bytes written (0 when the target held it already)."""
    if target.exists(digest):
        return 0
    if isinstance(source, LocalBlobStore):
        with source.local_path(digest) as path:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise NotFoundError(f"blob {digest} is missing from the source store",
                                    code="move-blob-missing",
                                    hint="run `sprava verify` on the instance") from None
            try:
                stored = target.put_fd(fd)
            finally:
                os.close(fd)
    else:
        with source.open(digest) as stream:
            stored = target.put_chunks(_chunks(stream.read))
    if stored.digest != digest:
        raise IntegrityError(
            f"blob {digest} in the source store hashes to {stored.digest}",
            code="move-blob-altered",
            hint="the source store holds altered evidence: run `sprava verify` before moving")
    return stored.size


def copy_blobs(source: BlobStore, target: BlobStore, digests: Iterable[tuple[Digest, int]],
               done: set[Digest], on_bytes: Callable[[int], None] = lambda _n: None,
               threads: int = THREADS) -> int:
    """Copy each blob not in ``done`` (which grows), ``threads`` at a time (small objects
    are bound by the store's round trips, not its bandwidth); returns how many were
    copied. The first failure stops the copy and is raised once the blobs in flight end."""
    copied = 0
    with ThreadPoolExecutor(threads, thread_name_prefix="move-blob") as pool:
        running: dict[Future[int], tuple[Digest, int]] = {}

        def settle(finished: Iterable[Future[int]]) -> None:
            nonlocal copied
            for future in finished:
                digest, size = running.pop(future)
                future.result()  # raises the blob's error
                done.add(digest)
                copied += 1
                on_bytes(size)

        try:
            for digest, size in digests:
                if digest in done:
                    continue
                running[pool.submit(copy_blob, source, target, digest)] = (digest, size)
                if len(running) >= threads * 4:
                    settle(wait(running, return_when=FIRST_COMPLETED).done)
            settle(wait(running).done)
        except BaseException:
            for future in running:
                future.cancel()
            raise
    if copied:
        target.sync()
    return copied


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_inbox(source_root: Path, target_root: Path) -> int:
    """Copy every inbox object from one folder to another; returns how many."""
    if source_root.resolve() == target_root.resolve():
        return 0
    source, target = LocalInboxStore(source_root), LocalInboxStore(target_root)
    target.create()
    count = 0
    for object_id in source.stored():
        origin = source.path_of(object_id)
        final = target.path_of(object_id)
        if final.exists():
            if _sha256_of(final) != _sha256_of(origin):
                raise IntegrityError(f"inbox object {object_id} differs in the target folder",
                                     code="move-inbox-differs",
                                     hint=f"move into an empty folder, not {target_root}")
            continue
        tmp = target.tmp / object_id
        h = hashlib.sha256()
        with source.open(object_id) as src, open(tmp, "wb", opener=_private) as out:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if _sha256_of(tmp) != h.hexdigest():
            tmp.unlink()
            raise IntegrityError(f"inbox object {object_id} was not written intact",
                                 code="move-inbox-write", hint="check the target disk")
        times = origin.stat()
        target.place(tmp, object_id)
        os.utime(final, ns=(times.st_atime_ns, times.st_mtime_ns))
        count += 1
    return count


def _private(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC, 0o600)
