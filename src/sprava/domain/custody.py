"""Custody events: what a ledger leaf says, and its exact bytes.

A leaf is one event serialised as RFC 8785 canonical JSON, so that any verifier,
in any language, re-creates the same bytes from the same fields. Events name at least
``kind``, ``time`` (UTC, RFC 3339), ``actor``, and for item events the item's ``sha256``.
File names are deliberately not in the ledger: a name can identify a person, and the
ledger can never be edited; names live in the database beside the item.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

from sprava.errors import BadInputError

EVENT_VERSION = 1
INGEST = "ingest"
DERIVE = "derive"
ITEM_ORIGINS = (INGEST, DERIVE)  # an item enters the vault by one of these events


def rfc3339(moment: datetime) -> str:
    """UTC time as RFC 3339 with microseconds and a ``Z``: sortable and unambiguous."""
    if moment.tzinfo is None:
        raise BadInputError("custody times must carry a time zone", code="naive-time")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise BadInputError(f"not an RFC 3339 UTC time: {text!r}", code="bad-time") from None


@dataclass(frozen=True)
class CustodyEvent:
    """One custody event before it becomes a leaf."""

    kind: str
    time: datetime
    actor: str
    fields: Mapping[str, Any]

    def to_leaf(self) -> bytes:
        """The canonical bytes appended to the ledger."""
        body: dict[str, Any] = dict(self.fields)
        body.update(v=EVENT_VERSION, kind=self.kind, time=rfc3339(self.time), actor=self.actor)
        return rfc8785.dumps(body)

    @property
    def sha256(self) -> str | None:
        value = self.fields.get("sha256")
        return value if isinstance(value, str) else None


def ingest_event(
    *, sha256: str, size: int, actor: str, time: datetime, source: str | None, new: bool
) -> CustodyEvent:
    """The event recorded each time content is received, whether or not it was held already."""
    return CustodyEvent(
        INGEST, time, actor, {"sha256": sha256, "size": size, "source": source, "new": new}
    )


def derive_event(
    *, sha256: str, size: int, original: str, derivation: str, tool: str,
    settings: Mapping[str, Any], actor: str, time: datetime
) -> CustodyEvent:
    """The event recorded when a derived item (a redacted copy, a thumbnail) is made.

    It names the original and exactly how the copy was made, so that anyone can tell what
    was changed and by which tool and settings.
    """
    return CustodyEvent(DERIVE, time, actor, {
        "sha256": sha256, "size": size, "original": original, "derivation": derivation,
        "tool": tool, "settings": dict(settings)})


def decode_leaf(data: bytes) -> dict[str, Any]:
    """Parse a leaf and check that it is in canonical form; raises BadInputError."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadInputError("the leaf is not JSON", code="leaf-not-json") from None
    if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
        raise BadInputError("the leaf is not a custody event", code="leaf-not-event")
    if rfc8785.dumps(body) != data:
        raise BadInputError("the leaf is not RFC 8785 canonical JSON", code="leaf-not-canonical")
    return body
