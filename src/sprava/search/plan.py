"""How one search is asked of the index: the scope and the filters as index tokens, and
the words in three tiers of score.

Everything a search must hold is a boolean expression over index keys: the words (any
spelling), the caller's scope (kinds, audience, persons, own uploads) and the filters
(status, confidence, violation type, unit, place, and candidate years or months for a
time range, which the database then compares exactly). The index answers such an
expression from its posting lists alone, in id order, which is (kind, id) order.

The score is a tier, the same on both databases:

* 1.0: every word is in the record's heading (its title, name, names or place);
* 0.5: every word is spelt as in the query (the same *fine* key), though not all are in
  the heading;
* 0.0: the words match only as other spellings or transliterations, elsewhere.

A search without words lists records at score 0. Hits come best tier first, then by
kind, then by id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sprava.search import documents
from sprava.search.documents import (
    EVERY,
    FIRST_YEAR,
    LAST_YEAR,
    LONG,
    REDACTED_MARK,
    RESTRICTED,
    kind_facet,
    month_facet,
    year_facet,
)
from sprava.search.query import (
    All,
    Any_,
    Expr,
    Group,
    Key,
    Without,
    all_of,
    any_of,
    keys,
    place_groups,
)
from sprava.search.scope import KINDS, SearchFilters, SearchScope

HEADING, SPELLING, OTHER = 1.0, 0.5, 0.0
_CATALOGUE = ("act", "claim", "incident", "person", "unit")
_MONTHS = 36  # a time range of up to this many months is looked up by month


@dataclass(frozen=True)
class Plan:
    """The tiers (score, expression) in order, their union, and the exact time range."""

    tiers: tuple[tuple[float, Expr], ...]
    everything: Expr
    since: datetime | None
    until: datetime | None


def _word(group: Group, *, heading: bool = False) -> Expr:
    return keys([*group.keys, *group.ranking], prefix=group.prefix, heading=heading)


def _spelt(group: Group) -> Expr:
    return keys(list(group.ranking) or list(group.keys), prefix=group.prefix)


def scope_exprs(scope: SearchScope, kinds: frozenset[str]) -> tuple[Expr | None, list[Expr]]:
    """What a hit must have to be in scope (None: anything), and what it must not."""
    catalogue = [k for k in _CATALOGUE if k in kinds]
    drop: list[Expr] = []
    if not scope.persons and ("claim" in kinds or "person" in kinds):
        drop.append(Key(RESTRICTED))
    if "item" in kinds and scope.items == "all":
        drop.append(Key(REDACTED_MARK))
        if kinds == set(KINDS) or (kinds == set(KINDS) - {"person"} and not scope.persons):
            return None, drop  # every kind: persons, if not allowed, are left out by drop
    branches: list[Expr] = [Key(kind_facet(k)) for k in catalogue]
    if "item" in kinds:
        if scope.items == "all":
            branches.append(Key(kind_facet("item")))
        elif scope.items == "own":
            assert scope.actor is not None  # SearchScope requires it
            branches.append(Key(documents.actor_facet(scope.actor)))  # only on originals
        else:
            branches.append(Key(REDACTED_MARK))
    return any_of(*branches), drop


def _months(since: datetime, until: datetime) -> list[tuple[int, int]]:
    first, last = since.astimezone(UTC), (until - timedelta(microseconds=1)).astimezone(UTC)
    y, m = max(FIRST_YEAR, min(LAST_YEAR, first.year)), first.month
    if first.year < FIRST_YEAR:
        m = 1
    y1, m1 = max(FIRST_YEAR, min(LAST_YEAR, last.year)), last.month
    if last.year > LAST_YEAR:
        m1 = 12
    out: list[tuple[int, int]] = []
    while (y, m) <= (y1, m1) and len(out) <= _MONTHS:
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def time_expr(since: datetime | None, until: datetime | None) -> Expr:
    """Candidates for records whose time range meets [since, until): by month for a
    short range (records spanning many months by year), by year otherwise."""
    low = since or datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
    high = until or datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)
    months = _months(low, high)
    years = sorted({y for y, _ in months}) if len(months) <= _MONTHS else list(range(
        max(FIRST_YEAR, min(LAST_YEAR, low.year)),
        max(FIRST_YEAR, min(LAST_YEAR, (high - timedelta(microseconds=1)).year)) + 1))
    by_year = keys([year_facet(y) for y in years])
    if len(months) > _MONTHS:
        return by_year
    return any_of(keys([month_facet(y, m) for y, m in months]), all_of(Key(LONG), by_year))


def filter_exprs(filters: SearchFilters) -> list[Expr]:
    out: list[Expr] = []
    if filters.status is not None:
        out.append(Key(documents.status_facet(filters.status)))
    if filters.confidence is not None:
        out.append(Key(documents.confidence_facet(filters.confidence)))
    if filters.violation_type is not None:
        out.append(Key(documents.violation_facet(filters.violation_type)))
    if filters.unit_id is not None:
        out.append(Key(documents.unit_facet(filters.unit_id)))
    if filters.place is not None:
        out.extend(keys(g.keys) for g in place_groups(filters.place))
    if filters.since is not None or filters.until is not None:
        out.append(time_expr(filters.since, filters.until))
    return out


def make_plan(words: Sequence[Group], scope: SearchScope, filters: SearchFilters,
              kinds: frozenset[str]) -> Plan:
    """The plan of a search (the words parsed, the filters checked, ``kinds`` not empty)."""
    within, drop = scope_exprs(scope, kinds)
    required = [*(_word(g) for g in words), *([within] if within else []),
                *filter_exprs(filters)]
    everything = all_of(*(required or [Key(EVERY)]))
    if drop:
        everything = Without(everything, any_of(*drop))
    if not words:
        return Plan(((OTHER, everything),), everything, filters.since, filters.until)
    heading = all_of(*(_word(g, heading=True) for g in words))
    spelt = all_of(*(_spelt(g) for g in words))
    tiers = ((HEADING, all_of(everything, heading)),
             (SPELLING, Without(all_of(everything, spelt), heading)),
             (OTHER, Without(Without(everything, spelt), heading)))
    return Plan(tiers, everything, filters.since, filters.until)


# --- prefixes ----------------------------------------------------------------------------

MAX_EXPANSION = 64  # a prefix standing for more keys than this stays a prefix
NOTHING = "fnone"  # a key no record holds


def prefixes(expr: Expr) -> set[str]:
    """The keys ``expr`` matches as prefixes."""
    if isinstance(expr, Key):
        return {expr.key} if expr.prefix else set()
    if isinstance(expr, Without):
        return prefixes(expr.keep) | prefixes(expr.drop)
    return set().union(*(prefixes(p) for p in expr.parts))


def expand(expr: Expr, table: Mapping[str, Sequence[str] | None]) -> Expr:
    """``expr`` with each prefix replaced by the keys it stands for (``table``; None
    keeps the prefix, no keys match nothing)."""
    if isinstance(expr, Key):
        if not expr.prefix or table.get(expr.key) is None:
            return expr
        found = table[expr.key] or [NOTHING]
        return any_of(*(Key(k, heading=expr.heading) for k in found))
    if isinstance(expr, Without):
        return Without(expand(expr.keep, table), expand(expr.drop, table))
    parts = tuple(expand(p, table) for p in expr.parts)
    return All(parts) if isinstance(expr, All) else Any_(parts)


def expanded(plan: Plan, table: Mapping[str, Sequence[str] | None]) -> Plan:
    return Plan(tuple((score, expand(e, table)) for score, e in plan.tiers),
                expand(plan.everything, table), plan.since, plan.until)
