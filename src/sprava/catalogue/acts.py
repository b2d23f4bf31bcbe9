"""Acts: one act inside an incident, what was done to whom and by whom, with evidence.

The victim is a pseudonym with an age band and consent flags, never a name or a way to
reach them. The perpetrator is a unit, a person or unknown. Naming a unit or a person is
an attribution, so it is made as a claim (``unit_committed_act`` or
``person_committed_act``) with sources and a confidence, submitted for review in the same
transaction: the act's :attr:`~sprava.domain.catalogue.Perpetrator.effect` is that claim's
effect, so a person named as perpetrator counts only once a second reviewer approved it.
Naming another perpetrator later makes a new claim and withdraws the old one if it was
still pending (a reviewed claim stands as reviewed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from sprava.backends.db.catalogue_tables import act, act_item, claim, person, unit
from sprava.catalogue import claims, incidents, schema
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
from sprava.catalogue.vocabulary import check_codes
from sprava.domain.catalogue import (
    Act,
    ClaimStatus,
    Consent,
    Effect,
    EntityKind,
    Page,
    Perpetrator,
    PerpetratorKind,
    Victim,
    claim_effect,
)
from sprava.errors import NotFoundError
from sprava.instance import Instance


def _from_row(row: Any, evidence: Sequence[str], effect: Effect) -> Act:
    victim = None
    if row.victim_pseudonym is not None:
        victim = Victim(row.victim_pseudonym, row.victim_age_band, Consent(
            row.consent_publish_anonymised, row.consent_share_with_prosecutors,
            row.consent_share_with_international_mechanisms))
    return Act(
        id=row.id, salt=row.salt, incident_id=row.incident_id, type=row.type,
        description=row.description, victim=victim,
        perpetrator=Perpetrator(PerpetratorKind(row.perpetrator_kind), row.perpetrator_unit_id,
                                row.perpetrator_person_id, row.perpetrator_claim_id,
                                row.perpetrator_description, effect),
        evidence=tuple(sorted(evidence)), created_at=row.created_at, updated_at=row.updated_at)


def load(conn: Connection, ids: Sequence[str]) -> dict[str, Act]:
    out: dict[str, Act] = {}
    for part in chunks(list(ids)):
        evidence = grouped(conn, act_item.c.act_id, act_item.c.item_sha256, part)
        rows = conn.execute(select(act).where(act.c.id.in_(part))).all()
        effects = {r.id: claim_effect(r.statement, ClaimStatus(r.status)) for r in conn.execute(
            select(claim.c.id, claim.c.statement, claim.c.status).where(
                claim.c.id.in_([r.perpetrator_claim_id for r in rows
                                if r.perpetrator_claim_id])))}
        for row in rows:
            out[row.id] = _from_row(row, evidence.get(row.id, []),
                                    effects.get(row.perpetrator_claim_id, Effect.NONE))
    return out


def fetch(conn: Connection, act_id: str) -> Act:
    found = load(conn, [act_id]).get(act_id)
    if found is None:
        raise NotFoundError(f"no act {act_id}", code="act-not-found")
    return found


def _columns(a: Act) -> dict[str, Any]:
    v, p = a.victim, a.perpetrator
    consent = v.consent if v is not None else Consent()
    return {
        "type": a.type, "description": a.description,
        "victim_pseudonym": None if v is None else v.pseudonym,
        "victim_age_band": None if v is None else v.age_band,
        "consent_publish_anonymised": consent.publish_anonymised,
        "consent_share_with_prosecutors": consent.share_with_prosecutors,
        "consent_share_with_international_mechanisms":
            consent.share_with_international_mechanisms,
        "perpetrator_kind": str(p.kind), "perpetrator_unit_id": p.unit_id,
        "perpetrator_person_id": p.person_id, "perpetrator_claim_id": p.claim_id,
        "perpetrator_description": p.description, "updated_at": a.updated_at}


def _write_evidence(conn: Connection, a: Act) -> None:
    conn.execute(delete(act_item).where(act_item.c.act_id == a.id))
    if a.evidence:
        conn.execute(insert(act_item), [{"act_id": a.id, "item_sha256": s} for s in a.evidence])


def _attribute(rec: Recorder, act_id: str, given: schema.PerpetratorInput) -> Perpetrator:
    """The perpetrator as given; for a unit or a person, with its claim recorded."""
    if given.kind is PerpetratorKind.UNKNOWN:
        return Perpetrator(PerpetratorKind.UNKNOWN, description=given.description)
    assert given.target_id is not None
    assert given.confidence is not None
    kind = EntityKind.UNIT if given.kind is PerpetratorKind.UNIT else EntityKind.PERSON
    require_rows(rec.conn, unit if kind is EntityKind.UNIT else person, [given.target_id],
                 kind.value)
    require_items(rec.conn, given.sources)
    c = claims.new_claim(
        rec, statement=f"{kind.value}_committed_act", subject=(kind, given.target_id),
        obj=(EntityKind.ACT, act_id), values={
            "sources": given.sources, "confidence": given.confidence, "comment": given.comment},
        status=ClaimStatus.PENDING_REVIEW)
    claims.insert_claim(rec, c)
    return Perpetrator(given.kind, given.target_id if kind is EntityKind.UNIT else None,
                       given.target_id if kind is EntityKind.PERSON else None, c.id,
                       effect=c.effect)


def create_act(instance: Instance, data: Any, *, actor: str) -> Act:
    """Record an act in an existing incident.

    Raises BadInputError (shape, ``unknown-violation-type``), NotFoundError (incident,
    unit, person or item).
    """
    values = schema.act_input(data)
    with recording(instance, actor) as rec:
        incidents.fetch(rec.conn, values["incident_id"])
        check_codes(rec.conn, [values["type"]], "act.type")
        require_items(rec.conn, values.get("evidence", ()))
        act_id = new_id()
        perpetrator = _attribute(rec, act_id, values.get("perpetrator")
                                 or schema.PerpetratorInput(PerpetratorKind.UNKNOWN))
        a = Act(id=act_id, salt=new_salt(), incident_id=values["incident_id"],
                type=values["type"], description=values.get("description", ""),
                victim=values.get("victim"), perpetrator=perpetrator,
                evidence=values.get("evidence", ()), created_at=rec.now, updated_at=rec.now)
        rec.conn.execute(insert(act).values(id=a.id, salt=a.salt, incident_id=a.incident_id,
                                            created_at=a.created_at, **_columns(a)))
        _write_evidence(rec.conn, a)
        rec.record("create", EntityKind.ACT, a.id, a.state())
    return a


def _same(current: Perpetrator, given: schema.PerpetratorInput) -> bool:
    target = current.unit_id or current.person_id
    return (current.kind is given.kind and target == given.target_id
            and (given.kind is not PerpetratorKind.UNKNOWN
                 or current.description == given.description))


def update_act(instance: Instance, act_id: str, changes: Any, *, actor: str) -> Act:
    """Change an act's type, description, victim, perpetrator or evidence (not its
    incident). Naming the same perpetrator again changes nothing while its claim stands
    (pending or approved); after a rejection or a withdrawal it makes a new claim."""
    values = schema.act_input(changes, partial=True)
    with recording(instance, actor) as rec:
        current = fetch(rec.conn, act_id)
        given = values.pop("perpetrator", None)
        new = replace(current, **values)
        if "type" in values:
            check_codes(rec.conn, [new.type], "act.type")
        require_items(rec.conn, new.evidence)
        old = current.perpetrator.claim_id
        previous = claims.fetch(rec.conn, old) if old is not None else None
        standing = previous is None or previous.status in (ClaimStatus.PENDING_REVIEW,
                                                           ClaimStatus.APPROVED)
        if given is not None and not (standing and _same(current.perpetrator, given)):
            if previous is not None and previous.status is ClaimStatus.PENDING_REVIEW:
                withdrawn = replace(previous, status=ClaimStatus.DRAFT, updated_at=rec.now)
                rec.conn.execute(update(claim).where(claim.c.id == previous.id).values(
                    status=withdrawn.status.value, updated_at=rec.now))
                rec.record("withdraw", EntityKind.CLAIM, previous.id, withdrawn.state(),
                           "the act names another perpetrator")
            new = replace(new, perpetrator=_attribute(rec, act_id, given))
        if new.state() == current.state():
            return current
        new = replace(new, updated_at=rec.now)
        rec.conn.execute(update(act).where(act.c.id == act_id).values(**_columns(new)))
        _write_evidence(rec.conn, new)
        rec.record("update", EntityKind.ACT, act_id, new.state())
    return new


def get_act(instance: Instance, act_id: str) -> Act:
    with reading(instance) as conn:
        return fetch(conn, schema.entity_id(act_id, "act_id"))


def list_acts(instance: Instance, *, incident_id: str | None = None, type: str | None = None,
              limit: int = 50, offset: int = 0) -> Page[Act]:
    """Acts in the order they were recorded, optionally of one incident or type."""
    query = select(act.c.id).order_by(act.c.created_at, act.c.id)
    if incident_id is not None:
        query = query.where(act.c.incident_id == schema.entity_id(incident_id, "incident_id"))
    if type is not None:
        query = query.where(act.c.type == type)
    with reading(instance) as conn:
        rows, total = page_query(conn, query, limit, offset)
        found = load(conn, [r.id for r in rows])
    return Page(tuple(found[r.id] for r in rows), total, limit, offset)
