"""The catalogue: who did what to whom, when and where, and who says so.

Pure data and rules, no I/O. The entities follow shared/DESIGN.md ("Domain model"):
incidents with acts, units, persons (restricted), claims that link them with sources and
a confidence, and cases prepared for a named recipient.

Three rules live here so that every caller gets them, whatever the entry point:

* **Red lines.** No entity has a field for an address, a phone number, a relative or a
  private account, and :func:`refuse_red_lines` refuses input that tries to carry one,
  at any depth, with the code ``red-line-field``. The refusal is a rule, not a missing
  feature: there is no workaround.
* **Due process.** A claim whose subject is a *person* counts only once a second user
  with review rights approved it; its author (and anyone who edited it) may never review
  it. A claim about a *unit* counts as ``reported`` once submitted and as ``reviewed``
  once approved. Rejection keeps the claim and its reason. See :func:`claim_effect` and
  :func:`check_review`.
* **State commitments.** Every change is a custody event that carries the SHA-256 of the
  new state as RFC 8785 canonical JSON (:func:`state_digest`), never the state itself: the
  ledger can never be edited, and persons are restricted. Each entity's state includes a
  random ``salt`` kept beside the row, so that a reader of the ledger alone cannot confirm
  a guess ("is person X named Ivanov?") by hashing candidate states.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

import rfc8785

from sprava.domain.custody import CustodyEvent, rfc3339
from sprava.errors import BadInputError, ConflictError

CATALOGUE = "catalogue"  # the custody event kind of every catalogue change

T = TypeVar("T")

# --- red lines ---------------------------------------------------------------------------

RED_LINE_MESSAGE = (
    "Sprava keeps no addresses, phone numbers, relatives or private accounts of anyone"
)

#: Field names refused outright (compared after :func:`normalise_key`).
RED_LINE_KEYS = frozenset({
    # addresses and places of residence
    "address", "home_address", "street", "street_address", "postal_address", "postcode",
    "zip", "zip_code", "residence", "domicile", "registration_address", "apartment", "flat",
    "house", "home",
    # phones and private contact channels
    "phone", "phone_number", "telephone", "tel", "mobile", "mobile_number", "cell",
    "cellphone", "whatsapp", "viber", "sms", "email", "e_mail", "email_address",
    # relatives
    "relatives", "relative", "family", "family_members", "spouse", "wife", "husband",
    "children", "kids", "parents", "mother", "father", "son", "daughter", "sibling",
    "siblings", "brother", "sister", "next_of_kin", "kin",
    # private social accounts
    "social", "social_media", "social_account", "socials", "facebook", "fb", "vk",
    "vkontakte", "instagram", "telegram", "telegram_account", "twitter", "x_account",
    "tiktok", "odnoklassniki", "ok_ru", "linkedin",
})

# Anything that merely *contains* one of these is refused too ("mother_name",
# "homeAddress", "telegramHandle", "адрес"): a deny list alone is easy to step around.
_RED_LINE_PATTERN = re.compile(
    r"address|addr$|^addr_|street|residen|domicil|postcode|zip_?code|"
    r"phone|mobile|cellular|whatsapp|viber|e_?mail|"
    r"relativ|famil|spouse|next_of_kin|"
    r"social|facebook|vkontakte|instagram|telegram|twitter|tiktok|odnoklassnik|linkedin|"
    r"адрес|адрас|телефон|тэлефон|родствен|сваяк|родич|семья|сям.я|сім.я"
)
_RED_LINE_TOKENS = frozenset({
    "tel", "cell", "sms", "home", "house", "flat", "apartment", "zip", "wife", "husband",
    "child", "children", "kid", "kids", "son", "daughter", "mother", "father", "mom", "dad",
    "sibling", "siblings", "brother", "sister", "parents", "kin", "vk", "fb",
})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^\w]+|_+")


def normalise_key(key: str) -> str:
    """``"homeAddress"``, ``"Home-Address"`` and ``" home address "`` all become
    ``"home_address"``."""
    key = unicodedata.normalize("NFKC", key)
    return _NON_WORD.sub("_", _CAMEL.sub("_", key)).strip("_").lower()


def is_red_line_key(key: str) -> bool:
    """Whether a field of this name would hold what Sprava never keeps."""
    norm = normalise_key(key)
    return (norm in RED_LINE_KEYS or bool(_RED_LINE_PATTERN.search(norm))
            or any(token in _RED_LINE_TOKENS for token in norm.split("_")))


def refuse_red_lines(data: Any, where: str = "") -> None:
    """Refuse input that names a red-line field anywhere inside it.

    Walks mappings and lists to any depth. Raises BadInputError ``red-line-field`` naming
    the first such field; nothing else is checked first, so the refusal is the same
    whatever else is wrong with the input.
    """
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and is_red_line_key(key):
                raise BadInputError(
                    f"field {path!r} is refused: {RED_LINE_MESSAGE}",
                    code="red-line-field",
                    hint="leave this field out; see 'Red lines' in the design. Sprava records "
                    "what was done and by which unit, never how to reach a person",
                )
            refuse_red_lines(value, path)
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            refuse_red_lines(value, f"{where}[{i}]")


# --- vocabularies ------------------------------------------------------------------------


class IncidentStatus(StrEnum):
    REPORTED = "reported"
    CORROBORATED = "corroborated"
    VERIFIED = "verified"


#: Forward one step at a time; back one step when a source falls, with a note saying why.
INCIDENT_TRANSITIONS: Mapping[IncidentStatus, frozenset[IncidentStatus]] = {
    IncidentStatus.REPORTED: frozenset({IncidentStatus.CORROBORATED}),
    IncidentStatus.CORROBORATED: frozenset({IncidentStatus.VERIFIED, IncidentStatus.REPORTED}),
    IncidentStatus.VERIFIED: frozenset({IncidentStatus.CORROBORATED}),
}
_ORDER = list(IncidentStatus)


def check_incident_transition(current: IncidentStatus, target: IncidentStatus,
                              note: str | None) -> None:
    """Raise ConflictError ``illegal-transition`` or BadInputError ``note-required``."""
    if target not in INCIDENT_TRANSITIONS[current]:
        allowed = ", ".join(sorted(INCIDENT_TRANSITIONS[current]))
        raise ConflictError(
            f"an incident cannot go from {current} to {target}", code="illegal-transition",
            hint=f"from {current} it may go to: {allowed}")
    if _ORDER.index(target) < _ORDER.index(current) and not note:
        raise BadInputError(
            f"moving an incident back from {current} to {target} needs a note saying why",
            code="note-required")


class ClaimStatus(StrEnum):
    DRAFT = "draft"
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class Confidence(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Effect(StrEnum):
    """What a claim counts as: nothing yet, reported (units only), or reviewed."""

    NONE = "none"
    REPORTED = "reported"
    REVIEWED = "reviewed"


class EntityKind(StrEnum):
    INCIDENT = "incident"
    ACT = "act"
    UNIT = "unit"
    PERSON = "person"
    CLAIM = "claim"
    CASE = "case"
    TERM = "vocabulary_term"


@dataclass(frozen=True)
class Statement:
    name: str
    subject: EntityKind
    object: EntityKind
    dated: bool = False  # holds over a period (valid_from / valid_to)
    has_role: bool = False


STATEMENTS: Mapping[str, Statement] = {s.name: s for s in (
    Statement("unit_present_at_incident", EntityKind.UNIT, EntityKind.INCIDENT),
    Statement("unit_committed_act", EntityKind.UNIT, EntityKind.ACT),
    Statement("unit_subordinate_to_unit", EntityKind.UNIT, EntityKind.UNIT, dated=True),
    Statement("person_present_at_incident", EntityKind.PERSON, EntityKind.INCIDENT),
    Statement("person_committed_act", EntityKind.PERSON, EntityKind.ACT),
    Statement("person_member_of_unit", EntityKind.PERSON, EntityKind.UNIT, dated=True,
              has_role=True),
    Statement("person_commanded_unit", EntityKind.PERSON, EntityKind.UNIT, dated=True),
)}
MEMBERSHIP_STATEMENTS = ("person_member_of_unit", "person_commanded_unit")
COMMANDER = "commander"


class PerpetratorKind(StrEnum):
    UNIT = "unit"
    PERSON = "person"
    UNKNOWN = "unknown"


class IdentifierKind(StrEnum):
    """Identifiers *seen in evidence* on a uniform, a radio, a vehicle. Restricted."""

    BADGE_NUMBER = "badge_number"
    CALL_SIGN = "call_sign"
    VEHICLE_PLATE = "vehicle_plate"


AGE_BANDS = ("child", "adult", "older", "unknown")  # child < 18 ≤ adult < 60 ≤ older
_AGE_RANGE = re.compile(r"(\d{1,3})-(\d{1,3})|(\d{1,3})\+")


def check_age_band(value: str) -> str:
    """An age band: one of :data:`AGE_BANDS`, a range ``"18-25"`` or an open ``"60+"``."""
    if value in AGE_BANDS:
        return value
    match = _AGE_RANGE.fullmatch(value)
    if match and match.group(3) is not None and int(match.group(3)) <= 120:
        return f"{int(match.group(3))}+"
    if match and match.group(1) is not None:
        low, high = int(match.group(1)), int(match.group(2))
        if low <= high <= 120:
            return f"{low}-{high}"
    raise BadInputError(
        f"not an age band: {value!r}", code="bad-age-band",
        hint=f"use one of {', '.join(AGE_BANDS)}, a range such as 18-25, or 60+")


# --- entities ----------------------------------------------------------------------------


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


@dataclass(frozen=True)
class Place:
    name: str
    admin_area: str | None = None
    lat: float | None = None
    lon: float | None = None
    precision_m: float | None = None  # radius within which the true place lies

    def state(self) -> dict[str, Any]:
        return {"name": self.name, "admin_area": self.admin_area, "lat": self.lat,
                "lon": self.lon, "precision_m": self.precision_m}


@dataclass(frozen=True)
class Incident:
    id: str
    salt: str
    title: str
    description: str
    start: datetime
    end: datetime | None
    place: Place
    status: IncidentStatus
    violation_types: tuple[str, ...]
    created_at: datetime
    updated_at: datetime

    def state(self) -> dict[str, Any]:
        return {"entity": "incident", "id": self.id, "salt": self.salt, "title": self.title,
                "description": self.description, "start": rfc3339(self.start),
                "end": _time(self.end), "place": self.place.state(),
                "status": str(self.status), "violation_types": list(self.violation_types)}


@dataclass(frozen=True)
class Consent:
    """What the victim agreed to; everything is refused unless given."""

    publish_anonymised: bool = False
    share_with_prosecutors: bool = False
    share_with_international_mechanisms: bool = False

    def state(self) -> dict[str, Any]:
        return {"publish_anonymised": self.publish_anonymised,
                "share_with_prosecutors": self.share_with_prosecutors,
                "share_with_international_mechanisms": self.share_with_international_mechanisms}


@dataclass(frozen=True)
class Victim:
    pseudonym: str
    age_band: str = "unknown"
    consent: Consent = field(default_factory=Consent)

    def state(self) -> dict[str, Any]:
        return {"pseudonym": self.pseudonym, "age_band": self.age_band,
                "consent": self.consent.state()}


@dataclass(frozen=True)
class Perpetrator:
    """Who did it, as the act records it.

    For a unit or a person the link is a claim (``claim_id``), so it has sources, a
    confidence and due process; ``effect`` is that claim's :class:`Effect` when read.
    """

    kind: PerpetratorKind
    unit_id: str | None = None
    person_id: str | None = None
    claim_id: str | None = None
    description: str | None = None  # "men in black balaclavas, no insignia"
    effect: Effect = Effect.NONE

    def state(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "unit_id": self.unit_id, "person_id": self.person_id,
                "claim_id": self.claim_id, "description": self.description}


@dataclass(frozen=True)
class Act:
    id: str
    salt: str
    incident_id: str
    type: str
    description: str
    victim: Victim | None
    perpetrator: Perpetrator
    evidence: tuple[str, ...]  # item digests (hex)
    created_at: datetime
    updated_at: datetime

    def state(self) -> dict[str, Any]:
        return {"entity": "act", "id": self.id, "salt": self.salt,
                "incident_id": self.incident_id, "type": self.type,
                "description": self.description,
                "victim": None if self.victim is None else self.victim.state(),
                "perpetrator": self.perpetrator.state(), "evidence": list(self.evidence)}


@dataclass(frozen=True)
class Unit:
    id: str
    salt: str
    names: Mapping[str, str]  # language tag → name
    type: str
    parent_id: str | None
    area_of_operation: str | None
    notes: str | None  # history as known, in prose
    created_at: datetime
    updated_at: datetime

    def state(self) -> dict[str, Any]:
        return {"entity": "unit", "id": self.id, "salt": self.salt, "names": dict(self.names),
                "type": self.type, "parent_id": self.parent_id,
                "area_of_operation": self.area_of_operation, "notes": self.notes}


@dataclass(frozen=True)
class Identifier:
    kind: IdentifierKind
    value: str


@dataclass(frozen=True)
class Person:
    """A member of a security force as known from evidence. Restricted: every read is a
    custody event naming the reader."""

    id: str
    salt: str
    name: str
    rank: str | None
    role: str | None
    identifiers: tuple[Identifier, ...]
    notes: str | None
    created_at: datetime
    updated_at: datetime

    def state(self) -> dict[str, Any]:
        return {"entity": "person", "id": self.id, "salt": self.salt, "name": self.name,
                "rank": self.rank, "role": self.role, "notes": self.notes,
                "identifiers": [{"kind": str(i.kind), "value": i.value}
                                for i in self.identifiers]}


def claim_effect(statement: str, status: ClaimStatus) -> Effect:
    """What a claim counts as.

    Approved: reviewed. Pending review: reported if its subject is a unit, nothing if a
    person (a person is linked only after a second pair of eyes). Draft or rejected:
    nothing.
    """
    if status is ClaimStatus.APPROVED:
        return Effect.REVIEWED
    if status is ClaimStatus.PENDING_REVIEW and STATEMENTS[statement].subject is EntityKind.UNIT:
        return Effect.REPORTED
    return Effect.NONE


@dataclass(frozen=True)
class Claim:
    id: str
    salt: str
    statement: str
    subject_kind: EntityKind
    subject_id: str
    object_kind: EntityKind
    object_id: str
    role: str | None
    valid_from: str | None  # ISO date, possibly partial: "2020", "2020-08", "2020-08-09"
    valid_to: str | None
    sources: tuple[str, ...]  # item digests (hex), at least one
    confidence: Confidence
    comment: str | None
    status: ClaimStatus
    author: str
    reviewer: str | None
    review_reason: str | None
    reviewed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def effect(self) -> Effect:
        return claim_effect(self.statement, self.status)

    @property
    def effective(self) -> bool:
        return self.effect is not Effect.NONE

    @property
    def links_person(self) -> bool:
        return self.subject_kind is EntityKind.PERSON

    def state(self) -> dict[str, Any]:
        return {"entity": "claim", "id": self.id, "salt": self.salt,
                "statement": self.statement,
                "subject": {"kind": str(self.subject_kind), "id": self.subject_id},
                "object": {"kind": str(self.object_kind), "id": self.object_id},
                "role": self.role, "valid_from": self.valid_from, "valid_to": self.valid_to,
                "sources": list(self.sources), "confidence": str(self.confidence),
                "comment": self.comment, "status": str(self.status), "author": self.author,
                "reviewer": self.reviewer, "review_reason": self.review_reason,
                "reviewed_at": _time(self.reviewed_at)}


#: Claim status changes and who may make them (review is checked by :func:`check_review`).
CLAIM_TRANSITIONS: Mapping[str, tuple[ClaimStatus, ClaimStatus]] = {
    "submit": (ClaimStatus.DRAFT, ClaimStatus.PENDING_REVIEW),
    "withdraw": (ClaimStatus.PENDING_REVIEW, ClaimStatus.DRAFT),
    "approve": (ClaimStatus.PENDING_REVIEW, ClaimStatus.APPROVED),
    "reject": (ClaimStatus.PENDING_REVIEW, ClaimStatus.REJECTED),
}


def check_claim_transition(claim: Claim, change: str) -> ClaimStatus:
    """The status ``change`` leads to; raises ConflictError ``illegal-transition``."""
    source, target = CLAIM_TRANSITIONS[change]
    if claim.status is not source:
        raise ConflictError(
            f"claim {claim.id} is {claim.status}; only a claim that is {source} can be "
            f"{'approved' if change == 'approve' else change + 'ed'}",
            code="illegal-transition",
            hint="approved and rejected claims are final: record a new claim to correct one")
    return target


def check_review(claim: Claim, reviewer: str, contributors: Collection[str]) -> None:
    """Refuse a review by anyone who wrote or edited the claim (ConflictError
    ``self-review``). Review rights are the caller's to check."""
    if reviewer == claim.author or reviewer in contributors:
        raise ConflictError(
            f"{reviewer} wrote or edited claim {claim.id} and cannot review it",
            code="self-review",
            hint="a claim is reviewed by a second person who did not write it")


