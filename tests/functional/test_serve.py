"""``sprava serve`` as a user starts it: a real server process on loopback, spoken to
over real HTTP (session cookie, CSRF, a streamed upload), then stopped."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

from conftest import Cli, _free_port, wait_for
from sprava.instance import Instance


class Server:
    def __init__(self, cli: Cli) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            cli.argv("serve", "--listen", f"127.0.0.1:{self.port}"), env=cli.env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.cookie = ""
        self.csrf = ""
        wait_for(self._up, timeout=60)

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(self.proc.stderr.read().decode() if self.proc.stderr else "")
        try:
            return self.request("GET", "/api/v1/health")[0] == 200
        except OSError:
            return False

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = dict(headers or {})
        if self.cookie:
            sent["Cookie"] = self.cookie
        if self.csrf and method != "GET":
            sent["X-CSRF-Token"] = self.csrf
        chunked = isinstance(body, Iterator)
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=sent, encode_chunked=chunked)
        response = conn.getresponse()
        raw = response.read()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        conn.close()
        return response.status, json.loads(raw) if raw else None

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        _out, err = self.proc.communicate(timeout=60)
        return err.decode()


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_first_start_prints_a_password_once_and_the_api_works(instance: Instance,
                                                              cli: Cli) -> None:
    server = Server(cli)
    try:
        status, _ = server.request("GET", "/api/v1/incidents")
        assert status == 401
    finally:
        err = server.stop()
    found = re.search(r"user name (\S+), one-time password (\S+)", err)
    assert found is not None, err
    name, password = found.groups()

    server = Server(cli)
    try:
        status, body = server.request("POST", "/api/v1/auth/login",
                                      {"username": name, "password": password})
        assert status == 200, body
        assert body["account"]["must_change_password"] is True
        server.csrf = body["csrf_token"]
        status, body = server.request("GET", "/api/v1/incidents")
        assert (status, body["error"]["code"]) == (403, "password-change-required")
        status, _ = server.request("POST", "/api/v1/auth/password",
                                   {"current": password, "new": "a new long passphrase 7"})
        assert status == 204
        data = os.urandom(3 * 1024 * 1024 + 17)
        status, body = server.request(
            "POST", "/api/v1/items?name=clip.bin&source=volunteer%2012",
            _chunks(data, 256 * 1024), {"Content-Type": "application/octet-stream"})
        assert status == 201, body
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        status, body = server.request("GET", f"/api/v1/items/{body['sha256']}")
        assert status == 200
        assert body["names"][0]["source"] == "volunteer 12"
        assert body["custody"][0]["event"]["actor"] == f"user:{name}"
        status, _ = server.request("POST", "/api/v1/auth/logout")
        assert status == 204
        server.csrf = ""
        status, _ = server.request("GET", "/api/v1/items")
        assert status == 401
    finally:
        err = server.stop()
    assert "one-time password" not in err
    assert cli("verify").code == 0
