"""Exact Hamming range search over PDQ hashes, and clusters of near-duplicates.

A near-duplicate finder that misses matches is worse than none for evidence work: an
investigator who is told "no other copy" stops looking. So the index is exact: every
stored hash within ``max_distance`` is returned (up to ``limit``), never an approximation.

Why a flat scan and not multi-index hashing: measured on this project's 2-core machine
with one million random hashes, faiss's ``IndexBinaryFlat`` answers a range query in
about 1 ms on one core (32 MB of codes, SIMD popcount), while faiss's exact multi-index
hashing (``IndexBinaryMultiHash``, 16 tables of 16 bits, one bit flip: exact for ≤ 31 by
pigeonhole) took about 3 ms, 8 s to insert the million, and a list entry per table per
hash. The scan grows linearly (about 4 ms at three million, 20 ms at ten); past a few
million, multi-index hashing with wider substrings starts to pay for its complexity.
``bench/media_neardup.py`` keeps the figures honest.

A query runs on one OpenMP thread: on two busy cores, faiss's threads for a single query
spent more time waiting for each other than scanning (median 6 ms, p99 40 ms instead of
1 ms and 5 ms).

Not thread-safe: one writer, and no searches while it adds.
"""

from __future__ import annotations

import contextlib
import hashlib
import operator
import os
import struct
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np

from sprava.errors import BadInputError

__all__ = ["HashIndex", "clusters"]

_BITS = 256
_CODE_BYTES = _BITS // 8
_MAGIC = b"SPRAVA-PDQ-INDEX"
_VERSION = 1
# magic, version, reserved, count, SHA-256 of the body (ids then codes)
_HEADER = struct.Struct("<16sIIQ32s")


class HashIndex:
    """Stored (item id, 256-bit PDQ hash) pairs, searched by Hamming distance.

    ``add`` appends without rebuilding anything; ``save`` and ``load`` persist the
    index in a small documented file (see ``save``), so a restart does not recompute
    hashes. Ids are the caller's (e.g. ``phash.id``); adding an id twice stores it twice.
    """

    def __init__(self) -> None:
        self._index = faiss.IndexBinaryFlat(_BITS)
        self._ids = np.zeros(0, dtype=np.int64)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def max_id(self) -> int:
        """The largest id stored (-1 when empty): where a caller catching up resumes."""
        return int(self._ids[: self._count].max()) if self._count else -1

    def add(self, ids: Sequence[int], hexes: Sequence[str]) -> None:
        """Append hashes with their ids; all are checked before any is stored.

        Raises ``BadInputError`` (``bad-hash``) if a hash is not 64 hex digits, or if
        ``ids`` is not integers of the same length as ``hexes``.
        """
        id_array = _id_array(ids)
        codes = _codes(hexes)
        if len(id_array) != len(codes):
            raise BadInputError(f"{len(id_array)} ids for {len(codes)} hashes",
                                code="bad-hash")
        if not len(codes):
            return
        self._index.add(codes)
        self._append_ids(id_array)

    def search(self, hex: str, max_distance: int = 31, limit: int = 100
               ) -> list[tuple[int, int]]:
        """Every stored ``(id, distance)`` within ``max_distance`` bits of ``hex``.

        Sorted by distance, then id; cut at ``limit``. Exact: nothing within the
        distance is ever left out except by ``limit``. 31 is PDQ's match threshold.

        Raises ``BadInputError``: ``bad-hash`` for a malformed hash, ``bad-query`` for
        a distance outside 0–256 or a negative limit.
        """
        if not 0 <= max_distance <= _BITS:
            raise BadInputError(f"max_distance must be 0–{_BITS}, not {max_distance}",
                                code="bad-query")
        if limit < 0:
            raise BadInputError(f"limit must not be negative, not {limit}", code="bad-query")
        query = _codes([hex])
        if not self._count or not limit:
            return []
        with _one_thread():
            # faiss keeps distances strictly below the radius.
            _lims, distances, rows = self._index.range_search(query, max_distance + 1)
        ids = self._ids[rows]
        order = np.lexsort((ids, distances))[:limit]
        return [(int(ids[i]), int(distances[i])) for i in order]

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically: a crash leaves the old file or the new.

        Format (little-endian): 16-byte magic ``SPRAVA-PDQ-INDEX``, u32 version (1),
        u32 zero, u64 count, the SHA-256 of the body, then the body: count i64 ids and
        count 32-byte hashes, in the order they were added.
        """
        ids = np.ascontiguousarray(self._ids[: self._count], dtype="<i8")
        codes = np.ascontiguousarray(
            self._index.reconstruct_n(0, self._count) if self._count else [], dtype=np.uint8)
        digest = hashlib.sha256()
        digest.update(ids.data)
        digest.update(codes.data)
        header = _HEADER.pack(_MAGIC, _VERSION, 0, self._count, digest.digest())
        _write_atomically(path, [header, ids.data, codes.data])

    @classmethod
    def load(cls, path: Path) -> HashIndex:
        """Read an index written by ``save``; later ``add`` calls extend it.

        Raises ``BadInputError`` (``corrupt-index``) if the file is not such an index or
        its checksum fails; the index is derived data, so rebuild it from the stored hashes.
        ``OSError`` if it cannot be read.
        """
        data = path.read_bytes()
        if len(data) < _HEADER.size:
            raise _corrupt(path, "shorter than its header")
        magic, version, _reserved, count, checksum = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise _corrupt(path, "not a Sprava PDQ index of a version this code reads")
        body = memoryview(data)[_HEADER.size:]
        if len(body) != count * (8 + _CODE_BYTES):
            raise _corrupt(path, f"its body does not hold the {count:,} entries it declares")
        if hashlib.sha256(body).digest() != checksum:
            raise _corrupt(path, "its checksum does not match")
        index = cls()
        ids = np.frombuffer(body[: count * 8], dtype="<i8").astype(np.int64)
        codes = np.frombuffer(body[count * 8:], dtype=np.uint8).reshape(-1, _CODE_BYTES)
        if count:
            index._index.add(codes)
            index._append_ids(ids)
        return index

    def _append_ids(self, new: np.ndarray) -> None:
        """Amortised doubling, so adding one at a time stays cheap."""
        needed = self._count + len(new)
        if needed > len(self._ids):
            grown = np.zeros(max(needed, 2 * len(self._ids), 1024), dtype=np.int64)
            grown[: self._count] = self._ids[: self._count]
            self._ids = grown
        self._ids[self._count: needed] = new
        self._count = needed


def clusters(pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Each id met in ``pairs``, mapped to its cluster: the smallest id connected to it.

    Near-duplication is made transitive (a ~ b and b ~ c puts a, b and c together) by
    union-find. The answer depends only on the set of pairs, never on their order, so
    a rerun names clusters the same; it is ordered by id. A pair ``(a, a)`` records a
    cluster of one.
    """
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        top = x
        while parent[top] != top:
            top = parent[top]
        while parent[x] != top:  # path compression
            parent[x], x = top, parent[x]
        return top

    for a, b in pairs:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = root(a), root(b)
        if ra != rb:  # the smaller root wins, so every root is its cluster's minimum
            parent[max(ra, rb)] = min(ra, rb)
    return {x: root(x) for x in sorted(parent)}


