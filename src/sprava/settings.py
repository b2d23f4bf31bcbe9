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
        default="", metadata={"help": "file:///PATH or s3://BUCKET[/PREFIX] of the blob "
                              "store; default: blobs/ in the instance folder"})
    s3_endpoint_url: str = field(
        default="", metadata={"help": "for an s3:// blob store: the server's URL (e.g. "
                              "http://127.0.0.1:8333 for SeaweedFS); empty: AWS"})
    s3_region: str = field(
        default="", metadata={"help": "for an s3:// blob store: the region (empty: boto3's "
                              "default, or us-east-1 with an endpoint URL)"})
    s3_access_key_id: str = field(
        default="", metadata={"help": "for an s3:// blob store: the access key; empty: "
                              "AWS_ACCESS_KEY_ID or ~/.aws, as boto3 finds them"})
    s3_secret_access_key: str = field(
        default="", repr=False,
        metadata={"help": "for an s3:// blob store: the secret key (prefer the environment "
                  "to the config file); empty: AWS_SECRET_ACCESS_KEY or ~/.aws"})
    origin: str = field(
        default="", metadata={"help": "the ledger's name: checkpoint origin line and key name; "
                              "set once by `sprava init`"})
    actor: str = field(
        default_factory=_default_actor,
        metadata={"help": "who custody events name as actor for this user's commands"})
    batch_files: int = field(
        default=64, metadata={"help": "files written per database transaction when ingesting "
                              "(each transaction ends with a signed checkpoint)",
                              "range": (1, 100_000)})
    workers: int = field(
        default=2, metadata={"help": "analysis worker processes that `sprava jobs run` and "
                             "`sprava ingest --wait` start", "range": (1, 256)})
    background_jobs: bool = field(
        default=True, metadata={"help": "after `sprava ingest` without --wait, analyse in a "
                                "background process"})
    jobs: str = field(
        default="inprocess", metadata={"help": "who runs analysis and redaction jobs: "
                                       "`inprocess` (worker processes this command starts) "
                                       "or `celery` (Celery workers, `sprava jobs worker`, "
                                       "fed through the broker at broker_url)",
                                       "choices": ("inprocess", "celery")})
    broker_url: str = field(
        default="redis://127.0.0.1:6379/0", metadata={
            "help": "the Redis broker that carries \"job N is ready\" to Celery workers "
                    "(jobs = celery): redis://[:PASSWORD@]HOST:PORT/DB"})
    job_lease_seconds: float = field(
        default=900.0, metadata={"help": "how long a worker holds a job before another may "
                                 "take it over (a worker that died on this machine is "
                                 "noticed at once)", "range": (1, 86_400)})
    job_max_attempts: int = field(
        default=3, metadata={"help": "times a job may be started before it is failed",
                             "range": (1, 100)})
    analysis_max_seconds: float = field(
        default=600.0, metadata={"help": "wall-clock limit for one job; the worker is ended "
                                 "and the job failed with `time-limit`", "range": (1, 86_400)})
    analysis_max_memory_mb: int = field(
        default=4096, metadata={"help": "address-space cap of a worker process, in MiB "
                                "(0: no cap)", "range": (0, 1_048_576)})
    max_pixels: int = field(
        default=100_000_000, metadata={"help": "largest image or frame analysis decodes; "
                                       "larger ones (decompression bombs) are refused",
                                       "range": (1, 10_000_000_000)})
    listen: str = field(
        default="127.0.0.1:8740", metadata={"help": "address and port `sprava serve` listens "
                                            "on (loopback unless a proxy fronts it)"})
    session_hours: float = field(
        default=12.0, metadata={"help": "a login session ends this long after it began "
                                "(and after a quarter of it without use)",
                                "range": (0.05, 720)})
    upload_max_mb: int = field(
        default=4096, metadata={"help": "largest upload the API accepts, in MiB (larger: "
                                "413); `sprava ingest` has no limit", "range": (1, 1_048_576)})
    login_max_failures: int = field(
        default=5, metadata={"help": "failed logins for one account or from one address "
                             "before logins are paused (the pause doubles each time, up to "
                             "an hour)", "range": (1, 1000)})
    password_kdf_memory_mb: int = field(
        default=64, metadata={"help": "Argon2id memory for account passwords, in MiB (new "
                              "hashes; a password hashed at another cost is hashed again "
                              "at its next login)", "range": (1, 4096)})
    password_kdf_passes: int = field(
        default=3, metadata={"help": "Argon2id passes for account passwords",
                             "range": (1, 100)})
    inbox_upload_max_mb: int = field(
        default=2048, metadata={"help": "largest post the insider inbox accepts (message and "
                                "files together), in MiB; larger: 413 and nothing is kept",
                                "range": (1, 1_048_576)})
    inbox_message_max_kb: int = field(
        default=512, metadata={"help": "longest message text an insider may type, in KiB "
                               "(longer text goes in a file)", "range": (1, 65_536)})
    inbox_kdf_memory_mb: int = field(
        default=64, metadata={"help": "Argon2id memory for receipt codes and recipients' "
                              "key passwords, in MiB (new codes and keys; old ones keep "
                              "theirs)", "range": (1, 4096)})
    inbox_kdf_passes: int = field(
        default=3, metadata={"help": "Argon2id passes for receipt codes and recipients' key "
                             "passwords", "range": (1, 100)})
    inbox_guess_limit: int = field(
        default=10, metadata={"help": "wrong receipt codes that hit one submission's first "
                              "words before that submission refuses every code for an hour",
                              "range": (1, 10_000)})
    inbox_global_guess_limit: int = field(
        default=100, metadata={"help": "wrong receipt codes per minute, over the whole "
                               "inbox, before code entry pauses for a minute",
                               "range": (1, 1_000_000)})
    inbox_session_minutes: float = field(
        default=30.0, metadata={"help": "an insider's session (after entering the receipt "
                                "code) ends after this long without a request",
                                "range": (1, 1440)})
    publish_precision_km: float = field(
        default=10.0, metadata={"help": "`sprava publish`: places on the public site are "
                                "rounded to a grid of cells at least this many km across",
                                "range": (1, 1000)})
    publish_public_sources: str = field(
        default="", metadata={"help": "`sprava publish`: names of sources (as given to "
                              "`sprava ingest --source`), comma-separated, whose items are "
                              "public documents; a commander is published only when every "
                              "source of the approved claim came from one of them"})

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


_FIELDS = {f.name: f for f in fields(Settings)}
_KEYS = set(_FIELDS) - {"home"}


_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: Any, origin: str) -> Any:
    kind = _TYPES[name]
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{origin}: {name} must be true or false", code="bad-setting")
    if kind in ("int", "float"):
        low, high = _FIELDS[name].metadata["range"]
        try:
            number = int(value) if kind == "int" else float(value)
        except (TypeError, ValueError):
            number = None
        if isinstance(value, bool) or number is None or not low <= number <= high:
            raise ConfigurationError(
                f"{origin}: {name} must be a {'whole ' if kind == 'int' else ''}number "
                f"from {low} to {high}", code="bad-setting")
        return number
    if not isinstance(value, str):
        raise ConfigurationError(f"{origin}: {name} must be text", code="bad-setting")
    choices = _FIELDS[name].metadata.get("choices")
    if choices and value not in choices:
        raise ConfigurationError(f"{origin}: {name} must be one of {', '.join(choices)}",
                                 code="bad-setting")
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
