"""``sprava move`` of an embedded instance (SQLite and a folder) to PostgreSQL and S3.

An instance of N small items is built with ``sprava ingest``; a PostgreSQL server and a
SeaweedFS S3 server of the benchmark's own are started on loopback (see
:mod:`bench.ledger_writers` and :mod:`bench.ingest_s3`), and ``sprava move --to … --blobs
s3://… --json`` is timed as its own process: blobs copied and re-hashed by the target,
writers locked, every table copied and compared, the target verified (every blob read
back and re-hashed), ``sprava.toml`` switched. ``sprava verify`` must pass afterwards.

Peer: what an operator would do by hand to move only the bytes: upload every blob file of
the instance folder to another bucket with a plain boto3 client (``upload_file`` from a
pool of 8 threads, as ``aws s3 cp --recursive`` would), then download each once and check
its SHA-256 against its name, in one Python child. Each side gets a fresh SeaweedFS
server (SeaweedFS slows as it fills).

Afterwards the size of every table with its indexes is read from both databases
(``pg_total_relation_size``; SQLite's ``dbstat``, indexes and FTS5 shadow tables counted
under their table): PostgreSQL's overhead per row against SQLite's for the same rows.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    MB,
    Ctx,
    Measured,
    Result,
    Row,
    child_env,
    json_lines,
    log,
    measure,
    run_quiet,
)
from bench.ingest_s3 import KEY, SECRET, seaweedfs
from bench.ledger_writers import _create_database, postgres

NAME = "move"
BUCKET = "sprava-moved"
PEER_BUCKET = "peer-copy"
MIN_SIZE, MAX_SIZE = 2 * 1024, 8 * 1024
PER_FOLDER = 1000  # files per sub-folder of the input, as a phone's camera folders

# The peer, in one Python child: upload every blob file under BLOBS/sha256 with
# upload_file from 8 threads, then download each once and check its SHA-256 (its name).
_PEER = """
import hashlib, os, sys
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config

root, endpoint, key, secret, bucket = sys.argv[1:6]
client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=key, aws_secret_access_key=secret,
                      config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))
client.create_bucket(Bucket=bucket)
base = os.path.dirname(root)
files = [(os.path.join(d, n), os.path.relpath(os.path.join(d, n), base))
         for d, _, names in os.walk(root) for n in names]

def upload(job):
    client.upload_file(job[0], bucket, job[1])

def check(job):
    h, size = hashlib.sha256(), 0
    for chunk in client.get_object(Bucket=bucket, Key=job[1])["Body"].iter_chunks(1 << 20):
        h.update(chunk)
        size += len(chunk)
    if h.hexdigest() != os.path.basename(job[1]):
        raise SystemExit(f"{job[1]} does not match its digest")
    return size

with ThreadPoolExecutor(8) as pool:
    list(pool.map(upload, files))
with ThreadPoolExecutor(8) as pool:
    total = sum(pool.map(check, files))
