"""The two full-text back ends behind one interface: SQLite FTS5 and PostgreSQL.

Both hold the same keys and tokens (``search_doc.head``, ``folded``, ``facets``) and
answer the same :class:`~sprava.search.plan.Plan` with the same hits in the same order:
tier by tier, best first, each tier in id order (which is kind-then-id order).

* :class:`Fts5Backend`: ``search_fts MATCH …``. FTS5 walks its posting lists in rowid
  order and stops at the end of the page, so the first page of a query that matches a
  million records costs a few short walks and one count.
* :class:`PostgresBackend`: ``@@ to_tsquery('simple', …)`` on GIN indexes: ``tsv`` (all
  keys and tokens) and ``tsv_head`` (the heading; a GIN index holds no weights, so a
  match by weight would re-read every candidate). A tier's page comes from its bitmap,
  sorted by id. Its cost grows with the number of matches: the heap page of each one is
  visited.

Both take a page tier by tier and count a tier only when the page starts beyond it.

Before either runs, each prefix of the query is looked up in ``search_term`` and
replaced by the keys it stands for: an index answers a handful of exact keys far faster
than a prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, false, func, literal_column, select, text
from sqlalchemy.sql.elements import ColumnElement

from sprava.backends.db.search_tables import (
    FTS_TABLE,
    PG_COLUMN,
    PG_HEAD_COLUMN,
    search_doc,
    search_term,
)
from sprava.search.plan import MAX_EXPANSION, Plan, expanded, prefixes
from sprava.search.query import All, Any_, Expr, Key, Without, fts5, tsquery


@dataclass(frozen=True)
class Row:
    id: int
    score: float


class SearchBackend(Protocol):
    """One page of hits of a plan, best tier first, and how many hits there are."""

    def page(self, conn: Connection, plan: Plan, limit: int, offset: int
             ) -> tuple[list[Row], int]: ...


def expansions(conn: Connection, keys: Iterable[str]) -> dict[str, list[str] | None]:
    """The keys each prefix stands for, from ``search_term`` (None: too many to list)."""
    out: dict[str, list[str] | None] = {}
    t = search_term.c
    for prefix in sorted(keys):
        after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        found = list(conn.execute(select(t.key).where(t.key >= prefix, t.key < after)
                                  .order_by(t.key).limit(MAX_EXPANSION + 1)).scalars())
        out[prefix] = None if len(found) > MAX_EXPANSION else found
    return out


def _prepared(conn: Connection, plan: Plan) -> Plan:
    wanted = prefixes(plan.everything)
    return expanded(plan, expansions(conn, wanted)) if wanted else plan


def _page(backend: _Reader, conn: Connection, plan: Plan, limit: int, offset: int
          ) -> tuple[list[Row], int]:
    """Tier by tier: a tier is counted only when the page starts beyond it."""
    rows: list[Row] = []
    skip = offset
    for score, expr in plan.tiers:
        if len(rows) >= limit:
            break
        if skip > 0 and len(plan.tiers) > 1:
            size = backend.count(conn, expr, plan)
            if skip >= size:
                skip -= size
                continue
        found = backend.ids(conn, expr, plan, limit - len(rows), skip)
        skip = 0
        rows.extend(Row(i, score) for i in found)
    return rows, backend.count(conn, plan.everything, plan)


class _Reader(Protocol):
    def ids(self, conn: Connection, expr: Expr, plan: Plan, limit: int, offset: int
            ) -> list[int]: ...

    def count(self, conn: Connection, expr: Expr, plan: Plan) -> int: ...


# --- SQLite ------------------------------------------------------------------------------


class Fts5Backend:
    """SQLite: the FTS5 table ``search_fts`` (external content over ``search_doc``).

    Written as SQL text because of the ``CROSS JOIN``: it keeps the FTS table as the
    outer loop when a time range is compared, where the planner could otherwise walk
    ``search_doc`` and ask FTS5 about every row; and because of ``INDEXED BY``: the
    times are read from a narrow index rather than from the rows.
    """

    def page(self, conn: Connection, plan: Plan, limit: int, offset: int
             ) -> tuple[list[Row], int]:
        return _page(self, conn, _prepared(conn, plan), limit, offset)

    def _query(self, expr: Expr, plan: Plan, what: str, tail: str = "") -> Any:
        # Only constants of this module and bound parameters make up the statement.
        sql = f"SELECT {what} FROM {FTS_TABLE}"  # noqa: S608
        params: list[Any] = [bindparam("match", fts5(expr))]
        if plan.since is not None or plan.until is not None:
            # the narrow index of times by id, not the wide rows
            sql += (" CROSS JOIN search_doc INDEXED BY ix_search_doc_time"
                    f" ON search_doc.id = {FTS_TABLE}.rowid")
        sql += f" WHERE {FTS_TABLE} MATCH :match"
        for name, value, test in (("since", plan.since, "search_doc.at_to >= :since"),
                                  ("until", plan.until, "search_doc.at_from < :until")):
            if value is not None:
                sql += f" AND {test}"
                params.append(bindparam(name, value, type_=search_doc.c.at_from.type))
        return text(sql + tail).bindparams(*params)

    def ids(self, conn: Connection, expr: Expr, plan: Plan, limit: int, offset: int
            ) -> list[int]:
        query = self._query(expr, plan, f"{FTS_TABLE}.rowid",
                            f" ORDER BY {FTS_TABLE}.rowid LIMIT :limit OFFSET :offset")
        rows = conn.execute(query, {"limit": limit, "offset": offset}).scalars()
        return [int(i) for i in rows]

    def count(self, conn: Connection, expr: Expr, plan: Plan) -> int:
        return int(conn.execute(self._query(expr, plan, "count(*)")).scalar_one())


# --- PostgreSQL --------------------------------------------------------------------------


def _headings(expr: Expr) -> set[bool]:
    """Whether ``expr`` has heading keys (True), other keys (False), or both."""
    if isinstance(expr, Key):
        return {expr.heading}
    if isinstance(expr, Without):
        return _headings(expr.keep) | _headings(expr.drop)
    return set().union(*(_headings(p) for p in expr.parts))


def _matches(column: str, expr: Expr) -> ColumnElement[bool]:
    query = func.to_tsquery(literal_column("'simple'::regconfig"),
                            bindparam(None, tsquery(expr)))
    return literal_column(f"search_doc.{column}").op("@@")(query)


def _condition(expr: Expr) -> ColumnElement[bool]:
    """``expr`` as SQL: parts on the heading against ``tsv_head``, the rest against
    ``tsv``, each part as one ``tsquery``."""
    kinds = _headings(expr)
    if kinds == {False}:
        return _matches(PG_COLUMN, expr)
    if kinds == {True}:
        return _matches(PG_HEAD_COLUMN, expr)
    if isinstance(expr, Without):
        return _condition(expr.keep) & ~_condition(expr.drop)
    if isinstance(expr, All):
        out = _condition(expr.parts[0])
        for part in expr.parts[1:]:
            out = out & _condition(part)
        return out
    assert isinstance(expr, Any_)
    found: ColumnElement[bool] = false()
    for part in expr.parts:
        found = found | _condition(part)
    return found


class PostgresBackend:
    """PostgreSQL: the generated ``tsvector`` columns and their GIN indexes."""

    def page(self, conn: Connection, plan: Plan, limit: int, offset: int
             ) -> tuple[list[Row], int]:
        # The planner rates a tsvector match too cheap to prefer its GIN index for large
        # results; a sequential scan reads and matches every row. Within this read
        # transaction only, it is told not to.
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        return _page(self, conn, _prepared(conn, plan), limit, offset)

    def _where(self, expr: Expr, plan: Plan) -> list[ColumnElement[bool]]:
        d = search_doc.c
        where = [_condition(expr)]
        if plan.since is not None:
            where.append(d.at_to >= plan.since)
        if plan.until is not None:
            where.append(d.at_from < plan.until)
        return where

    def ids(self, conn: Connection, expr: Expr, plan: Plan, limit: int, offset: int
            ) -> list[int]:
        d = search_doc.c
        # Not along the primary key ("id + 0" cannot be read from it): that walk would
        # match every row it passes, reading its tsvector, and the rows of one kind sit
        # together, so a tier may start far along it. The rows come from the bitmap.
        query = select(d.id).where(*self._where(expr, plan)).order_by(d.id + 0) \
            .limit(limit).offset(offset)
        return [int(i) for i in conn.execute(query).scalars()]

    def count(self, conn: Connection, expr: Expr, plan: Plan) -> int:
        query = select(func.count()).select_from(search_doc).where(*self._where(expr, plan))
        return int(conn.execute(query).scalar_one())


def backend_for(dialect: str) -> SearchBackend:
    return Fts5Backend() if dialect == "sqlite" else PostgresBackend()
