"""The controlled vocabulary of violation types: shipped as data, extended per instance.

The shipped terms are ``sprava/catalogue/data/violations.json`` (read once, checked like
any input); an instance adds its own with :func:`add_term`, a custody event like every
other catalogue change. Terms are never removed or renamed: incidents and acts cite them
by code, and a case file exported years ago must still mean what it said. Should a later
version of Sprava ship a code an instance had already added, the instance's own labels
are the ones shown.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Connection, insert, select

from sprava.backends.db.catalogue_tables import vocabulary_term
from sprava.catalogue import schema
from sprava.catalogue._record import new_salt, reading, recording
from sprava.domain.catalogue import EntityKind, Page, Term, check_page
from sprava.errors import BadInputError, ConflictError, NotFoundError
from sprava.instance import Instance

DATA = "violations.json"


@cache
def shipped_terms() -> tuple[Term, ...]:
    """The terms this version of Sprava ships, in their documented order."""
    raw = (resources.files("sprava.catalogue") / "data" / DATA).read_text("utf-8")
    terms = []
    for entry in json.loads(raw)["terms"]:
        values = schema.term_input(entry)
        terms.append(Term(values["code"], values["labels"], values.get("description", ""),
                          "shipped"))
    return tuple(terms)


def _instance_terms(conn: Connection) -> list[Term]:
    rows = conn.execute(select(vocabulary_term).order_by(vocabulary_term.c.code))
    return [Term(r.code, json.loads(r.labels), r.description, "instance") for r in rows]


def _all(conn: Connection) -> list[Term]:
    own = {t.code: t for t in _instance_terms(conn)}
    shipped = [own.pop(t.code, t) for t in shipped_terms()]
    return shipped + list(own.values())


def known_codes(conn: Connection) -> set[str]:
    return {t.code for t in shipped_terms()} | set(
        conn.execute(select(vocabulary_term.c.code)).scalars())


def check_codes(conn: Connection, codes: Collection[str], path: str) -> None:
    """Raise BadInputError ``unknown-violation-type`` for a code not in the vocabulary."""
    unknown = sorted(set(codes) - known_codes(conn))
    if unknown:
        raise BadInputError(
            f"{path}: {unknown[0]!r} is not in the violation-type vocabulary",
            code="unknown-violation-type",
            hint="list the vocabulary, or add the term to this instance first")


def list_terms(instance: Instance, *, limit: int = 100, offset: int = 0) -> Page[Term]:
    """Shipped terms first, in their order, then this instance's, by code."""
    check_page(limit, offset)
    with reading(instance) as conn:
        terms = _all(conn)
    return Page(tuple(terms[offset : offset + limit]), len(terms), limit, offset)


def get_term(instance: Instance, code: str) -> Term:
    with reading(instance) as conn:
        for term in _all(conn):
            if term.code == code:
                return term
    raise NotFoundError(f"no violation type {code!r}", code="term-not-found")


def add_term(instance: Instance, data: Any, *, actor: str) -> Term:
    """Extend this instance's vocabulary; raises ConflictError ``term-exists``."""
    values = schema.term_input(data)
    with recording(instance, actor) as rec:
        if values["code"] in known_codes(rec.conn):
            raise ConflictError(f"the vocabulary already has {values['code']!r}",
                                code="term-exists", hint="terms are never redefined")
        term = Term(values["code"], values["labels"], values.get("description", ""), "instance")
        salt = new_salt()
        rec.conn.execute(insert(vocabulary_term).values(
            code=term.code, salt=salt, labels=json.dumps(term.labels, ensure_ascii=False,
                                                         sort_keys=True),
            description=term.description, created_at=rec.now, updated_at=rec.now))
        rec.record("create", EntityKind.TERM, term.code, term_state(term, salt))
    return term


def term_state(term: Term, salt: str) -> dict[str, Any]:
    return {**term.state(), "salt": salt}
