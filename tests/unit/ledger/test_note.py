"""C2SP signed notes with Ed25519, against the vectors of golang.org/x/mod/sumdb/note.

The keys, the text and both signatures are the ones of Go's ``note_test.go`` (TestSign,
TestOpen, TestNewVerifier, TestNewSigner); Ed25519 is deterministic, so our signer must
reproduce Go's note byte for byte.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sprava.errors import BadInputError
from sprava.ledger.note import (
    MAX_SIGNATURES,
    NoteError,
    NoteSigner,
    NoteVerifier,
    key_id,
    open_note,
)

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
ENOCH_B64 = (
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)
PETER_SIG = f"\u2014 PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"\u2014 EnochRoot {ENOCH_B64}\n"
SIGNED = TEXT + "\n" + PETER_SIG


@pytest.fixture
def peter() -> NoteVerifier:
    return NoteVerifier.parse(PETER_VKEY)


@pytest.fixture
def enoch() -> NoteVerifier:
    return NoteVerifier.parse(ENOCH_VKEY)


def _resign_line(name: str, raw: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(raw).decode()}\n"


def _peter_raw() -> bytes:
    return base64.b64decode(PETER_B64)


def _with_flipped_signature_byte() -> str:
    raw = bytearray(_peter_raw())
    raw[4 + 17] ^= 0x01  # inside the Ed25519 signature, past the 4-byte key id
    return TEXT + "\n" + _resign_line("PeterNeumann", bytes(raw))


def _with_wrong_key_id() -> str:
    raw = bytearray(_peter_raw())
    raw[0] ^= 0xFF
    return TEXT + "\n" + _resign_line("PeterNeumann", bytes(raw))


# --- the Go vector --------------------------------------------------------------------------


def test_signer_reproduces_the_go_note_byte_for_byte() -> None:
    note = NoteSigner.parse(PETER_SKEY).sign(TEXT)
    assert note == SIGNED
    assert note.encode() == SIGNED.encode("utf-8")
    assert "\u2014" in note  # an em dash, not a hyphen


def test_verifier_key_round_trips(peter: NoteVerifier) -> None:
    assert peter.name == "PeterNeumann"
    assert peter.key_id.hex() == "c74f20a3"
    assert key_id("PeterNeumann", peter.public_key).hex() == "c74f20a3"
    assert str(peter) == PETER_VKEY
    assert NoteVerifier.parse(str(peter)) == peter


def test_signer_key_round_trips(peter: NoteVerifier) -> None:
    signer = NoteSigner.parse(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.private_key_string() == PETER_SKEY
    assert signer.verifier == peter
    assert str(signer.verifier) == PETER_VKEY


def test_signer_repr_hides_the_private_key() -> None:
    signer = NoteSigner.parse(PETER_SKEY)
    assert "AYEKFALV" not in repr(signer)


@pytest.mark.parametrize(
    "note",
    [SIGNED, SIGNED.encode("utf-8")],
    ids=["str", "bytes"],
)
def test_open_note_returns_the_text(peter: NoteVerifier, note: str | bytes) -> None:
    assert open_note(note, peter) == TEXT


def test_second_go_key_opens_its_own_signature(enoch: NoteVerifier) -> None:
    assert enoch.key_id.hex() == "af0cfe78"
    assert open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, enoch) == TEXT


# --- tampering: one case per attack, each with its exact code ----------------------------------


@pytest.mark.parametrize(
    ("note", "code", "match"),
    [
        (
            SIGNED.replace("cryptography", "cryptographY"),
            "bad-signature", "does not verify",
        ),
        (SIGNED.replace("problem,", "problem;"), "bad-signature", "does not verify"),
        (_with_flipped_signature_byte(), "bad-signature", "does not verify"),
        (
            # Go's TestOpen "invalid signature": four base64 characters spliced in
            TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:],
            "bad-signature", "does not verify",
        ),
        (TEXT + "\n" + ENOCH_SIG, "unknown-key", r"no signature by PeterNeumann\+c74f20a3"),
        (_with_wrong_key_id(), "unknown-key", r"no signature by PeterNeumann\+c74f20a3"),
        (
            # Go's TestOpen "wrongHash": the key id bytes rewritten in base64
            TEXT + "\n" + PETER_SIG.replace("x08g", "xxxx"),
            "unknown-key", "no signature by",
        ),
        (
            TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "CarmenSandiego"),
            "unknown-key", "no signature by",
        ),
        (TEXT, "malformed-note", "no signature block"),
        (TEXT + "\n", "malformed-note", "malformed signature line"),
        (SIGNED[:-1], "malformed-note", "no signature block"),
        (
            TEXT + "\n\u2014 PeterNeumann !!not*base64!!\n",
            "malformed-note", "is not base64",
        ),
        (
            TEXT + "\n" + PETER_SIG.replace("AM=\n", "AM\n"),
            "malformed-note", "is not base64",
        ),
        (TEXT + "\n\u2014 PeterNeumann AAAAAA==\n", "malformed-note", "too short"),
        (
            TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1),
            "malformed-note", "too many signatures",
        ),
        (
            "\x01" + SIGNED,
            "malformed-note", "must not hold control characters",
        ),
        (b"\xff" + SIGNED.encode(), "malformed-note", "not UTF-8"),
        (
            TEXT + "\n" + "\u2014 Bad Name " + PETER_B64 + "\n",
            "malformed-note", "malformed signature line",
        ),
        (
            TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
            "malformed-note", "malformed signature line",
        ),
        (
            TEXT + "\n" + PETER_SIG.replace("\u2014", "-"),
            "malformed-note", "malformed signature line",
        ),
        (
            TEXT + "\n" + PETER_SIG.replace("PeterNeumann ", "PeterNeumann  "),
            "malformed-note", "malformed signature line",
        ),
    ],
    ids=[
        "altered-text",
        "altered-punctuation",
        "altered-signature-byte",
        "go-spliced-signature",
        "signed-by-another-key-only",
        "wrong-key-id",
        "go-wrong-key-hash",
        "go-misnamed-signer",
        "missing-signature-block",
        "blank-line-but-no-signatures",
        "no-trailing-newline",
        "garbage-base64",
        "base64-without-padding",
        "signature-shorter-than-key-id",
        "too-many-signatures",
        "control-character",
        "invalid-utf8",
        "go-name-with-space",
        "go-unexpected-line",
        "hyphen-instead-of-em-dash",
        "double-space",
    ],
)
def test_tampered_note_is_refused(
    peter: NoteVerifier, note: str | bytes, code: str, match: str
) -> None:
    with pytest.raises(NoteError, match=match) as excinfo:
        open_note(note, peter)
    assert excinfo.value.code == code


def test_the_signature_limit_itself_is_accepted(peter: NoteVerifier) -> None:
    assert MAX_SIGNATURES == 100  # as in Go's note.Open
    assert open_note(TEXT + "\n" + PETER_SIG * MAX_SIGNATURES, peter) == TEXT


def test_signatures_by_unknown_keys_are_ignored(peter: NoteVerifier) -> None:
    unknown = _resign_line("example.com/other-log", bytes(range(68)))
    enoch_forged = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    note = TEXT + "\n" + ENOCH_SIG + unknown + PETER_SIG + PETER_SIG + enoch_forged
    assert open_note(note, peter) == TEXT


def test_signature_by_a_lookalike_key_is_ignored(peter: NoteVerifier) -> None:
    """Same name, other key: an unknown key, not a forgery (C2SP signed-note §Signatures)."""
    lookalike = NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(bytes(32)))
    assert lookalike.verifier.key_id != peter.key_id
    note = lookalike.sign(TEXT)
    with pytest.raises(NoteError, match="no signature by") as excinfo:
        open_note(note, peter)
    assert excinfo.value.code == "unknown-key"
    assert open_note(note[:-1] + "\n" + PETER_SIG, peter) == TEXT


# --- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("position", range(len(PETER_VKEY)), ids=lambda i: f"byte-{i:02d}")
def test_every_incremented_byte_of_the_verifier_key_is_refused(position: int) -> None:
    mangled = (
        PETER_VKEY[:position] + chr(ord(PETER_VKEY[position]) + 1) + PETER_VKEY[position + 1 :]
    )
    with pytest.raises(BadInputError, match="verifier key") as excinfo:
        NoteVerifier.parse(mangled)
    assert excinfo.value.code == "bad-verifier-key"


def test_every_proper_substring_of_the_verifier_key_is_refused() -> None:
    """Go's TestNewVerifier: no slice of a key is itself a key."""
    outcomes: dict[str, str] = {}
    for i in range(len(PETER_VKEY)):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) == (0, len(PETER_VKEY)):
                continue
            try:
                NoteVerifier.parse(PETER_VKEY[i:j])
            except BadInputError as exc:
                outcomes[PETER_VKEY[i:j]] = exc.code
            else:
                outcomes[PETER_VKEY[i:j]] = "accepted"
    assert [k for k, outcome in outcomes.items() if outcome == "accepted"] == []
    assert set(outcomes.values()) <= {"bad-verifier-key", "bad-key-name"}


