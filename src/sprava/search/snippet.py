"""The excerpt a hit shows: the part of a record's text around the first word that
matched, as plain text, with the ranges of the matching words in it."""

from __future__ import annotations

from collections.abc import Sequence

from sprava.search import text
from sprava.search.query import Group

WIDTH = 200  # characters of excerpt
_BEFORE = 60  # characters kept before the first match


def _matches(word: text.Word, groups: Sequence[Group]) -> bool:
    keys = text.keys_of(word)
    found = set(keys.coarse)
    for g in groups:
        if g.prefix:
            if any(k.startswith(p) for k in found for p in g.keys):
                return True
        elif found.intersection(g.keys):
            return True
    return False


def snippet(body: str, groups: Sequence[Group]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """An excerpt of ``body`` of about :data:`WIDTH` characters, starting shortly before
    the first word matching any of ``groups`` (or at the start), cut at word boundaries,
    with "…" where text was left out."""
    body = " ".join(body.split())  # one line: the excerpt is shown inline
    found = [(w.start, w.end) for w in text.words(body) if groups and _matches(w, groups)]
    start = 0
    if found and found[0][1] > WIDTH:
        start = max(0, found[0][0] - _BEFORE)
        space = body.rfind(" ", 0, start + 1)
        start = space + 1 if space >= 0 else start
    end = min(len(body), start + WIDTH)
    if end < len(body):
        space = body.rfind(" ", start, end)
        end = space if space > start else end
    excerpt = body[start:end]
    prefix = "… " if start > 0 else ""
    suffix = " …" if end < len(body) else ""
    shift = len(prefix) - start
    ranges = tuple((s + shift, e + shift) for s, e in found if s >= start and e <= end)
    return prefix + excerpt + suffix, ranges
