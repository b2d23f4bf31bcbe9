"""The streaming form reader on hostile bodies: only the form's own fields, capped parts,
the CSRF token first, and nothing kept of a form that fails."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sprava.errors import BadInputError, PermissionDeniedError, SpravaError, TooLargeError
from sprava.inbox import age
from sprava.inbox.form import FormReader
from sprava.inbox.intake import Intake, clean_name
from sprava.inbox.storage import LocalInboxStore

BOUNDARY = "----sprava-test-boundary"
TYPE = f"multipart/form-data; boundary={BOUNDARY}"
KEY = age.Identity.generate()


def part(name: str, body: bytes, filename: str | None = None, extra: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{extra}\r\n"
    return head.encode() + body + b"\r\n"


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


@pytest.fixture
def store(tmp_path: Path) -> LocalInboxStore:
    found = LocalInboxStore(tmp_path / "inbox", fsync=False)
    found.create()
    return found


def read(store: LocalInboxStore, body: bytes, *, limit: int = 1 << 20, piece: int = 7,
         check: Callable[[str | None], None] | None = None) -> Intake:
    intake = Intake(store, [KEY.recipient], message_max=1000, files_max=3)
    reader = FormReader(TYPE, intake, limit=limit, check_csrf=check)
    try:
        for start in range(0, len(body), piece):
            reader.feed(body[start:start + piece])
        reader.close()
    except SpravaError:
        intake.abort()
        raise
    return intake


def test_a_message_and_files_are_encrypted_part_by_part(store: LocalInboxStore) -> None:
    intake = read(store, form(part("message", b"hello\r\nworld"),
                              part("files", b"%PDF-1.4 body", "orders.pdf"),
                              part("files", b"", ""), part("lang", b"uk")))
    assert [(p.kind, p.name, p.size) for p in intake.parts] == [
        ("message", None, 12), ("file", "orders.pdf", 13)]
    assert intake.parts[1].media_type == "application/pdf"
    for stored in intake.parts:
        with (store.tmp / stored.object_id).open("rb") as handle:
            plain = b"".join(age.decrypt_stream(handle, [KEY], length=stored.exact))
        assert plain in (b"hello\r\nworld", b"%PDF-1.4 body")
    intake.abort()
    assert list(store.tmp.iterdir()) == []


@pytest.mark.parametrize(("body", "error", "code"), [
    (form(part("other", b"x")), BadInputError, "unknown-field"),
    (form(part("message", b"x" * 1001)), TooLargeError, "message-too-long"),
    (form(*[part("files", b"x", f"{n}.txt") for n in range(4)]), BadInputError,
     "too-many-files"),
    (form(part("lang", b"x" * 300)), BadInputError, "bad-form"),
    (form(part("lang", b"en"), part("lang", b"uk")), BadInputError, "bad-form"),
    (form(part("message", b"x"))[:-20], BadInputError, "bad-form"),
    (b"no boundary at all" * 10, BadInputError, "bad-form"),
    (form(*[part("lang", b"") for _ in range(70)]), BadInputError, "bad-form"),
    (form(part("message", b"x", extra="X-Long: " + "a" * 5000 + "\r\n")), BadInputError,
     "bad-form"),
    (form(part("files", b"x" * 9000, "big.bin")), TooLargeError, "too-large"),
], ids=["unknown-field", "message-too-long", "too-many-files", "long-small-field",
        "repeated-field", "cut-short", "not-multipart", "too-many-parts", "long-header",
        "over-the-limit"])
def test_hostile_forms_are_refused_and_nothing_is_kept(store: LocalInboxStore, body: bytes,
                                                       error: type[SpravaError],
                                                       code: str) -> None:
    with pytest.raises(error) as caught:
        read(store, body, limit=8192)
    assert caught.value.code == code
    assert list(store.tmp.iterdir()) == []
    assert list(store.stored()) == []


def test_the_csrf_token_must_come_first_and_match(store: LocalInboxStore) -> None:
    def check(value: str | None) -> None:
        if value != "right":
            raise PermissionDeniedError("stale", code="csrf-failed")

    accepted = read(store, form(part("csrf", b"right"), part("message", b"x")), check=check)
    assert len(accepted.parts) == 1
    accepted.abort()
    for body in (form(part("message", b"x"), part("csrf", b"right")),
                 form(part("csrf", b"wrong"), part("message", b"x"))):
        with pytest.raises(PermissionDeniedError):
            read(store, body, check=check)
    assert list(store.tmp.iterdir()) == []


def test_the_wrong_content_type_is_refused(store: LocalInboxStore) -> None:
    intake = Intake(store, [KEY.recipient], message_max=10)
    for kind in ("application/json", "multipart/form-data", "text/plain; boundary=x"):
        with pytest.raises(BadInputError):
            FormReader(kind, intake, limit=10)


@pytest.mark.parametrize(("raw", "clean"), [
    ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\Desktop\\orders.pdf", "orders.pdf"),
    ("na\u202eme.pdf", "name.pdf"), ("..", "file"), ("", "file"), ("a\x00b\r\nc.txt", "abc.txt"),
    ("x" * 500 + ".pdf", "x" * 200), ("  spaced   out .doc ", "spaced out .doc"),
])
def test_hostile_file_names_are_made_harmless(raw: str, clean: str) -> None:
    assert clean_name(raw) == clean