@dataclass(frozen=True)
class Membership:
    """A person in a unit over a period, as a claim states it (never stored apart from
    its claim, so it has the claim's sources, confidence and review)."""

    person_id: str
    unit_id: str
    role: str
    valid_from: str | None
    valid_to: str | None
    claim_id: str
    status: ClaimStatus
    confidence: Confidence
    effect: Effect


def membership_of(claim: Claim) -> Membership:
    role = COMMANDER if claim.statement == "person_commanded_unit" else (claim.role or "member")
    return Membership(claim.subject_id, claim.object_id, role, claim.valid_from,
                      claim.valid_to, claim.id, claim.status, claim.confidence, claim.effect)


@dataclass(frozen=True)
class Case:
    """A selection of incidents, claims and items prepared for a named recipient."""

    id: str
    salt: str
    title: str
    recipient: str
    description: str | None
    incident_ids: tuple[str, ...]
    claim_ids: tuple[str, ...]
    items: tuple[str, ...]
    created_at: datetime
    updated_at: datetime

    def state(self) -> dict[str, Any]:
        return {"entity": "case", "id": self.id, "salt": self.salt, "title": self.title,
                "recipient": self.recipient, "description": self.description,
                "incidents": list(self.incident_ids), "claims": list(self.claim_ids),
                "items": list(self.items)}


