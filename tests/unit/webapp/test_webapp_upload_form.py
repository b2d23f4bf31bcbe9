"""The upload page's streaming form reader: parts come out whole whatever the chunking of
the body, and a malformed or oversized body is refused with a named error."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from sprava.errors import BadInputError, TooLargeError
from sprava.webapp.upload import _Parts

BOUNDARY = "----sprava-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _body(*parts: tuple[str, str | None, bytes], end: bool = True) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n").encode()
        out += data + b"\r\n"
    return out + (f"--{BOUNDARY}--\r\n".encode() if end else b"")


def _puller(body: bytes, size: int) -> Callable[[], bytes | None]:
    chunks: Iterator[bytes] = iter([body[i:i + size] for i in range(0, len(body), size)])
    return lambda: next(chunks, None)


def _read(parts: _Parts) -> list[tuple[str, bytes | None, bytes]]:
    found: list[tuple[str, bytes | None, bytes]] = []
    while (event := parts.next()) is not None:
        if event[0] == "part":
            found.append((event[1], event[2], b""))
        elif event[0] == "data":
            name, filename, data = found[-1]
            found[-1] = (name, filename, data + event[1])
    return found


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
def test_parts_come_out_whole_whatever_the_chunking(size: int) -> None:
    photo = os.urandom(50_000) + b"\r\n--" + os.urandom(100)  # a boundary-like tail
    body = _body(("csrf", None, b"token"), ("source", None, "волонтёр 7".encode()),
                 ("files", "a.jpg", photo), ("files", "b.bin", b""))
    parts = _Parts(CONTENT_TYPE, _puller(body, size), limit=len(body))
    assert _read(parts) == [("csrf", None, b"token"),
                            ("source", None, "волонтёр 7".encode()),
                            ("files", b"a.jpg", photo), ("files", b"b.bin", b"")]


def test_a_body_over_the_limit_is_refused() -> None:
    body = _body(("files", "a.jpg", b"x" * 5000))
    parts = _Parts(CONTENT_TYPE, _puller(body, 1000), limit=3000)
    with pytest.raises(TooLargeError):
        _read(parts)


def test_a_body_cut_short_is_refused() -> None:
    body = _body(("files", "a.jpg", b"x" * 5000), end=False)[:-100]
    parts = _Parts(CONTENT_TYPE, _puller(body, 1000), limit=10_000)
    with pytest.raises(BadInputError, match="ended early"):
        _read(parts)


def test_only_multipart_forms_are_read() -> None:
    with pytest.raises(BadInputError, match="multipart/form-data"):
        _Parts("application/x-www-form-urlencoded", lambda: None, limit=10)