print(len(files), total)
"""


def make_items(folder: Path, count: int, seed: int = 20261208) -> int:
    """``count`` distinct files of 2–8 KiB of seeded random bytes; returns their bytes."""
    rng = random.Random(seed)
    total = 0
    for i in range(count):
        sub = folder / f"DCIM{i // PER_FOLDER:03d}"
        if i % PER_FOLDER == 0:
            sub.mkdir(parents=True)
        size = rng.randint(MIN_SIZE, MAX_SIZE)
        # The index in the first bytes keeps every file distinct, whatever the random part.
        (sub / f"IMG_{i:06d}.bin").write_bytes(i.to_bytes(8, "big") + rng.randbytes(size - 8))
        total += size
    return total


def _s3_env() -> dict[str, str]:
    return {**child_env(), "SPRAVA_S3_ACCESS_KEY_ID": KEY, "SPRAVA_S3_SECRET_ACCESS_KEY": SECRET}


def _ingest(ctx: Ctx, src: Path, home: Path, count: int) -> Measured:
    run_quiet([ctx.sprava, "--home", home, "init", "--json"])
    ctx.prepare_cache(src)
    m = measure([ctx.sprava, "--home", home, "ingest", src, "--json"])
    stored = sum(r.get("status") == "stored" for r in json_lines(m.stdout))
    if stored != count:
        raise RuntimeError(f"the ingest stored {stored} of {count} files")
    return m


def _move(ctx: Ctx, home: Path, database_url: str, endpoint: str,
          count: int) -> tuple[Measured, dict[str, Any]]:
    ctx.prepare_cache(home)
    m = measure([ctx.sprava, "--home", home, "move", "--to", database_url,
                 "--blobs", f"s3://{BUCKET}", "--s3-endpoint-url", endpoint, "--json"],
                env=_s3_env())
    records = json_lines(m.stdout)
    if not records:
        raise RuntimeError(f"sprava move printed no report: {m.stdout[-2000:]}")
    report = records[-1]
    if not (report.get("database_moved") and report.get("blobs_moved")
            and report.get("blobs_copied") == count and report.get("items_verified") == count):
        raise RuntimeError(f"unexpected move report: {report}")
    return m, report


def _verify(ctx: Ctx, home: Path) -> float:
    """``sprava verify`` on the moved instance (now PostgreSQL and S3): must exit 0."""
    start = time.perf_counter()
    done = subprocess.run([ctx.sprava, "--home", str(home), "verify", "--json"],
                          capture_output=True, text=True, check=False, env=_s3_env())
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"sprava verify after the move exited with {done.returncode}: "
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return seconds


def _peer(ctx: Ctx, home: Path, endpoint: str, count: int, size: int) -> Measured:
    blobs = home / "blobs" / "sha256"
    ctx.prepare_cache(blobs)
    m = measure([sys.executable, "-c", _PEER, blobs, endpoint, KEY, SECRET, PEER_BUCKET])
    files, total = (int(v) for v in m.stdout.split())
    if files != count or total != size:
        raise RuntimeError(f"the peer copied {files} files, {total} bytes "
                           f"(expected {count}, {size})")
    return m


def sqlite_sizes(path: Path) -> dict[str, tuple[int, int]]:
    """Each table's rows and bytes (its pages, its indexes' pages, and for an FTS5 table
    its shadow tables' pages), from SQLite's ``dbstat``."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        master = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        virtual = [name for kind, name, _t, sql in master
                   if kind == "table" and (sql or "").upper().startswith("CREATE VIRTUAL")]
        owner: dict[str, str] = {}
        for kind, name, table, _sql in master:
            if kind not in ("table", "index"):
                continue
            shadow = next((v for v in virtual if name.startswith(f"{v}_")), None)
            owner[name] = shadow or (table if kind == "index" else name)
        sizes: dict[str, int] = {}
        for name, pages in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            if name == "sqlite_schema":
                name = "sqlite_master"
            sizes[owner.get(name, name)] = sizes.get(owner.get(name, name), 0) + int(pages)
        result = {}
        for table in sorted({owner[n] for n in owner if owner[n] == n}):
            if table.startswith("sqlite_"):
                continue
            # the name comes from sqlite_master, not from input
            rows = int(conn.execute(f'SELECT COUNT(*) FROM "{table}"')  # noqa: S608
                       .fetchone()[0])
            result[table] = (rows, sizes.get(table, 0))
    return result


def postgres_sizes(database_url: str) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Each table's rows and ``pg_total_relation_size`` (heap, TOAST and indexes), the
    dead tuples left in them, and the whole database's size."""
    import psycopg
    from psycopg import sql

    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
        ).fetchall()
        result = {}
        for table, size in tables:
            rows = conn.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(
                sql.Identifier(table))).fetchone()
            result[str(table)] = (int(rows[0]) if rows else 0, int(size))
        dead = conn.execute("SELECT COALESCE(SUM(n_dead_tup), 0) FROM pg_stat_user_tables"
                            ).fetchone()
        whole = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return result, int(dead[0]) if dead else 0, int(whole[0]) if whole else 0


def size_lines(lite: dict[str, tuple[int, int]], pg: dict[str, tuple[int, int]]) -> list[str]:
    """The per-table comparison as text: tables holding rows, then the totals."""
    header = ["table", "rows", "SQLite bytes", "PostgreSQL bytes", "PG÷SQLite",
              "SQLite B/row", "PG B/row"]
    body = []
    names = sorted(set(lite) | set(pg), key=lambda n: -max(lite.get(n, (0, 0))[1],
                                                           pg.get(n, (0, 0))[1]))
    for name in names:
        rows = max(lite.get(name, (0, 0))[0], pg.get(name, (0, 0))[0])
        if not rows:
            continue
        s = lite.get(name, (0, 0))[1] if name in lite else None
        p = pg.get(name, (0, 0))[1] if name in pg else None
        body.append([name, f"{rows:,}", "—" if s is None else f"{s:,}",
                     "—" if p is None else f"{p:,}",
                     f"{p / s:.2f}" if s and p is not None else "—",
                     "—" if s is None else f"{s / rows:,.0f}",
                     "—" if p is None else f"{p / rows:,.0f}"])
    full = [n for n in names if max(lite.get(n, (0, 0))[0], pg.get(n, (0, 0))[0])]
    for label, subset in (("tables holding rows", full), ("all tables", names)):
        s_tot = sum(lite.get(n, (0, 0))[1] for n in subset)
        p_tot = sum(pg.get(n, (0, 0))[1] for n in subset)
        body.append([f"total, {label}", "", f"{s_tot:,}", f"{p_tot:,}",
                     f"{p_tot / s_tot:.2f}" if s_tot else "—", "", ""])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return ["  " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                              for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in [header, *body]]


