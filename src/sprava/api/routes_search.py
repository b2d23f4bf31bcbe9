"""Search over everything the reader may see, with the filters of the lists.

The reader's role sets the scope (:class:`sprava.search.SearchScope`): persons, and
claims naming them, only for roles that see persons (each person shown is a recorded
read); items as the item endpoints show them (all, own uploads, redacted copies); no
catalogue for uploaders.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.api.deps import InstanceDep, PagingDep, needs_any
from sprava.api.models import PageOut
from sprava.api.routes_catalogue import page_out
from sprava.search import Hit, SearchFilters, SearchScope, search

router = APIRouter(tags=["search"])
Searcher = Annotated[Principal, Depends(needs_any(
    Capability.CATALOGUE_READ, Capability.ITEMS_ALL, Capability.ITEMS_OWN,
    Capability.ITEMS_REDACTED))]
Kind = Literal["incident", "act", "unit", "person", "claim", "item"]
Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


def scope_of(principal: Principal) -> SearchScope:
    """What this reader's role lets a search show."""
    items: Literal["all", "own", "redacted", "none"]
    if principal.can(Capability.ITEMS_ALL):
        items = "all"
    elif principal.can(Capability.ITEMS_OWN):
        items = "own"
    elif principal.can(Capability.ITEMS_REDACTED):
        items = "redacted"
    else:
        items = "none"
    return SearchScope(persons=principal.can(Capability.PERSONS), items=items,
                       actor=principal.actor,
                       catalogue=principal.can(Capability.CATALOGUE_READ))


@router.get("/search", response_model=PageOut[Hit])
def search_all(instance: InstanceDep, principal: Searcher, paging: PagingDep,
               q: Annotated[str, Query(max_length=500,
                                       pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")] = "",
               kind: Annotated[list[Kind] | None, Query()] = None,
               since: datetime | None = None, until: datetime | None = None,
               place: Text = None, violation_type: Text = None, unit_id: Text = None,
               status: Text = None, confidence: Text = None) -> Any:
    """Records matching every word of ``q`` in any spelling ("Minsk" finds "Мінск" and
    "Минск"; the last word also as a prefix), best first; ``kind`` (repeatable) narrows
    to kinds of record. An empty ``q`` with a filter lists what the filters keep."""
    filters = SearchFilters(
        kinds=frozenset(kind) if kind else None, since=since, until=until, place=place,
        violation_type=violation_type, unit_id=unit_id, status=status,
        confidence=confidence)
    return page_out(search(instance, q, scope=scope_of(principal), filters=filters,
                           limit=paging.limit, offset=paging.offset))
