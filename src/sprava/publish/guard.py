"""The last check before a site is built: no restricted name in the text it publishes.

The allow-list of :mod:`sprava.publish.public` keeps restricted *fields* off the site.
But some published fields are free text the team wrote (a verified incident's title and
narrative, region names, unit names, types and areas, the labels of the instance's own
violation types, the names of public sources), and a victim's pseudonym or an officer's
name can slip into them by a copy and paste. So every such text is compared with every
name Sprava holds as restricted: persons' names (except the commanders the site names
anyway) and the identifiers seen on them (badge numbers, call signs, plates), and
victims' pseudonyms. A match refuses the whole publication with ConflictError
``restricted-name-in-text``, saying which text to fix and what kind of record it
matched; the message never repeats the name.

Matching is on whole words, after Unicode normalisation (NFKC) and case folding, and
ignores the punctuation between words: ``V-17`` matches "v 17" and "V-17," but not
"V-170". Names with fewer than three letters and digits are not compared (a pseudonym
"A" would match most English sentences). A name written another way (a surname alone,
another transliteration) is not caught: the text stays its author's responsibility; this
check catches the slip, it does not read minds.

The names are compared in memory, never shown, stored or written anywhere, so the check
is not a view of the persons.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, select

from sprava.backends.db.catalogue_tables import act, person, person_identifier
from sprava.errors import ConflictError
from sprava.publish.public import Snapshot

_WORD = re.compile(r"\w+")
MIN_CHARS = 3


def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


@dataclass(frozen=True)
class Restricted:
    """One restricted name: what it is ("a victim's pseudonym") and whose (an act id)."""

    what: str
    whose: str


def restricted_names(conn: Connection, published: Iterable[str]) -> dict[tuple[str, ...],
                                                                         Restricted]:
    """Every restricted name as words, except those of the persons in ``published``."""
    shown = set(published)
    found: dict[tuple[str, ...], Restricted] = {}

    def add(text: str | None, restricted: Restricted) -> None:
        key = words(text or "")
        if sum(len(w) for w in key) >= MIN_CHARS:
            found.setdefault(key, restricted)

    for act_id, pseudonym in conn.execute(
            select(act.c.id, act.c.victim_pseudonym).where(act.c.victim_pseudonym.is_not(None))
            .order_by(act.c.id)):
        add(pseudonym, Restricted("a victim's pseudonym", f"act {act_id}"))
    for person_id, value in conn.execute(
            select(person_identifier.c.person_id, person_identifier.c.value)
            .order_by(person_identifier.c.person_id)):
        add(value, Restricted("an identifier of a person", f"person {person_id}"))
    for person_id, name in conn.execute(select(person.c.id, person.c.name)
                                        .order_by(person.c.id)):
        if person_id not in shown:
            add(name, Restricted("the name of a person", f"person {person_id}"))
    return found


def published_texts(snapshot: Snapshot) -> Iterator[tuple[str, str]]:
    """Every free text the site will show, with where it comes from."""
    for x in snapshot.incidents:
        yield f"the title of incident {x.id}", x.title
        yield f"the narrative of incident {x.id}", x.narrative
    for region, _count in snapshot.figures.by_region:
        if region is not None:
            yield "a region (admin area) of an incident", region
    for x in snapshot.incidents:
        if x.region is not None:
            yield f"the region of incident {x.id}", x.region
    for u in snapshot.units:
        for lang, name in sorted(u.names.items()):
            yield f"the name ({lang}) of unit {u.id}", name
        yield f"the type of unit {u.id}", u.type
        if u.area_of_operation:
            yield f"the area of operation of unit {u.id}", u.area_of_operation
        for c in u.commanders:
            for name in c.sources:
                yield f"a source cited for a commander of unit {u.id}", name
    for code, labels in sorted(snapshot.labels.items()):
        for lang, label in sorted(labels.items()):
            yield f"the label ({lang}) of violation type {code}", label


def find_restricted(texts: Iterable[tuple[str, str]],
                    names: Mapping[tuple[str, ...], Restricted]
                    ) -> list[tuple[str, Restricted]]:
    """Each (where, what) pair where a text holds a restricted name, in text order."""
    lengths = sorted({len(k) for k in names})
    hits: list[tuple[str, Restricted]] = []
    for where, text in texts:
        tokens = words(text)
        seen: set[Restricted] = set()
        for size in lengths:
            for start in range(len(tokens) - size + 1):
                found = names.get(tokens[start : start + size])
                if found is not None and found not in seen:
                    seen.add(found)
                    hits.append((where, found))
    return hits


def check_restricted_names(conn: Connection, snapshot: Snapshot,
                           published_persons: Iterable[str]) -> None:
    """Raise ConflictError ``restricted-name-in-text`` if a published text names a victim
    or a person the site does not name."""
    hits = find_restricted(published_texts(snapshot),
                           restricted_names(conn, published_persons))
    if hits:
        where, found = hits[0]
        more = f" (and {len(hits) - 1} more such text(s))" if len(hits) > 1 else ""
        raise ConflictError(
            f"{where} contains {found.what} ({found.whose}); the public site never names "
            f"victims, witnesses or officers below commander level{more}",
            code="restricted-name-in-text",
            hint="edit that text so that it names no one (or give the victim another "
            "pseudonym), then publish again; nothing was published")
