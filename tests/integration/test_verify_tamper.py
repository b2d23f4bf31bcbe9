"""A tamper corpus: one attack per case on a real instance, and what ``verify`` must say.

Every case starts from the same small vault, built by three real ingest runs on each
database back end:

    run "one":   a.bin = A, b.bin = B, c.bin = A   -> leaves 0 A, 1 B, 2 A   checkpoint 3
    run "two":   d.bin = C, e.bin = B, f.bin = A   -> leaves 3 C, 4 B, 5 A   checkpoint 6
    run "three": g.bin = C                         -> leaf 6 C               checkpoint 7

so there are three items, each with two or three ingest events, and three checkpoints.
The tree over 7 leaves holds perfect nodes 0/0..0/6, 1/0..1/2 and 2/0.

Each attack changes the database (through SQL, as someone with database access would)
or the stored blobs (files in a folder, or objects in the S3 store under
``SPRAVA_TEST_BLOBS=s3``), and returns the findings (code, subject) that
``verify_instance`` must report: exactly those, no more and no fewer. The instance is then
reopened from disk (so that a replaced key file is read) and verified twice; both runs
must agree, in order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from sqlalchemy import Connection, delete, insert, select, update

from conftest import blob_bytes, plant_blob_file, remove_blob, replace_blob
from sprava import audit
from sprava.audit import verify_instance
from sprava.backends.db.tables import (
    item,
    item_name,
    ledger_checkpoint,
    ledger_head,
    ledger_leaf,
    ledger_node,
)
from sprava.domain.custody import INGEST, ingest_event
from sprava.instance import Instance, open_instance
from sprava.ledger import log, merkle
from sprava.ledger.merkle import NodeId
from sprava.ledger.note import NoteSigner
from sprava.store.ingest import Ingestor

CONTENT = {
    "A": b"alpha evidence " * 400,  # 6000 bytes
    "B": b"bravo",
    "C": bytes(range(256)) * 3,
}
RUNS = (
    ("one", {"a.bin": "A", "b.bin": "B", "c.bin": "A"}),
    ("two", {"d.bin": "C", "e.bin": "B", "f.bin": "A"}),
    ("three", {"g.bin": "C"}),
)
LEAF_ITEMS = ("A", "B", "A", "C", "B", "A", "C")
CHECKPOINTS = (3, 6, 7)

Expected = list[tuple[str, str]]


class Includes(list[tuple[str, str]]):
    """Findings that must be among those reported (where the exact set is open)."""


@dataclass(frozen=True)
class Corpus:
    instance: Instance
    sha: dict[str, str]  # "A" -> hex digest

    def item(self, key: str) -> str:
        return f"item {self.sha[key]}"

    def blob(self, key: str) -> bytes:
        return blob_bytes(self.instance, self.sha[key])

    def replace_blob(self, key: str, data: bytes) -> None:
        replace_blob(self.instance, self.sha[key], data)


def _ingest(instance: Instance, folder: Path, files: dict[str, str]) -> None:
    folder.mkdir()
    for name, key in files.items():
        (folder / name).write_bytes(CONTENT[key])
    ingestor = Ingestor(instance, source_name=f"tamper-{folder.name}")
    summary = ingestor.run(ingestor.plan([os.fsencode(folder)]))
    assert (summary.failed, summary.skipped) == (0, 0)
    assert summary.stored + summary.already_held == len(files)


@pytest.fixture
def corpus(instance: Instance, tmp_path: Path) -> Corpus:
    for name, files in RUNS:
        _ingest(instance, tmp_path / name, files)
    sha = {key: hashlib.sha256(data).hexdigest() for key, data in CONTENT.items()}
    with instance.engine.connect() as conn:
        leaves = conn.execute(
            select(ledger_leaf.c.idx, ledger_leaf.c.item_sha256).order_by(ledger_leaf.c.idx)
        ).all()
        sizes = conn.execute(select(ledger_checkpoint.c.size).order_by(ledger_checkpoint.c.size))
        assert [(i, s) for i, s in leaves] == [(i, sha[k]) for i, k in enumerate(LEAF_ITEMS)]
        assert tuple(sizes.scalars()) == CHECKPOINTS
    report = verify_instance(instance)
    assert report.ok, report.findings
    assert (report.items, report.leaves, report.checkpoints) == (3, 7, 3)
    return Corpus(instance, sha)


# --- helpers --------------------------------------------------------------------------


def _leaf_row(conn: Connection, index: int) -> dict[str, Any]:
    row = conn.execute(select(ledger_leaf).where(ledger_leaf.c.idx == index)).one()
    return {"data": bytes(row.data), "hash": bytes(row.hash), "kind": row.kind,
            "item_sha256": row.item_sha256}


def _set_leaf(conn: Connection, index: int, **values: object) -> None:
    done = conn.execute(update(ledger_leaf).where(ledger_leaf.c.idx == index).values(**values))
    assert done.rowcount == 1


def _edited_event(data: bytes) -> bytes:
    """The same event, still canonical and naming the same item, with another actor."""
    body = json.loads(data)
    body["actor"] = "local:mallory"
    return rfc8785.dumps(body)


def _pos(level: int, index: int) -> int:
    return log.node_pos(NodeId(level, index))


def _nodes(*names: str) -> Expected:
    return [("node-mismatch", f"node {n}") for n in names]


# --- the attacks ----------------------------------------------------------------------


def flip_blob_byte(c: Corpus) -> Expected:
    data = bytearray(c.blob("A"))
    data[len(data) // 2] ^= 0x01
    c.replace_blob("A", bytes(data))
    return [("blob-altered", c.item("A"))]


def truncate_blob(c: Corpus) -> Expected:
    c.replace_blob("C", c.blob("C")[:100])
    return [("blob-altered", c.item("C"))]


def delete_blob(c: Corpus) -> Expected:
    remove_blob(c.instance, c.sha["B"])
    return [("blob-missing", c.item("B"))]


def edit_leaf_data(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        _set_leaf(conn, 4, data=_edited_event(_leaf_row(conn, 4)["data"]))
    return [("leaf-hash-mismatch", "leaf 4"), *_nodes("0/4", "1/2"),
            ("checkpoint-root-mismatch", "checkpoint 6"),
            ("checkpoint-root-mismatch", "checkpoint 7")]


def edit_leaf_data_and_hash(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        data = _edited_event(_leaf_row(conn, 4)["data"])
        _set_leaf(conn, 4, data=data, hash=merkle.leaf_hash(data))
    return [*_nodes("0/4", "1/2"),
            ("checkpoint-root-mismatch", "checkpoint 6"),
            ("checkpoint-root-mismatch", "checkpoint 7")]


def rewrite_leaf_and_tree(c: Corpus) -> Expected:
    """Edit leaf 4 and recompute every tree node and the head: only signatures can tell."""
    with c.instance.engine.begin() as conn:
        data = _edited_event(_leaf_row(conn, 4)["data"])
        _set_leaf(conn, 4, data=data, hash=merkle.leaf_hash(data))
        compact = merkle.CompactRange()
        for leaf in list(log.iter_leaves(conn)):
            for node, digest in compact.append(leaf.hash):
                conn.execute(update(ledger_node).where(ledger_node.c.pos == log.node_pos(node))
                             .values(hash=digest))
    # the stored nodes now prove the forged tree, which the signed roots do not match
    return [("checkpoint-root-mismatch", "checkpoint 6"),
            ("checkpoint-root-mismatch", "checkpoint 7"),
            ("checkpoint-inconsistent", "checkpoint 3"),
            ("checkpoint-inconsistent", "checkpoint 6")]


def reorder_leaves(c: Corpus) -> Expected:
    """Swap leaves 3 and 4 whole (bytes, hash and look-up columns)."""
    with c.instance.engine.begin() as conn:
        three, four = _leaf_row(conn, 3), _leaf_row(conn, 4)
        _set_leaf(conn, 3, **four)
        _set_leaf(conn, 4, **three)
    return [*_nodes("0/3", "0/4", "1/1", "1/2", "2/0"),
            ("checkpoint-root-mismatch", "checkpoint 6"),
            ("checkpoint-root-mismatch", "checkpoint 7"),
            ("name-event-mismatch", c.item("B")),  # e.bin cites leaf 4, now C's event
            ("name-event-mismatch", c.item("C"))]  # d.bin cites leaf 3, now B's event


def reorder_leaf_bytes(c: Corpus) -> Expected:
    """Swap only the bytes and hashes of leaves 3 and 4, leaving the look-up columns."""
    with c.instance.engine.begin() as conn:
        three, four = _leaf_row(conn, 3), _leaf_row(conn, 4)
        _set_leaf(conn, 3, data=four["data"], hash=four["hash"])
        _set_leaf(conn, 4, data=three["data"], hash=three["hash"])
    return [("leaf-index-mismatch", "leaf 3"), ("leaf-index-mismatch", "leaf 4"),
            *_nodes("0/3", "0/4", "1/1", "1/2", "2/0"),
            ("checkpoint-root-mismatch", "checkpoint 6"),
            ("checkpoint-root-mismatch", "checkpoint 7"),
            # the look-up columns now join each item to an event giving the other's size
            ("event-size-mismatch", c.item("B")), ("event-size-mismatch", c.item("C"))]


def delete_last_leaf(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        conn.execute(delete(ledger_leaf).where(ledger_leaf.c.idx == 6))
    return [("node-extra", "ledger"), ("head-mismatch", "ledger"),
            ("checkpoint-ahead", "checkpoint 7"),
            ("name-event-mismatch", c.item("C"))]  # g.bin cites leaf 6, now gone


def delete_middle_leaf(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        conn.execute(delete(ledger_leaf).where(ledger_leaf.c.idx == 3))
    # Past a gap nothing can be verified: leaves 4-6 are stray, and what only they back
    # (item C's events, the names citing leaves 3-6) is reported as unbacked.
    return [("leaf-gap", "leaf 3"), ("leaf-stray", "ledger"), ("node-extra", "ledger"),
            ("head-mismatch", "ledger"),
            ("checkpoint-ahead", "checkpoint 6"), ("checkpoint-ahead", "checkpoint 7"),
            ("item-without-ingest-event", c.item("C")),
            ("name-event-mismatch", c.item("A")), ("name-event-mismatch", c.item("B")),
            ("name-event-mismatch", c.item("C")), ("name-event-mismatch", c.item("C"))]


def _forged_leaf(c: Corpus) -> tuple[bytes, bytes]:
    event = ingest_event(sha256=c.sha["A"], size=len(CONTENT["A"]), actor="local:mallory",
                         time=datetime.now(UTC), source=None, new=False)
    data = event.to_leaf()
    return data, merkle.leaf_hash(data)


def append_leaf_only(c: Corpus) -> Expected:
    """A well-formed ingest event for item A at index 7: no nodes, head or checkpoint."""
    data, hashed = _forged_leaf(c)
    with c.instance.engine.begin() as conn:
        conn.execute(insert(ledger_leaf).values(idx=7, data=data, hash=hashed, kind=INGEST,
                                                item_sha256=c.sha["A"]))
    return [("node-missing", "node 0/7"), ("node-missing", "node 1/3"),
            ("node-missing", "node 2/1"), ("node-missing", "node 3/0"),
            ("head-mismatch", "ledger"), ("leaves-beyond-checkpoint", "leaf 7")]


def append_leaf_with_tree(c: Corpus) -> Expected:
    """The same event with its tree nodes and the head moved: everything but a signature."""
    data, hashed = _forged_leaf(c)
    with c.instance.engine.begin() as conn:
        compact = log.compact_range(conn, 7)
        conn.execute(insert(ledger_leaf).values(idx=7, data=data, hash=hashed, kind=INGEST,
                                                item_sha256=c.sha["A"]))
        conn.execute(insert(ledger_node), [{"pos": log.node_pos(n), "hash": h}
                                           for n, h in compact.append(hashed)])
        conn.execute(update(ledger_head).values(size=8))
    return [("leaves-beyond-checkpoint", "leaf 7")]


def edit_checkpoint_root(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        note = conn.execute(select(ledger_checkpoint.c.note)
                            .where(ledger_checkpoint.c.size == 6)).scalar_one()
        lines = note.split("\n")
        other = base64.b64encode(log.root_at(conn, 7)).decode()  # a real root, wrong size
        assert lines[2] != other
        lines[2] = other
        conn.execute(update(ledger_checkpoint).where(ledger_checkpoint.c.size == 6)
                     .values(note="\n".join(lines)))
    return [("checkpoint-signature", "checkpoint 6")]


def delete_newest_checkpoint(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        conn.execute(delete(ledger_checkpoint).where(ledger_checkpoint.c.size == 7))
    return [("leaves-beyond-checkpoint", "leaf 6")]


def delete_every_checkpoint(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        conn.execute(delete(ledger_checkpoint))
    return [("no-checkpoint", "ledger")]


def edit_leaf_item_column(c: Corpus) -> Expected:
    """Leaf 4 (an ingest of B) re-pointed at item A through its look-up column only."""
    with c.instance.engine.begin() as conn:
        _set_leaf(conn, 4, item_sha256=c.sha["A"])
    return [("leaf-index-mismatch", "leaf 4"),
            ("event-size-mismatch", c.item("A")),  # A now joins an event giving B's size
            ("name-event-mismatch", c.item("B"))]  # e.bin (B) cites leaf 4


def edit_leaf_kind_column(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        _set_leaf(conn, 4, kind="release")
    return [("leaf-index-mismatch", "leaf 4")]


def malformed_leaf(c: Corpus) -> Expected:
    """Leaf 4 made non-canonical JSON (same fields, spaced out), its hash to match."""
    with c.instance.engine.begin() as conn:
        body = json.loads(_leaf_row(conn, 4)["data"])
        data = json.dumps(body, indent=1).encode()
        _set_leaf(conn, 4, data=data, hash=merkle.leaf_hash(data))
    return [("leaf-malformed", "leaf 4"), *_nodes("0/4", "1/2"),
            ("checkpoint-root-mismatch", "checkpoint 6"),
            ("checkpoint-root-mismatch", "checkpoint 7")]


def edit_head(c: Corpus) -> Expected:
    """The head is a cache of the leaf count; ``verify`` re-derives it from the leaves.

    Only the head is wrong, so only head-mismatch is true: the checkpoints are still
    consistent with each other, as the stored nodes prove.
    """
    with c.instance.engine.begin() as conn:
        conn.execute(update(ledger_head).values(size=5))
    return [("head-mismatch", "ledger")]


def edit_checkpoint_size_column(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        conn.execute(update(ledger_checkpoint).where(ledger_checkpoint.c.size == 3)
                     .values(size=4))
    return [("checkpoint-signature", "checkpoint 4")]


def delete_item(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        conn.execute(delete(item_name).where(item_name.c.item_sha256 == c.sha["C"]))
        conn.execute(delete(item).where(item.c.sha256 == c.sha["C"]))
    return [("event-without-item", "leaf 3"), ("event-without-item", "leaf 6")]


def insert_item(c: Corpus) -> Expected:
    phantom = hashlib.sha256(b"never ingested").hexdigest()
    with c.instance.engine.begin() as conn:
        conn.execute(insert(item).values(sha256=phantom, size=14, media_type="text/plain",
                                         first_seen=datetime.now(UTC)))
    return [("item-without-ingest-event", f"item {phantom}"), ("blob-missing", f"item {phantom}")]


def _put_blob(c: Corpus, data: bytes) -> str:
    read, write = os.pipe()
    try:
        os.write(write, data)
        os.close(write)
        stored = c.instance.blobs.put_fd(read)
    finally:
        os.close(read)
    c.instance.blobs.sync()
    return stored.digest.hex


def item_by_leaf_outside_ledger(c: Corpus) -> Includes:
    """A phantom item, its blob and name, "ingested" by a leaf at index -1.

    Leaf -1 is before the first leaf of the ledger: no checkpoint covers it, so the
    item has no ingest event in the signed ledger.
    """
    data = b"planted afterwards"
    phantom = _put_blob(c, data)
    event = ingest_event(sha256=phantom, size=len(data), actor="local:mallory",
                         time=datetime.now(UTC), source=None, new=True)
    leaf = event.to_leaf()
    now = datetime.now(UTC)
    with c.instance.engine.begin() as conn:
        conn.execute(insert(ledger_leaf).values(idx=-1, data=leaf, hash=merkle.leaf_hash(leaf),
                                                kind=INGEST, item_sha256=phantom))
        conn.execute(insert(item).values(sha256=phantom, size=len(data),
                                         media_type="text/plain", first_seen=now))
        conn.execute(insert(item_name).values(item_sha256=phantom, name_raw=b"planted.txt",
                                              name="planted.txt", source_id=None,
                                              leaf_index=-1, received_at=now))
    return Includes([("item-without-ingest-event", f"item {phantom}")])


def item_with_malformed_digest(c: Corpus) -> Includes:
    """An item row whose key is not a SHA-256 at all."""
    with c.instance.engine.begin() as conn:
        conn.execute(insert(item).values(sha256="not-a-digest", size=1,
                                         media_type="text/plain", first_seen=datetime.now(UTC)))
    return Includes([("item-without-ingest-event", "item not-a-digest")])


def blob_replaced_by_folder(c: Corpus) -> Includes:
    """A folder where the blob was: in an object store, objects under its key as a prefix
    (which SeaweedFS's filer keeps as a folder too)."""
    remove_blob(c.instance, c.sha["B"])
    plant_blob_file(c.instance, c.sha["B"], f"{c.sha['B']}/README.txt", b"not the blob\n")
    return Includes([("blob-missing", c.item("B"))])


def change_item_size(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        conn.execute(update(item).where(item.c.sha256 == c.sha["B"])
                     .values(size=len(CONTENT["B"]) + 1))
    return [("event-size-mismatch", c.item("B")), ("blob-size-mismatch", c.item("B"))]


def delete_node(c: Corpus) -> Expected:
    """Node 1/1 (leaves 2-3) is in no consistency proof between the checkpoints."""
    with c.instance.engine.begin() as conn:
        assert conn.execute(delete(ledger_node).where(ledger_node.c.pos == _pos(1, 1))).rowcount
    return [("node-missing", "node 1/1")]


def delete_proof_node(c: Corpus) -> Expected:
    """Node 2/0 (leaves 0-3) is in the proof that checkpoint 6 is consistent with 7."""
    with c.instance.engine.begin() as conn:
        assert conn.execute(delete(ledger_node).where(ledger_node.c.pos == _pos(2, 0))).rowcount
    return [("node-missing", "node 2/0"), ("checkpoint-inconsistent", "checkpoint 6")]


def add_node(c: Corpus) -> Expected:
    with c.instance.engine.begin() as conn:
        conn.execute(insert(ledger_node).values(pos=_pos(3, 0), hash=bytes(32)))
    return [("node-extra", "ledger")]


def replace_key(c: Corpus) -> Expected:
    key_file = c.instance.settings.key_file
    other = NoteSigner.generate(c.instance.origin)
    assert other.verifier.key_id != c.instance.verifier.key_id
    key_file.write_text(other.private_key_string() + "\n", "utf-8")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    return [("checkpoint-signature", f"checkpoint {size}") for size in CHECKPOINTS]


def repoint_name(c: Corpus) -> Expected:
    """b.bin (item B, leaf 1) made to cite leaf 0, the ingest of item A."""
    with c.instance.engine.begin() as conn:
        done = conn.execute(update(item_name).where(item_name.c.leaf_index == 1)
                            .values(leaf_index=0))
        assert done.rowcount == 1
    return [("name-event-mismatch", c.item("B"))]


ATTACKS: list[Callable[[Corpus], Expected]] = [
    flip_blob_byte, truncate_blob, delete_blob,
    edit_leaf_data, edit_leaf_data_and_hash, rewrite_leaf_and_tree,
    reorder_leaves, reorder_leaf_bytes,
    delete_last_leaf, delete_middle_leaf, append_leaf_only, append_leaf_with_tree,
    edit_checkpoint_root, delete_newest_checkpoint, delete_every_checkpoint,
    edit_leaf_item_column, edit_leaf_kind_column, malformed_leaf, edit_head,
    edit_checkpoint_size_column, delete_item, insert_item, item_by_leaf_outside_ledger,
    item_with_malformed_digest, change_item_size, blob_replaced_by_folder,
    delete_node, delete_proof_node, add_node, replace_key, repoint_name,
]


@pytest.mark.parametrize(
    "attack", [pytest.param(a, id=a.__name__.replace("_", "-")) for a in ATTACKS]
)
def test_tamper_is_caught(corpus: Corpus, attack: Callable[[Corpus], Expected]) -> None:
    expected = attack(corpus)
    reopened = open_instance(corpus.instance.settings)
    try:
        first = verify_instance(reopened)
        second = verify_instance(reopened)
    finally:
        reopened.close()
    assert not first.ok
    found = [(f.code, f.subject) for f in first.findings]
    if isinstance(expected, Includes):
        assert set(expected) <= set(found), first.findings
    else:
        assert sorted(found) == sorted(expected), first.findings
    assert first.findings == second.findings  # same findings, same order, same words
    rank = [audit._ORDER.index(code) for code, _ in found]
    assert rank == sorted(rank)


def test_stray_file_in_blob_store_does_not_stop_verify(corpus: Corpus) -> None:
    """A file in the store that is not named by a digest is no evidence, and no reason to
    abandon the audit of what is."""
    plant_blob_file(corpus.instance, corpus.sha["A"], "README.txt", b"left here by someone\n")
    report = verify_instance(corpus.instance)
    assert report.ok, report.findings
    assert report.items == 3
