"""The team's pages in four languages: every message translated with its placeholders and
plural forms, no message left over, dates and numbers in the reader's language."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from sprava.errors import BadInputError
from sprava.web.i18n import LANGUAGES
from sprava.webapp.incident_pages import INCIDENT_FIELDS, field_of
from sprava.webapp.page import Formatter, catalogues
from translations import assert_translated

WEBAPP = Path(__file__).resolve().parents[3] / "src" / "sprava" / "webapp"


def _messages() -> list[str | tuple[str, str]]:
    method_map = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
    return [message for _f, _l, message, _c, _x in extract_from_dir(
        str(WEBAPP), method_map, keywords={"_": None, "ngettext": (1, 2)})]


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_message_of_the_pages_is_translated(lang: str) -> None:
    catalog = catalogues.catalog(lang)
    messages = _messages()
    assert len(messages) > 200
    assert_translated(catalog, messages, lang)
    used = {m if isinstance(m, str) else m[0] for m in messages}
    stale = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id} - used
    assert stale == set(), f"{lang}: messages no page uses any more"


def test_dates_and_numbers_follow_the_reader() -> None:
    moment = datetime(2020, 8, 10, 19, 40, tzinfo=UTC)
    assert Formatter("en").day(moment) == "Aug 10, 2020"
    assert Formatter("ru").day(moment) == "10 авг. 2020\u202fг."
    assert Formatter("uk").when("2020-08-10T22:40:00+03:00").endswith(" UTC")
    assert Formatter("be").number(1234567) == "1\xa0234\xa0567"
    assert Formatter("en").number(1234567) == "1,234,567"


def test_a_service_error_is_placed_next_to_its_field() -> None:
    def at(message: str) -> str | None:
        return field_of(BadInputError(message), INCIDENT_FIELDS)

    assert at("'incident.title' is required") == "title"
    assert at("incident.place.lat: must be a number") == "lat"
    assert at("incident.place: give both lat and lon, or neither") == "lat"
    assert at("incident.violation_types[0]: must be a code") == "violation_types"
    assert at("incident.end: is before the start") == "end"
    assert at("something else entirely") is None
