"""C2SP signed notes with Ed25519, and C2SP tlog-checkpoint bodies.

Standard library plus ``cryptography`` only, so that the offline verifier can carry it.

A signed note is UTF-8 text ending in a newline, a blank line, and signature lines
``— <key name> <base64(key id ‖ signature)>``. The Ed25519 key id is the first four
bytes of ``SHA-256(name ‖ "\\n" ‖ 0x01 ‖ public key)``. Keys travel as the strings of
Go's ``golang.org/x/mod/sumdb/note`` package (``name+hexid+base64(0x01 ‖ key)``, and
``PRIVATE+KEY+…`` for the signer), so that verifiers for Go's sumdb notes, Sigstore and
transparency-dev tooling accept what Sprava signs, and Sprava accepts what they sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from sprava.errors import BadInputError, IntegrityError

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "— "  # EM DASH, then a space
MAX_SIGNATURES = 100
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX8 = re.compile(r"[0-9a-f]{8}")


class NoteError(IntegrityError):
    """A signed note or checkpoint is malformed, unsigned by the key, or forged."""

    default_code = "note-invalid"


def _b64decode(text: str, what: str) -> bytes:
    if not _B64.fullmatch(text):
        raise NoteError(f"{what} is not base64", code="malformed-note")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"{what} is not base64: {exc}", code="malformed-note") from None


def _check_key_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() or unicodedata.category(c)[0] == "C"
                                      for c in name):
        raise BadInputError(
            f"invalid note key name {name!r}",
            code="bad-key-name",
            hint="a key name is non-empty, without spaces, control characters or '+'",
        )


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of an Ed25519 note key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteVerifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if len(self.public_key) != 32:
            raise BadInputError("an Ed25519 public key has 32 bytes", code="bad-verifier-key")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """Read a verifier key ``name+hexid+base64key``; raises BadInputError."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or not _HEX8.fullmatch(parts[1]):
            raise BadInputError(
                f"not a note verifier key: {vkey!r}",
                code="bad-verifier-key",
                hint="expected name+keyid+base64key, as `sprava ledger key` prints it",
            )
        name, hex_id, b64 = parts
        try:
            raw = _b64decode(b64, "the verifier key")
        except NoteError as exc:
            raise BadInputError(exc.message, code="bad-verifier-key") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise BadInputError("the verifier key is not an Ed25519 key", code="bad-verifier-key")
        verifier = cls(name, raw[1:])
        if verifier.key_id.hex() != hex_id:
            raise BadInputError(
                "the verifier key's id does not match its name and key", code="bad-verifier-key"
            )
        return verifier

    def __str__(self) -> str:
        body = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{body}"

    def check(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """A named Ed25519 private key that signs notes. Keep its string form secret."""

    name: str
    _key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> NoteSigner:
        """Read ``PRIVATE+KEY+name+hexid+base64seed``; raises BadInputError."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _HEX8.fullmatch(parts[3]):
            raise BadInputError(
                "not a note signer key", code="bad-signer-key",
                hint="expected PRIVATE+KEY+name+keyid+base64key",
            )
        try:
            raw = _b64decode(parts[4], "the signer key")
        except NoteError as exc:
            raise BadInputError(exc.message, code="bad-signer-key") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise BadInputError("the signer key is not an Ed25519 key", code="bad-signer-key")
        signer = cls(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.verifier.key_id.hex() != parts[3]:
            raise BadInputError(
                "the signer key's id does not match its name and key", code="bad-signer-key"
            )
        return signer

    def private_key_string(self) -> str:
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        body = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{body}"

    @property
    def verifier(self) -> NoteVerifier:
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return NoteVerifier(self.name, public)

    def sign(self, text: str) -> str:
        """The whole signed note for ``text`` (which must end in a newline)."""
        body = _check_text(text)
        sig = self._key.sign(body)
        line = base64.b64encode(self.verifier.key_id + sig).decode()
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {line}\n"


def _check_text(text: str) -> bytes:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline", code="malformed-note")
    # Blank lines are allowed: the signatures start after the *last* blank line.
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("note text must not hold control characters", code="malformed-note")
    return text.encode()


def open_note(note: str | bytes, verifier: NoteVerifier) -> str:
    """Return the text of ``note`` if ``verifier``'s key signed it.

    Signatures by other keys are ignored, as the signed-note spec asks; raises NoteError
    when the note is malformed, has no signature by this key, or the signature is forged.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("the note is not UTF-8", code="malformed-note") from None
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("the note has no signature block", code="malformed-note")
    text = note[: split + 1]
    body = _check_text(text)
    lines = note[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("the note carries too many signatures", code="malformed-note")
    found = False
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line {line!r}", code="malformed-note")
        name, sep, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not sep or not name or " " in b64:
            raise NoteError(f"malformed signature line {line!r}", code="malformed-note")
        raw = _b64decode(b64, "a signature")
        if len(raw) < 5:
            raise NoteError("a signature is too short", code="malformed-note")
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue
        if not verifier.check(body, raw[4:]):
            raise NoteError(
                f"the signature by {verifier.name} does not verify: the note was altered "
                "or signed by another key",
                code="bad-signature",
            )
        found = True
    if not found:
        raise NoteError(
            f"the note has no signature by {verifier.name}+{verifier.key_id.hex()}",
            code="unknown-key",
        )
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def to_text(self) -> str:
        """The checkpoint body; refuses fields that would not parse back to themselves."""
        if not self.origin or any(ord(c) < 0x20 for c in self.origin + "".join(self.extensions)):
            raise NoteError("a checkpoint origin is one non-empty line",
                            code="malformed-checkpoint")
        if self.size < 0 or len(self.root) != 32 or any(not e for e in self.extensions):
            raise NoteError("a checkpoint has a size ≥ 0, a 32-byte root and non-empty extensions",
                            code="malformed-checkpoint")
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body; raises NoteError on anything not in the format."""
        if not text.endswith("\n"):
            raise NoteError("a checkpoint ends with a newline", code="malformed-checkpoint")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or not lines[0]:
            raise NoteError("a checkpoint has an origin, a size and a root hash",
                            code="malformed-checkpoint")
        origin, size_text, root_text, *ext = lines
        if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size_text):
            raise NoteError(f"bad tree size {size_text!r}", code="malformed-checkpoint")
        try:
            root = _b64decode(root_text, "the root hash")
        except NoteError:
            raise NoteError("the root hash is not base64", code="malformed-checkpoint") from None
        if len(root) != 32:
            raise NoteError("the root hash is not 32 bytes", code="malformed-checkpoint")
        if any(not line for line in ext):
            raise NoteError("empty extension line", code="malformed-checkpoint")
        return cls(origin, int(size_text), root, tuple(ext))


def open_checkpoint(note: str | bytes, verifier: NoteVerifier) -> Checkpoint:
    """Verify a signed checkpoint and return it; raises NoteError."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError(
            f"the checkpoint is for log {checkpoint.origin!r}, the key for {verifier.name!r}",
            code="origin-mismatch",
        )
    return checkpoint
