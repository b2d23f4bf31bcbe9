"""Red lines: no field, anywhere, for an address, a phone, a relative or a private account.

Every deny-listed key is refused by every input schema with ``red-line-field`` and the
reason; so are disguised spellings of them; and no field Sprava does accept, no column of
the catalogue tables and no field of a catalogue entity is one of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sprava.backends.db.catalogue_tables import CATALOGUE_TABLES
from sprava.catalogue import schema
from sprava.domain import catalogue as domain
from sprava.domain.catalogue import (
    RED_LINE_KEYS,
    RED_LINE_MESSAGE,
    is_red_line_key,
    refuse_red_lines,
)
from sprava.errors import BadInputError

UUID = "8d6c3f5e-2b1a-4c3d-9e8f-0123456789ab"
SHA = "ab" * 32

# A valid input for each schema, so that only the added key can be wrong.
VALID: dict[str, tuple[Callable[[Any], Any], dict[str, Any]]] = {
    "incident": (schema.incident_input, {
        "title": "t", "start": "2020-08-10T22:00:00+03:00", "place": {"name": "Minsk"}}),
    "act": (schema.act_input, {"incident_id": UUID, "type": "beating"}),
    "unit": (schema.unit_input, {"names": {"en": "OMON"}, "type": "OMON"}),
    "person": (schema.person_input, {"name": "I. Ivanov"}),
    "claim": (schema.claim_input, {
        "statement": "unit_present_at_incident", "subject": {"kind": "unit", "id": UUID},
        "object": {"kind": "incident", "id": UUID.replace("8", "7")}, "sources": [SHA],
        "confidence": "low"}),
    "case": (schema.case_input, {"title": "t", "recipient": "Prosecutor"}),
    "term": (lambda d: schema.term_input(d), {"code": "x-term", "labels": {"en": "X"}}),
}


def _refused(call: Callable[[], Any], field: str) -> None:
    with pytest.raises(BadInputError, match=RED_LINE_MESSAGE) as caught:
        call()
    assert caught.value.code == "red-line-field"
    assert repr(field) in caught.value.message or field in caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize("entity", sorted(VALID))
@pytest.mark.parametrize("key", sorted(RED_LINE_KEYS))
def test_every_deny_listed_key_is_refused_by_every_schema(entity: str, key: str) -> None:
    parse, valid = VALID[entity]
    parse(dict(valid))  # the base input is fine on its own
    _refused(lambda: parse({**valid, key: "anything"}), key)


@pytest.mark.parametrize(("entity", "data", "path"), [
    ("incident", {"title": "t", "start": "2020-08-10T22:00:00Z",
                  "place": {"name": "Minsk", "home_address": "x"}}, "incident.place.home_address"),
    ("act", {"incident_id": UUID, "type": "beating",
             "victim": {"pseudonym": "V1", "phone": "+375 29 000"}}, "act.victim.phone"),
    ("act", {"incident_id": UUID, "type": "beating",
             "victim": {"pseudonym": "V1", "consent": {"family": True}}},
     "act.victim.consent.family"),
    ("act", {"incident_id": UUID, "type": "beating",
             "perpetrator": {"kind": "person", "person_id": UUID, "telegram_account": "@x"}},
     "act.perpetrator.telegram_account"),
    ("person", {"name": "I", "identifiers": [{"kind": "call_sign", "value": "Rys",
                                               "mobile": "1"}]}, "person.identifiers[0].mobile"),
    ("person", {"name": "I", "notes": {"relatives": ["x"]}}, "person.notes.relatives"),
])
def test_red_lines_are_refused_at_any_depth(entity: str, data: dict[str, Any],
                                            path: str) -> None:
    _refused(lambda: VALID[entity][0](data), path)


@pytest.mark.parametrize("key", [
    "homeAddress", "Home-Address", "HOME ADDRESS", "address_line_1", "mother_name",
    "father", "kids_names", "spouseName", "next-of-kin", "telegramHandle", "vk_id",
    "vkontakte_url", "instagramUser", "facebook_profile", "whatsappNumber", "e-mail",
    "private_email", "mobilePhone", "phone2", "cell_number", "tel", "sms_number",
    "family_status", "relative_names", "social_links", "tiktok", "odnoklassniki",
    "адрес", "адрас_пражывання", "телефон", "тэлефон", "родственники", "сям'я", "сім'я",
])
def test_disguised_spellings_are_refused(key: str) -> None:
    assert is_red_line_key(key)
    _refused(lambda: refuse_red_lines({key: "x"}), key)


_WORDS = ["address", "phone", "mobile", "relative", "family", "spouse", "social",
          "facebook", "instagram", "telegram", "whatsapp", "viber", "twitter"]


@given(word=st.sampled_from(_WORDS),
       before=st.text("abcdefghijklmnopqrstuvwxyz_-", max_size=8),
       after=st.text("abcdefghijklmnopqrstuvwxyz_-", max_size=8),
       upper=st.booleans())
def test_any_key_containing_a_red_line_word_is_refused(word: str, before: str, after: str,
                                                       upper: bool) -> None:
    key = before + (word.upper() if upper else word) + after
    with pytest.raises(BadInputError) as caught:
        refuse_red_lines({"ok": [{"nested": {key: 1}}]})
    assert caught.value.code == "red-line-field"


def test_red_line_comes_before_unknown_field() -> None:
    with pytest.raises(BadInputError) as caught:
        schema.person_input({"name": "I", "bogus": 1, "phone_number": "x"})
    assert caught.value.code == "red-line-field"
    assert caught.value.message == (
        "field 'person.phone_number' is refused: Sprava keeps no addresses, phone numbers, "
        "relatives or private accounts of anyone")


def test_unknown_fields_are_refused_too() -> None:
    with pytest.raises(BadInputError, match=r"unknown field 'person\.passport'") as caught:
        schema.person_input({"name": "I", "passport": "MP1234567"})
    assert caught.value.code == "unknown-field"


def test_no_accepted_field_is_a_red_line() -> None:
    assert [name for name in schema.ALL_FIELD_NAMES if is_red_line_key(name)] == []


def test_no_column_of_the_catalogue_is_a_red_line() -> None:
    columns = {c.name for table in CATALOGUE_TABLES for c in table.columns}
    assert "victim_pseudonym" in columns  # the walk does see the columns
    assert [c for c in sorted(columns) if is_red_line_key(c)] == []


def test_no_field_of_a_catalogue_entity_is_a_red_line() -> None:
    classes = [v for v in vars(domain).values()
               if isinstance(v, type) and dataclasses.is_dataclass(v)]
    names = {f.name for cls in classes for f in dataclasses.fields(cls)}
    assert {"pseudonym", "identifiers", "names"} <= names
    assert [n for n in sorted(names) if is_red_line_key(n)] == []


def test_language_tags_and_values_are_not_keys() -> None:
    """Only field names are judged: a unit called 'Street patrol' is fine."""
    assert schema.unit_input({"names": {"en": "Street patrol service", "be-Latn": "Patrul"},
                              "type": "patrol"})["names"]["en"] == "Street patrol service"
    refuse_red_lines({"notes": "lives at some address, phone unknown"})
