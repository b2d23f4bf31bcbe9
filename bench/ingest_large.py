"""One large file through ``sprava ingest`` against ``cp && sync`` then ``openssl dgst``."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from bench.common import (
    MB,
    MIB,
    Ctx,
    Result,
    Row,
    json_lines,
    log,
    measure,
    median,
    remove_tree,
    run_quiet,
)

NAME = "ingest_large"
_PEER = ('cp -- "$1" "$2" && sync && openssl dgst -sha256 "$1"')


def make_random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes durably; returns their SHA-256."""
    hasher = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(8 * MIB, left))
            hasher.update(chunk)
            f.write(chunk)
            left -= len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return hasher.hexdigest()


def _in_process(ctx: Ctx, src: Path, home: Path, expected: str) -> float:
    """The same ingest through the library, without the CLI's interpreter start-up."""
    from sprava.instance import init_instance
    from sprava.settings import load_settings
    from sprava.store.ingest import Ingestor

    instance, _ = init_instance(load_settings(home=home, environ={}))
    try:
        ctx.prepare_cache(src)
        start = time.perf_counter()
        ingestor = Ingestor(instance)
        results = []
        ingestor.run(ingestor.plan([os.fsencode(src)]), results.append)
        seconds = time.perf_counter() - start
    finally:
        instance.close()
    if [(r.status, r.sha256) for r in results] != [("stored", expected)]:
        raise RuntimeError(f"unexpected in-process ingest results: {results}")
    return seconds


def run(ctx: Ctx) -> Result:
    size = (64 if ctx.quick else 1024) * MIB
    repeats = 1 if ctx.quick else 3
    title = f"ingest of one {size // MIB} MiB file, CLI, median of {repeats}"
    result = Result(NAME, title)
    sprava_s, sprava_rss, peer_s, peer_rss, lib_s, startup_s = [], [], [], [], [], []
    with ctx.tempdir(NAME) as tmp:
        src = tmp / "input.bin"
        log(f"writing {size // MIB} MiB of random bytes")
        expected = make_random_file(src, size)
        home, dest = tmp / "inst", tmp / "copy.bin"
        for rep in range(repeats):
            for side in (("sprava", "peer") if rep % 2 == 0 else ("peer", "sprava")):
                if side == "sprava":
                    run_quiet([ctx.sprava, "--home", home, "init", "--json"])
                    ctx.prepare_cache(src)
                    startup_s.append(measure([ctx.sprava, "--home", home, "items",
                                              "--json"]).seconds)
                    ctx.prepare_cache(src)
                    m = measure([ctx.sprava, "--home", home, "ingest", src, "--json"])
                    stored = [r for r in json_lines(m.stdout) if r.get("status") == "stored"]
                    if [r.get("sha256") for r in stored] != [expected]:
                        raise RuntimeError(f"unexpected ingest output: {m.stdout[-2000:]}")
                    remove_tree(home)
                    sprava_s.append(m.seconds)
                    sprava_rss.append(m.max_rss)
                    lib_s.append(_in_process(ctx, src, home, expected))
                    remove_tree(home)
                else:
                    ctx.prepare_cache(src)
                    m = measure(["sh", "-c", _PEER, "sh", src, dest])
                    if expected not in m.stdout:
                        raise RuntimeError(f"openssl printed an unexpected digest: {m.stdout}")
                    dest.unlink()
                    peer_s.append(m.seconds)
                    peer_rss.append(m.max_rss)
                extra = f", in-process {lib_s[-1]:.2f} s" if side == "sprava" else ""
                log(f"run {rep + 1}/{repeats} {side}: {m.seconds:.2f} s, "
                    f"peak RSS {m.max_rss / MB:.0f} MB{extra}")
    s_time, p_time = median(sprava_s), median(peer_s)
    s_rss, p_rss = max(sprava_rss), max(peer_rss)
    peer = "cp+sync+openssl"
    result.rows += [
        Row("wall time (median)", "s", s_time, peer, p_time, "ratio ≤ 0.8",
            s_time / p_time <= 0.8),
        Row("wall time, in-process Ingestor (median)", "s", median(lib_s), peer, p_time,
            "ratio ≤ 0.8", median(lib_s) / p_time <= 0.8),
        Row("throughput, CLI", "MB/s", size / MB / s_time, peer, size / MB / p_time),
        Row("CLI start-up (`sprava items`, median)", "s", median(startup_s)),
        Row("peak RSS (max of runs)", "MB", s_rss / MB, peer, p_rss / MB, "Sprava ≤ 200 MB",
            s_rss <= 200 * MB),
    ]
    result.notes.append(
        f"page cache {ctx.cache}; Sprava = `sprava ingest FILE --json` in a new instance "
        "(interpreter start-up included); peer = `cp FILE DEST && sync && openssl dgst "
        "-sha256 FILE` in one `sh -c`; background analysis off (SPRAVA_BACKGROUND_JOBS=false)")
    result.notes.append("runs (s): CLI " + ", ".join(f"{v:.2f}" for v in sprava_s)
                        + "; in-process " + ", ".join(f"{v:.2f}" for v in lib_s)
                        + "; peer " + ", ".join(f"{v:.2f}" for v in peer_s))
    result.details = {"size": size, "cache": ctx.cache, "sprava_seconds": sprava_s,
                      "in_process_seconds": lib_s, "cli_startup_seconds": startup_s,
                      "sprava_max_rss": sprava_rss, "peer_seconds": peer_s,
                      "peer_max_rss": peer_rss}
    return result