def _codes(hexes: Sequence[str]) -> np.ndarray:
    """Hex hashes as an (n, 32) uint8 array in PDQ's bit order (first digit = first byte).

    ``bytes.fromhex`` skips whitespace, so each hash's length is checked as well.
    """
    try:
        if not all(isinstance(h, str) and len(h) == 2 * _CODE_BYTES for h in hexes):
            raise ValueError("a hash is not a string of 64 characters")
        raw = bytes.fromhex("".join(hexes))
        if len(raw) != _CODE_BYTES * len(hexes):
            raise ValueError("a hash holds whitespace")
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"not PDQ hashes of 64 hex digits: {exc}", code="bad-hash") from exc
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CODE_BYTES)


def _id_array(ids: Sequence[int]) -> np.ndarray:
    """Ids as int64, refusing floats and anything else that is not an integer."""
    if isinstance(ids, np.ndarray) and ids.dtype.kind in "iu" and ids.ndim == 1:
        if ids.dtype.kind == "u" and len(ids) and int(ids.max()) > np.iinfo(np.int64).max:
            raise BadInputError("an id does not fit in 64 bits", code="bad-hash")
        return ids.astype(np.int64)
    try:
        return np.fromiter((operator.index(i) for i in ids), dtype=np.int64, count=len(ids))
    except (TypeError, OverflowError, ValueError) as exc:
        raise BadInputError(f"ids must be 64-bit integers: {exc}", code="bad-hash") from exc


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One OpenMP thread for this thread's next faiss calls (the setting is per thread)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _write_atomically(path: Path, chunks: Sequence[bytes | memoryview]) -> None:
    """Temp file in the same folder, fsync, rename over, fsync the folder."""
    folder = path.parent
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _corrupt(path: Path, why: str) -> BadInputError:
    return BadInputError(f"{path.name} is not a usable hash index: {why}",
                         code="corrupt-index",
                         hint="rebuild it from the stored hashes and save it again")
