"""Check the catalogue against its custody record: no row changed behind the ledger's back.

Each catalogue row must be what its latest custody event committed to: its state,
recomputed from the row (with the salt beside it), must hash to that event's
``state_sha256``. A row edited directly in the database, or planted without an event,
fails here; so does a change-index row that disagrees with the signed leaf it names.

What it cannot see alone is the same as for the vault (docs/architecture.md): someone
with the signing key could rewrite rows, events and checkpoints together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, func, select

from sprava.audit import Finding
from sprava.backends.db.catalogue_tables import (
    act,
    case_record,
    catalogue_change,
    claim,
    incident,
    person,
    unit,
    vocabulary_term,
)
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import ledger_leaf
from sprava.catalogue import acts, cases, claims, incidents, persons, units
from sprava.domain.catalogue import CATALOGUE, EntityKind, Term, state_digest
from sprava.domain.custody import decode_leaf
from sprava.errors import BadInputError
from sprava.instance import Instance

_PAGE = 500

# Report order, after the vault's own findings.
ORDER = ("catalogue-change-mismatch", "catalogue-row-unrecorded", "catalogue-row-altered")


def _terms(conn: Connection, codes: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    rows = conn.execute(select(vocabulary_term).where(vocabulary_term.c.code.in_(codes)))
    return {r.code: {**Term(r.code, json.loads(r.labels), r.description, "instance").state(),
                     "salt": r.salt} for r in rows}


def _states(loader: Callable[[Connection, Sequence[str]], Mapping[str, Any]]
            ) -> Callable[[Connection, Sequence[str]], dict[str, Mapping[str, Any]]]:
    def states(conn: Connection, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        return {k: v.state() for k, v in loader(conn, ids).items()}
    return states


_ENTITIES: tuple[tuple[EntityKind, Table, Any, Callable[..., dict[str, Mapping[str, Any]]]],
                 ...] = (
    (EntityKind.TERM, vocabulary_term, vocabulary_term.c.code, _terms),
    (EntityKind.INCIDENT, incident, incident.c.id, _states(incidents.load)),
    (EntityKind.UNIT, unit, unit.c.id, _states(units.load)),
    (EntityKind.PERSON, person, person.c.id, _states(persons.load)),
    (EntityKind.CLAIM, claim, claim.c.id, _states(claims.load)),
    (EntityKind.ACT, act, act.c.id, _states(acts.load)),
    (EntityKind.CASE, case_record, case_record.c.id, _states(cases.load)),
)


def _pages(conn: Connection, key: Any) -> Iterator[list[str]]:
    after = ""
    while True:
        ids = list(conn.execute(select(key).where(key > after).order_by(key).limit(_PAGE))
                   .scalars())
        if not ids:
            return
        yield ids
        after = ids[-1]


def _check_index(conn: Connection, leaves: int, out: list[Finding]) -> None:
    """Every change-index row says what the signed leaf it names says."""
    after = 0
    c = catalogue_change.c
    while True:
        rows = conn.execute(
            select(c.id, c.leaf_index, c.entity, c.entity_id, c.change, c.actor,
                   c.state_sha256, ledger_leaf.c.data)
            .select_from(catalogue_change.outerjoin(
                ledger_leaf, ledger_leaf.c.idx == c.leaf_index))
            .where(c.id > after).order_by(c.id).limit(_PAGE)).all()
        if not rows:
            return
        for row in rows:
            try:
                body = decode_leaf(bytes(row.data)) if row.data is not None else {}
            except BadInputError:
                body = {}
            # An export is one event on the case, indexed under each person leaving with it.
            person_export = row.change == "export" and row.entity == "person"
            named = (body.get("ids") or [] if row.change == "view" else
                     body.get("persons") or [] if person_export else [body.get("id")])
            if (not 0 <= row.leaf_index < leaves or body.get("kind") != CATALOGUE
                    or body.get("entity") != ("case" if person_export else row.entity)
                    or row.entity_id not in named
                    or body.get("change") != row.change or body.get("actor") != row.actor
                    or (None if person_export else body.get("state_sha256"))
                    != row.state_sha256):
                out.append(Finding(
                    "catalogue-change-mismatch", f"{row.entity} {row.entity_id}",
                    f"the change index says leaf {row.leaf_index} records a {row.change} of "
                    f"{row.entity} {row.entity_id}; the signed leaf does not say so"))
        after = rows[-1].id


def check_catalogue(conn: Connection, leaves: int) -> list[Finding]:
    """Findings about the catalogue, in a fixed order; ``leaves`` is the number of leaves
    already verified (events beyond it prove nothing)."""
    out: list[Finding] = []
    _check_index(conn, leaves, out)
    c = catalogue_change.c
    for kind, _table, key, states in _ENTITIES:
        for ids in _pages(conn, key):
            latest: dict[str, str | None] = {}
            for entity_id, digest in conn.execute(
                    select(c.entity_id, c.state_sha256)
                    .where(c.entity == kind.value, c.change.notin_(("view", "export")),
                           c.entity_id.in_(ids),
                           c.leaf_index < leaves)
                    .order_by(c.leaf_index, c.id)):
                latest[entity_id] = digest
            found = states(conn, ids)
            for entity_id in ids:
                subject = f"{kind.value} {entity_id}"
                if entity_id not in latest:
                    out.append(Finding("catalogue-row-unrecorded", subject,
                                       f"{kind.value} {entity_id} has no custody event"))
                elif state_digest(found[entity_id]) != latest[entity_id]:
                    out.append(Finding(
                        "catalogue-row-altered", subject,
                        f"{kind.value} {entity_id} is not what its latest custody event "
                        "recorded: it was changed outside Sprava"))
    rank = {code: i for i, code in enumerate(ORDER)}
    out.sort(key=lambda f: (rank[f.code], f.subject))
    return out


def verify_catalogue(instance: Instance, leaves: int | None = None) -> list[Finding]:
    """Check the whole catalogue in one read transaction; an empty list means it is whole."""
    with read_transaction(instance.engine) as conn:
        if leaves is None:
            last = conn.execute(select(func.max(ledger_leaf.c.idx))).scalar()
            leaves = 0 if last is None else int(last) + 1
        return check_catalogue(conn, leaves)
