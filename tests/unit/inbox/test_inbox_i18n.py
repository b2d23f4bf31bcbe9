"""The inbox pages in four languages: every message translated, placeholders kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from sprava.web.i18n import LANGUAGES, Catalogues
from translations import assert_translated

INBOX = Path(__file__).resolve().parents[3] / "src" / "sprava" / "inbox"


def _messages() -> list[str | tuple[str, str]]:
    found = []
    method_map = [("**/templates/**.html", "jinja2.ext:babel_extract"),
                  ("**/pages.py", "python")]
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(INBOX), method_map, keywords={"_": None, "ngettext": (1, 2)}):
        found.append(message)
    return found


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_message_of_the_pages_is_translated(lang: str) -> None:
    catalog = Catalogues().catalog(lang)
    messages = _messages()
    assert len(messages) > 40
    assert_translated(catalog, messages, lang)


def test_languages_are_chosen_by_parameter_then_accept_language() -> None:
    catalogues = Catalogues()
    assert catalogues.negotiate("uk", "ru") == "uk"
    assert catalogues.negotiate(None, "de-DE,be;q=0.7,ru;q=0.9") == "ru"
    assert catalogues.negotiate("xx", "q=;;,") == "en"
    assert catalogues.negotiate(None, None) == "en"
    russian = catalogues.language("ru")
    assert [russian.ngettext("You sent %(num)s file.", "You sent %(num)s files.", n)
            % {"num": n} for n in (1, 3, 5)] == [
        "Вы отправили 1 файл.", "Вы отправили 3 файла.", "Вы отправили 5 файлов."]