@pytest.mark.parametrize("position", range(len(PETER_SKEY)), ids=lambda i: f"byte-{i:02d}")
def test_every_incremented_byte_of_the_signer_key_is_refused(position: int) -> None:
    mangled = (
        PETER_SKEY[:position] + chr(ord(PETER_SKEY[position]) + 1) + PETER_SKEY[position + 1 :]
    )
    with pytest.raises(BadInputError, match="signer key") as excinfo:
        NoteSigner.parse(mangled)
    assert excinfo.value.code == "bad-signer-key"


def test_every_proper_substring_of_the_signer_key_is_refused() -> None:
    """Go's TestNewSigner."""
    outcomes: dict[str, str] = {}
    for i in range(len(PETER_SKEY)):
        for j in range(i + 1, len(PETER_SKEY) + 1):
            if (i, j) == (0, len(PETER_SKEY)):
                continue
            try:
                NoteSigner.parse(PETER_SKEY[i:j])
            except BadInputError as exc:
                outcomes[PETER_SKEY[i:j]] = exc.code
            else:
                outcomes[PETER_SKEY[i:j]] = "accepted"
    assert [k for k, outcome in outcomes.items() if outcome == "accepted"] == []
    assert set(outcomes.values()) <= {"bad-signer-key", "bad-key-name"}


