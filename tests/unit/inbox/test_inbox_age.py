"""Sprava's age implementation against the reference ``age`` tool and against pyrage, both
ways, and a tamper corpus: one damaged file per attack, each with its exact error code."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import pyrage
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprava.errors import BadInputError
from sprava.inbox import age
from sprava.inbox.age import CHUNK, AgeError, Identity, NotARecipientError, Recipient

SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17]
AGE = shutil.which("age")


def _require_age() -> str:
    if AGE is None:
        pytest.fail("the age tool is not installed: run scripts/install-test-deps.sh")
    return AGE


def _encrypt_pieces(data: bytes, recipients: list[Recipient], step: int) -> bytes:
    enc = age.Encryptor(recipients)
    out = bytearray()
    for start in range(0, len(data), step):
        out += enc.update(data[start:start + step])
    out += enc.finish()
    return bytes(out)


def test_the_spec_example_key_gives_the_spec_example_recipient() -> None:
    identity = Identity.parse(
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
    assert str(identity.recipient) == (
        "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj")
    assert str(identity) == (
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
    assert "SECRET" not in repr(identity)


@pytest.mark.parametrize("text", [
    "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwx",  # checksum
    "age1ZVKyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",  # mixed case
    "age1qqqqqqqqqqqqqqqqqqqq", "bc1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",
    "", "1" * 500, "age1\x00zvk",
])
def test_bad_public_keys_are_refused(text: str) -> None:
    with pytest.raises(BadInputError) as caught:
        Recipient.parse(text)
    assert caught.value.code == "bad-age-key"


@pytest.mark.parametrize("size", SIZES)
def test_pyrage_reads_what_we_write_and_we_read_what_it_writes(size: int) -> None:
    data = os.urandom(size)
    ours = Identity.generate()
    theirs = pyrage.x25519.Identity.from_str(str(ours))
    assert str(theirs.to_public()) == str(ours.recipient)
    for step in (1000, CHUNK, 10 * CHUNK):
        assert pyrage.decrypt(_encrypt_pieces(data, [ours.recipient], step), [theirs]) == data
    assert age.decrypt(pyrage.encrypt(data, [theirs.to_public()]), [ours]) == data


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3 * CHUNK + 5),
       cuts=st.lists(st.integers(min_value=0, max_value=3 * CHUNK + 5), max_size=6))
def test_any_split_of_the_input_gives_a_file_pyrage_reads(data: bytes, cuts: list[int]) -> None:
    identity = Identity.generate()
    enc = age.Encryptor([identity.recipient])
    out = bytearray()
    last = 0
    for cut in sorted({min(c, len(data)) for c in cuts}):
        out += enc.update(data[last:cut])
        last = cut
    out += enc.update(data[last:])
    out += enc.finish()
    assert pyrage.decrypt(bytes(out), [pyrage.x25519.Identity.from_str(str(identity))]) == data


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3])
def test_the_age_tool_reads_what_we_write(tmp_path: Path, size: int) -> None:
    tool = _require_age()
    data = os.urandom(size)
    first, second = Identity.generate(), Identity.generate()
    sealed = tmp_path / "x.age"
    sealed.write_bytes(_encrypt_pieces(data, [first.recipient, second.recipient], 4096))
    for n, identity in enumerate((first, second)):
        key = tmp_path / f"key{n}.txt"
        key.write_text(f"{identity}\n")
        done = subprocess.run([tool, "-d", "-i", str(key), str(sealed)], capture_output=True,
                              check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout == data


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3])
def test_we_read_what_the_age_tool_writes(size: int) -> None:
    tool = _require_age()
    data = os.urandom(size)
    identity = Identity.generate()
    done = subprocess.run([tool, "-r", str(identity.recipient), "-r",
                           str(Identity.generate().recipient)], input=data,
                          capture_output=True, check=True)
    assert age.decrypt(done.stdout, [identity]) == data
    stream = age.decrypt_stream(io.BytesIO(done.stdout + b"padding"), [identity],
                                length=len(done.stdout))
    assert b"".join(stream) == data


def test_encrypting_holds_no_more_than_a_chunk_back() -> None:
    identity = Identity.generate()
    piece = os.urandom(1 << 20)
    enc = age.Encryptor([identity.recipient])
    tracemalloc.start()
    try:
        for _ in range(64):
            enc.update(piece)
        enc.finish()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * (1 << 20), peak  # 64 MiB went through


# --- the tamper corpus --------------------------------------------------------------------

IDENTITY = Identity.parse(
    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
DATA = bytes(range(256)) * 600  # three chunks: two full, one short


def _sealed() -> bytes:
    return age.encrypt(DATA, [IDENTITY.recipient])


def _header_end(blob: bytes) -> int:
    return blob.index(b"\n---") + blob[blob.index(b"\n---") + 1:].index(b"\n") + 2


def _flip(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1:]


def _mac_changed(blob: bytes) -> bytes:
    end = _header_end(blob)
    return _flip(blob, end - 3)


def _stanza_arg_changed(blob: bytes) -> bytes:
    line = blob.index(b"-> X25519 ") + 12
    return blob[:line] + (b"B" if blob[line:line + 1] != b"B" else b"C") + blob[line + 1:]


def _payload_flipped(blob: bytes) -> bytes:
    return _flip(blob, _header_end(blob) + 16 + 100)


def _last_chunk_cut(blob: bytes) -> bytes:
    return blob[:-5]


def _final_chunk_dropped(blob: bytes) -> bytes:
    start = _header_end(blob) + 16
    return blob[:start + 2 * (CHUNK + 16)]


def _chunks_swapped(blob: bytes) -> bytes:
    start = _header_end(blob) + 16
    first = blob[start:start + CHUNK + 16]
    second = blob[start + CHUNK + 16:start + 2 * (CHUNK + 16)]
    return blob[:start] + second + first + blob[start + 2 * (CHUNK + 16):]


def _extended(blob: bytes) -> bytes:
    return blob + b"\x00"


def _version_changed(blob: bytes) -> bytes:
    return blob.replace(b"age-encryption.org/v1", b"age-encryption.org/v2", 1)


def _non_canonical_base64(blob: bytes) -> bytes:
    end = _header_end(blob)
    mac = blob[blob.index(b"\n--- ") + 5:end - 1]
    return blob.replace(mac, mac[:-1] + b"=", 1)


def _header_endless(_blob: bytes) -> bytes:
    return b"age-encryption.org/v1\n-> X25519 " + b"A" * 100_000


def _low_order_share(blob: bytes) -> bytes:
    start = blob.index(b"-> X25519 ") + len(b"-> X25519 ")
    end = blob.index(b"\n", start)
    return blob[:start] + b"A" * 43 + blob[end:]


def _not_for_us(_blob: bytes) -> bytes:
    return age.encrypt(DATA, [Identity.generate().recipient])


CORPUS = [
    (_mac_changed, AgeError, "age-bad-mac"),
    (_stanza_arg_changed, NotARecipientError, "not-a-recipient"),
    (_payload_flipped, AgeError, "age-bad-chunk"),
    (_last_chunk_cut, AgeError, "age-bad-chunk"),
    (_final_chunk_dropped, AgeError, "age-bad-chunk"),
    (_chunks_swapped, AgeError, "age-bad-chunk"),
    (_extended, AgeError, "age-bad-chunk"),
    (_version_changed, AgeError, "age-bad-header"),
    (_non_canonical_base64, AgeError, "age-bad-header"),
    (_header_endless, AgeError, "age-bad-header"),
    (_low_order_share, AgeError, "age-bad-header"),
    (_not_for_us, NotARecipientError, "not-a-recipient"),
]


@pytest.mark.parametrize(("attack", "error", "code"), CORPUS,
                         ids=[a.__name__.strip("_") for a, _, _ in CORPUS])
def test_each_attack_is_refused_with_its_code(tmp_path: Path, attack, error,  # type: ignore[no-untyped-def]
                                              code) -> None:
    blob = attack(_sealed())
    with pytest.raises(error) as caught:
        age.decrypt(blob, [IDENTITY])
    assert caught.value.code == code
    # and the reference tool refuses the same file
    (tmp_path / "key.txt").write_text(f"{IDENTITY}\n")
    (tmp_path / "x.age").write_bytes(blob)
    done = subprocess.run([_require_age(), "-d", "-i", str(tmp_path / "key.txt"),
                           str(tmp_path / "x.age")], capture_output=True, check=False)
    assert done.returncode != 0


def test_the_untampered_file_decrypts() -> None:
    assert age.decrypt(_sealed(), [IDENTITY]) == DATA
