"""The site in four languages: every message translated, placeholders kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from sprava.publish.site import CATALOGUES
from sprava.web.i18n import LANGUAGES

PUBLISH = Path(__file__).resolve().parents[3] / "src" / "sprava" / "publish"
_PLACEHOLDER = re.compile(r"%\(\w+\)s")


def _messages() -> list[str | tuple[str, str]]:
    method_map = [("**/templates/**.html", "jinja2.ext:babel_extract"),
                  ("**/site.py", "python")]
    return [message for _f, _l, message, _c, _x in extract_from_dir(
        str(PUBLISH), method_map, keywords={"_": None, "say": None, "ngettext": (1, 2)})]


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_message_of_the_site_is_translated(lang: str) -> None:
    catalog = CATALOGUES.catalog(lang)
    messages = _messages()
    assert len(messages) > 80
    for message in messages:
        key = message if isinstance(message, str) else message[0]
        entry = catalog.get(key)
        assert entry is not None, f"{lang}: {key!r} is not translated"
        assert not entry.fuzzy, f"{lang}: {key!r} is marked fuzzy"
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(strings), f"{lang}: {key!r} has an empty translation"
        for text in strings:
            assert sorted(_PLACEHOLDER.findall(text)) == sorted(_PLACEHOLDER.findall(key)), \
                f"{lang}: {key!r} changes its placeholders"
        if not isinstance(message, str):
            assert len(strings) == 3, f"{lang}: {key!r} needs three plural forms"


def test_plural_forms() -> None:
    ukrainian = CATALOGUES.language("uk")
    assert [ukrainian.ngettext("%(num)s incident documented.",
                               "%(num)s incidents documented.", n) % {"num": n}
            for n in (1, 3, 11, 21)] == [
        "Задокументовано 1 інцидент.", "Задокументовано 3 інциденти.",
        "Задокументовано 11 інцидентів.", "Задокументовано 21 інцидент."]