def run(ctx: Ctx) -> Result:
    count = 10_000 if ctx.quick else 100_000
    result = Result(NAME, f"`sprava move` of {count:,} items (2–8 KiB) from SQLite and a "
                          "folder to PostgreSQL and S3 (SeaweedFS), both on loopback")
    with ctx.tempdir(NAME) as tmp:
        src, home = tmp / "files", tmp / "inst"
        log(f"writing {count:,} files of 2–8 KiB")
        size = make_items(src, count)
        ingest = _ingest(ctx, src, home, count)
        log(f"ingest: {ingest.seconds:.1f} s ({count / ingest.seconds:,.0f} items/s)")
        # PostgreSQL gets a folder of its own: postgres() hands it to the postgres user.
        with ctx.tempdir(f"{NAME}-pg") as pg_root, postgres(pg_root) as server:
            url = _create_database(server, "moved")
            with seaweedfs(tmp / "weed-move") as endpoint:
                moved, report = _move(ctx, home, url, endpoint, count)
                log(f"move: {moved.seconds:.1f} s ({count / moved.seconds:,.0f} items/s), "
                    f"peak RSS {moved.max_rss / MB:.0f} MB")
                verify_s = _verify(ctx, home)
                log(f"sprava verify after the move: {verify_s:.1f} s, passed")
            pg, dead, pg_whole = postgres_sizes(url)
        lite = sqlite_sizes(home / "sprava.db")
        lite_file = (home / "sprava.db").stat().st_size
        with seaweedfs(tmp / "weed-peer") as endpoint:
            peer = _peer(ctx, home, endpoint, count, size)
        log(f"peer: {peer.seconds:.1f} s ({count / peer.seconds:,.0f} items/s), "
            f"peak RSS {peer.max_rss / MB:.0f} MB")
    lines = size_lines(lite, pg)
    print("\n  table sizes with their indexes after the move (SQLite: dbstat; PostgreSQL: "
          "pg_total_relation_size)")
    print("\n".join(lines), flush=True)
    s_tot = sum(v[1] for v in lite.values())
    p_tot = sum(v[1] for v in pg.values())
    name = "boto3 upload_file ×8 + get+sha256 ×8"
    result.rows += [
        Row("move, wall time", "s", moved.seconds, name, peer.seconds),
        Row("move, items/s", "items/s", count / moved.seconds, name, count / peer.seconds),
        Row("move, MB/s of blobs", "MB/s", size / MB / moved.seconds, name,
            size / MB / peer.seconds),
        Row("peak RSS", "MB", moved.max_rss / MB, name, peer.max_rss / MB),
        Row("tables with indexes, PostgreSQL", "MB", p_tot / MB, "SQLite (dbstat)", s_tot / MB),
        Row("`sprava verify` afterwards (not in the move)", "s", verify_s),
        Row("ingest of the instance (setup, not compared)", "s", ingest.seconds),
    ]
    result.notes += [
        f"page cache {ctx.cache}; {count:,} files, {size / MB:.1f} MB in all; ingest with "
        "background analysis off. Sprava = `sprava move --to postgresql+psycopg://… "
        "--blobs s3://… --json` as its own process (interpreter start-up included): blobs "
        "copied (each re-hashed by the target as written), writers locked, every "
        "table copied and compared, ledger compared, the target verified (every blob read "
        "back from S3 and re-hashed), sprava.toml switched. Peer = a Python child: "
        "create a bucket, boto3 upload_file of every blob file from 8 threads, then "
        "get_object + SHA-256 of each from 8 threads: bytes only, no database. A fresh "
        "SeaweedFS server for each side; PostgreSQL with its durable defaults.",
        f"SQLite file {lite_file / MB:.1f} MB; PostgreSQL database {pg_whole / MB:.1f} MB "
        f"(pg_database_size, catalogue included); {dead} dead tuples in PostgreSQL "
        "after the move; "
        f"move report: {sum(report.get('tables', {}).values()):,} rows in "
        f"{len(report.get('tables', {}))} tables, ledger size {report.get('ledger_size')}",
    ]
    result.details = {
        "count": count, "bytes": size, "cache": ctx.cache,
        "ingest_seconds": ingest.seconds, "ingest_max_rss": ingest.max_rss,
        "move_seconds": moved.seconds, "move_max_rss": moved.max_rss,
        "verify_seconds": verify_s, "peer_seconds": peer.seconds,
        "peer_max_rss": peer.max_rss, "move_report": report,
        "sqlite_tables": {k: {"rows": r, "bytes": b} for k, (r, b) in lite.items()},
        "postgresql_tables": {k: {"rows": r, "bytes": b} for k, (r, b) in pg.items()},
        "sqlite_file_bytes": lite_file, "postgresql_database_bytes": pg_whole,
        "postgresql_dead_tuples": dead, "size_table": lines,
    }
    return result
