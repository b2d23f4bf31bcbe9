"""What a search may show (the scope, decided by the caller's role), what it is narrowed
to (the filters, chosen by the user), and what it returns (hits).

The scope is the caller's to set and is never widened here: a reader who may not see
persons gets no person and no claim about a person, whatever the query says; an uploader
sees only the items they handed in; a reader of redacted copies sees redacted copies
only, and of those nothing but what the item API shows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sprava.domain.catalogue import ClaimStatus, Confidence, IncidentStatus
from sprava.errors import BadInputError

KINDS = ("incident", "act", "unit", "person", "claim", "item")
CATALOGUE_KINDS = frozenset({"incident", "act", "unit", "claim"})
ITEM_SCOPES = ("all", "own", "redacted", "none")
STATUSES = frozenset(s.value for s in IncidentStatus) | frozenset(s.value for s in ClaimStatus)
CONFIDENCES = frozenset(c.value for c in Confidence)

_CODE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_PLACE = 200


@dataclass(frozen=True)
class SearchScope:
    """What the caller may see, decided by the caller's role.

    ``persons``: include persons, and claims whose subject or object is a person. A hit
    that shows a person is a read of restricted data and is recorded as a custody event
    naming ``actor``, so ``actor`` is required with ``persons``.
    ``items``: ``all`` items, the caller's ``own`` uploads (``actor`` is the ledger actor
    who handed them in, as ``item_name.actor`` records it), ``redacted`` copies only, or
    ``none``.
    ``catalogue``: include incidents, acts, units and claims (an uploader may not).

    Raises BadInputError ``bad-scope`` for a scope that cannot be honoured.
    """

    persons: bool
    items: Literal["all", "own", "redacted", "none"]
    actor: str | None = None
    catalogue: bool = True

    def __post_init__(self) -> None:
        if self.items not in ITEM_SCOPES:
            raise BadInputError(f"unknown item scope {self.items!r}", code="bad-scope",
                                hint=f"use one of {', '.join(ITEM_SCOPES)}")
        if self.actor is not None and (not isinstance(self.actor, str) or not self.actor
                                       or len(self.actor) > 200
                                       or _CONTROL.search(self.actor)):
            raise BadInputError("the scope's actor is not an actor name", code="bad-scope")
        if self.items == "own" and self.actor is None:
            raise BadInputError("items='own' needs the actor whose uploads they are",
                                code="bad-scope")
        if self.persons and self.actor is None:
            raise BadInputError(
                "persons=True needs the actor: every read of a person is recorded",
                code="bad-scope", hint="pass the reader's ledger actor as actor")

    def kinds(self) -> frozenset[str]:
        """The kinds of record this scope may see at all."""
        out: set[str] = set()
        if self.catalogue:
            out |= CATALOGUE_KINDS
            if self.persons:
                out.add("person")
        if self.items != "none":
            out.add("item")
        return frozenset(out)


@dataclass(frozen=True)
class SearchFilters:
    """What the user narrows a search to; every filter given must hold.

    ``since``/``until`` (time-zone aware, ``since`` ≤ t < ``until``) compare an incident's
    start, an act's incident's start, a claim's validity period (which must overlap) and
    an item's first arrival. ``place`` matches an incident's place name or admin area
    (acts: their incident's) by the same folding as the text. ``violation_type`` is a
    vocabulary code (incidents; acts by their type or their incident's). ``unit_id``
    keeps the unit itself, acts it is named as perpetrator of (a claim that counts, or is
    pending), incidents with such acts, and claims about it. ``status`` is an incident's
    or a claim's; ``confidence`` a claim's. Records that have no such field do not match.
    """

    kinds: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    place: str | None = None
    violation_type: str | None = None
    unit_id: str | None = None
    status: str | None = None
    confidence: str | None = None

    def any(self) -> bool:
        """Whether any filter beyond ``kinds`` is set."""
        return any(v is not None for v in (self.since, self.until, self.place,
                                           self.violation_type, self.unit_id, self.status,
                                           self.confidence))


def _bad(message: str, hint: str | None = None) -> BadInputError:
    return BadInputError(message, code="bad-filter", hint=hint)


def check_filters(filters: SearchFilters) -> SearchFilters:
    """The filters as given, checked; raises BadInputError ``bad-filter``."""
    if not isinstance(filters, SearchFilters):
        raise _bad("filters must be SearchFilters")
    if filters.kinds is not None:
        if isinstance(filters.kinds, str) or not all(isinstance(k, str) for k in filters.kinds):
            raise _bad("kinds is a set of kinds")
        unknown = sorted(set(filters.kinds) - set(KINDS))
        if unknown:
            raise _bad(f"unknown kind {unknown[0]!r}", hint=f"use {', '.join(KINDS)}")
        if not filters.kinds:
            raise _bad("kinds is empty", hint="leave it out to search every kind")
    for name in ("since", "until"):
        value = getattr(filters, name)
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise _bad(f"{name} must be a time with a time zone")
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        raise _bad("since must be before until")
    if filters.place is not None and (not isinstance(filters.place, str)
                                      or len(filters.place) > MAX_PLACE):
        raise _bad(f"place is text of at most {MAX_PLACE} characters")
    if filters.violation_type is not None and (
            not isinstance(filters.violation_type, str) or len(filters.violation_type) > 64
            or not _CODE.fullmatch(filters.violation_type)):
        raise _bad("violation_type is a vocabulary code such as 'beating'")
    if filters.unit_id is not None and (not isinstance(filters.unit_id, str)
                                        or not _UUID.fullmatch(filters.unit_id)):
        raise _bad("unit_id is a unit's id (a UUID in lower case)")
    if filters.status is not None and filters.status not in STATUSES:
        raise _bad(f"unknown status {filters.status!r}",
                   hint=f"use one of {', '.join(sorted(STATUSES))}")
    if filters.confidence is not None and filters.confidence not in CONFIDENCES:
        raise _bad(f"unknown confidence {filters.confidence!r}",
                   hint=f"use one of {', '.join(sorted(CONFIDENCES))}")
    return filters


@dataclass(frozen=True)
class Hit:
    """One record found. ``id`` is the entity's id, or an item's SHA-256 (hex).

    ``snippet`` is plain text (never markup: the caller escapes it); ``highlights`` are
    the ``(start, end)`` character ranges of the words in it that matched, for callers
    that want to mark them. ``score`` orders hits (higher first); it compares hits of
    one search only, and differs between SQLite and PostgreSQL.
    """

    kind: str
    id: str
    title: str
    snippet: str
    score: float
    highlights: tuple[tuple[int, int], ...] = field(default=())
