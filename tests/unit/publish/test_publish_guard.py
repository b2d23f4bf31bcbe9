"""The restricted-name check: whole words, any case and punctuation, any alphabet."""

from __future__ import annotations

import pytest

from sprava.publish.guard import Restricted, find_restricted, words

VICTIM = Restricted("a victim's pseudonym", "act 1")
OFFICER = Restricted("the name of a person", "person 2")
NAMES = {words("V-17"): VICTIM, words("Лебедзь-19"): VICTIM,
         words("Uladzimir Nestsiarenka"): OFFICER}


@pytest.mark.parametrize("text", [
    "He was V-17.", "v 17 was beaten", "(V-17)", "ЛЕБЕДЗЬ 19 was held",
    "officer uladzimir   NESTSIARENKA hit", "Uladzimir\nNestsiarenka",
    "Ｖ－１７ in full-width letters",
])
def test_a_restricted_name_is_found(text: str) -> None:
    assert find_restricted([("the narrative", text)], NAMES)


@pytest.mark.parametrize("text", [
    "V-170 is a road", "AV-17", "Nestsiarenka alone", "Uladzimir went home",
    "Лебедзь flew", "",
])
def test_other_words_are_not(text: str) -> None:
    assert find_restricted([("the narrative", text)], NAMES) == []


def test_every_text_is_named_once_per_match_in_order() -> None:
    hits = find_restricted([("a", "V-17 and v-17 and Лебедзь-19"), ("b", "nothing"),
                            ("c", "Uladzimir Nestsiarenka")], NAMES)
    assert hits == [("a", VICTIM), ("c", OFFICER)]
