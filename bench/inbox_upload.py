"""Encrypt-on-arrival: one large file posted to the insider inbox over HTTP on loopback,
against the ``age`` command encrypting the same file (issue 6's benchmark).

Sprava: ``sprava serve --inbox-only`` on a free loopback port; curl posts the file as the
submission form does (``multipart/form-data``, streamed from disk). The server parses the
form as it arrives, encrypts each piece to the recipient's age key, writes the ciphertext,
pads it to its bucket and fsyncs it before answering with the receipt code page: the time
is curl's, from the first byte sent to the answer. Peer: ``age -r KEY -o OUT FILE`` and
``sync OUT`` (the server's answer also waits for the disk), in one ``sh -c``.

The server's peak RSS is its ``VmHWM`` after all uploads. The first upload is decrypted
back (``sprava inbox export``, then ``age -d`` with the recipient's key) and checked
against the input's SHA-256.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from bench.common import MB, MIB, Ctx, Result, Row, child_env, log, measure, median, run_quiet
from bench.ingest_large import make_random_file

NAME = "inbox_upload"
PASSWORD = "bench inbox quiet harbour lamp"  # noqa: S105 - a throwaway local account


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (scripts/install-test-deps.sh installs "
                           "age; curl comes with the system)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _set_up(home: Path, public_key: str) -> None:
    """An account assigned as recipient with a key held offline (made by age-keygen)."""
    from sprava.accounts import service
    from sprava.accounts.sessions import Principal
    from sprava.inbox import recipients
    from sprava.inbox.service import Inbox
    from sprava.instance import open_instance
    from sprava.settings import load_settings

    instance = open_instance(load_settings(home=home, environ={}))
    try:
        account, _ = service.create_account(instance, {
            "username": "bench", "role": "coordinator", "password": PASSWORD},
            actor="local:bench")
        principal = Principal(account, "token")
        inbox = Inbox(instance)
        recipients.assign(inbox, principal, {"account_id": account.id})
        recipients.set_key(inbox, principal, {"public_key": public_key})
    finally:
        instance.close()


def _up(port: int, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise RuntimeError("sprava serve --inbox-only exited: "
                           + (proc.stderr.read().decode()[-2000:] if proc.stderr else ""))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/inbox/")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc")


def _check_roundtrip(ctx: Ctx, home: Path, key: Path, out: Path, expected: str) -> None:
    listed = json.loads(run_quiet([ctx.sprava, "--home", home, "inbox", "export", "--out",
                                   out, "--json"]))
    files = [f for s in listed["submissions"] for f in s["files"] if f["kind"] == "file"]
    digest = hashlib.sha256()
    with subprocess.Popen([_tool("age"), "-d", "-i", str(key), str(out / files[0]["path"])],
                          stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while block := proc.stdout.read(8 * MIB):
            digest.update(block)
    if proc.returncode != 0 or digest.hexdigest() != expected:
        raise RuntimeError("the stored submission does not decrypt to the input")


def run(ctx: Ctx) -> Result:
    size = (64 if ctx.quick else 1024) * MIB
    repeats = 1 if ctx.quick else 3
    result = Result(NAME, f"encrypt-on-arrival of one {size // MIB} MiB upload over HTTP, "
                          f"median of {repeats}")
    curl, age = _tool("curl"), _tool("age")
    sprava_s: list[float] = []
    peer_s: list[float] = []
    with ctx.tempdir(NAME) as tmp:
        src = tmp / "input.bin"
        log(f"writing {size // MIB} MiB of random bytes")
        expected = make_random_file(src, size)
        key = tmp / "key.txt"
        run_quiet([_tool("age-keygen"), "-o", key])
        public = run_quiet([_tool("age-keygen"), "-y", key]).strip()
        home = tmp / "inst"
        run_quiet([ctx.sprava, "--home", home, "init", "--json"])
        _set_up(home, public)
        port = _free_port()
        env = dict(child_env(), SPRAVA_INBOX_UPLOAD_MAX_MB=str(2 * size // MIB))
        server = subprocess.Popen([ctx.sprava, "--home", str(home), "serve", "--inbox-only",
                                   "--listen", f"127.0.0.1:{port}"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while not _up(port, server):
                if time.monotonic() > deadline:
                    raise RuntimeError("the inbox server did not start")
                time.sleep(0.1)
            rss_start = _peak_rss(server.pid)
            upload = [curl, "-sS", "--fail", "-o", "/dev/null", "-H", "Expect:",
                      "-F", "message=", "-F",
                      f"files=@{src};type=application/octet-stream;filename=input.bin",
                      f"http://127.0.0.1:{port}/inbox/submit"]
            peer_out = tmp / "peer.age"
            peer = ["sh", "-c", 'age -r "$1" -o "$2" "$3" && sync "$2"', "sh", public,
                    str(peer_out), str(src)]
            for rep in range(repeats):
                for side in (("sprava", "peer") if rep % 2 == 0 else ("peer", "sprava")):
                    ctx.prepare_cache(src)
                    if side == "sprava":
                        m = measure(upload)
                        sprava_s.append(m.seconds)
                    else:
                        m = measure(peer)
                        peer_out.unlink()
                        peer_s.append(m.seconds)
                    log(f"run {rep + 1}/{repeats} {side}: {m.seconds:.2f} s "
                        f"({size / MB / m.seconds:.0f} MB/s)")
            rss = _peak_rss(server.pid)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
        log("checking that the first upload decrypts to the input")
        _check_roundtrip(ctx, home, key, tmp / "export", expected)
        del age
    s_time, p_time = median(sprava_s), median(peer_s)
    result.rows += [
        Row("wall time (median)", "s", s_time, "age -r + sync", p_time, "ratio ≤ 1.5",
            s_time / p_time <= 1.5),
        Row("throughput", "MB/s", size / MB / s_time, "age -r + sync", size / MB / p_time),
        Row("server peak RSS (VmHWM)", "MB", rss / MB, target="≤ 200 MB",
            met=rss <= 200 * MB),
        Row("server RSS before the uploads", "MB", rss_start / MB),
    ]
    result.notes.append(
        f"page cache {ctx.cache}; Sprava = curl posting the file as multipart/form-data to "
        "`sprava serve --inbox-only` on loopback (parsed, encrypted to one age X25519 "
        "recipient, padded, fsynced before the answer); peer = `age -r KEY -o OUT FILE && "
        "sync OUT` on the same file")
    result.notes.append("runs (s): Sprava " + ", ".join(f"{v:.2f}" for v in sprava_s)
                        + "; peer " + ", ".join(f"{v:.2f}" for v in peer_s))
    result.details = {"size": size, "cache": ctx.cache, "sprava_seconds": sprava_s,
                      "peer_seconds": peer_s, "server_peak_rss": rss,
                      "server_rss_at_start": rss_start}
    return result
