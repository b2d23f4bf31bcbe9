"""Checks shared by the tests of every set of translated pages (the inbox, the public
site): each message extracted from the templates and code has a translation that keeps
its placeholders and, where it is plural, all three Slavic plural forms."""

from __future__ import annotations

import re
from collections.abc import Sequence

from babel.messages.catalog import Catalog

PLACEHOLDER = re.compile(r"%\(\w+\)s")


def assert_translated(catalog: Catalog, messages: Sequence[str | tuple[str, str]],
                      lang: str) -> None:
    """Fail naming the first message of ``messages`` that ``catalog`` lacks or spoils."""
    for message in messages:
        key = message if isinstance(message, str) else message[0]
        entry = catalog.get(key)
        assert entry is not None, f"{lang}: {key!r} is not translated"
        assert not entry.fuzzy, f"{lang}: {key!r} is marked fuzzy"
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(strings), f"{lang}: {key!r} has an empty translation"
        for text in strings:
            assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(key)), \
                f"{lang}: {key!r} changes its placeholders"
        if not isinstance(message, str):
            assert len(strings) == 3, f"{lang}: {key!r} needs three plural forms"
