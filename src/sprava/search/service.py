"""``search()``: full text over the catalogue and the vault, within the caller's scope.

Order of work: check the input (nothing touches the database before the query, the
filters and the page are known to be sound), catch the index up with the ledger (one read
when nothing changed), find one page of hits in a read transaction, and, if any hit
shows a person, record that read as a custody event naming the reader before the hits
are returned, as every other read of persons is.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from sprava.backends.db.engine import read_transaction
from sprava.backends.db.search_tables import search_doc
from sprava.catalogue._record import recording
from sprava.domain.catalogue import EntityKind, Page, check_page
from sprava.errors import BadInputError
from sprava.instance import Instance
from sprava.search.backends import Row, backend_for
from sprava.search.indexer import ensure_fresh
from sprava.search.plan import make_plan
from sprava.search.query import parse_query
from sprava.search.scope import KINDS, Hit, SearchFilters, SearchScope, check_filters
from sprava.search.snippet import snippet

NO_FILTERS = SearchFilters()


def search(instance: Instance, query: str, *, scope: SearchScope,
           filters: SearchFilters = NO_FILTERS, limit: int = 50,
           offset: int = 0) -> Page[Hit]:
    """Records matching every word of ``query`` (any spelling: see
    :mod:`sprava.search.text`; the last word also as a prefix) and every filter, that
    ``scope`` lets the caller see; best first, then by kind and id.

    A query without words (empty, or punctuation only) lists the records the scope and
    the filters keep. Raises BadInputError ``bad-query`` (not text, too long, too many
    words), ``bad-filter``, ``bad-scope`` or ``bad-page``.
    """
    if not isinstance(scope, SearchScope):
        raise BadInputError("scope must be a SearchScope", code="bad-scope")
    check_page(limit, offset)
    groups = parse_query(query)
    filters = check_filters(filters)
    kinds = scope.kinds() & (filters.kinds if filters.kinds is not None else frozenset(KINDS))
    if not kinds:
        return Page((), 0, limit, offset)
    plan = make_plan(groups, scope, filters, kinds)
    ensure_fresh(instance)
    backend = backend_for(instance.engine.dialect.name)
    with read_transaction(instance.engine) as conn:
        rows, total = backend.page(conn, plan, limit, offset)
        shown = _details(conn, rows)
    hits, persons = [], set()
    for row in rows:
        kind, ref, title, body, ids = shown[row.id]
        excerpt, ranges = snippet(body, groups)
        hits.append(Hit(kind, ref, title, excerpt, row.score, ranges))
        persons.update(ids)
    if persons:
        assert scope.actor is not None  # SearchScope requires it with persons
        with recording(instance, scope.actor) as rec:
            rec.record_view(EntityKind.PERSON, sorted(persons))
    return Page(tuple(hits), total, limit, offset)


def _details(conn: Connection, rows: Sequence[Row]
             ) -> dict[int, tuple[str, str, str, str, list[str]]]:
    if not rows:
        return {}
    d = search_doc.c
    query = select(d.id, d.kind, d.ref, d.title, d.body, d.persons).where(
        d.id.in_([row.id for row in rows]))
    return {r.id: (r.kind, r.ref, r.title, r.body, (r.persons or "").split())
            for r in conn.execute(query)}
