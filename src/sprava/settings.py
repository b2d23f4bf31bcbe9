"""Settings, declared once, frozen, and built in one documented order of precedence.

Precedence, lowest first: built-in defaults → the instance's ``sprava.toml`` →
``SPRAVA_*`` environment variables → command-line flags. The instance folder itself comes
from ``--home``, else ``SPRAVA_HOME``, else ``./sprava-data``.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sprava.errors import ConfigurationError

CONFIG_NAME = "sprava.toml"
DEFAULT_HOME = "sprava-data"


def _default_actor() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"local:uid{os.getuid()}"


@dataclass(frozen=True)
class Settings:
    """Everything an instance needs to run. Build with :func:`load_settings`."""

    home: Path = field(metadata={"help": "the instance folder"})
    database_url: str = field(
        default="", metadata={"help": "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB; "
                              "default: sqlite in the instance folder"})
    blob_url: str = field(
        default="", metadata={"help": "file:///PATH of the blob store; default: blobs/ "
                              "in the instance folder"})
    origin: str = field(
        default="", metadata={"help": "the ledger's name: checkpoint origin line and key name; "
                              "set once by `sprava init`"})
    actor: str = field(
        default_factory=_default_actor,
        metadata={"help": "who custody events name as actor for this user's commands"})
    batch_files: int = field(
        default=64, metadata={"help": "files written per database transaction when ingesting "
                              "(each transaction ends with a signed checkpoint)"})

    @property
    def key_file(self) -> Path:
        return self.home / "keys" / "ledger.key"

    @property
    def config_file(self) -> Path:
        return self.home / CONFIG_NAME

    def resolved(self) -> Settings:
        """Fill the defaults that depend on the instance folder."""
        home = self.home.resolve()
        db = self.database_url or f"sqlite:///{home / 'sprava.db'}"
        blobs = self.blob_url or (home / "blobs").as_uri()
        return replace(self, home=home, database_url=db, blob_url=blobs)


_KEYS = {f.name for f in fields(Settings)} - {"home"}


def _coerce(name: str, value: Any, origin: str) -> Any:
    if name == "batch_files":
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if not 1 <= number <= 100_000:
            raise ConfigurationError(
                f"{origin}: batch_files must be a whole number from 1 to 100000",
                code="bad-setting",
            )
        return number
    if not isinstance(value, str):
        raise ConfigurationError(f"{origin}: {name} must be text", code="bad-setting")
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings stored in an instance's ``sprava.toml`` (none if it does not exist)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read {path}: {exc.strerror}", code="config-unreadable"
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(
            f"{path} is not valid TOML: {exc}", code="config-invalid"
        ) from None
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown settings {', '.join(sorted(unknown))}", code="config-invalid",
            hint=f"known settings: {', '.join(sorted(_KEYS))}",
        )
    return {k: _coerce(k, v, str(path)) for k, v in data.items()}


def load_settings(
    home: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings in the documented order of precedence."""
    env = os.environ if environ is None else environ
    folder = home or Path(env.get("SPRAVA_HOME") or DEFAULT_HOME)
    values: dict[str, Any] = read_config_file(folder / CONFIG_NAME)
    for key in _KEYS:
        env_value = env.get(f"SPRAVA_{key.upper()}")
        if env_value:
            values[key] = _coerce(key, env_value, f"SPRAVA_{key.upper()}")
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
    return Settings(home=folder, **values).resolved()


def setting_help() -> dict[str, str]:
    """Each setting's help text, as the docs list them."""
    return {f.name: f.metadata["help"] for f in fields(Settings)}
