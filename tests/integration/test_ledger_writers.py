"""Many writers, one ledger: several ``sprava`` processes ingest at the same moment into
one instance, and the ledger they leave has no fork, gap or duplicate index.

Each writer is the real command in its own process (as web processes and analysis workers
are), with its own database connection; on PostgreSQL they contend for the ledger's row
lock, on SQLite for the database's write lock. Afterwards ``sprava verify`` must accept the
instance, and every checkpoint any writer signed must be consistent with the last one
(RFC 9162 consistency proofs, checked against the roots in the signed notes).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlalchemy import select

from conftest import Cli
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import ledger_leaf
from sprava.instance import Instance
from sprava.ledger import log, merkle
from sprava.ledger.note import NoteVerifier, open_checkpoint

WRITERS = 4
FILES_EACH = 500


def _folders(root: Path) -> list[Path]:
    """One folder of distinct small files per writer, plus one file they all share (the
    same content ingested by every writer: one item, four custody events)."""
    folders = []
    for w in range(WRITERS):
        folder = root / f"writer-{w}"
        folder.mkdir(parents=True)
        for f in range(FILES_EACH):
            (folder / f"{f:04d}.txt").write_text(f"writer {w} file {f}\n")
        (folder / "shared.txt").write_text("the same statement, sent by everyone\n")
        folders.append(folder)
    return folders


def test_four_processes_append_to_one_gapless_consistent_ledger(
        instance: Instance, cli: Cli, tmp_path: Path) -> None:
    before = log_size(instance)
    folders = _folders(tmp_path / "inputs")
    writers = [subprocess.Popen(cli.argv("ingest", str(folder), "--source", f"writer {w}",
                                         "--json"),
                                env=cli.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for w, folder in enumerate(folders)]
    outputs = [writer.communicate(timeout=600) for writer in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        failed = [line for line in out.decode().splitlines() if '"error"' in line]
        assert writer.returncode == 0, err.decode() + "\n".join(failed[:5])
    records = [json.loads(line) for out, _err in outputs for line in out.splitlines()]
    per_file = WRITERS * (FILES_EACH + 1)
    assert len(records) == per_file
    shared = sorted(r["status"] for r in records if r["path"].endswith("shared.txt"))
    assert shared == ["already-held"] * (WRITERS - 1) + ["stored"]  # one item, four events
    assert len({r["leaf_index"] for r in records}) == per_file  # each its own event

    with read_transaction(instance.engine) as conn:
        indices = list(conn.execute(select(ledger_leaf.c.idx)
                                    .order_by(ledger_leaf.c.idx)).scalars())
        stored = list(log.checkpoints(conn))
        size = log.head_size(conn)
        assert indices == list(range(size))  # no gap, no duplicate
        assert size >= before + per_file
        verifier = NoteVerifier.parse(str(instance.verifier))
        opened = [open_checkpoint(c.note, verifier) for c in stored]
        last = opened[-1]
        assert last.size == size
        assert len({c.size for c in opened}) == len(opened)  # one checkpoint a size
        for checkpoint in opened[:-1]:
            proof = log.consistency_proof(conn, checkpoint.size, last.size)
            merkle.verify_consistency(checkpoint.size, last.size, proof, checkpoint.root,
                                      last.root)
        leaves = [leaf.data for leaf in log.iter_leaves(conn)]
    assert merkle.root_of(leaves) == last.root  # recomputed from the leaves themselves
    assert len(stored) > WRITERS  # the writers checkpointed as they went, interleaved

    verified = cli("verify", "--json")
    assert verified.code == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True


def log_size(instance: Instance) -> int:
    with read_transaction(instance.engine) as conn:
        return log.head_size(conn)
