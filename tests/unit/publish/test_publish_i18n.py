"""The site in four languages: every message translated, placeholders kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from sprava.publish.site import CATALOGUES
from sprava.web.i18n import LANGUAGES
from translations import assert_translated

PUBLISH = Path(__file__).resolve().parents[3] / "src" / "sprava" / "publish"


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
    assert_translated(catalog, messages, lang)


def test_plural_forms() -> None:
    ukrainian = CATALOGUES.language("uk")
    assert [ukrainian.ngettext("%(num)s incident documented.",
                               "%(num)s incidents documented.", n) % {"num": n}
            for n in (1, 3, 11, 21)] == [
        "Задокументовано 1 інцидент.", "Задокументовано 3 інциденти.",
        "Задокументовано 11 інцидентів.", "Задокументовано 21 інцидент."]
