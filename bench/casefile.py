"""A large case: `sprava export case` and `sprava-verify` against `openssl dgst -sha256`.

The case cites random files totalling ``SPRAVA_BENCH_CASEFILE_GIB`` GiB (default 8; the
issue's 20 fits when the disk has about 3.5 times that free: the files live in the vault,
the folder bag and the zip bag at once); ``--quick`` uses 256 MiB. Verification of the
folder bag and of the zipped bag is timed against `openssl dgst -sha256` over the same
payload files, alternating which goes first, in the same run; peak RSS comes from wait4.
"""

from __future__ import annotations

import os
import shutil
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
)

NAME = "casefile"
# Runs a command's main() and prints its own peak RSS (VmHWM) as a last JSON line: wait4's
# figure for a child includes the pages of the benchmark process it was forked from.
_HWM = """
import json, sys
from {module} import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(json.dumps({{"vm_hwm": int(line.split()[1]) * 1024}}), flush=True)
sys.exit(code or 0)
"""
RECIPIENT = "Benchmark prosecutor"
GIB = 1 << 30


def _size(ctx: Ctx) -> int:
    if ctx.quick:
        return 256 * MIB
    return int(float(os.environ.get("SPRAVA_BENCH_CASEFILE_GIB", "8")) * GIB)


