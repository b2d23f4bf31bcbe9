"""Full-text search over incidents, acts, units, persons, claims and items.

One interface, two back ends (SQLite FTS5 on the embedded default, PostgreSQL full-text
search at scale); see docs/search.md.

Modules: :mod:`~sprava.search.text` (words and the folding of Cyrillic and Latin
spellings into one key space), :mod:`~sprava.search.scope` (scope, filters, hits),
:mod:`~sprava.search.documents` (what each record contributes),
:mod:`~sprava.search.indexer` (catching the index up with the ledger),
:mod:`~sprava.search.query` (queries made safe), :mod:`~sprava.search.plan` (scope,
filters and tiers as index expressions), :mod:`~sprava.search.backends`
(FTS5 and PostgreSQL), :mod:`~sprava.search.snippet`, :mod:`~sprava.search.service`
(``search()``).
"""

from sprava.search.indexer import catch_up, ensure_fresh, rebuild
from sprava.search.scope import KINDS, Hit, SearchFilters, SearchScope
from sprava.search.service import search

__all__ = ["KINDS", "Hit", "SearchFilters", "SearchScope", "catch_up", "ensure_fresh",
           "rebuild", "search"]
