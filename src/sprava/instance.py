"""One Sprava instance: its settings, database, blob store and ledger signing key.

``init_instance`` creates what is missing and never replaces what exists, so running it
twice is harmless. ``open_instance`` checks what must hold before any work starts (the
key file is private, the blob folder is writable, the schema is current) and says
clearly what is wrong.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from sprava.backends.db.engine import head_revision, make_engine, migrate, schema_revision
from sprava.errors import ConfigurationError
from sprava.ledger.note import NoteSigner, NoteVerifier
from sprava.settings import Settings
from sprava.store.blobs import BlobStore, LocalBlobStore


@dataclass
class Instance:
    settings: Settings
    engine: Engine
    blobs: BlobStore
    signer: NoteSigner

    @property
    def inbox_folder(self) -> Path:
        """Where the insider inbox keeps its ciphertext: beside local blobs, or in the
        instance folder when the blobs live in an object store."""
        if isinstance(self.blobs, LocalBlobStore):
            return self.blobs.root / "inbox"
        return self.settings.home / "inbox"

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier

    @property
    def origin(self) -> str:
        return self.signer.name

    def close(self) -> None:
        self.engine.dispose()


def _write_new(path: Path, text: str, mode: int) -> None:
    """Write a file that must not exist yet, durably, with ``mode`` from its creation."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_signer(path: Path) -> NoteSigner:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigurationError(
            f"the ledger key {path} is missing", code="key-missing",
            hint="run `sprava init` to create an instance, or set --home / SPRAVA_HOME",
        ) from None
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigurationError(
            f"the ledger key {path} can be read by other users", code="key-permissions",
            hint=f"run: chmod 600 {path}",
        )
    try:
        return NoteSigner.parse(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the ledger key {path}: {exc}",
                                 code="key-unreadable") from None


def blob_store(settings: Settings) -> BlobStore:
    """The blob store ``settings.blob_url`` names: ``file://`` or ``s3://``."""
    if settings.blob_url.startswith("s3:"):
        from sprava.store.s3 import S3BlobStore, S3Options

        options = S3Options(settings.s3_endpoint_url, settings.s3_region,
                            settings.s3_access_key_id, settings.s3_secret_access_key)
        return S3BlobStore.from_url(settings.blob_url, options, settings.home / "spool")
    return LocalBlobStore.from_url(settings.blob_url)


def default_origin() -> str:
    return f"sprava.local/{secrets.token_hex(8)}"


def _config_text(settings: Settings, explicit: dict[str, str]) -> str:
    lines = ["# Sprava instance settings; see docs/configuration.md\n"]
    lines += [f'{key} = "{value}"\n' for key, value in explicit.items()]
    return "".join(lines)


def init_instance(settings: Settings, *, origin: str | None = None,
                  explicit: dict[str, str] | None = None) -> tuple[Instance, bool]:
    """Create the instance in ``settings.home`` if needed; returns it and whether it was new.

    ``explicit`` holds settings given on the command line to record in ``sprava.toml``.
    """
    home = settings.home
    created = not settings.key_file.exists()
    blobs = blob_store(settings)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    blobs.create()  # before config and key: a store that fails leaves no half instance
    settings.key_file.parent.mkdir(mode=0o700, exist_ok=True)
    if not settings.config_file.exists():
        _write_new(settings.config_file, _config_text(settings, explicit or {}), 0o600)
    if created:
        signer = NoteSigner.generate(origin or default_origin())
        _write_new(settings.key_file, signer.private_key_string() + "\n", 0o600)
    signer = _read_signer(settings.key_file)
    if origin and origin != signer.name:
        raise ConfigurationError(
            f"this instance's ledger is already named {signer.name!r}", code="origin-fixed",
            hint="a ledger's name cannot change; leave out --origin",
        )
    public = settings.key_file.with_suffix(".vkey")
    if not public.exists():
        _write_new(public, str(signer.verifier) + "\n", 0o644)
    engine = make_engine(settings.database_url)
    migrate(engine)
    return Instance(settings, engine, blobs, signer), created


def open_instance(settings: Settings) -> Instance:
    """Open an existing instance after checking it can be used; raises ConfigurationError."""
    if not settings.home.is_dir():
        raise ConfigurationError(
            f"no Sprava instance at {settings.home}", code="no-instance",
            hint="run `sprava init`, or point --home / SPRAVA_HOME at the instance folder",
        )
    signer = _read_signer(settings.key_file)
    blobs = blob_store(settings)
    blobs.check()
    engine = make_engine(settings.database_url)
    current = schema_revision(engine)
    if current != head_revision():
        engine.dispose()
        raise ConfigurationError(
            f"the database schema is at {current or 'nothing'}, this Sprava needs "
            f"{head_revision()}",
            code="schema-outdated",
            hint="run `sprava migrate` (back up the database first)",
        )
    return Instance(settings, engine, blobs, signer)
