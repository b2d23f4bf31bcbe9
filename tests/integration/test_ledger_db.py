"""The custody ledger on each real database: proofs, checkpoints, cost, and concurrent writers.

Proofs served from the database are compared with proofs computed in memory twice over:
from a :class:`~sprava.ledger.merkle.CompactRange` node store (the construction the
ledger uses) and from a naive recursive transcription of RFC 9162 §2.1 (which shares no
code with it). Both must agree, and verify against the root the database computes and
the root in the signed checkpoint.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, select

from sprava.audit import verify_instance
from sprava.backends.db.engine import make_engine, read_transaction, write_transaction
from sprava.backends.db.tables import item, ledger_checkpoint, ledger_leaf
from sprava.domain.custody import CustodyEvent, ingest_event
from sprava.errors import NotFoundError
from sprava.instance import Instance
from sprava.ledger import log, merkle
from sprava.ledger.merkle import NodeId, ProofError
from sprava.ledger.note import open_checkpoint

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BATCHES = (1, 1, 2, 5, 8, 3, 13, 7)  # checkpoints at 1, 2, 4, 9, 17, 20, 33, 40
N = sum(BATCHES)
SIZES = (1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 20, 31, 32, 33, 39, 40)


# --- an in-memory reference --------------------------------------------------------------


def _mth(hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over already-hashed leaves, by the definition."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return merkle.node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def _path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), by the definition."""
    if len(hashes) <= 1:
        return []
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, hashes[:k]), _mth(hashes[k:])]
    return [*_path(m - k, hashes[k:]), _mth(hashes[:k])]


