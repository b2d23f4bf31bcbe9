"""One ledger, many writers: custody events appended by 1, 2 and 4 processes at once to
one instance on PostgreSQL, and by one process on SQLite (issue 8's ledger benchmark).

PostgreSQL is a server of the benchmark's own: ``initdb`` in a temporary folder on this
disk, loopback only, with PostgreSQL's durable defaults (``fsync`` and
``synchronous_commit`` on: a committed custody event survives a power cut). Each writer is
its own process with its own connection, appending events in write transactions of
``PER_TX`` events, each ending with a signed checkpoint, as ``sprava ingest`` does with a
batch of files; writers contend for the ledger head's row lock. The figure is the total
events per second from the moment all writers start to the moment the last finishes. The
peer column is one writer on PostgreSQL: the ratio says what concurrency buys (or costs).
After each run the ledger is checked: indices 0…n−1 once each, every checkpoint
consistent with the last.
"""

from __future__ import annotations

import glob
import multiprocessing
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Ctx, Result, Row, log, median
from bench.ledger import events

NAME = "ledger_writers"
PER_TX = 10
WRITER_COUNTS = (1, 2, 4)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres(root: Path) -> Iterator[str]:
    """A PostgreSQL server in ``root`` on a free loopback port; yields the admin URL's
    prefix (``postgresql+psycopg://USER@127.0.0.1:PORT/``). Stopped on exit."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run scripts/install-test-deps.sh")
    bindir = Path(found[-1]).parent
    data, sock = root / "pg", root / "pg-sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    port = _free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user,
                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, capture_output=True)
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=50"
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                    str(root / "pg.log"), "-w", "-t", "60", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], check=False, capture_output=True)


def _create_database(server: str, name: str) -> str:
    import psycopg

    host_port = server.split("@", 1)[1].rstrip("/")
    user = server.split("//", 1)[1].split("@", 1)[0]
    host, port = host_port.split(":")
    with psycopg.connect(host=host, port=int(port), user=user, dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return server + name


def _writer(home: str, database_url: str, seed: int, total: int, start: Any,
            done: Any) -> None:
    """One writer process: open the instance, wait for the others, append ``total``."""
    import random

    from sprava.backends.db.engine import write_transaction
    from sprava.instance import open_instance
    from sprava.ledger.log import LedgerAppender
    from sprava.settings import load_settings

    instance = open_instance(load_settings(home=Path(home),
                                           overrides={"database_url": database_url},
                                           environ={}))
    rng = random.Random(seed)
    batches = [events(rng, i, min(PER_TX, total - i)) for i in range(0, total, PER_TX)]
    with instance.engine.connect():
        pass  # connect before the clock starts
    if not start.wait(timeout=600):  # the benchmark went away: do not linger
        instance.close()
        return
    for batch in batches:
        with write_transaction(instance.engine) as conn:
            appender = LedgerAppender(conn, instance.signer)
            for event in batch:
                appender.append(event)
            appender.finish()
    done.put(time.perf_counter())
    instance.close()


def _check(instance: Any) -> int:
    """The ledger is gapless and every checkpoint is consistent with the last; its size."""
    from sqlalchemy import select

    from sprava.backends.db.engine import read_transaction
    from sprava.backends.db.tables import ledger_leaf
    from sprava.ledger import log as ledger_log
    from sprava.ledger import merkle
    from sprava.ledger.note import open_checkpoint

    with read_transaction(instance.engine) as conn:
        size = ledger_log.head_size(conn)
        indices = list(conn.execute(select(ledger_leaf.c.idx)
                                    .order_by(ledger_leaf.c.idx)).scalars())
        if indices != list(range(size)):
            raise RuntimeError("the ledger has a gap or a duplicate index")
        opened = [open_checkpoint(c.note, instance.verifier)
                  for c in ledger_log.checkpoints(conn)]
        if not opened:
            return size
        last = opened[-1]
        for cp in opened[:-1]:
            merkle.verify_consistency(cp.size, last.size,
                                      ledger_log.consistency_proof(conn, cp.size, last.size),
                                      cp.root, last.root)
    return size


def _run(work: Path, database_url: str, writers: int, per_writer: int) -> float:
    """Events per second for ``writers`` processes on a new instance at ``database_url``."""
    from sprava.instance import init_instance
    from sprava.settings import load_settings

    home = work / f"inst-{writers}-{time.monotonic_ns()}"
    settings = load_settings(home=home, overrides={"database_url": database_url}, environ={})
    instance, _ = init_instance(settings, explicit={"database_url": database_url})
    base = _check(instance)
    spawn = multiprocessing.get_context("spawn")
    start, done = spawn.Event(), spawn.Queue()
    procs = [spawn.Process(target=_writer, args=(str(home), database_url, 1000 + w,
                                                 per_writer, start, done))
             for w in range(writers)]
    for proc in procs:
        proc.start()
    time.sleep(3.0)  # let every writer import, open the instance and build its events
    began = time.perf_counter()
    start.set()
    ends = [done.get(timeout=1800) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        if proc.exitcode != 0:
            raise RuntimeError(f"a writer failed (exit code {proc.exitcode})")
    seconds = max(ends) - began
    if _check(instance) != base + writers * per_writer:
        raise RuntimeError("the ledger does not hold every event appended")
    instance.close()
    return writers * per_writer / seconds


def run(ctx: Ctx) -> Result:
    total = 2_000 if ctx.quick else 20_000  # events a run, shared among its writers
    repeats = 1 if ctx.quick else 3
    result = Result(NAME, f"{total:,} custody events a run, {PER_TX} a transaction, each "
                          "transaction ending with a signed checkpoint")
    rates: dict[str, list[float]] = {}
    with ctx.tempdir(NAME) as work, postgres(work) as server:
        for r in range(repeats):
            for writers in WRITER_COUNTS:
                url = _create_database(server, f"w{writers}_{r}")
                rate = _run(work, url, writers, total // writers)
                rates.setdefault(f"pg{writers}", []).append(rate)
                log(f"PostgreSQL, {writers} writer(s): {rate:,.0f} events/s")
            rate = _run(work, f"sqlite:///{work / f'sqlite-{r}.db'}", 1, total)
            rates.setdefault("sqlite1", []).append(rate)
            log(f"SQLite, 1 writer: {rate:,.0f} events/s")
    one = median(rates["pg1"])
    for writers in WRITER_COUNTS:
        result.rows.append(Row(f"PostgreSQL, {writers} writer{'s' if writers > 1 else ''}",
                               "events/s", median(rates[f"pg{writers}"]),
                               "PostgreSQL, 1 writer", one))
    result.rows.append(Row("SQLite, 1 writer", "events/s", median(rates["sqlite1"]),
                           "PostgreSQL, 1 writer", one))
    result.notes += [
        f"median of {repeats}; runs (events/s): "
        + "; ".join(f"{k} " + ", ".join(f"{v:,.0f}" for v in vs) for k, vs in rates.items()),
        "PostgreSQL with fsync and synchronous_commit on (its defaults); SQLite in WAL "
        "mode with synchronous=FULL as Sprava opens it; both on this machine's disk. "
        "After each run the ledger was checked: gapless, and every checkpoint consistent "
        "with the last.",
    ]
    result.details["rates"] = rates
    return result
