"""Many small files: ``sprava ingest FOLDER`` (and the in-process Ingestor) in files/s."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.common import (
    MB,
    Ctx,
    Measured,
    Result,
    Row,
    json_lines,
    log,
    measure,
    median,
    remove_tree,
    run_quiet,
)

NAME = "ingest_small"
FILE_SIZE = 10 * 1024
_PEER = ('cp -r -- "$1" "$2" && sync && '
         'find "$1" -type f -exec openssl dgst -sha256 {} + | wc -l')


def make_files(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        # The index in the first bytes keeps every file distinct, whatever the random part.
        data = i.to_bytes(8, "big") + os.urandom(FILE_SIZE - 8)
        (folder / f"f{i:06d}.bin").write_bytes(data)
    os.sync()


def _in_process(ctx: Ctx, src: Path, home: Path, count: int) -> float:
    from sprava.instance import init_instance
    from sprava.settings import load_settings
    from sprava.store.ingest import Ingestor

    instance, _ = init_instance(load_settings(home=home, environ={}))
    try:
        ctx.prepare_cache(src)
        start = time.perf_counter()
        ingestor = Ingestor(instance)
        summary = ingestor.run(ingestor.plan([os.fsencode(src)]))
        seconds = time.perf_counter() - start
    finally:
        instance.close()
    if summary.stored != count:
        raise RuntimeError(f"in-process ingest stored {summary.stored} of {count} files")
    return seconds


def _cli(ctx: Ctx, src: Path, home: Path, count: int) -> Measured:
    run_quiet([ctx.sprava, "--home", home, "init", "--json"])
    ctx.prepare_cache(src)
    m = measure([ctx.sprava, "--home", home, "ingest", src, "--json"])
    stored = sum(r.get("status") == "stored" for r in json_lines(m.stdout))
    if stored != count:
        raise RuntimeError(f"the CLI stored {stored} of {count} files")
    return m


def _startup(ctx: Ctx, src: Path, home: Path) -> float:
    """A command that opens the instance and does next to nothing, in the same cache state."""
    ctx.prepare_cache(src)
    return measure([ctx.sprava, "--home", home, "items", "--limit", "1", "--json"]).seconds


def run(ctx: Ctx) -> Result:
    count = 1_000 if ctx.quick else 10_000
    repeats = 1 if ctx.quick else 5
    result = Result(NAME, f"ingest of {count:,} files of {FILE_SIZE // 1024} KiB, "
                          f"median of {repeats}")
    cli_s, cli_rss, lib_s, peer_s, startup_s = [], [], [], [], []
    with ctx.tempdir(NAME) as tmp:
        src, home, dest = tmp / "files", tmp / "inst", tmp / "copy"
        log(f"writing {count:,} files")
        make_files(src, count)
        for rep in range(repeats):
            steps = ("cli", "lib", "peer") if rep % 2 == 0 else ("peer", "lib", "cli")
            for step in steps:  # alternate the order: disk noise should not favour a side
                if step == "cli":
                    m = _cli(ctx, src, home, count)
                    cli_s.append(m.seconds)
                    cli_rss.append(m.max_rss)
                    startup_s.append(_startup(ctx, src, home))
                    remove_tree(home)
                elif step == "lib":
                    lib_s.append(_in_process(ctx, src, home, count))
                    remove_tree(home)
                else:
                    ctx.prepare_cache(src)
                    p = measure(["sh", "-c", _PEER, "sh", src, dest])
                    if int(p.stdout.strip()) != count:
                        raise RuntimeError(f"openssl hashed {p.stdout.strip()} of {count} files")
                    remove_tree(dest)
                    peer_s.append(p.seconds)
            log(f"run {rep + 1}/{repeats}: CLI {count / cli_s[-1]:,.0f} files/s, in-process "
                f"{count / lib_s[-1]:,.0f} files/s, peer {count / peer_s[-1]:,.0f} files/s")
    cli, lib, peer = (count / median(v) for v in (cli_s, lib_s, peer_s))
    name = "cp -r+sync+openssl"
    result.rows += [
        Row("files/s, CLI", "files/s", cli, name, peer, "Sprava ≥ 500/s", cli >= 500),
        Row("files/s, in-process Ingestor", "files/s", lib, name, peer, "Sprava ≥ 500/s",
            lib >= 500),
        Row("CLI start-up (`sprava items`)", "s", median(startup_s)),
        Row("peak RSS, CLI", "MB", max(cli_rss) / MB),
    ]
    result.notes.append(
        f"page cache {ctx.cache}; every file is a new item with its own custody event, in "
        "transactions of `batch_files` (default 64) files, each ending with a signed checkpoint; "
        "every blob is fsync'ed. The peer syncs once at the end and writes no record. "
        "Background analysis off (SPRAVA_BACKGROUND_JOBS=false).")
    result.notes.append("runs (files/s): CLI " + ", ".join(f"{count / v:,.0f}" for v in cli_s)
                        + "; in-process " + ", ".join(f"{count / v:,.0f}" for v in lib_s)
                        + "; peer " + ", ".join(f"{count / v:,.0f}" for v in peer_s))
    result.details = {"count": count, "file_size": FILE_SIZE, "cli_seconds": cli_s,
                      "cli_max_rss": cli_rss, "in_process_seconds": lib_s,
                      "peer_seconds": peer_s, "cli_startup_seconds": startup_s}
    return result