@dataclass(frozen=True)
class Term:
    """One entry of the violation-type vocabulary."""

    code: str
    labels: Mapping[str, str]
    description: str
    origin: str  # "shipped" with Sprava, or "instance" (added here)

    def state(self) -> dict[str, Any]:
        return {"entity": "vocabulary_term", "code": self.code, "labels": dict(self.labels),
                "description": self.description}


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    limit: int
    offset: int


MAX_PAGE = 500


def check_page(limit: int, offset: int) -> None:
    """Raise BadInputError ``bad-page`` unless 1 ≤ limit ≤ MAX_PAGE and offset ≥ 0."""
    if (isinstance(limit, bool) or isinstance(offset, bool) or not isinstance(limit, int)
            or not isinstance(offset, int) or not 1 <= limit <= MAX_PAGE or offset < 0):
        raise BadInputError(f"bad page: limit {limit!r}, offset {offset!r}", code="bad-page",
                            hint=f"limit is 1 to {MAX_PAGE}, offset 0 or more")


# --- custody -----------------------------------------------------------------------------


def state_digest(state: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON of an entity's state."""
    return hashlib.sha256(rfc8785.dumps(dict(state))).hexdigest()


def catalogue_event(*, change: str, entity: str, entity_id: str, state_sha256: str,
                    actor: str, time: datetime) -> CustodyEvent:
    """The custody event of one change: what changed and a commitment to the new state."""
    return CustodyEvent(CATALOGUE, time, actor, {
        "change": change, "entity": entity, "id": entity_id, "state_sha256": state_sha256})


def view_event(*, entity: str, ids: Sequence[str], actor: str, time: datetime) -> CustodyEvent:
    """The custody event of a read of restricted records: who saw which ones."""
    return CustodyEvent(CATALOGUE, time, actor, {
        "change": "view", "entity": entity, "ids": sorted(ids)})


def export_event(*, case_id: str, state_sha256: str, recipient: str, persons: Sequence[str],
                 contents_sha256: str, actor: str, time: datetime) -> CustodyEvent:
    """The custody event of a case file leaving for its recipient.

    It names the recipient and the persons whose records leave with it (persons leave the
    restricted zone only this way), commits to the case's state, and commits to the case
    file's ``sprava/contents.json`` (which lists every item, event and file in the bag) by
    its SHA-256, so that the case file proves what was exported, to whom, and when.
    """
    return CustodyEvent(CATALOGUE, time, actor, {
        "change": "export", "entity": "case", "id": case_id, "state_sha256": state_sha256,
        "recipient": recipient, "persons": sorted(set(persons)),
        "contents_sha256": contents_sha256})
