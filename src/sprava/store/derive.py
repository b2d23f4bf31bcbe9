"""Derived items: copies made from an original (redacted versions, thumbnails).

A derived item is an item like any other, content-addressed and held bit for bit, plus a
``derive`` custody event that names its original, the tool and the exact settings. The
original is never touched. Recording is idempotent: making the same copy of the same
original again (a job that ran twice) adds no second item and no second event.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from sprava.backends.db.engine import write_transaction
from sprava.backends.db.tables import derived_item, item
from sprava.domain.custody import derive_event
from sprava.domain.mediatype import sniff
from sprava.errors import NotFoundError
from sprava.instance import Instance
from sprava.ledger.log import LedgerAppender


@dataclass(frozen=True)
class Derived:
    sha256: str
    original: str
    kind: str
    size: int
    media_type: str
    leaf_index: int
    created: bool  # False when this very copy was recorded before


def store_derived(instance: Instance, *, original: str, kind: str, path: Path, tool: str,
                  settings: Mapping[str, Any], actor: str | None = None) -> Derived:
    """Store the file at ``path`` as a ``kind`` derived from item ``original``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        blob = instance.blobs.put_fd(fd)
    finally:
        os.close(fd)
    instance.blobs.sync()
    sha = blob.digest.hex
    media_type = sniff(blob.head)
    now = datetime.now(UTC)
    with write_transaction(instance.engine) as conn:
        appender = LedgerAppender(conn, instance.signer)  # locks the ledger: one writer
        if conn.execute(select(item.c.sha256).where(item.c.sha256 == original)).first() is None:
            raise NotFoundError(f"no item sha256:{original} to derive from",
                                code="item-not-found")
        known = conn.execute(select(derived_item.c.leaf_index).where(
            derived_item.c.sha256 == sha, derived_item.c.original_sha256 == original,
            derived_item.c.kind == kind)).scalar_one_or_none()
        if known is not None:
            return Derived(sha, original, kind, blob.size, media_type, int(known), False)
        if conn.execute(select(item.c.sha256).where(item.c.sha256 == sha)).first() is None:
            conn.execute(insert(item).values(sha256=sha, size=blob.size, media_type=media_type,
                                             first_seen=now))
        index = appender.append(derive_event(
            sha256=sha, size=blob.size, original=original, derivation=kind, tool=tool,
            settings=settings, actor=actor or instance.settings.actor, time=now))
        conn.execute(insert(derived_item).values(
            sha256=sha, original_sha256=original, kind=kind,
            settings=json.dumps(dict(settings), sort_keys=True), leaf_index=index))
        appender.finish()
    return Derived(sha, original, kind, blob.size, media_type, index, True)
