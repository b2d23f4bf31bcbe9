"""Near-duplicate range queries: HashIndex against a brute-force NumPy scan, same queries.

``python -m bench.media_neardup [--quick]`` runs it alone; 10^4, 10^5 and 10^6 stored
hashes (10^4 and 10^5 with --quick), each query with near-duplicates planted at 0–40 bits.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

from bench.common import Ctx, Result, Row, log, median, percentile, print_machine, print_result

NAME = "media_neardup"
MS = 1e3
QUERIES = 300
PLANTED = 8  # near-duplicates per query, at distances spread over 0..40
MAX_DISTANCE = 31
TARGET_MS = 10.0  # median at a million hashes, on a 2-core machine
LUT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

Scan = Callable[[np.ndarray], list[tuple[int, int]]]


def _dataset(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random hashes (ids shuffled), with neighbours of every query planted among them."""
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    queries = rng.integers(0, 256, (QUERIES, 32), dtype=np.uint8)
    slots = rng.choice(n, size=min(n, QUERIES * PLANTED), replace=False)
    for k, slot in enumerate(slots):
        bits = np.unpackbits(queries[k // PLANTED])
        bits[rng.choice(256, size=int(rng.integers(0, 41)), replace=False)] ^= 1
        codes[slot] = np.packbits(bits)
    ids = rng.permutation(n).astype(np.int64)
    return codes, ids, queries


def _hexes(codes: np.ndarray) -> list[str]:
    text = codes.tobytes().hex()
    return [text[i: i + 64] for i in range(0, len(text), 64)]


def lut_scan(codes: np.ndarray, ids: np.ndarray) -> Scan:
    """The peer: XOR, a 256-entry popcount table over the bytes, sum, threshold, sort."""
    def scan(query: np.ndarray) -> list[tuple[int, int]]:
        distances = LUT[codes ^ query].sum(axis=1, dtype=np.uint16)
        hits = np.flatnonzero(distances <= MAX_DISTANCE)
        return sorted(((int(ids[i]), int(distances[i])) for i in hits),
                      key=lambda p: (p[1], p[0]))[:100]
    return scan


def bitcount_scan(codes: np.ndarray, ids: np.ndarray) -> Scan:
    """A stronger NumPy peer: hardware popcount (``np.bitwise_count``) over 64-bit words."""
    words = codes.view(np.uint64)

    def scan(query: np.ndarray) -> list[tuple[int, int]]:
        distances = np.bitwise_count(words ^ query.view(np.uint64)).sum(axis=1,
                                                                         dtype=np.uint16)
        hits = np.flatnonzero(distances <= MAX_DISTANCE)
        return sorted(((int(ids[i]), int(distances[i])) for i in hits),
                      key=lambda p: (p[1], p[0]))[:100]
    return scan


def _latencies(call: Callable[[int], list[tuple[int, int]]]
               ) -> tuple[list[float], list[list[tuple[int, int]]]]:
    """Each query timed alone, from its input to the sorted answer."""
    times, answers = [], []
    for k in range(QUERIES):
        began = time.perf_counter()
        answer = call(k)
        times.append(time.perf_counter() - began)
        answers.append(answer)
    return times, answers


def run(ctx: Ctx) -> Result:
    sizes = [10_000, 100_000] if ctx.quick else [10_000, 100_000, 1_000_000]
    result = Result(NAME, f"PDQ range queries (≤ {MAX_DISTANCE} bits, limit 100), "
                          f"{QUERIES} queries per size")
    rng = np.random.default_rng(20)
    for n in sizes:
        _one_size(ctx, result, rng, n, persist=n == sizes[-1])
    result.notes += [
        "Every answer of HashIndex equals both scans' (exact recall: ids and distances, "
        "sorted by distance then id), so the figures compare equal work.",
        "Timings are per query, one at a time, from the query to the sorted list; HashIndex "
        "scans with faiss IndexBinaryFlat on one thread.",
        f"Planted: {PLANTED} neighbours per query at uniform random distances 0..40 bits "
        "among uniform random hashes.",
    ]
    return result


def _one_size(ctx: Ctx, result: Result, rng: np.random.Generator, n: int,
              persist: bool) -> None:
    from sprava.media.neardup import HashIndex

    log(f"{n:,} hashes: generating, {PLANTED} near-duplicates planted per query")
    codes, ids, queries = _dataset(rng, n)
    index = HashIndex()
    began = time.perf_counter()
    index.add(ids, _hexes(codes))
    add_seconds = time.perf_counter() - began
    query_hexes = _hexes(queries)
    log(f"{n:,} hashes: {QUERIES} queries each for HashIndex and two NumPy scans")
    s_times, s_answers = _latencies(lambda k: index.search(query_hexes[k], MAX_DISTANCE, 100))
    lut = lut_scan(codes, ids)
    p_times, p_answers = _latencies(lambda k: lut(queries[k]))
    bitcount = bitcount_scan(codes, ids)
    b_times, b_answers = _latencies(lambda k: bitcount(queries[k]))
    if s_answers != p_answers or p_answers != b_answers:
        raise RuntimeError(f"HashIndex and the brute-force scan disagree at {n:,}")
    found = sum(len(a) for a in s_answers)
    log(f"{n:,}: {found:,} matches over {QUERIES} queries, identical in all three")
    label = f"{n:,}"
    s_med = median(s_times) * MS
    at_target = n == 1_000_000
    result.rows += [
        Row(f"query median, {label}", "ms", s_med, "NumPy LUT scan", median(p_times) * MS,
            f"≤ {TARGET_MS:g} ms" if at_target else "—", s_med <= TARGET_MS if at_target else None),
        Row(f"query p99, {label}", "ms", percentile(s_times, 99) * MS, "NumPy LUT scan",
            percentile(p_times, 99) * MS),
        Row(f"query median, {label}", "ms", s_med, "NumPy bitwise_count scan",
            median(b_times) * MS),
        Row(f"query p99, {label}", "ms", percentile(s_times, 99) * MS,
            "NumPy bitwise_count scan", percentile(b_times, 99) * MS),
    ]
    result.details[label] = {"add_seconds": add_seconds, "matches_returned": found,
                             "sprava_ms": [t * MS for t in s_times]}
    if not persist:
        return
    with ctx.tempdir(NAME) as tmp:
        path = tmp / "pdq.index"
        began = time.perf_counter()
        index.save(path)
        save_seconds = time.perf_counter() - began
        began = time.perf_counter()
        loaded = HashIndex.load(path)
        load_seconds = time.perf_counter() - began
        if loaded.search(query_hexes[0], MAX_DISTANCE, 100) != s_answers[0]:
            raise RuntimeError("the loaded index answers differently")
    result.rows += [Row(f"add, {label} in one call", "hashes/s", n / add_seconds),
                    Row(f"save (fsync'd), {label}", "s", save_seconds),
                    Row(f"load, {label}", "s", load_seconds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.media_neardup",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 hashes only")
    args = parser.parse_args(argv)
    from bench.common import machine

    print_machine(machine(), "hot")
    print_result(run(Ctx(quick=args.quick, cache="hot", sprava="")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
