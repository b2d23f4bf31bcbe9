"""C2SP tlog-checkpoint bodies, and signed checkpoints opened with open_checkpoint."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sprava.ledger.merkle import EMPTY_ROOT, root_of
from sprava.ledger.note import Checkpoint, NoteError, NoteSigner, open_checkpoint

ORIGIN = "example.com/sprava-test-log"
# The body of the example in c2sp.org/tlog-checkpoint.
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
ROOT = root_of([b"first", b"second", b"third"])
ROOT_B64 = base64.b64encode(ROOT).decode()


def _signer(name: str, seed: bytes) -> NoteSigner:
    """A fixed Ed25519 key, so that every run signs the same bytes."""
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest()))


@pytest.fixture
def log_signer() -> NoteSigner:
    return _signer(ORIGIN, b"sprava test log key")


@pytest.fixture
def checkpoint() -> Checkpoint:
    return Checkpoint(ORIGIN, 3, ROOT, ("tile-height 8", "\u2014 not a signature"))


# --- bodies ---------------------------------------------------------------------------------


def test_spec_example_body_parses_and_round_trips() -> None:
    parsed = Checkpoint.parse(SPEC_BODY)
    assert parsed.origin == "example.com/behind-the-sofa"
    assert parsed.size == 20852163
    assert parsed.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert parsed.extensions == ()
    assert parsed.to_text() == SPEC_BODY


def test_round_trip_with_extension_lines(checkpoint: Checkpoint) -> None:
    text = checkpoint.to_text()
    assert text == f"{ORIGIN}\n3\n{ROOT_B64}\ntile-height 8\n\u2014 not a signature\n"
    assert Checkpoint.parse(text) == checkpoint


@pytest.mark.parametrize(
    "body",
    [
        Checkpoint(ORIGIN, 0, EMPTY_ROOT),
        Checkpoint(ORIGIN, 2**64 - 1, ROOT),
        Checkpoint("an origin with spaces", 1, bytes(32), ("x",)),
    ],
    ids=["empty-tree", "largest-uint64", "spaces-in-origin"],
)
def test_round_trip_edge_cases(body: Checkpoint) -> None:
    assert Checkpoint.parse(body.to_text()) == body


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "ends with a newline"),
        ("\n", "an origin, a size and a root hash"),
        (f"{ORIGIN}\n", "an origin, a size and a root hash"),
        (f"{ORIGIN}\n3\n", "an origin, a size and a root hash"),
        (f"\n3\n{ROOT_B64}\n", "an origin, a size and a root hash"),
        (f"{ORIGIN}\n{ROOT_B64}\n3\n", "bad tree size"),
        (f"{ORIGIN}\n03\n{ROOT_B64}\n", "bad tree size"),
        (f"{ORIGIN}\n00\n{ROOT_B64}\n", "bad tree size"),
        (f"{ORIGIN}\n-3\n{ROOT_B64}\n", "bad tree size"),
        (f"{ORIGIN}\n+3\n{ROOT_B64}\n", "bad tree size"),
        (f"{ORIGIN}\n 3\n{ROOT_B64}\n", "bad tree size"),
        (f"{ORIGIN}\n3.0\n{ROOT_B64}\n", "bad tree size"),
        (f"{ORIGIN}\n0x3\n{ROOT_B64}\n", "bad tree size"),
        (f"{ORIGIN}\n1_000\n{ROOT_B64}\n", "bad tree size"),
        (f"{ORIGIN}\n\u0663\n{ROOT_B64}\n", "bad tree size"),  # ARABIC-INDIC DIGIT THREE
        (f"{ORIGIN}\n\n{ROOT_B64}\n", "bad tree size"),
        (f"{ORIGIN}\n3\nnot base64!\n", "not base64"),
        (f"{ORIGIN}\n3\n{ROOT.hex()}\n", "not 32 bytes"),  # hex digits are base64 too
        (f"{ORIGIN}\n3\n{ROOT_B64[:-1]}\n", "not base64"),
        (f"{ORIGIN}\n3\n{base64.b64encode(ROOT[:31]).decode()}\n", "not 32 bytes"),
        (f"{ORIGIN}\n3\n{base64.b64encode(ROOT + b'!').decode()}\n", "not 32 bytes"),
        (f"{ORIGIN}\n3\n\n", "not 32 bytes"),
        (f"{ORIGIN}\n3\n{ROOT_B64}\n\n", "empty extension line"),
        (f"{ORIGIN}\n3\n{ROOT_B64}\nfirst\n\nthird\n", "empty extension line"),
        (f"{ORIGIN}\n3\n{ROOT_B64}", "ends with a newline"),
        (f"{ORIGIN}\r\n3\r\n{ROOT_B64}\r\n", "bad tree size"),
    ],
    ids=[
        "empty",
        "blank-line-only",
        "origin-only",
        "no-root-line",
        "empty-origin",
        "size-and-root-swapped",
        "leading-zero",
        "zero-with-leading-zero",
        "negative-size",
        "plus-sign",
        "space-before-size",
        "decimal-point",
        "hex-size",
        "underscore-in-size",
        "non-ascii-digit",
        "empty-size",
        "non-base64-root",
        "hex-root",
        "truncated-base64-root",
        "root-of-31-bytes",
        "root-of-33-bytes",
        "empty-root",
        "trailing-empty-extension",
        "empty-extension-between-lines",
        "no-trailing-newline",
        "crlf-line-ends",
    ],
)
def test_malformed_checkpoint_is_refused(text: str, match: str) -> None:
    with pytest.raises(NoteError, match=match) as excinfo:
        Checkpoint.parse(text)
    assert excinfo.value.code == "malformed-checkpoint"


# --- signed checkpoints ---------------------------------------------------------------------


def test_open_checkpoint_returns_the_signed_checkpoint(
    log_signer: NoteSigner, checkpoint: Checkpoint
) -> None:
    note = log_signer.sign(checkpoint.to_text())
    assert open_checkpoint(note, log_signer.verifier) == checkpoint
    assert open_checkpoint(note.encode(), log_signer.verifier) == checkpoint


def test_signing_is_deterministic(log_signer: NoteSigner, checkpoint: Checkpoint) -> None:
    again = _signer(ORIGIN, b"sprava test log key")
    assert again.sign(checkpoint.to_text()) == log_signer.sign(checkpoint.to_text())


def test_origin_must_be_the_key_name(log_signer: NoteSigner) -> None:
    foreign = Checkpoint("example.com/another-log", 3, ROOT)
    note = log_signer.sign(foreign.to_text())  # a valid signature over the wrong log
    with pytest.raises(NoteError, match=r"is for log 'example\.com/another-log'") as excinfo:
        open_checkpoint(note, log_signer.verifier)
    assert excinfo.value.code == "origin-mismatch"


@pytest.mark.parametrize(
    ("name", "seed"),
    [(ORIGIN, b"an impostor's key"), ("example.com/impostor", b"sprava test log key")],
    ids=["same-name-other-key", "same-key-other-name"],
)
def test_checkpoint_signed_by_another_key_is_refused(
    log_signer: NoteSigner, checkpoint: Checkpoint, name: str, seed: bytes
) -> None:
    impostor = _signer(name, seed)
    note = impostor.sign(checkpoint.to_text())
    with pytest.raises(NoteError, match="no signature by") as excinfo:
        open_checkpoint(note, log_signer.verifier)
    assert excinfo.value.code == "unknown-key"


def test_cosigned_checkpoint_opens_with_either_key(
    log_signer: NoteSigner, checkpoint: Checkpoint
) -> None:
    witness = _signer("example.com/witness", b"witness key")
    note = log_signer.sign(checkpoint.to_text())
    cosigned = note + witness.sign(checkpoint.to_text()).split("\n\n", 1)[1]
    assert open_checkpoint(cosigned, log_signer.verifier) == checkpoint
    with pytest.raises(NoteError, match="is for log") as excinfo:
        open_checkpoint(cosigned, witness.verifier)  # a witness is no log: origins differ
    assert excinfo.value.code == "origin-mismatch"


@pytest.mark.parametrize(
    ("old", "new"),
    [("\n3\n", "\n4\n"), (f"\n{ROOT_B64}\n", f"\n{base64.b64encode(EMPTY_ROOT).decode()}\n"),
     ("tile-height 8", "tile-height 9")],
    ids=["size", "root", "extension"],
)
def test_altered_checkpoint_is_refused(
    log_signer: NoteSigner, checkpoint: Checkpoint, old: str, new: str
) -> None:
    note = log_signer.sign(checkpoint.to_text())
    assert old in note
    with pytest.raises(NoteError, match="does not verify") as excinfo:
        open_checkpoint(note.replace(old, new, 1), log_signer.verifier)
    assert excinfo.value.code == "bad-signature"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (f"{ORIGIN}\n3\n", "an origin, a size and a root hash"),
        (f"{ORIGIN}\n3\n{ROOT_B64}\n\nextension after a blank line\n", "empty extension line"),
        (f"{ORIGIN}\n03\n{ROOT_B64}\n", "bad tree size"),
    ],
    ids=["no-root", "blank-line-in-body", "leading-zero"],
)
def test_signed_note_that_is_no_checkpoint_is_refused(
    log_signer: NoteSigner, body: str, match: str
) -> None:
    note = log_signer.sign(body)  # a genuine signature over a body that is no checkpoint
    with pytest.raises(NoteError, match=match) as excinfo:
        open_checkpoint(note, log_signer.verifier)
    assert excinfo.value.code == "malformed-checkpoint"


def test_unsigned_checkpoint_is_refused(log_signer: NoteSigner, checkpoint: Checkpoint) -> None:
    with pytest.raises(NoteError, match="no signature block") as excinfo:
        open_checkpoint(checkpoint.to_text(), log_signer.verifier)
    assert excinfo.value.code == "malformed-note"