def _make_files(folder: Path, total: int, count: int) -> None:
    """``count`` random files of sizes from 1× to 3× a base, adding up to ``total``."""
    folder.mkdir()
    weights = [1 + 2 * i / max(1, count - 1) for i in range(count)]
    sizes = [int(total * w / sum(weights)) for w in weights]
    sizes[-1] += total - sum(sizes)
    for i, size in enumerate(sizes):
        with open(folder / f"clip{i:03d}.mp4", "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(8 * MIB, left))
                f.write(chunk)
                left -= len(chunk)
    os.sync()


def _instance_with_case(home: Path, src: Path) -> str:
    """Ingest the files in-process (not timed) and make a case citing every one."""
    from sprava.catalogue import cases, incidents
    from sprava.instance import init_instance
    from sprava.settings import load_settings
    from sprava.store.ingest import Ingestor

    instance, _ = init_instance(load_settings(home=home, environ={}))
    try:
        digests: list[str] = []
        ingestor = Ingestor(instance, source_name="benchmark")
        ingestor.run(ingestor.plan([os.fsencode(src)]),
                     lambda r: digests.append(r.sha256 or ""))
        incident = incidents.create_incident(instance, {
            "title": "Benchmark incident", "start": "2020-08-10T22:40:00+03:00",
            "place": {"name": "Minsk"}}, actor="local:bench")
        case = cases.create_case(instance, {
            "title": "Benchmark case", "recipient": RECIPIENT, "incidents": [incident.id],
            "items": sorted(d for d in digests if d)}, actor="local:bench")
        return case.id
    finally:
        instance.close()


def run(ctx: Ctx) -> Result:
    size = _size(ctx)
    count = 8 if ctx.quick else 16
    repeats = 1 if ctx.quick else 3
    result = Result(NAME, f"case file of {size / GIB:.2f} GiB in {count} files: export and "
                          f"verify, median of {repeats}")
    python = str(Path(ctx.sprava).with_name("python"))
    verifier = "sprava.casefile.sprava_verify"  # what the `sprava-verify` script runs
    with ctx.tempdir(NAME) as tmp:
        free = shutil.disk_usage(tmp).free
        if free < 3.6 * size:
            raise RuntimeError(f"{size / GIB:.1f} GiB needs {3.6 * size / GIB:.0f} GiB free "
                               f"here; {free / GIB:.0f} GiB are (set SPRAVA_BENCH_CASEFILE_GIB)")
        src, home = tmp / "input", tmp / "inst"
        log(f"writing {count} random files, {size // MIB} MiB in all")
        _make_files(src, size, count)
        log("ingesting them and making the case (not timed)")
        case_id = _instance_with_case(home, src)
        remove_tree(src)
        exports = {}
        for form in ("folder", "zip"):
            out = tmp / f"case-{form}" if form == "folder" else tmp / "case.zip"
            ctx.prepare_cache(home / "blobs")
            m = measure([python, "-c", _HWM.format(module="sprava.cli"), "--home", home,
                         "export", "case", case_id, "--to", RECIPIENT, "--out", out,
                         f"--{form}", "--json"])
            done, hwm = json_lines(m.stdout)[-2:]
            if done["items"] != count:
                raise RuntimeError(f"the export holds {done['items']} items, not {count}")
            m.max_rss = hwm["vm_hwm"]
            exports[form] = (out, m)
            log(f"export as {form}: {m.seconds:.2f} s, peak RSS {m.max_rss / MB:.0f} MB")
        folder = exports["folder"][0]
        payload = sorted((folder / "data").iterdir())
        times: dict[str, list[float]] = {"folder": [], "zip": [], "openssl": []}
        rss: dict[str, int] = {"folder": 0, "zip": 0, "openssl": 0}
        for rep in range(repeats):
            order = ["openssl", "folder", "zip"] if rep % 2 == 0 else ["zip", "folder",
                                                                       "openssl"]
            for side in order:
                if side == "openssl":
                    ctx.prepare_cache(*payload)
                    m = measure(["openssl", "dgst", "-sha256", *payload])
                    if m.stdout.count("SHA2-256(") + m.stdout.count("SHA256(") != count:
                        raise RuntimeError(f"openssl printed: {m.stdout[:500]}")
                else:
                    bag = exports[side][0]
                    ctx.prepare_cache(bag)
                    m = measure([python, "-c", _HWM.format(module=verifier), bag, "--json"])
                    report, hwm = json_lines(m.stdout)[-2:]
                    if not report["ok"] or report["payload_bytes"] != size:
                        raise RuntimeError(f"verification failed: {m.stdout[-2000:]}")
                    m.max_rss = hwm["vm_hwm"]
                times[side].append(m.seconds)
                rss[side] = max(rss[side], m.max_rss)
                log(f"run {rep + 1}/{repeats} {side}: {m.seconds:.2f} s, peak RSS "
                    f"{m.max_rss / MB:.0f} MB")
    peer = median(times["openssl"])
    result.rows += [
        Row("verify folder bag, wall time (median)", "s", median(times["folder"]),
            "openssl dgst -sha256", peer, "ratio ≤ 1.3", median(times["folder"]) / peer <= 1.3),
        Row("verify zipped bag, wall time (median)", "s", median(times["zip"]),
            "openssl dgst -sha256", peer, "ratio ≤ 1.3", median(times["zip"]) / peer <= 1.3),
        Row("verify throughput, folder", "MB/s", size / MB / median(times["folder"]),
            "openssl dgst -sha256", size / MB / peer),
        Row("verify peak RSS (folder / zip: max)", "MB", max(rss["folder"], rss["zip"]) / MB,
            target="≤ 100 MB whatever the size", met=max(rss["folder"], rss["zip"]) <= 100 * MB),
        Row("export as folder, wall time", "s", exports["folder"][1].seconds),
        Row("export as zip, wall time", "s", exports["zip"][1].seconds),
        Row("export throughput, folder", "MB/s", size / MB / exports["folder"][1].seconds),
        Row("export peak RSS (max of both)", "MB",
            max(m.max_rss for _, m in exports.values()) / MB, target="≤ 200 MB",
            met=max(m.max_rss for _, m in exports.values()) <= 200 * MB),
    ]
    result.notes.append(
        f"page cache {ctx.cache}; Sprava = the single-file verifier's main (what "
        "`sprava-verify BAG --json` runs; every check: BagIt manifests, payload against ingest "
        "events, proofs, signature, catalogue) in its own process; peer = `openssl dgst "
        "-sha256` over the bag's payload files; export = `sprava export case ID --to R "
        "--folder|--zip --json` (PDF report included); peak RSS is each process's own VmHWM")
    result.notes.append("runs (s): " + "; ".join(
        f"{k} " + ", ".join(f"{v:.2f}" for v in vs) for k, vs in times.items()))
    result.details = {"size": size, "files": count, "cache": ctx.cache, "verify_seconds": times,
                      "verify_max_rss": rss,
                      "export_seconds": {k: m.seconds for k, (_, m) in exports.items()},
                      "export_max_rss": {k: m.max_rss for k, (_, m) in exports.items()},
                      "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return result
