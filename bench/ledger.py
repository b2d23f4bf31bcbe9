"""The custody ledger against pymerkle 7.0.0: appends, inclusion and consistency proofs."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Ctx, Result, Row, log, median, percentile

NAME = "ledger"
US = 1e6


def new_instance(home: Path) -> Any:
    from sprava.instance import init_instance
    from sprava.settings import load_settings

    instance, created = init_instance(load_settings(home=home, environ={}))
    assert created
    return instance


def events(rng: random.Random, start: int, count: int) -> list[Any]:
    """Distinct ingest events, as ``sprava ingest`` would make them."""
    from sprava.domain.custody import ingest_event

    base = datetime(2025, 1, 1, tzinfo=UTC)
    return [ingest_event(sha256=rng.randbytes(32).hex(), size=rng.randrange(1, 1 << 32),
                         actor="local:bench", time=base + timedelta(microseconds=i),
                         source="bench", new=True)
            for i in range(start, start + count)]


def append(instance: Any, rng: random.Random, total: int, per_tx: int,
           progress: bool = False) -> float:
    """Append ``total`` events, ``per_tx`` per write transaction each ending with a signed
    checkpoint; returns the seconds spent in the transactions (event building excluded)."""
    from sprava.backends.db.engine import write_transaction
    from sprava.ledger.log import LedgerAppender

    spent = 0.0
    for start in range(0, total, per_tx):
        batch = events(rng, start, min(per_tx, total - start))
        began = time.perf_counter()
        with write_transaction(instance.engine) as conn:
            appender = LedgerAppender(conn, instance.signer)
            for event in batch:
                appender.append(event)
            appender.finish()
        spent += time.perf_counter() - began
        if progress:
            log(f"ledger at {start + len(batch):,} leaves ({spent:.1f} s in transactions)")
    return spent


def read_leaves(instance: Any) -> list[bytes]:
    from sprava.backends.db.engine import read_transaction
    from sprava.ledger.log import iter_leaves

    with read_transaction(instance.engine) as conn:
        return [leaf.data for leaf in iter_leaves(conn)]


def timed(fn: Callable[..., Any],
          calls: Sequence[tuple[int, ...]]) -> tuple[list[float], list[Any]]:
    """Call ``fn(*args)`` for each args tuple; per-call seconds and the answers."""
    seconds, answers = [], []
    clock = time.perf_counter
    for args in calls:
        began = clock()
        answer = fn(*args)
        seconds.append(clock() - began)
        answers.append(answer)
    return seconds, answers


def sprava_proofs(instance: Any, kind: str,
                  calls: Sequence[tuple[int, int]]) -> tuple[list[float], list[list[bytes]]]:
    from sprava.backends.db.engine import read_transaction
    from sprava.ledger.log import consistency_proof, inclusion_proof

    fn = inclusion_proof if kind == "inclusion" else consistency_proof
    with read_transaction(instance.engine) as conn:
        return timed(lambda a, b: fn(conn, a, b), calls)


def check_inclusion(calls: Sequence[tuple[int, int]], proofs: Sequence[list[bytes]],
                    leaves: Sequence[bytes], root: bytes) -> None:
    """Every Sprava inclusion proof must verify against a root computed from the leaves."""
    from sprava.ledger.merkle import leaf_hash, verify_inclusion

    for (index, size), proof in zip(calls, proofs, strict=True):
        verify_inclusion(index, size, leaf_hash(leaves[index]), proof, root)


def proof_rows(rows: list[Row], label: str, sprava: list[float], peer_name: str,
               peer: list[float], target: float | None) -> None:
    for stat, fn in (("median", median), ("p99", lambda v: percentile(v, 99))):
        s, p = fn(sprava) * US, fn(peer) * US
        rows.append(Row(f"{label} {stat}", "µs", s, peer_name, p,
                        "—" if target is None else f"ratio ≤ {target:g}",
                        None if target is None else s / p <= target))


def _pymerkle_append(tree: Any, leaves: list[bytes], per_tx: int) -> float:
    began = time.perf_counter()
    for start in range(0, len(leaves), per_tx):
        tree.append_entries(leaves[start : start + per_tx])
    return time.perf_counter() - began


def run(ctx: Ctx) -> Result:
    from pymerkle import InmemoryTree, SqliteTree

    from sprava.backends.db.engine import read_transaction
    from sprava.ledger.log import root_at
    from sprava.ledger.merkle import root_of, verify_consistency

    total = 10_000 if ctx.quick else 100_000
    per_tx, n_proofs = 1_000, (200 if ctx.quick else 1_000)
    result = Result(NAME, f"{total:,} custody events, then {n_proofs:,} proofs of each kind")
    rows = result.rows
    with ctx.tempdir(NAME) as tmp:
        batched, single = new_instance(tmp / "batched"), new_instance(tmp / "single")
        try:
            log(f"Sprava: {total:,} appends, {per_tx:,} per transaction")
            s_batched = append(batched, random.Random(1), total, per_tx)
            log(f"Sprava: {total:,} appends in one transaction")
            s_single = append(single, random.Random(1), total, total)
            leaves = read_leaves(batched)
            root = root_of(leaves)
            with read_transaction(batched.engine) as c1, read_transaction(single.engine) as c2:
                if not root_at(c1, total) == root_at(c2, total) == root:
                    raise RuntimeError("Sprava's stored roots differ from the leaves' root")
            began = time.perf_counter()
            for event in events(random.Random(1), 0, total):
                event.to_leaf()
            serialise = time.perf_counter() - began

            log("pymerkle: the same leaf bytes")
            pm_batched = SqliteTree(str(tmp / "pm-batched.db"))
            p_batched = _pymerkle_append(pm_batched, leaves, per_tx)
            pm_single = SqliteTree(str(tmp / "pm-single.db"))
            p_single = _pymerkle_append(pm_single, leaves, total)
            pm_mem = InmemoryTree()
            p_mem = _pymerkle_append(pm_mem, leaves, total)
            if pm_mem.get_root() != root:
                raise RuntimeError("pymerkle and Sprava disagree on the root")

            rng = random.Random(2)
            inc = [(rng.randrange(total), total) for _ in range(n_proofs)]
            pairs = [sorted(rng.sample(range(1, total + 1), 2)) for _ in range(n_proofs)]
            con = [(m, n) for m, n in pairs]
            log(f"proofs: {n_proofs:,} inclusion and {n_proofs:,} consistency")
            s_inc, s_inc_proofs = sprava_proofs(batched, "inclusion", inc)
            s_con, s_con_proofs = sprava_proofs(batched, "consistency", con)
            p_inc, p_inc_proofs = timed(pm_batched.prove_inclusion,
                                        [(i + 1, n) for i, n in inc])
            p_con, _ = timed(pm_batched.prove_consistency, con)
            m_inc, _ = timed(pm_mem.prove_inclusion, [(i + 1, n) for i, n in inc])
            m_con, _ = timed(pm_mem.prove_consistency, con)

            log("checking every Sprava proof")
            check_inclusion(inc, s_inc_proofs, leaves, root)
            for proof, peer in zip(s_inc_proofs, p_inc_proofs, strict=True):
                if proof != peer.path[1:]:  # pymerkle's path starts with the leaf hash
                    raise RuntimeError("Sprava's inclusion proof differs from pymerkle's")
            for (m, n), proof in zip(con, s_con_proofs, strict=True):
                verify_consistency(m, n, proof, pm_mem.get_root(m), pm_mem.get_root(n))
            pm_batched.close()
            pm_single.close()
        finally:
            batched.close()
            single.close()

    sql, mem = "pymerkle SqliteTree", "pymerkle InmemoryTree"
    rows += [
        Row(f"appends/s, {per_tx:,} per tx + checkpoint", "/s", total / s_batched, sql,
            total / p_batched, "ratio ≥ 10", total / s_batched >= 10 * total / p_batched),
        Row(f"appends/s, one tx of {total:,}", "/s", total / s_single, sql, total / p_single,
            "ratio ≥ 10", p_single >= 10 * s_single),
        Row(f"appends/s, one tx of {total:,}", "/s", total / s_single, mem, total / p_mem,
            "ratio ≥ 10", p_mem >= 10 * s_single),
    ]
    proof_rows(rows, "inclusion proof", s_inc, sql, p_inc, 0.1)
    proof_rows(rows, "inclusion proof", s_inc, mem, m_inc, 0.1)
    proof_rows(rows, "consistency proof", s_con, sql, p_con, 0.1)
    proof_rows(rows, "consistency proof", s_con, mem, m_con, 0.1)
    result.notes += [
        f"Sprava's append time includes building each leaf's RFC 8785 bytes "
        f"({serialise / total * US:.1f} µs a leaf, {total / serialise:,.0f}/s alone); "
        "pymerkle is given the finished bytes.",
        "Proofs at random indices (inclusion, size = the whole tree) and random size pairs "
        "(consistency); pymerkle's subroot cache starts cold and warms over the run. "
        f"All {n_proofs:,} Sprava proofs of each kind were verified: inclusion against the "
        "root of the leaves and equal to pymerkle's path, consistency against pymerkle's roots.",
    ]
    result.details = {"events": total, "per_tx": per_tx, "proofs": n_proofs,
                      "sprava_append_seconds": {"batched": s_batched, "single": s_single},
                      "pymerkle_append_seconds": {"sqlite_batched": p_batched,
                                                  "sqlite_single": p_single, "inmemory": p_mem},
                      "leaf_serialise_seconds": serialise}
    return result