def _subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b), by the definition."""
    n = len(hashes)
    if m == n:
        return [] if complete else [_mth(hashes)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, hashes[:k], complete), _mth(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), _mth(hashes[:k])]


@dataclass
class Reference:
    """Every leaf appended, and the perfect nodes a CompactRange made of them."""

    leaves: list[bytes] = field(default_factory=list)  # leaf hashes
    nodes: dict[NodeId, bytes] = field(default_factory=dict)
    compact: merkle.CompactRange = field(default_factory=merkle.CompactRange)

    def add(self, data: bytes) -> None:
        hashed = merkle.leaf_hash(data)
        self.leaves.append(hashed)
        self.nodes.update(self.compact.append(hashed))

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return merkle.assemble(merkle.inclusion_ranges(index, size), self.nodes)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return merkle.assemble(merkle.consistency_ranges(old, new), self.nodes)


def _fake_event(n: int) -> CustodyEvent:
    """A well-formed ingest event for content that is not held (the ledger alone)."""
    sha = hashlib.sha256(f"fake item {n}".encode()).hexdigest()
    return ingest_event(sha256=sha, size=1000 + n, actor="test:ledger",
                        time=T0 + timedelta(seconds=n), source=None, new=True)


def _append(instance: Instance, batches: Sequence[int], ref: Reference) -> list[int]:
    """Append ``sum(batches)`` fake ingest events, one transaction per batch."""
    checkpoints = []
    for batch in batches:
        with write_transaction(instance.engine) as conn:
            appender = log.LedgerAppender(conn, instance.signer)
            for _ in range(batch):
                custody = _fake_event(len(ref.leaves))
                assert appender.append(custody) == len(ref.leaves)
                ref.add(custody.to_leaf())
            stored = appender.finish()
        assert stored is not None
        checkpoints.append(stored.size)
    return checkpoints


@pytest.fixture
def ledger(instance: Instance) -> Reference:
    ref = Reference()
    assert _append(instance, BATCHES, ref) == [1, 2, 4, 9, 17, 20, 33, 40]
    return ref


def _signed_root(conn: Connection, instance: Instance, size: int) -> bytes:
    stored = log.checkpoint_at(conn, size)
    assert stored is not None
    checkpoint = open_checkpoint(stored.note, instance.verifier)
    assert (checkpoint.origin, checkpoint.size) == (instance.origin, size)
    return checkpoint.root


# --- proofs ------------------------------------------------------------------------------


def test_leaves_and_roots_match_the_reference(instance: Instance, ledger: Reference) -> None:
    with read_transaction(instance.engine) as conn:
        stored = list(log.iter_leaves(conn, batch=7))
        assert [leaf.index for leaf in stored] == list(range(N))
        assert [leaf.hash for leaf in stored] == ledger.leaves
        assert [merkle.leaf_hash(leaf.data) for leaf in stored] == ledger.leaves
        assert log.head_size(conn) == N
        assert log.root_at(conn, 0) == merkle.EMPTY_ROOT
        for size in range(N + 1):
            assert log.root_at(conn, size) == _mth(ledger.leaves[:size]), size
        for size in (1, 2, 4, 9, 17, 20, 33, 40):
            assert _signed_root(conn, instance, size) == _mth(ledger.leaves[:size])
        assert [c.size for c in log.checkpoints(conn)] == [1, 2, 4, 9, 17, 20, 33, 40]
        latest = log.latest_checkpoint(conn)
        assert latest is not None
        assert latest.size == N


def test_inclusion_proofs_match_and_verify(instance: Instance, ledger: Reference) -> None:
    signed_sizes = {1, 2, 4, 9, 17, 20, 33, 40}
    with read_transaction(instance.engine) as conn:
        for size in SIZES:
            root = log.root_at(conn, size)
            assert root == _mth(ledger.leaves[:size])
            signed = _signed_root(conn, instance, size) if size in signed_sizes else None
            for index in range(size):
                proof = log.inclusion_proof(conn, index, size)
                assert proof == ledger.inclusion(index, size), (index, size)
                assert proof == _path(index, ledger.leaves[:size]), (index, size)
                leaf = ledger.leaves[index]
                merkle.verify_inclusion(index, size, leaf, proof, root)
                if signed is not None:
                    merkle.verify_inclusion(index, size, leaf, proof, signed)
                if proof:  # and a proof for another leaf, or with a hash changed, fails
                    other = ledger.leaves[(index + 1) % size]
                    with pytest.raises(ProofError, match="does not lead to the root"):
                        merkle.verify_inclusion(index, size, other, proof, root)
                    bent = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
                    with pytest.raises(ProofError, match="does not lead to the root"):
                        merkle.verify_inclusion(index, size, leaf, bent, root)


def test_consistency_proofs_between_checkpoints_verify(
    instance: Instance, ledger: Reference
) -> None:
    with read_transaction(instance.engine) as conn:
        sizes = [c.size for c in log.checkpoints(conn)]
        roots = {size: _signed_root(conn, instance, size) for size in sizes}
        for i, old in enumerate(sizes):
            for new in sizes[i:]:
                proof = log.consistency_proof(conn, old, new)
                assert proof == ledger.consistency(old, new), (old, new)
                expected = [] if old == new else _subproof(old, ledger.leaves[:new], True)
                assert proof == expected, (old, new)
                merkle.verify_consistency(old, new, proof, roots[old], roots[new])
                if old != new:
                    forged = roots[old][:-1] + bytes([roots[old][-1] ^ 1])
                    with pytest.raises(ProofError, match="consistency proof"):
                        merkle.verify_consistency(old, new, proof, forged, roots[new])


def _inclusion(index: int, size: int) -> Callable[[Connection], object]:
    return lambda conn: log.inclusion_proof(conn, index, size)


def _consistency(old: int, new: int) -> Callable[[Connection], object]:
    return lambda conn: log.consistency_proof(conn, old, new)


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        pytest.param(_inclusion(N, N), "index-out-of-range",
                     "leaf 40 is not in the tree of size 40", id="inclusion-index-equals-size"),
        pytest.param(_inclusion(20, 10), "index-out-of-range", "leaf 20 is not in the tree",
                     id="inclusion-index-beyond-size"),
        pytest.param(_inclusion(-1, N), "index-out-of-range", "leaf -1 is not in the tree",
                     id="inclusion-negative-index"),
        pytest.param(_inclusion(0, 0), "index-out-of-range", "leaf 0 is not in the tree of size 0",
                     id="inclusion-in-empty-tree"),
        pytest.param(_inclusion(0, N + 1), "size-out-of-range", "there is no tree of size 41",
                     id="inclusion-size-beyond-head"),
        pytest.param(_inclusion(0, -1), "size-out-of-range", "there is no tree of size -1",
                     id="inclusion-negative-size"),
        pytest.param(_consistency(1, N + 1), "size-out-of-range", "there is no tree of size 41",
                     id="consistency-new-beyond-head"),
        pytest.param(_consistency(5, 4), "size-out-of-range",
                     "no consistency proof from size 5 to size 4", id="consistency-old-after-new"),
        pytest.param(_consistency(-1, 4), "size-out-of-range",
                     "no consistency proof from size -1", id="consistency-negative-old"),
    ],
)
def test_out_of_range_requests_are_refused(
    instance: Instance, ledger: Reference, call: Callable[[Connection], object], code: str,
    message: str,
) -> None:
    with read_transaction(instance.engine) as conn, pytest.raises(NotFoundError,
                                                                  match=message) as caught:
        call(conn)
    assert caught.value.code == code


# --- cost --------------------------------------------------------------------------------


@contextmanager
def _statements(instance: Instance) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
               _executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(instance.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(instance.engine, "before_cursor_execute", record)


def test_proofs_read_a_logarithmic_number_of_nodes(instance: Instance) -> None:
    ref = Reference()
    _append(instance, [500] * 10, ref)
    n = len(ref.leaves)
    assert n == 5000
    cases = [(i, n) for i in (0, 1, 2047, 2048, 2500, 4095, 4096, 4998, 4999)]
    cases += [(0, 4097), (4096, 4097), (1234, 3333), (0, 1), (3, 4)]
    with read_transaction(instance.engine) as conn:
        for index, size in cases:
            with _statements(instance) as seen:
                proof = log.inclusion_proof(conn, index, size)
            assert proof == ref.inclusion(index, size)
            merkle.verify_inclusion(index, size, ref.leaves[index], proof,
                                    log.root_at(conn, size))
            bound = 2 * math.ceil(math.log2(size)) + 2
            assert len(seen) <= 3, seen
            assert not [s for s, _ in seen if "ledger_leaf" in s], seen
            node_reads = [p for s, p in seen if "ledger_node" in s]
            assert len(node_reads) <= 1, seen  # none when the proof is empty
            assert sum(map(len, node_reads)) <= bound, (index, size, node_reads)
        for old, new in [(1, n), (2048, n), (2500, n), (4096, 4097), (3333, 4999), (17, 33)]:
            with _statements(instance) as seen:
                proof = log.consistency_proof(conn, old, new)
            assert proof == ref.consistency(old, new)
            bound = 2 * math.ceil(math.log2(new)) + 2
            assert len(seen) <= 3, seen
            assert not [s for s, _ in seen if "ledger_leaf" in s], seen
            node_reads = [p for s, p in seen if "ledger_node" in s]
            assert len(node_reads) <= 1, seen  # none when the proof is empty
            assert sum(map(len, node_reads)) <= bound, (old, new, node_reads)


# --- concurrent writers ------------------------------------------------------------------


def _put_blob(instance: Instance, data: bytes) -> str:
    read, write = os.pipe()
    try:
        os.write(write, data)
        os.close(write)
        stored = instance.blobs.put_fd(read)
    finally:
        os.close(read)
    return stored.digest.hex


def test_concurrent_writers_make_one_gapless_ledger(instance: Instance) -> None:
    writers, transactions, per_transaction = 2, 20, 10
    contents = {(w, t): f"writer {w} transaction {t}\n".encode() * (t + 1)
                for w in range(writers) for t in range(transactions)}
    digests = {key: _put_blob(instance, data) for key, data in contents.items()}
    instance.blobs.sync()
    start = threading.Barrier(writers)
    indices: dict[int, list[int]] = {w: [] for w in range(writers)}
    errors: list[BaseException] = []

    def write(w: int) -> None:
        engine = make_engine(instance.settings.database_url)
        try:
            start.wait(timeout=60)
            for t in range(transactions):
                sha, size = digests[(w, t)], len(contents[(w, t)])
                with write_transaction(engine) as conn:
                    appender = log.LedgerAppender(conn, instance.signer)
                    conn.execute(insert(item).values(sha256=sha, size=size,
                                                     media_type="text/plain",
                                                     first_seen=datetime.now(UTC)))
                    for k in range(per_transaction):
                        custody = ingest_event(sha256=sha, size=size, actor=f"test:writer-{w}",
                                               time=datetime.now(UTC), source=None, new=k == 0)
                        indices[w].append(appender.append(custody))
                    appender.finish()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not [t for t in threads if t.is_alive()]
    assert not errors, errors
    total = writers * transactions * per_transaction
    assert sorted(indices[0] + indices[1]) == list(range(total))
    for w in range(writers):  # each writer's events are contiguous within a transaction
        for t in range(transactions):
            chunk = indices[w][t * per_transaction : (t + 1) * per_transaction]
            assert chunk == list(range(chunk[0], chunk[0] + per_transaction))
    with read_transaction(instance.engine) as conn:
        stored = conn.execute(select(ledger_leaf.c.idx).order_by(ledger_leaf.c.idx)).scalars()
        assert list(stored) == list(range(total))
        sizes = list(conn.execute(select(ledger_checkpoint.c.size)
                                  .order_by(ledger_checkpoint.c.size)).scalars())
        assert sizes == list(range(per_transaction, total + 1, per_transaction))
        assert log.head_size(conn) == total
    report = verify_instance(instance)
    assert report.ok, report.findings
    assert (report.leaves, report.checkpoints, report.items) == (
        total, writers * transactions, writers * transactions)
