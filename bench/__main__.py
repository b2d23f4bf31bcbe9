"""Run the benchmarks: ``python -m bench [--quick] [--only NAME ...]``.

Each benchmark prints a table with Sprava and its peer side by side; all results go to
``bench/results/bench-<time>.json`` (and ``latest.json``), which git ignores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from types import ModuleType

from bench import (
    api_load,
    casefile,
    inbox_upload,
    ingest_large,
    ingest_s3,
    ingest_small,
    jobs_celery,
    ledger,
    ledger_writers,
    media_neardup,
    media_phash,
    media_pipeline,
    media_redact,
    move,
    proof_at_1m,
)
from bench.common import (
    RESULTS,
    Ctx,
    can_drop_caches,
    loadavg,
    machine,
    print_machine,
    print_result,
    sprava_executable,
)

BENCHMARKS: dict[str, ModuleType] = {
    m.NAME: m for m in (ingest_large, ingest_s3, ingest_small, ledger, ledger_writers,
                        proof_at_1m, media_phash, media_neardup, media_redact,
                        media_pipeline, jobs_celery, api_load, casefile, inbox_upload,
                        move)
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, one repeat: a smoke run of a minute or so")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    parser.add_argument("--hot", action="store_true",
                        help="keep the page cache (inputs read once before each step) even "
                             "where it could be dropped")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    cache = "cold" if not args.hot and can_drop_caches() else "hot"
    ctx = Ctx(quick=args.quick, cache=cache, sprava=sprava_executable())
    info = machine()
    print_machine(info, cache)
    report: dict[str, object] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "quick": args.quick, "cache": cache, "machine": info}
    done: dict[str, object] = {}
    report["benchmarks"] = done
    failed = []
    for name in names:
        print(f"\n-- {name}", flush=True)
        began, load = time.perf_counter(), loadavg()
        try:
            result = BENCHMARKS[name].run(ctx)
        except Exception as exc:  # report it and go on with the other benchmarks
            print(f"  {name} FAILED: {type(exc).__name__}: {exc}", flush=True)
            failed.append(name)
            done[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        result.details["elapsed_seconds"] = time.perf_counter() - began
        result.details["load_average"] = {"start": load, "end": loadavg()}
        print_result(result)
        print(f"  load average (1, 5, 15 min): {load} at start, {loadavg()} at end")
        done[name] = result.to_dict()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    out = RESULTS / f"bench-{stamp}{'-quick' if args.quick else ''}.json"
    out.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    print(f"\nresults written to {out.relative_to(RESULTS.parent.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
