"""The custody ledger on the database: append events, sign checkpoints, build proofs.

Storage is append-only: one row per leaf (its exact bytes and hash), one row per
*perfect* subtree root (see :mod:`sprava.ledger.merkle`), one row per signed checkpoint.
An append runs inside the caller's write transaction, together with whatever the events
describe (an item and its name), and ends with a checkpoint signed in the same
transaction. So a crash at any moment leaves either all of it or none of it: never a leaf
without its item, never a checkpoint ahead of its leaves.

Writers serialise on the ``ledger_head`` row (``FOR UPDATE`` on PostgreSQL; SQLite's
write transactions are exclusive already), which is what keeps indices free of gaps and
forks when several processes append at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from sprava.backends.db.tables import ledger_checkpoint, ledger_head, ledger_leaf, ledger_node
from sprava.domain.custody import CustodyEvent
from sprava.errors import IntegrityError, NotFoundError
from sprava.ledger import merkle
from sprava.ledger.merkle import CompactRange, NodeId
from sprava.ledger.note import Checkpoint, NoteSigner

_LEVEL_SHIFT = 56
_INDEX_MASK = (1 << _LEVEL_SHIFT) - 1
_FETCH_CHUNK = 500


def node_pos(node: NodeId) -> int:
    """Pack a node address into the ``ledger_node.pos`` key."""
    return (node.level << _LEVEL_SHIFT) | node.index


def node_at(pos: int) -> NodeId:
    return NodeId(pos >> _LEVEL_SHIFT, pos & _INDEX_MASK)


@dataclass(frozen=True)
class Leaf:
    index: int
    data: bytes
    hash: bytes
    kind: str = ""  # look-up columns, derived from ``data`` when appended
    item_sha256: str | None = None


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    note: str
    created_at: datetime


def fetch_nodes(conn: Connection, nodes: Sequence[NodeId]) -> dict[NodeId, bytes]:
    """Read perfect nodes by address; raises IntegrityError if any is missing."""
    found: dict[NodeId, bytes] = {}
    positions = [node_pos(n) for n in nodes]
    for start in range(0, len(positions), _FETCH_CHUNK):
        chunk = positions[start : start + _FETCH_CHUNK]
        rows = conn.execute(
            select(ledger_node.c.pos, ledger_node.c.hash).where(ledger_node.c.pos.in_(chunk))
        )
        for pos, digest in rows:
            found[node_at(pos)] = bytes(digest)
    missing = [n for n in nodes if n not in found]
    if missing:
        raise IntegrityError(
            f"the ledger is missing tree node level {missing[0].level} index "
            f"{missing[0].index}",
            code="node-missing",
            hint="run `sprava verify` to find what was removed",
        )
    return found


def head_size(conn: Connection, *, lock: bool = False) -> int:
    query = select(ledger_head.c.size).where(ledger_head.c.id == 1)
    if lock:
        query = query.with_for_update()
    size = conn.execute(query).scalar_one_or_none()
    if size is None:
        raise IntegrityError("the ledger head row is missing", code="head-missing")
    return int(size)


def compact_range(conn: Connection, size: int) -> CompactRange:
    """The state an appender needs to continue a tree of ``size`` leaves."""
    needed = merkle.range_nodes(0, size)
    nodes = fetch_nodes(conn, needed)
    return CompactRange(size, [nodes[n] for n in needed])


def root_at(conn: Connection, size: int) -> bytes:
    """The RFC 6962 root of the first ``size`` leaves, from O(log n) stored nodes."""
    needed = merkle.range_nodes(0, size)
    nodes = fetch_nodes(conn, needed)
    return merkle.fold([nodes[n] for n in needed])


class LedgerAppender:
    """Appends custody events inside one write transaction, then signs a checkpoint.

    Use once per transaction: ``append`` any number of events, then ``finish``.
    """

    def __init__(self, conn: Connection, signer: NoteSigner) -> None:
        self._conn = conn
        self._signer = signer
        start = head_size(conn, lock=True)
        self._compact = compact_range(conn, start)
        self._leaves: list[dict[str, Any]] = []
        self._nodes: list[dict[str, Any]] = []

    @property
    def size(self) -> int:
        return self._compact.size

    def append(self, event: CustodyEvent) -> int:
        """Queue ``event`` as the next leaf; returns its index."""
        data = event.to_leaf()
        hashed = merkle.leaf_hash(data)
        index = self._compact.size
        for node, digest in self._compact.append(hashed):
            self._nodes.append({"pos": node_pos(node), "hash": digest})
        self._leaves.append(
            {"idx": index, "data": data, "hash": hashed, "kind": event.kind,
             "item_sha256": event.sha256}
        )
        return index

    def finish(self) -> StoredCheckpoint | None:
        """Write the queued leaves and nodes and a checkpoint over them, in this transaction."""
        if not self._leaves:
            return None
        conn = self._conn
        conn.execute(insert(ledger_leaf), self._leaves)
        conn.execute(insert(ledger_node), self._nodes)
        size = self._compact.size
        checkpoint = Checkpoint(self._signer.name, size, self._compact.root())
        stored = StoredCheckpoint(size, self._signer.sign(checkpoint.to_text()), datetime.now(UTC))
        conn.execute(
            insert(ledger_checkpoint),
            {"size": stored.size, "note": stored.note, "created_at": stored.created_at},
        )
        conn.execute(update(ledger_head).where(ledger_head.c.id == 1).values(size=size))
        self._leaves, self._nodes = [], []
        return stored


def latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    row = conn.execute(
        select(ledger_checkpoint).order_by(ledger_checkpoint.c.size.desc()).limit(1)
    ).first()
    return None if row is None else StoredCheckpoint(row.size, row.note, row.created_at)


def checkpoint_at(conn: Connection, size: int) -> StoredCheckpoint | None:
    row = conn.execute(select(ledger_checkpoint).where(ledger_checkpoint.c.size == size)).first()
    return None if row is None else StoredCheckpoint(row.size, row.note, row.created_at)


def checkpoints(conn: Connection) -> Iterator[StoredCheckpoint]:
    for row in conn.execute(select(ledger_checkpoint).order_by(ledger_checkpoint.c.size)):
        yield StoredCheckpoint(row.size, row.note, row.created_at)


def get_leaf(conn: Connection, index: int) -> Leaf:
    row = conn.execute(select(ledger_leaf).where(ledger_leaf.c.idx == index)).first()
    if row is None:
        raise NotFoundError(f"the ledger has no leaf {index}", code="leaf-not-found")
    return Leaf(row.idx, bytes(row.data), bytes(row.hash))


def iter_leaves(conn: Connection, start: int = 0, batch: int = 2000) -> Iterator[Leaf]:
    """Every leaf from ``start`` in index order, read in pages so memory stays flat."""
    after = start - 1
    while True:
        rows = conn.execute(
            select(ledger_leaf.c.idx, ledger_leaf.c.data, ledger_leaf.c.hash,
                   ledger_leaf.c.kind, ledger_leaf.c.item_sha256)
            .where(ledger_leaf.c.idx > after)
            .order_by(ledger_leaf.c.idx)
            .limit(batch)
        ).all()
        if not rows:
            return
        for idx, data, digest, kind, sha in rows:
            yield Leaf(idx, bytes(data), bytes(digest), kind, sha)
        after = rows[-1][0]


def leaf_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(ledger_leaf)).scalar_one())


def leaves_for_item(conn: Connection, sha256: str) -> list[Leaf]:
    rows = conn.execute(
        select(ledger_leaf.c.idx, ledger_leaf.c.data, ledger_leaf.c.hash)
        .where(ledger_leaf.c.item_sha256 == sha256)
        .order_by(ledger_leaf.c.idx)
    )
    return [Leaf(idx, bytes(data), bytes(digest)) for idx, data, digest in rows]


def _check_size(conn: Connection, size: int) -> None:
    current = head_size(conn)
    if not 0 <= size <= current:
        raise NotFoundError(
            f"the ledger has {current} leaves; there is no tree of size {size}",
            code="size-out-of-range",
        )


def inclusion_proof(conn: Connection, index: int, size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    _check_size(conn, size)
    if not 0 <= index < size:
        raise NotFoundError(
            f"leaf {index} is not in the tree of size {size}", code="index-out-of-range"
        )
    ranges = merkle.inclusion_ranges(index, size)
    return merkle.assemble(ranges, fetch_nodes(conn, merkle.nodes_for(ranges)))


def consistency_proof(conn: Connection, old_size: int, new_size: int) -> list[bytes]:
    """The RFC 9162 consistency proof from ``old_size`` to ``new_size`` leaves."""
    _check_size(conn, new_size)
    if not 0 <= old_size <= new_size:
        raise NotFoundError(
            f"no consistency proof from size {old_size} to size {new_size}",
            code="size-out-of-range",
        )
    return build_consistency(conn, old_size, new_size)


def build_consistency(conn: Connection, old_size: int, new_size: int) -> list[bytes]:
    """The consistency proof from stored nodes alone, without consulting the ledger head
    (for the auditor, which re-checks the head rather than trusting it)."""
    ranges = merkle.consistency_ranges(old_size, new_size)
    return merkle.assemble(ranges, fetch_nodes(conn, merkle.nodes_for(ranges)))


def all_nodes(conn: Connection, batch: int = 5000) -> Iterable[tuple[NodeId, bytes]]:
    """Every stored node in key order, paged."""
    after = -1
    while True:
        rows = conn.execute(
            select(ledger_node.c.pos, ledger_node.c.hash)
            .where(ledger_node.c.pos > after)
            .order_by(ledger_node.c.pos)
            .limit(batch)
        ).all()
        if not rows:
            return
        for pos, digest in rows:
            yield node_at(pos), bytes(digest)
        after = rows[-1][0]
