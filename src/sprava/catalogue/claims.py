"""Claims and their review: every link between units, persons, incidents and acts.

A claim states one thing ("person P commanded unit U from 2019 to 2021") with at least
one source item, a confidence, and an author. Its life::

    draft ──submit──▶ pending_review ──approve──▶ approved
      ▲                    │    └──────reject───▶ rejected (kept, with its reason)
      └──────withdraw──────┘

Only a draft may be edited. Approved and rejected are final: a correction is a new claim.

Due process (shared/DESIGN.md): a claim whose subject is a person counts only once
approved; a claim about a unit counts as ``reported`` once submitted and ``reviewed``
once approved (:func:`sprava.domain.catalogue.claim_effect`). A review needs review
rights (:class:`ReviewRights`, supplied by the caller: the API grants them by account) and is
refused to anyone who wrote or edited the claim, as the custody record of the claim shows
(ConflictError ``self-review``). Memberships and commands are claims too, so a person is
never tied to a unit without the same review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert, or_, select, update

from sprava.backends.db.catalogue_tables import (
    act,
    catalogue_change,
    claim,
    claim_source,
    incident,
    person,
    unit,
)
from sprava.catalogue import schema
from sprava.catalogue._record import (
    Recorder,
    chunks,
    grouped,
    new_id,
    new_salt,
    page_query,
    reading,
    recording,
    require_items,
    require_rows,
)
from sprava.domain.catalogue import (
    MEMBERSHIP_STATEMENTS,
    STATEMENTS,
    Claim,
    ClaimStatus,
    Confidence,
    EntityKind,
    Membership,
    Page,
    check_claim_transition,
    check_review,
    membership_of,
)
from sprava.errors import (
    BadInputError,
    ConflictError,
    NotFoundError,
    ReviewNotPermittedError,
)
from sprava.instance import Instance

_TABLES = {EntityKind.UNIT: unit, EntityKind.PERSON: person, EntityKind.INCIDENT: incident,
           EntityKind.ACT: act}


class ReviewRights(Protocol):
    """Who may review claims (the API builds one from the account making the request)."""

    def may_review(self, actor: str) -> bool: ...


@dataclass(frozen=True)
class Reviewers:
    """Review rights held by a fixed set of actors (a configured list, or tests)."""

    names: frozenset[str]

    def may_review(self, actor: str) -> bool:
        return actor in self.names


# --- rows --------------------------------------------------------------------------------


def _from_row(row: Any, sources: Sequence[str]) -> Claim:
    return Claim(
        id=row.id, salt=row.salt, statement=row.statement,
        subject_kind=EntityKind(row.subject_kind), subject_id=row.subject_id,
        object_kind=EntityKind(row.object_kind), object_id=row.object_id, role=row.role,
        valid_from=row.valid_from, valid_to=row.valid_to, sources=tuple(sorted(sources)),
        confidence=Confidence(row.confidence), comment=row.comment,
        status=ClaimStatus(row.status), author=row.author, reviewer=row.reviewer,
        review_reason=row.review_reason, reviewed_at=row.reviewed_at,
        created_at=row.created_at, updated_at=row.updated_at)


def load(conn: Connection, ids: Sequence[str]) -> dict[str, Claim]:
    out: dict[str, Claim] = {}
    for part in chunks(list(ids)):
        sources = grouped(conn, claim_source.c.claim_id, claim_source.c.item_sha256, part)
        for row in conn.execute(select(claim).where(claim.c.id.in_(part))):
            out[row.id] = _from_row(row, sources.get(row.id, []))
    return out


def fetch(conn: Connection, claim_id: str) -> Claim:
    found = load(conn, [claim_id]).get(claim_id)
    if found is None:
        raise NotFoundError(f"no claim {claim_id}", code="claim-not-found")
    return found


def _columns(c: Claim) -> dict[str, Any]:
    return {"role": c.role, "valid_from": c.valid_from, "valid_to": c.valid_to,
            "confidence": str(c.confidence), "comment": c.comment, "status": str(c.status),
            "reviewer": c.reviewer, "review_reason": c.review_reason,
            "reviewed_at": c.reviewed_at, "updated_at": c.updated_at}


def _write_sources(conn: Connection, c: Claim) -> None:
    conn.execute(delete(claim_source).where(claim_source.c.claim_id == c.id))
    conn.execute(insert(claim_source), [{"claim_id": c.id, "item_sha256": s} for s in c.sources])


def check_references(conn: Connection, c: Claim, *, pending: Sequence[str] = ()) -> None:
    """The subject and object exist (``pending``: ids created in this same transaction)."""
    for kind, entity_id in ((c.subject_kind, c.subject_id), (c.object_kind, c.object_id)):
        if entity_id not in pending:
            require_rows(conn, _TABLES[kind], [entity_id], kind.value)
    require_items(conn, c.sources)


def insert_claim(rec: Recorder, c: Claim, note: str | None = None) -> None:
    """Write a new claim and record its creation (for :mod:`sprava.catalogue.acts` and the
    imports too; ``note`` goes to the change index beside the event)."""
    rec.conn.execute(insert(claim).values(
        id=c.id, salt=c.salt, statement=c.statement, subject_kind=str(c.subject_kind),
        subject_id=c.subject_id, object_kind=str(c.object_kind), object_id=c.object_id,
        author=c.author, created_at=c.created_at, **_columns(c)))
    _write_sources(rec.conn, c)
    rec.record("create", EntityKind.CLAIM, c.id, c.state(), note)


def new_claim(rec: Recorder, *, statement: str, subject: tuple[EntityKind, str],
              obj: tuple[EntityKind, str], values: dict[str, Any],
              status: ClaimStatus = ClaimStatus.DRAFT) -> Claim:
    schema.check_claim_shape(statement, subject, obj, values)
    return Claim(
        id=new_id(), salt=new_salt(), statement=statement, subject_kind=subject[0],
        subject_id=subject[1], object_kind=obj[0], object_id=obj[1], role=values.get("role"),
        valid_from=values.get("valid_from"), valid_to=values.get("valid_to"),
        sources=values["sources"], confidence=values["confidence"],
        comment=values.get("comment"), status=status, author=rec.actor, reviewer=None,
        review_reason=None, reviewed_at=None, created_at=rec.now, updated_at=rec.now)


def contributors(conn: Connection, claim_id: str) -> set[str]:
    """Everyone who wrote or edited the claim, from its custody record."""
    c = catalogue_change.c
    return set(conn.execute(select(c.actor).where(
        c.entity == EntityKind.CLAIM.value, c.entity_id == claim_id,
        c.change.in_(("create", "update")))).scalars())


# --- writing -----------------------------------------------------------------------------


def create_claim(instance: Instance, data: Any, *, actor: str, submit: bool = False) -> Claim:
    """Record a claim as a draft (or submitted for review at once with ``submit``).

    Raises BadInputError (shape, ``sources-required``, ``statement-mismatch``) or
    NotFoundError (an unknown subject, object or source item).
    """
    values = schema.claim_input(data)
    with recording(instance, actor) as rec:
        c = new_claim(rec, statement=values.pop("statement"), subject=values.pop("subject"),
                      obj=values.pop("object"), values=values,
                      status=ClaimStatus.PENDING_REVIEW if submit else ClaimStatus.DRAFT)
        check_references(rec.conn, c)
        insert_claim(rec, c)
    return c


def update_claim(instance: Instance, claim_id: str, changes: Any, *, actor: str) -> Claim:
    """Edit a draft; raises ConflictError ``claim-not-editable`` once it is submitted.

    Whoever edits a claim becomes one of its contributors and may not review it.
    """
    values = schema.claim_input(changes, partial=True)
    with recording(instance, actor) as rec:
        current = fetch(rec.conn, claim_id)
        if current.status is not ClaimStatus.DRAFT:
            raise ConflictError(
                f"claim {claim_id} is {current.status}; only a draft can be edited",
                code="claim-not-editable",
                hint="withdraw a pending claim to edit it; record a new claim to correct a "
                "reviewed one")
        new = replace(current, **values)
        schema.check_claim_shape(new.statement, (new.subject_kind, new.subject_id),
                                 (new.object_kind, new.object_id), new.state())
        if new.state() == current.state():
            return current
        require_items(rec.conn, new.sources)
        new = replace(new, updated_at=rec.now)
        rec.conn.execute(update(claim).where(claim.c.id == claim_id).values(**_columns(new)))
        _write_sources(rec.conn, new)
        rec.record("update", EntityKind.CLAIM, claim_id, new.state())
    return new


def _move(instance: Instance, claim_id: str, change: str, actor: str,
          rights: ReviewRights | None = None, reason: str | None = None) -> Claim:
    with recording(instance, actor) as rec:
        current = fetch(rec.conn, claim_id)
        target = check_claim_transition(current, change)
        new = replace(current, status=target, updated_at=rec.now)
        if change in ("approve", "reject"):
            check_review(current, actor, contributors(rec.conn, claim_id))
            if rights is None or not rights.may_review(actor):
                raise ReviewNotPermittedError(
                    f"{actor} has no review rights", hint="a coordinator reviews claims")
            new = replace(new, reviewer=actor, review_reason=reason, reviewed_at=rec.now)
        rec.conn.execute(update(claim).where(claim.c.id == claim_id).values(**_columns(new)))
        rec.record(change, EntityKind.CLAIM, claim_id, new.state(), reason)
    return new


def submit_claim(instance: Instance, claim_id: str, *, actor: str) -> Claim:
    """Ask for review (draft → pending_review)."""
    return _move(instance, claim_id, "submit", actor)


def withdraw_claim(instance: Instance, claim_id: str, *, actor: str) -> Claim:
    """Take a claim back from review to edit it (pending_review → draft)."""
    return _move(instance, claim_id, "withdraw", actor)


def approve_claim(instance: Instance, claim_id: str, *, actor: str, rights: ReviewRights,
                  reason: str | None = None) -> Claim:
    """Approve a pending claim as its second pair of eyes.

    Raises ConflictError ``illegal-transition`` (not pending), ConflictError
    ``self-review`` (the actor wrote or edited it), ReviewNotPermittedError
    ``no-review-rights``.
    """
    reason = schema.optional_text(reason, "reason", limit=schema.LONG, multiline=True)
    return _move(instance, claim_id, "approve", actor, rights, reason)


def reject_claim(instance: Instance, claim_id: str, *, actor: str, rights: ReviewRights,
                 reason: str) -> Claim:
    """Reject a pending claim; the claim and the reason are kept. Raises as
    :func:`approve_claim`, and BadInputError ``reason-required`` without a reason."""
    checked = schema.optional_text(reason, "reason", limit=schema.LONG, multiline=True)
    if checked is None:
        raise BadInputError("a rejection needs a reason", code="reason-required",
                            hint="say what is missing or wrong, for the author and the record")
    return _move(instance, claim_id, "reject", actor, rights, checked)


# --- reading -----------------------------------------------------------------------------


def get_claim(instance: Instance, claim_id: str) -> Claim:
    with reading(instance) as conn:
        return fetch(conn, schema.entity_id(claim_id, "claim_id"))


def list_claims(instance: Instance, *, statement: str | None = None,
                status: str | None = None, about: str | None = None,
                effective_only: bool = False, persons: bool = True, limit: int = 50,
                offset: int = 0) -> Page[Claim]:
    """Claims, oldest first; ``about`` matches the subject or the object id. With
    ``persons=False``, claims that name a person are left out (for readers who may not
    see persons)."""
    c = claim.c
    query = select(c.id).order_by(c.created_at, c.id)
    if not persons:
        query = query.where(c.subject_kind != EntityKind.PERSON.value,
                            c.object_kind != EntityKind.PERSON.value)
    if statement is not None:
        query = query.where(c.statement == schema.enum(statement, "statement", str,
                                                       list(STATEMENTS)))
    if status is not None:
        query = query.where(c.status == schema.enum(status, "status", ClaimStatus,
                                                    [s.value for s in ClaimStatus]).value)
    if about is not None:
        about = schema.entity_id(about, "about")
        query = query.where(or_(c.subject_id == about, c.object_id == about))
    if effective_only:
        query = query.where(or_(
            c.status == ClaimStatus.APPROVED.value,
            (c.status == ClaimStatus.PENDING_REVIEW.value)
            & (c.subject_kind == EntityKind.UNIT.value)))
    with reading(instance) as conn:
        rows, total = page_query(conn, query, limit, offset)
        found = load(conn, [r.id for r in rows])
    return Page(tuple(found[r.id] for r in rows), total, limit, offset)


def membership_query(*, unit_id: str | None = None, person_id: str | None = None,
                     commanders_only: bool = False, include_unreviewed: bool = False) -> Any:
    c = claim.c
    statements = ("person_commanded_unit",) if commanders_only else MEMBERSHIP_STATEMENTS
    # Undated periods first on both databases (PostgreSQL would sort NULL last).
    query = (select(c.id).where(c.statement.in_(statements))
             .order_by(c.valid_from.is_not(None), c.valid_from, c.valid_to.is_not(None),
                       c.valid_to, c.id))
    if unit_id is not None:
        query = query.where(c.object_id == schema.entity_id(unit_id, "unit_id"))
    if person_id is not None:
        query = query.where(c.subject_id == schema.entity_id(person_id, "person_id"))
    if include_unreviewed:
        query = query.where(c.status.in_((ClaimStatus.PENDING_REVIEW.value,
                                          ClaimStatus.APPROVED.value)))
    else:
        query = query.where(c.status == ClaimStatus.APPROVED.value)
    return query


def list_memberships(instance: Instance, *, unit_id: str | None = None,
                     person_id: str | None = None, commanders_only: bool = False,
                     include_unreviewed: bool = False, limit: int = 50,
                     offset: int = 0) -> Page[Membership]:
    """Who was in (or commanded) which unit when, from claims: approved ones only unless
    ``include_unreviewed`` (which adds those pending review). Earliest first; undated
    periods sort first."""
    query = membership_query(unit_id=unit_id, person_id=person_id,
                             commanders_only=commanders_only,
                             include_unreviewed=include_unreviewed)
    with reading(instance) as conn:
        rows, total = page_query(conn, query, limit, offset)
        found = load(conn, [r.id for r in rows])
    return Page(tuple(membership_of(found[r.id]) for r in rows), total, limit, offset)
