"""``sprava verify`` for a whole instance: every byte and every event, re-derived.

Nothing stored is trusted because it is stored: blobs are re-hashed, every leaf hash and
every tree node is recomputed from the leaf bytes, every checkpoint signature is checked
against the instance key, every checkpoint root is recomputed at its size and proven
consistent with the latest, and the index columns the database uses for look-ups are
checked against the signed leaf bytes they summarise. Every failure is collected, not
just the first, and reported in a fixed order so that two runs can be compared.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, exists, func, inspect, select

from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import derived_item, item, item_name, ledger_leaf, ledger_node
from sprava.domain.custody import DERIVE, ITEM_ORIGINS, decode_leaf
from sprava.domain.digest import Digest
from sprava.errors import BadInputError, NotFoundError, SpravaError
from sprava.instance import Instance
from sprava.ledger import log, merkle
from sprava.ledger.note import open_checkpoint
from sprava.store.blobs import CHUNK

_PAGE = 500

# Report order: the ledger first (everything else is judged against it), then items.
_ORDER = (
    "leaf-gap", "leaf-stray", "leaf-hash-mismatch", "leaf-malformed", "leaf-index-mismatch",
    "node-mismatch", "node-missing", "node-extra", "head-mismatch",
    "checkpoint-signature", "checkpoint-root-mismatch", "checkpoint-inconsistent",
    "checkpoint-ahead", "leaves-beyond-checkpoint", "no-checkpoint",
    "item-without-ingest-event", "event-without-item", "event-size-mismatch",
    "name-event-mismatch", "derived-event-mismatch", "item-malformed", "blob-missing",
    "blob-unreadable", "blob-altered", "blob-size-mismatch",
    "catalogue-change-mismatch", "catalogue-row-unrecorded", "catalogue-row-altered",
)


@dataclass(frozen=True)
class Finding:
    """One thing that does not hold. ``subject`` names the item, leaf or checkpoint."""

    code: str
    subject: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "subject": self.subject, "message": self.message}


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    leaves: int = 0
    items: int = 0
    checkpoints: int = 0
    bytes_hashed: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, code: str, subject: str, message: str) -> None:
        self.findings.append(Finding(code, subject, message))

    def sort(self) -> None:
        rank = {code: i for i, code in enumerate(_ORDER)}
        self.findings.sort(key=lambda f: (rank.get(f.code, len(rank)), _natural(f.subject)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "leaves": self.leaves, "items": self.items,
            "checkpoints": self.checkpoints, "bytes_hashed": self.bytes_hashed,
            "findings": [f.to_dict() for f in self.findings], "notes": self.notes,
        }


def _natural(subject: str) -> tuple[str, int, str]:
    head, _, tail = subject.partition(" ")
    return (head, int(tail), "") if tail.isdigit() else (head, -1, tail)


class _LedgerCheck:
    """One streaming pass over the leaves: hashes, tree nodes, checkpoint roots."""

    def __init__(self, conn: Connection, instance: Instance, report: Report) -> None:
        self.conn = conn
        self.instance = instance
        self.report = report
        self.roots: dict[int, bytes] = {}  # recomputed root at every checkpoint size

    def run(self) -> None:
        conn, report = self.conn, self.report
        stored = self._checkpoints()
        wanted = set(stored)
        compact = merkle.CompactRange()
        created: list[tuple[merkle.NodeId, bytes]] = []
        expected = 0
        if 0 in wanted:
            self.roots[0] = compact.root()
        for leaf in log.iter_leaves(conn):
            if leaf.index != expected:
                report.add("leaf-gap", f"leaf {expected}",
                           f"leaves {expected} to {leaf.index - 1} are missing from the ledger")
                break
            self._leaf(leaf)
            created.extend(compact.append(merkle.leaf_hash(leaf.data)))
            expected += 1
            if compact.size in wanted:
                self.roots[compact.size] = compact.root()
            if len(created) >= 4 * _PAGE:
                self._nodes(created)
                created = []
        self._nodes(created)
        report.leaves = expected
        total_leaves = log.leaf_count(conn)
        if total_leaves != expected:
            report.add("leaf-stray", "ledger",
                       f"the ledger holds {total_leaves - expected} leaf row(s) outside the "
                       f"sequence 0 to {expected - 1}")
        total_nodes = conn.execute(select(func.count()).select_from(ledger_node)).scalar_one()
        if total_nodes > 2 * expected - bin(expected).count("1"):
            report.add("node-extra", "ledger",
                       f"the ledger holds {total_nodes} tree nodes; {expected} leaves make "
                       f"{2 * expected - bin(expected).count('1')}")
        head = log.head_size(conn)
        if head != expected:
            report.add("head-mismatch", "ledger",
                       f"the ledger head says {head} leaves, {expected} are stored")
        self._judge_checkpoints(stored, expected)

    def _leaf(self, leaf: log.Leaf) -> None:
        report = self.report
        subject = f"leaf {leaf.index}"
        if merkle.leaf_hash(leaf.data) != leaf.hash:
            report.add("leaf-hash-mismatch", subject,
                       "the stored leaf hash does not match the leaf bytes")
        try:
            body = decode_leaf(leaf.data)
        except BadInputError as exc:
            report.add("leaf-malformed", subject, exc.message)
            return
        if leaf.kind != body["kind"] or leaf.item_sha256 != body.get("sha256"):
            report.add("leaf-index-mismatch", subject,
                       "the leaf's look-up columns (kind, item) disagree with its signed bytes")

    def _nodes(self, created: list[tuple[merkle.NodeId, bytes]]) -> None:
        if not created:
            return
        try:
            stored = log.fetch_nodes(self.conn, [n for n, _ in created])
        except SpravaError:
            stored = {}
            positions = [log.node_pos(n) for n, _ in created]
            for start in range(0, len(positions), _PAGE):
                rows = self.conn.execute(
                    select(ledger_node.c.pos, ledger_node.c.hash)
                    .where(ledger_node.c.pos.in_(positions[start : start + _PAGE])))
                stored.update({log.node_at(p): bytes(h) for p, h in rows})
        for node, digest in created:
            subject = f"node {node.level}/{node.index}"
            if node not in stored:
                self.report.add("node-missing", subject,
                                f"tree node level {node.level} index {node.index} is missing")
            elif stored[node] != digest:
                self.report.add("node-mismatch", subject,
                                f"tree node level {node.level} index {node.index} does not "
                                "match the leaves below it")

    def _checkpoints(self) -> dict[int, bytes | None]:
        """Signature-checked roots by size (None where the signature fails)."""
        out: dict[int, bytes | None] = {}
        verifier = self.instance.verifier
        for stored in log.checkpoints(self.conn):
            self.report.checkpoints += 1
            subject = f"checkpoint {stored.size}"
            try:
                checkpoint = open_checkpoint(stored.note, verifier)
            except SpravaError as exc:
                self.report.add("checkpoint-signature", subject, exc.message)
                out[stored.size] = None
                continue
            if checkpoint.size != stored.size:
                self.report.add("checkpoint-signature", subject,
                                f"the signed note says size {checkpoint.size}")
                out[stored.size] = None
                continue
            out[stored.size] = checkpoint.root
        return out

    def _judge_checkpoints(self, stored: dict[int, bytes | None], leaves: int) -> None:
        report = self.report
        if not stored:
            if leaves:
                report.add("no-checkpoint", "ledger",
                           f"{leaves} leaves and no signed checkpoint over them")
            return
        latest = max(stored)
        for size, root in sorted(stored.items()):
            subject = f"checkpoint {size}"
            if size > leaves:
                report.add("checkpoint-ahead", subject,
                           f"signed for {size} leaves but only {leaves} are stored")
            elif root is not None and self.roots.get(size) != root:
                report.add("checkpoint-root-mismatch", subject,
                           f"the root recomputed from the first {size} leaves differs from "
                           "the signed one")
        if leaves > latest:
            report.add("leaves-beyond-checkpoint", f"leaf {latest}",
                       f"leaves {latest} to {leaves - 1} are not covered by any signed "
                       "checkpoint")
        latest_root = stored[latest]
        if latest_root is None or latest > leaves:
            return
        for size, root in sorted(stored.items()):
            if root is None or size == latest or size == 0:
                continue
            try:
                proof = log.build_consistency(self.conn, size, latest)
                merkle.verify_consistency(size, latest, proof, root, latest_root)
            except SpravaError as exc:
                report.add("checkpoint-inconsistent", f"checkpoint {size}",
                           f"not consistent with checkpoint {latest}: {exc.message}")


def _item_pages(conn: Connection) -> Iterator[list[Any]]:
    after = ""
    while True:
        rows = conn.execute(
            select(item.c.sha256, item.c.size).where(item.c.sha256 > after)
            .order_by(item.c.sha256).limit(_PAGE)
        ).all()
        if not rows:
            return
        yield list(rows)
        after = rows[-1].sha256


def _verified(report: Report) -> Any:
    """Only leaves in the checked sequence count: a row planted at index -1 proves nothing."""
    return ledger_leaf.c.idx.between(0, report.leaves - 1)


def _check_links(conn: Connection, report: Report) -> None:
    """Items and ingest events name each other, through columns checked against the leaves."""
    orphan_items = conn.execute(
        select(item.c.sha256).where(~exists().where(and_(
            ledger_leaf.c.item_sha256 == item.c.sha256, ledger_leaf.c.kind.in_(ITEM_ORIGINS),
            _verified(report))))
        .order_by(item.c.sha256)
    ).scalars()
    for sha in orphan_items:
        report.add("item-without-ingest-event", f"item {sha}",
                   f"item sha256:{sha} has no ingest or derive event in the ledger")
    orphan_events = conn.execute(
        select(ledger_leaf.c.idx, ledger_leaf.c.item_sha256)
        .where(ledger_leaf.c.kind.in_(ITEM_ORIGINS))
        .where(~exists().where(item.c.sha256 == ledger_leaf.c.item_sha256))
        .order_by(ledger_leaf.c.idx)
    ).all()
    for idx, sha in orphan_events:
        report.add("event-without-item", f"leaf {idx}",
                   f"leaf {idx} records the ingest of sha256:{sha}, which is not in the vault")
    bad_names = conn.execute(
        select(item_name.c.id, item_name.c.item_sha256, item_name.c.leaf_index)
        .select_from(item_name.outerjoin(ledger_leaf, ledger_leaf.c.idx == item_name.c.leaf_index))
        .where(ledger_leaf.c.idx.is_(None)
               | (ledger_leaf.c.item_sha256 != item_name.c.item_sha256)
               | ~_verified(report))
        .order_by(item_name.c.id)
    ).all()
    for _name_id, sha, leaf_index in bad_names:
        report.add("name-event-mismatch", f"item {sha}",
                   f"a name of sha256:{sha} cites leaf {leaf_index}, which records other content")


def _check_derivations(conn: Connection, report: Report) -> None:
    """Each derived item cites the derive event that names its original and how it was made."""
    rows = conn.execute(
        select(derived_item.c.sha256, derived_item.c.original_sha256, derived_item.c.kind,
               derived_item.c.leaf_index, ledger_leaf.c.data)
        .select_from(derived_item.outerjoin(
            ledger_leaf, and_(ledger_leaf.c.idx == derived_item.c.leaf_index, _verified(report))))
        .order_by(derived_item.c.sha256)
    ).all()
    for sha, original, kind, leaf_index, data in rows:
        try:
            body = decode_leaf(bytes(data)) if data is not None else {}
        except BadInputError:
            body = {}
        if (body.get("kind"), body.get("sha256"), body.get("original"),
                body.get("derivation")) != (DERIVE, sha, original, kind):
            report.add("derived-event-mismatch", f"item {sha}",
                       f"sha256:{sha} is recorded as a {kind} of sha256:{original}, but leaf "
                       f"{leaf_index} does not say so")


def _check_items(conn: Connection, instance: Instance, report: Report,
                 on_bytes: Callable[[int], None]) -> None:
    blobs = instance.blobs
    for page in _item_pages(conn):
        events = conn.execute(
            select(ledger_leaf.c.item_sha256, ledger_leaf.c.data)
            .where(ledger_leaf.c.item_sha256.in_([r.sha256 for r in page]))
            .where(ledger_leaf.c.kind.in_(ITEM_ORIGINS), _verified(report))
        ).all()
        sizes: dict[str, set[Any]] = {}
        for sha, data in events:
            try:
                sizes.setdefault(sha, set()).add(decode_leaf(bytes(data)).get("size"))
            except BadInputError:
                continue  # already reported as leaf-malformed
        for row in page:
            report.items += 1
            subject = f"item {row.sha256}"
            if sizes.get(row.sha256, {row.size}) != {row.size}:
                report.add("event-size-mismatch", subject,
                           f"item sha256:{row.sha256} is {row.size} bytes; its ingest events "
                           f"say {sorted(sizes[row.sha256], key=str)}")
            try:
                digest = Digest(row.sha256)
            except BadInputError:
                report.add("item-malformed", subject,
                           f"the item row's digest {row.sha256!r} is not a SHA-256")
                continue
            _check_blob(blobs, digest, row.size, report, on_bytes)


def _check_blob(blobs: Any, digest: Digest, size: int, report: Report,
                on_bytes: Callable[[int], None]) -> None:
    subject = f"item {digest.hex}"
    try:
        handle = blobs.open(digest)
    except NotFoundError:
        report.add("blob-missing", subject, f"the content of {digest} is missing from the store")
        return
    except SpravaError as exc:
        report.add("blob-unreadable", subject, exc.message)
        return
    hasher = hashlib.sha256()
    seen = 0
    try:
        with handle:
            while chunk := handle.read(CHUNK):
                hasher.update(chunk)
                seen += len(chunk)
                on_bytes(len(chunk))
    except OSError as exc:
        report.add("blob-unreadable", subject, f"reading {digest} failed: {exc.strerror}")
        return
    report.bytes_hashed += seen
    if hasher.hexdigest() != digest.hex:
        report.add("blob-altered", subject,
                   f"the stored content of {digest} no longer hashes to it: it was altered")
    elif seen != size:
        report.add("blob-size-mismatch", subject,
                   f"{digest} is recorded as {size} bytes, the store holds {seen}")


def _count_unreferenced(conn: Connection, instance: Instance) -> int:
    """Blobs no item names: a merge of two sorted streams, so memory stays flat."""
    known = (row.sha256 for page in _item_pages(conn) for row in page)
    current = next(known, None)
    count = 0
    for digest in instance.blobs.digests():  # sorted, as the item pages are
        while current is not None and current < digest.hex:
            current = next(known, None)
        if current != digest.hex:
            count += 1
    return count


def total_blob_bytes(instance: Instance) -> int:
    with read_transaction(instance.engine) as conn:
        return int(conn.execute(select(func.coalesce(func.sum(item.c.size), 0))).scalar_one())


def verify_instance(instance: Instance,
                    on_bytes: Callable[[int], None] = lambda _n: None) -> Report:
    """Check everything; the report lists every failure (empty when the instance is whole)."""
    report = Report()
    with read_transaction(instance.engine) as conn:
        _LedgerCheck(conn, instance, report).run()
        _check_links(conn, report)
        _check_derivations(conn, report)
        if inspect(conn).has_table("catalogue_change"):  # absent below schema 0003
            from sprava.catalogue.verify import check_catalogue

            report.findings.extend(check_catalogue(conn, report.leaves))
        _check_items(conn, instance, report, on_bytes)
        unreferenced = _count_unreferenced(conn, instance)
    if unreferenced:
        report.notes.append(
            f"{unreferenced} stored blob(s) belong to no item (left by an interrupted ingest; "
            "harmless, re-used if the same content is ingested again)")
    temps = instance.blobs.temp_count()
    if temps:
        report.notes.append(f"{temps} temporary file(s) from an interrupted ingest; removed "
                            "by a later ingest")
    report.sort()
    return report
