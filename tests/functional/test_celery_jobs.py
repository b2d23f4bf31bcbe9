"""Distributed jobs (``jobs = celery``) through the real CLI: a real redis-server, real
Celery worker processes (``sprava jobs worker``), on each database back end.

- two workers analyse every photo exactly once, though each job is announced several
  times (duplicate messages find the job done or held and do nothing);
- a worker SIGKILLed in the middle of a job, after the job's derived item and custody
  event were recorded but before the job was marked done (the worst moment, held open by
  the test hook ``SPRAVA_TEST_HOLD_JOB_SECONDS``), leads to the job being finished once
  in effect: no second derived item, no second custody event, no hash stored twice.
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from conftest import Cli, RedisServer, Worker, wait_for
from sprava.audit import verify_instance
from sprava.backends.db.tables import analysis, derived_item, job, ledger_leaf, phash
from sprava.cli.exitcode import ExitCode
from sprava.domain.custody import DERIVE, INGEST
from sprava.instance import Instance
from sprava.jobs.celery_app import HOLD_ENV


@pytest.fixture
def celery_cli(cli: Cli, instance: Instance, redis_server: RedisServer) -> Cli:
    """The CLI of an instance whose jobs go to Celery workers on a fresh Redis database
    (as the ``instance`` fixture's already do under ``SPRAVA_TEST_JOBS=celery``)."""
    if instance.settings.jobs != "celery":
        with (instance.settings.home / "sprava.toml").open("a") as config:
            config.write(f'jobs = "celery"\nbroker_url = "{redis_server.fresh_url()}"\n')
    return cli


def _photos(folder: Path, count: int) -> Path:
    folder.mkdir()
    rnd = random.Random(8)
    for i in range(count):
        image = Image.new("RGB", (800, 600), tuple(rnd.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(30):
            x, y = rnd.randrange(800), rnd.randrange(600)
            draw.ellipse((x, y, x + rnd.randrange(20, 200), y + rnd.randrange(20, 200)),
                         fill=tuple(rnd.randrange(256) for _ in range(3)))
        image.save(folder / f"photo-{i:02}.jpg", quality=85)
    return folder


def _jobs(instance: Instance) -> list[dict]:  # type: ignore[type-arg]
    with instance.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(job.c.id, job.c.item_sha256, job.c.status, job.c.attempts, job.c.worker)
            .order_by(job.c.id))]


def _assert_analysed_once(instance: Instance, originals: set[str], ingests: int = 1) -> None:
    """One thumbnail and one derive event per original, nothing stored twice; the
    originals' custody holds their ``ingests`` ingest events and nothing more."""
    with instance.engine.connect() as conn:
        thumbs = conn.execute(select(derived_item.c.original_sha256, func.count())
                              .group_by(derived_item.c.original_sha256)).all()
        leaves = conn.execute(select(ledger_leaf.c.kind, ledger_leaf.c.item_sha256,
                                     func.count())
                              .group_by(ledger_leaf.c.kind, ledger_leaf.c.item_sha256)).all()
        steps = conn.execute(select(analysis.c.item_sha256, func.count())
                             .group_by(analysis.c.item_sha256)).all()
        hashed = conn.execute(select(phash.c.item_sha256, phash.c.variant, func.count())
                              .group_by(phash.c.item_sha256, phash.c.variant)).all()
        derived = set(conn.execute(select(derived_item.c.sha256)).scalars())
    assert {sha: n for sha, n in thumbs} == dict.fromkeys(originals, 1)
    assert {sha: n for kind, sha, n in leaves if kind == DERIVE} == dict.fromkeys(derived, 1)
    assert {sha: n for kind, sha, n in leaves if kind == INGEST} == dict.fromkeys(originals,
                                                                                 ingests)
    assert {kind for kind, _, _ in leaves} == {DERIVE, INGEST}
    assert {sha: n for sha, n in steps} == dict.fromkeys(originals, 3)  # metadata, phash, thumb
    assert all(n == 1 for _, _, n in hashed)
    assert {sha for sha, variant, _ in hashed if variant == "full"} == originals
    assert verify_instance(instance).ok


def test_two_workers_analyse_every_photo_once_despite_duplicate_messages(
        celery_cli: Cli, instance: Instance, tmp_path: Path, workers: list[Worker]) -> None:
    folder = _photos(tmp_path / "photos", 8)
    # Announced on ingest, by `jobs kick`, and by `ingest --wait` again: three messages a job.
    assert celery_cli("ingest", str(folder), "--json").code == ExitCode.OK
    kicked = celery_cli("jobs", "kick", "--json")
    assert kicked.code == ExitCode.OK, kicked.stderr
    assert '"announced": 8' in kicked.stdout
    workers.extend(Worker(celery_cli, tmp_path / f"worker-{i}.log") for i in range(2))
    for w in workers:
        w.wait_ready()
    done = celery_cli("ingest", str(folder), "--wait", "--json", timeout=600)
    assert done.code == ExitCode.OK, done.stderr
    rows = _jobs(instance)
    assert len(rows) == 8
    assert {r["status"] for r in rows} == {"done"}
    assert {r["attempts"] for r in rows} == {1}  # every job started once
    assert len({r["worker"] for r in rows}) >= 2  # both workers' pool processes took jobs
    _assert_analysed_once(instance, {r["item_sha256"] for r in rows}, ingests=2)
    assert [w.stop() for w in workers] == [0, 0]  # SIGTERM: a clean, warm shutdown
    logs = "".join(w.text() for w in workers)
    assert logs.count("succeeded in") >= 16  # the duplicates were delivered too
    assert logs.count(": 'done'") == 8  # ... and only one delivery of each did the work
    assert celery_cli("verify").code == ExitCode.OK


@pytest.mark.parametrize("kill", ["pool-process", "whole-worker"])
def test_worker_killed_mid_job_finishes_the_job_once(
        celery_cli: Cli, instance: Instance, tmp_path: Path, workers: list[Worker],
        kill: str) -> None:
    folder = _photos(tmp_path / "photos", 1)
    first = Worker(celery_cli, tmp_path / "first.log", env={HOLD_ENV: "300"})
    workers.append(first)
    first.wait_ready()
    assert celery_cli("ingest", str(folder), "--json").code == ExitCode.OK

    def results_recorded_not_done() -> bool:
        rows = _jobs(instance)
        with instance.engine.connect() as conn:
            derived = conn.execute(select(func.count()).select_from(ledger_leaf)
                                   .where(ledger_leaf.c.kind == DERIVE)).scalar_one()
        return rows[0]["status"] == "running" and derived == 1

    wait_for(results_recorded_not_done, timeout=180)
    (held,) = _jobs(instance)
    if kill == "pool-process":  # the worker's main process gives the message back
        os.kill(int(held["worker"].rpartition(":")[2]), signal.SIGKILL)
    else:  # the whole worker is gone; another one is started
        first.kill()
        second = Worker(celery_cli, tmp_path / "second.log")
        workers.append(second)
    wait_for(lambda: _jobs(instance)[0]["status"] in ("done", "failed"), timeout=300)
    (finished,) = _jobs(instance)
    assert finished["status"] == "done", finished
    assert finished["attempts"] == 2
    assert finished["worker"] != held["worker"]
    _assert_analysed_once(instance, {finished["item_sha256"]})
    assert celery_cli("verify").code == ExitCode.OK


def test_uploads_and_redaction_requests_through_the_api_reach_the_workers(
        celery_cli: Cli, instance: Instance, tmp_path: Path, workers: list[Worker]) -> None:
    from fastapi.testclient import TestClient

    from conftest import make_api
    from sprava.api.app import create_app
    from sprava.instance import open_instance
    from sprava.settings import load_settings

    served = open_instance(load_settings(instance.settings.home, environ={}))
    assert served.settings.jobs == "celery"
    harness = make_api(served)
    workers.append(Worker(celery_cli, tmp_path / "worker.log", concurrency=2))
    workers[0].wait_ready()
    photo = (_photos(tmp_path / "photos", 1) / "photo-00.jpg").read_bytes()
    try:
        with TestClient(create_app(served, background_jobs=True)) as client:
            up = client.post("/api/v1/items", params={"name": "photo.jpg"}, content=photo,
                             headers=harness.headers("uploader"))
            assert up.status_code == 201, up.text
            sha = up.json()["sha256"]
            asked = client.post(f"/api/v1/items/{sha}/redactions", json={"mode": "pixelate"},
                                headers=harness.headers("investigator"))
            assert asked.status_code == 202, asked.text
            wait_for(lambda: {r["status"] for r in _jobs(served)} == {"done"}, timeout=300)
            client.app.state.jobs.stop()  # type: ignore[attr-defined]
    finally:
        harness.client.close()  # type: ignore[attr-defined]
        served.close()
    with instance.engine.connect() as conn:
        kinds = conn.execute(select(derived_item.c.kind, func.count())
                             .where(derived_item.c.original_sha256 == sha)
                             .group_by(derived_item.c.kind)).all()
    assert dict(kinds) == {"thumbnail": 1, "redaction": 1}
    assert [r["attempts"] for r in _jobs(instance)] == [1, 1]


def test_a_job_over_its_time_limit_is_failed_and_the_worker_goes_on(
        celery_cli: Cli, instance: Instance, tmp_path: Path, workers: list[Worker]) -> None:
    with (instance.settings.home / "sprava.toml").open("a") as config:
        config.write("analysis_max_seconds = 2\n")
    # The hold keeps the first attempt going past its limit: its alarm ends the pool
    # process, the worker gives the message back, and the next claim fails the job.
    worker = Worker(celery_cli, tmp_path / "worker.log", env={HOLD_ENV: "60"})
    workers.append(worker)
    worker.wait_ready()
    assert celery_cli("ingest", str(_photos(tmp_path / "photos", 1)), "--json").code == 0
    wait_for(lambda: _jobs(instance)[0]["status"] in ("done", "failed"), timeout=180)
    status = celery_cli("jobs", "--json")
    assert '"error_code": "time-limit"' in status.stdout, status.stdout
    assert _jobs(instance)[0]["attempts"] == 1
    assert worker.proc.poll() is None  # the worker lives on with a fresh pool process
