"""A user's query, made safe: words become groups of index keys, never query syntax.

Query text is hostile input. It is cut into words by :func:`sprava.search.text.words`,
which keeps letters and digits only, and each word becomes its folded keys, which hold
nothing but ``a``–``z`` and ``0``–``9``. Quotes, parentheses, ``*``, ``:``, ``-``,
``AND``/``OR``/``NOT``, NUL and SQL all end up as separators or as ordinary words, so
the FTS5 and ``tsquery`` expressions built here contain only keys and the operators this
module writes; the expression is passed to the database as a bound parameter. Every
key is checked against that alphabet once more before an expression is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sprava.errors import BadInputError
from sprava.search import text

MAX_QUERY = 500  # characters
MAX_TERMS = 16  # words
_KEY = re.compile(r"[a-z0-9]{1,200}")


@dataclass(frozen=True)
class Group:
    """Any of ``keys`` must match (``prefix``: as the start of a key); ``ranking`` keys
    only add to the score."""

    keys: tuple[str, ...]
    prefix: bool = False
    ranking: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in (*self.keys, *self.ranking):
            if not _KEY.fullmatch(key):  # a key is never anything else; refuse loudly
                raise ValueError(f"not an index key: {key!r}")


def parse_query(query: object) -> list[Group]:
    """The groups of a query (every group must match); raises BadInputError
    ``bad-query`` for text that is not a query."""
    if not isinstance(query, str):
        raise BadInputError("the query must be text", code="bad-query")
    if len(query) > MAX_QUERY:
        raise BadInputError(f"the query is longer than {MAX_QUERY} characters",
                            code="bad-query", hint="search for fewer, more telling words")
    terms = text.query_terms(query)
    if len(terms) > MAX_TERMS:
        raise BadInputError(f"the query has more than {MAX_TERMS} words", code="bad-query",
                            hint="search for fewer, more telling words")
    groups = []
    for term in terms:
        ranking = (term.fine,) if term.fine else ()
        groups.append(Group(term.coarse, term.prefix, ranking))
    return groups


def place_groups(place: str) -> list[Group]:
    """Groups matching the place facets of records whose place has every word of
    ``place`` (any spelling of it); raises BadInputError ``bad-filter`` for a place
    with no word in it."""
    groups = []
    for word in text.words(place):
        keys = text.keys_of(word).coarse
        if keys:
            groups.append(Group(tuple("fp" + k for k in keys)))
    if not groups:
        raise BadInputError("place has no letters or digits", code="bad-filter")
    if len(groups) > MAX_TERMS:
        raise BadInputError(f"place has more than {MAX_TERMS} words", code="bad-filter")
    return groups


# --- expressions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One index key; ``heading``: only in a record's heading."""

    key: str
    prefix: bool = False
    heading: bool = False

    def __post_init__(self) -> None:
        if not _KEY.fullmatch(self.key):
            raise ValueError(f"not an index key: {self.key!r}")


@dataclass(frozen=True)
class All:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Any_:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Without:
    """What matches ``keep`` and not ``drop``."""

    keep: Expr
    drop: Expr


Expr = Key | All | Any_ | Without


def all_of(*parts: Expr) -> Expr:
    return parts[0] if len(parts) == 1 else All(tuple(parts))


def any_of(*parts: Expr) -> Expr:
    return parts[0] if len(parts) == 1 else Any_(tuple(parts))


def keys(values: Sequence[str], *, prefix: bool = False, heading: bool = False) -> Expr:
    return any_of(*(Key(v, prefix, heading) for v in dict.fromkeys(values)))


def fts5(expr: Expr) -> str:
    """The expression in FTS5 query syntax (every key quoted)."""
    if isinstance(expr, Key):
        phrase = f'"{expr.key}"' + ("*" if expr.prefix else "")
        return "{head} : " + phrase if expr.heading else phrase
    if isinstance(expr, All):
        return "(" + " AND ".join(fts5(p) for p in expr.parts) + ")"
    if isinstance(expr, Any_):
        return "(" + " OR ".join(fts5(p) for p in expr.parts) + ")"
    return "(" + fts5(expr.keep) + " NOT " + fts5(expr.drop) + ")"


def tsquery(expr: Expr) -> str:
    """The expression in ``tsquery`` syntax. Whether a key must be in the heading is not
    written: PostgreSQL matches heading keys against a column of their own (see
    :mod:`sprava.search.backends`)."""
    if isinstance(expr, Key):
        return expr.key + (":*" if expr.prefix else "")
    if isinstance(expr, All):
        return "(" + " & ".join(tsquery(p) for p in expr.parts) + ")"
    if isinstance(expr, Any_):
        return "(" + " | ".join(tsquery(p) for p in expr.parts) + ")"
    return "(" + tsquery(expr.keep) + " & !" + tsquery(expr.drop) + ")"
