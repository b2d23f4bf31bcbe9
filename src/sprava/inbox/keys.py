"""The inbox's secrets: the server peppers, recipients' private keys at rest and in a session.

* ``keys/inbox.key`` (mode 0600, created at first use, never replaced) holds three
  independent 32-byte secrets: the *lookup* and *reply* peppers of receipt codes
  (:mod:`sprava.inbox.codes`) and the *storage* key that seals the exact length of each
  stored object (the object on disk is padded to a bucket; see
  :mod:`sprava.inbox.storage`). Threat guarded against: a seized database and blob store
  without this file give no code, no reply key and no exact size.
* A recipient's age private key is stored sealed with ChaCha20-Poly1305 under a key that
  Argon2id derives from their password (GlobaLeaks' model): the server alone cannot
  open it.
* Once unlocked with that password, it is sealed again for the session under a key
  derived from the session's (or API token's) secret, which only the client holds: the
  database keeps just the SHA-256 of that secret, so a copy of the database opens
  nothing, and the key stops being usable when the session ends.
"""

from __future__ import annotations

import base64
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sprava.errors import AuthenticationError, ConfigurationError, IntegrityError
from sprava.inbox.age import Identity
from sprava.inbox.codes import Kdf, KdfParams

KEY_FILE = "inbox.key"
_NAMES = ("lookup", "reply", "storage")
_WRAP_VERSION = 1
_WRAP_HEAD = struct.Struct(">BIHB16s12s")  # version, memory KiB, passes, lanes, salt, nonce
_SESSION_INFO = b"sprava inbox session key v1"


@dataclass(frozen=True, repr=False)
class ServerSecrets:
    lookup_pepper: bytes
    reply_pepper: bytes
    storage_key: bytes

    def __repr__(self) -> str:
        return "ServerSecrets(<secret>)"


def _parse(text: str, path: Path) -> ServerSecrets:
    values: dict[str, bytes] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, encoded = line.partition(" ")
        try:
            raw = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            raw = b""
        if name not in _NAMES or len(raw) != 32 or name in values:
            raise ConfigurationError(f"{path} is damaged", code="inbox-key-invalid",
                                     hint="restore it from the instance's backup")
        values[name] = raw
    if set(values) != set(_NAMES):
        raise ConfigurationError(f"{path} is incomplete", code="inbox-key-invalid",
                                 hint="restore it from the instance's backup")
    return ServerSecrets(values["lookup"], values["reply"], values["storage"])


def load_server_secrets(keys_dir: Path) -> ServerSecrets:
    """Read ``keys/inbox.key``, creating it on first use (exclusively, mode 0600).

    Raises ConfigurationError if other users can read it or it is damaged. Losing it
    makes every receipt code useless and hides the exact size of stored objects; back
    it up with the ledger key.
    """
    path = keys_dir / KEY_FILE
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        text = "# Sprava inbox secrets: receipt-code peppers and the storage key\n" + "".join(
            f"{name} {base64.b64encode(os.urandom(32)).decode()}\n" for name in _NAMES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            try:
                os.write(fd, text.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ConfigurationError(f"the inbox key {path} can be read by other users",
                                 code="key-permissions", hint=f"run: chmod 600 {path}")
    return _parse(path.read_text("utf-8"), path)


# --- recipients' private keys at rest -----------------------------------------------------


def _aad(account_id: str) -> bytes:
    return b"sprava inbox recipient key v1\x00" + account_id.encode()


def wrap_identity(identity: Identity, password: str, account_id: str, kdf: Kdf,
                  params: KdfParams) -> bytes:
    """The private key sealed under Argon2id(password); the cost travels with it."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = kdf.derive(password.encode("utf-8", "surrogatepass"), salt, params)
    sealed = ChaCha20Poly1305(key).encrypt(nonce, identity.secret, _aad(account_id))
    return _WRAP_HEAD.pack(_WRAP_VERSION, params.memory_kib, params.passes, params.lanes,
                           salt, nonce) + sealed


def unwrap_identity(blob: bytes, password: str, account_id: str, kdf: Kdf) -> Identity:
    """Open a wrapped private key; AuthenticationError ``wrong-password`` if it does not."""
    if len(blob) != _WRAP_HEAD.size + 48:
        raise IntegrityError("a recipient key is damaged", code="inbox-key-damaged")
    version, memory, passes, lanes, salt, nonce = _WRAP_HEAD.unpack(blob[:_WRAP_HEAD.size])
    if version != _WRAP_VERSION:
        raise IntegrityError("a recipient key has an unknown format", code="inbox-key-damaged")
    key = kdf.derive(password.encode("utf-8", "surrogatepass"), salt,
                     KdfParams(memory, passes, lanes))
    try:
        secret = ChaCha20Poly1305(key).decrypt(nonce, blob[_WRAP_HEAD.size:], _aad(account_id))
    except InvalidTag:
        raise AuthenticationError("the password does not open the inbox key",
                                  code="wrong-password") from None
    return Identity(secret)


# --- an unlocked key, for one session -----------------------------------------------------


def _session_key(credential: str) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=_SESSION_INFO).derive(
        credential.encode("utf-8", "surrogatepass"))


def seal_for_session(identity: Identity, credential: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + ChaCha20Poly1305(_session_key(credential)).encrypt(
        nonce, identity.secret, b"session")


def open_for_session(blob: bytes, credential: str) -> Identity | None:
    """The unlocked key, or None if ``blob`` was sealed for another session."""
    try:
        return Identity(ChaCha20Poly1305(_session_key(credential)).decrypt(
            blob[:12], blob[12:], b"session"))
    except (InvalidTag, ValueError):
        return None


# --- exact lengths of stored objects --------------------------------------------------------


def seal_length(secrets: ServerSecrets, object_id: str, length: int) -> bytes:
    nonce = os.urandom(12)
    return nonce + ChaCha20Poly1305(secrets.storage_key).encrypt(
        nonce, length.to_bytes(8, "big"), b"length\x00" + object_id.encode())


def open_length(secrets: ServerSecrets, object_id: str, sealed: bytes) -> int:
    """The exact age length of a stored object; IntegrityError if the seal is wrong."""
    try:
        raw = ChaCha20Poly1305(secrets.storage_key).decrypt(
            sealed[:12], sealed[12:], b"length\x00" + object_id.encode())
    except (InvalidTag, ValueError):
        raise IntegrityError(f"the stored length of object {object_id} does not open",
                             code="inbox-length-damaged",
                             hint="the inbox key or the database was changed") from None
    return int.from_bytes(raw, "big")
