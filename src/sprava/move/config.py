"""Pointing an instance's ``sprava.toml`` at the stores it was moved to.

This is the last step of a move, taken only after the copy verified. The file is
replaced in one rename (a crash leaves the old or the new file, never half of one), and
the old file is kept beside it under a dated name, so that a move can be undone by
renaming it back: the old database and blob store are left untouched by the move.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sprava.settings import read_config_file

_HEADER = "# Sprava instance settings; see docs/configuration.md\n"
_S3_KEYS = ("s3_endpoint_url", "s3_region")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # A JSON string is a valid TOML basic string (same escapes, UTF-8 kept).
    return json.dumps(str(value), ensure_ascii=False)


def switched_config(path: Path, changes: dict[str, str]) -> str:
    """The text of ``path`` with ``changes`` applied; an empty value removes the key."""
    values: dict[str, Any] = read_config_file(path)
    for key, value in changes.items():
        if value:
            values[key] = value
        else:
            values.pop(key, None)
    return _HEADER + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())


def switch_config(path: Path, changes: dict[str, str]) -> Path:
    """Apply ``changes`` to the instance's config file; returns where the old file is kept."""
    new_text = switched_config(path, changes)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = path.with_name(f"{path.name}.before-move-{stamp}")
    tmp = path.with_name(f".{path.name}.move-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, new_text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if path.exists():
        os.link(path, kept)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return kept


def store_changes(database_url: str, blob_url: str, s3_endpoint_url: str,
                  s3_region: str) -> dict[str, str]:
    """The settings a move records: the new stores, and the S3 ones only for S3."""
    changes = {"database_url": database_url, "blob_url": blob_url}
    on_s3 = blob_url.startswith("s3:")
    changes.update({"s3_endpoint_url": s3_endpoint_url if on_s3 else "",
                    "s3_region": s3_region if on_s3 else ""})
    return {k: v for k, v in changes.items() if v or k in _S3_KEYS}