@pytest.mark.parametrize(
    ("vkey", "match"),
    [
        (
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "not an Ed25519 key",
        ),
        (
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "not an Ed25519 key",
        ),
        ("PeterNeumann+c74f20a3", "not a note verifier key"),
        ("", "not a note verifier key"),
    ],
    ids=[
        "go-wrong-length-key",
        "go-unknown-algorithm",
        "no-key",
        "empty",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str, match: str) -> None:
    with pytest.raises(BadInputError, match=match) as excinfo:
        NoteVerifier.parse(vkey)
    assert excinfo.value.code == "bad-verifier-key"


@pytest.mark.parametrize(
    "name",
    ["", "Peter Neumann", "Peter+Neumann", "Peter\tNeumann", "Peter\u2003Neumann", "Peter\x7f"],
    ids=["empty", "space", "plus", "tab", "unicode-space", "control"],
)
def test_invalid_key_names_are_refused(peter: NoteVerifier, name: str) -> None:
    with pytest.raises(BadInputError, match="invalid note key name") as excinfo:
        NoteVerifier(name, peter.public_key)
    assert excinfo.value.code == "bad-key-name"
    with pytest.raises(BadInputError, match="invalid note key name") as excinfo:
        NoteSigner(name, Ed25519PrivateKey.from_private_bytes(bytes(32)))
    assert excinfo.value.code == "bad-key-name"


def test_verifier_refuses_a_short_public_key() -> None:
    with pytest.raises(BadInputError, match="32 bytes") as excinfo:
        NoteVerifier("PeterNeumann", bytes(31))
    assert excinfo.value.code == "bad-verifier-key"


@pytest.mark.parametrize(
    "text",
    ["abc", TEXT[:-1], "bell\x07\n", "carriage\r\nreturn\n"],
    ids=["go-short-text", "no-trailing-newline", "control-character", "carriage-return"],
)
def test_signer_refuses_text_it_cannot_sign(text: str) -> None:
    with pytest.raises(NoteError, match="note text must") as excinfo:
        NoteSigner.parse(PETER_SKEY).sign(text)
    assert excinfo.value.code == "malformed-note"


def test_generated_key_signs_and_opens() -> None:
    signer = NoteSigner.generate("example.com/sprava-test")
    again = NoteSigner.parse(signer.private_key_string())
    verifier = NoteVerifier.parse(str(signer.verifier))
    assert again.verifier == verifier
    assert open_note(again.sign("hello\n"), verifier) == "hello\n"
    other = NoteSigner.generate("example.com/sprava-test")
    with pytest.raises(NoteError, match="no signature by") as excinfo:
        open_note(other.sign("hello\n"), verifier)
    assert excinfo.value.code == "unknown-key"


# --- conformance with c2sp.org/signed-note ---------------------------------------------------


def test_note_text_may_contain_blank_lines(peter: NoteVerifier) -> None:
    """c2sp.org/signed-note: "The note text MAY contain empty lines; the text is separated
    from the signatures by the last empty line in the note."

    Go's note.Open accepts such a note and note.Sign writes it (the spec's own example text
    has a blank line). The note is built here with the raw Ed25519 key, exactly as Go's Sign
    lays it out, so that the check does not lean on our own signer.
    """
    text = (
        "Ognuno sta solo sul cuor della terra\n"
        "trafitto da un raggio di sole:\n"
        "\n"
        "ed è subito sera.\n"
    )
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])[1:]
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(text.encode())
    assert hashlib.sha256(b"PeterNeumann\n\x01" + peter.public_key).digest()[:4] == peter.key_id
    note = text + "\n" + _resign_line("PeterNeumann", peter.key_id + signature)
    assert open_note(note, peter) == text
    assert NoteSigner.parse(PETER_SKEY).sign(text) == note
    tampered = note.replace("\n\ned", "\ned", 1)  # dropping the blank line breaks the signature
    with pytest.raises(NoteError, match="does not verify") as excinfo:
        open_note(tampered, peter)
    assert excinfo.value.code == "bad-signature"
