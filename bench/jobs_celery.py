"""Analysis throughput: Celery workers (Redis broker) against the in-process runner.

N photos (1,000; 100 with ``--quick``, made as in ``media_pipeline``) are ingested into a
fresh instance without analysis, then the queue is drained and timed (items/s):

- in-process: ``sprava jobs run --workers W`` (starts W worker processes, which load the
  analysis code and the face detector inside the timed run, as every ``ingest --wait`` does);
- Celery: W ``sprava jobs worker --concurrency 1`` started and ready beforehand (a service
  that stays up), then ``sprava jobs run`` with ``jobs = celery``: it announces every job
  through a redis-server on loopback and waits on the database queue until it is empty.

The peer of each Celery figure is the in-process runner with as many worker processes, in
the same run, on the same photos. Same handlers, same database: the difference is the
transport (a Redis message and a claim by id per job, against a claim of the oldest row)
and the warm-up.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from bench.common import Ctx, Result, Row, child_env, json_lines, log, measure, run_quiet
from bench.media_pipeline import make_photos

NAME = "jobs_celery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run scripts/install-test-deps.sh")
    folder.mkdir()
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--save", "", "--appendonly", "no", "--logfile", str(folder / "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)


def _env(jobs: str) -> dict[str, str]:
    return {**child_env(), "SPRAVA_JOBS": jobs}


def _prepared(ctx: Ctx, photos: Path, home: Path, broker: str) -> None:
    """A fresh instance holding the photos, their analysis queued and not announced."""
    run_quiet([ctx.sprava, "--home", home, "init", "--json"])
    with (home / "sprava.toml").open("a") as config:
        config.write(f'broker_url = "{broker}"\n')
    m = measure([ctx.sprava, "--home", home, "ingest", photos, "--json"], env=_env("inprocess"))
    stored = sum(1 for r in json_lines(m.stdout) if r.get("status") == "stored")
    if stored == 0:
        raise RuntimeError("nothing was ingested")


def _drained(ctx: Ctx, home: Path) -> int:
    counts = json_lines(run_quiet([ctx.sprava, "--home", home, "jobs", "--json"]))[0]["counts"]
    if counts["queued"] or counts["running"] or counts["failed"]:
        raise RuntimeError(f"analysis did not finish cleanly: {counts}")
    return int(counts["done"])


def _in_process(ctx: Ctx, photos: Path, home: Path, broker: str, workers: int) -> float:
    _prepared(ctx, photos, home, broker)
    ctx.prepare_cache(home)
    m = measure([ctx.sprava, "--home", home, "jobs", "run", "--workers", str(workers),
                 "--quiet"], env=_env("inprocess"))
    return _drained(ctx, home) / m.seconds


def _celery(ctx: Ctx, photos: Path, home: Path, broker: str, workers: int) -> float:
    _prepared(ctx, photos, home, broker)
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for n in range(workers):
            out = home / f"worker-{n}.log"
            with out.open("wb") as sink:
                proc = subprocess.Popen(
                    [ctx.sprava, "--home", str(home), "jobs", "worker", "--concurrency", "1",
                     "--loglevel", "INFO"], env=_env("celery"), stdin=subprocess.DEVNULL,
                    stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
            started.append((proc, out))
        # Ready: the worker says "ready.", and its pool process has loaded the analysis
        # code (faiss logs its loading) and then the face detector (a few seconds more).
        deadline = time.monotonic() + 300
        while not all(_warm(out) for _, out in started):
            if any(proc.poll() is not None for proc, _ in started):
                raise RuntimeError("a Celery worker ended: " + started[0][1].read_text()[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError("the Celery workers did not start in time")
            time.sleep(0.2)
        time.sleep(5)
        ctx.prepare_cache(home)
        m = measure([ctx.sprava, "--home", home, "jobs", "run", "--quiet"], env=_env("celery"))
        return _drained(ctx, home) / m.seconds
    finally:
        for proc, _ in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in started:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _warm(out: Path) -> bool:
    text = out.read_text(errors="replace")
    return " ready." in text and "Successfully loaded faiss" in text


def run(ctx: Ctx) -> Result:
    photos = 100 if ctx.quick else 1_000
    result = Result(NAME, f"analysis throughput of {photos:,} photos: Celery workers "
                          "(Redis broker) against the in-process runner")
    with ctx.tempdir(NAME) as tmp:
        log(f"making {photos:,} photos")
        make_photos(tmp / "photos", photos)
        redis, broker = _start_redis(tmp / "redis")
        try:
            for workers in (1, 2):
                log(f"in-process runner, {workers} worker(s)")
                local = _in_process(ctx, tmp / "photos", tmp / f"inproc-{workers}", broker,
                                    workers)
                log(f"  {local:.2f} items/s")
                log(f"Celery, {workers} worker(s)")
                distributed = _celery(ctx, tmp / "photos", tmp / f"celery-{workers}", broker,
                                      workers)
                log(f"  {distributed:.2f} items/s")
                label = "worker" if workers == 1 else "workers"
                result.rows.append(Row(f"photos analysed per second, Celery, {workers} "
                                       f"{label}", "items/s", distributed,
                                       f"in-process runner, {workers} {label}", local))
                result.details[f"workers_{workers}"] = {"celery": distributed,
                                                        "in_process": local}
        finally:
            redis.terminate()
            redis.wait(timeout=30)
    result.notes.append(
        "each photo: metadata, PDQ with 27 variants, clustering, and a redacted thumbnail "
        "(faces detected on a 1280 px copy); SQLite database, local blob store")
    result.notes.append(
        "Celery workers are started and warm before the clock starts; the in-process "
        "runner starts its worker processes inside the timed run, as `ingest --wait` does")
    result.notes.append(f"on this machine of {os.cpu_count()} CPUs, shared with other "
                        "work: see the load averages")
    result.details["photos"] = photos
    return result
