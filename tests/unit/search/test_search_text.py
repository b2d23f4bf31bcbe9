"""The folding of Belarusian, Russian and Ukrainian spellings and their Latin
transliterations into one key space: real place names and surnames that must meet, and
different ones that must not."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprava.search.text import (
    MAX_VARIANTS,
    index_keys,
    query_terms,
    word_keys,
    words,
)

# Each line: one place or one name, as Belarusian, Russian and Ukrainian write it and as
# BGN/PCGN, ISO 9, the Belarusian Latin alphabet (łacinka and the 2007 national system),
# Polish, German and passports spell it.
SAME = {
    "Minsk": ["Minsk", "Мінск", "Минск", "Miensk", "Менск", "Mińsk"],
    "Homiel": ["Homiel", "Gomel", "Гомель", "Homel", "Homyel", "Homel'"],
    "Hrodna": ["Hrodna", "Grodno", "Гродна", "Гродно", "Grodna"],
    "Kyiv": ["Kyiv", "Kiev", "Київ", "Киев", "Kijów", "Kyjiw", "Kijev", "Kiew"],
    "Brest": ["Brest", "Брэст", "Брест"],
    "Mahilioŭ": ["Mahilioŭ", "Mogilev", "Магілёў", "Могилёв", "Mogilyov", "Mahilyow",
                 "Mahiliou", "Mohylew"],
    "Viciebsk": ["Viciebsk", "Vitsebsk", "Віцебск", "Витебск", "Vitebsk", "Witebsk"],
    "Baranavičy": ["Baranavičy", "Baranavichy", "Барановичи", "Баранавічы", "Baranovichi"],
    "Babrujsk": ["Babrujsk", "Babruysk", "Bobruisk", "Бабруйск", "Бобруйск", "Bobrujsk"],
    "Maladziečna": ["Maladziečna", "Molodechno", "Маладзечна", "Молодечно",
                    "Maladzyechna"],
    "Kharkiv": ["Kharkiv", "Kharkov", "Харків", "Харьков", "Charków", "Charkiw"],
    "Lviv": ["Lviv", "Lvov", "Львів", "Львов", "Lwów", "L'viv"],
    "Odesa": ["Odesa", "Odessa", "Одеса", "Одесса"],
    "Zaporizhzhia": ["Zaporizhzhia", "Zaporozhye", "Запоріжжя", "Запорожье",
                     "Zaporižžja"],
    "Zhytomyr": ["Zhytomyr", "Zhitomir", "Житомир", "Žytomyr"],
    "Shcherbakov": ["Shcherbakov", "Щербаков", "Ščarbakoŭ", "Шчарбакоў", "Szczerbakow",
                    "Schtscherbakow", "Shtcherbakov", "Ščerbakov", "Shcharbakou"],
    "Yuriy": ["Yuriy", "Юрий", "Iurii", "Jurij", "Yury", "Yuri", "Юрый", "Юрій", "Youri",
              "Jurii", "Juryj"],
    "Dzmitry": ["Dzmitry", "Дзмітрый", "Dmitriy", "Дмитрий", "Dmitry", "Dmytro",
                "Дмитро", "Dźmitry"],
    "Siarhei": ["Siarhei", "Сяргей", "Sergei", "Sergey", "Сергей", "Serhiy", "Сергій",
                "Serhii", "Siarhiej"],
    "Aliaksandr": ["Aliaksandr", "Аляксандр", "Aleksandr", "Alexandr", "Александр",
                   "Oleksandr", "Олександр", "Alaksandr"],
    "Tsikhanouskaya": ["Tsikhanouskaya", "Ціханоўская", "Тихановская", "Tikhanovskaya",
                       "Cichanoŭskaja", "Tsikhanovskaya"],
    "Lukashenka": ["Lukashenka", "Лукашэнка", "Лукашенко", "Lukashenko", "Lukašenka",
                   "Łukaszenka"],
    "Katsiaryna": ["Katsiaryna", "Кацярына", "Kateryna", "Катерина"],
    "Iryna": ["Iryna", "Ірына", "Irina", "Ирина", "Ірина"],
    "Ivanov": ["Ivanov", "Іваноў", "Иванов", "Ivanoŭ", "Iwanow", "Ivanoff", "Ivanou"],
    "Kavaliou": ["Kavaliou", "Кавалёў", "Kovalev", "Ковалёв", "Kovalyov", "Kavalioŭ"],
    "Aliaksei": ["Aliaksei", "Аляксей", "Alexey", "Aleksei", "Алексей", "Oleksii",
                 "Олексій"],
    "Yevhen": ["Yevhen", "Яўген", "Jauhien", "Євген", "Yevgen"],
    "Uladzimir": ["Uladzimir", "Уладзімір", "Uladzimier"],
    "Tatsiana": ["Tatsiana", "Тацяна", "Tatiana", "Татьяна", "Tetiana", "Тетяна"],
    "Mikalai": ["Mikalai", "Мікалай", "Mikalaj"],
    "Zhodzina": ["Zhodzina", "Жодзіна", "Жодино", "Zhodino", "Žodzina"],
}

# Different places and people: no two may share a key (each group by its first spelling).
DIFFERENT = ["Minsk", "Pinsk", "Gomel", "Grodno", "Brest", "Vitebsk", "Mogilev", "Lida",
             "Orsha", "Mozyr", "Slutsk", "Borisov", "Baranovichi", "Bobruisk", "Soligorsk",
             "Kyiv", "Kharkiv", "Lviv", "Odesa", "Dnipro", "Zhytomyr", "Mykolaiv", "Rivne",
             "Moskva", "Smolensk",
             "Ivanov", "Ivanova", "Ivanenko", "Petrov", "Popov", "Sidorov", "Smirnov",
             "Kuznetsov", "Sokolov", "Kozlov", "Kovalev", "Lukashenko", "Shcherbakov",
             "Karpenko", "Makei", "Kolesnikova", "Babariko", "Tsepkalo",
             "Yuriy", "Yulia", "Ira", "Igor", "Oleg", "Olga", "Anna", "Nina",
             "Pavel", "Petr", "Sergei", "Stepan", "Maria", "Marina",
             "Dmitriy", "Denis", "Andrei", "Artem", "Viktor", "Vadim"]


def _coarse(word: str) -> set[str]:
    return set(word_keys(word).coarse)


@pytest.mark.parametrize("group", sorted(SAME), ids=sorted(SAME))
def test_spellings_of_one_name_meet(group: str) -> None:
    first = _coarse(SAME[group][0])
    apart = [w for w in SAME[group] if not first & _coarse(w)]
    assert apart == [], {w: word_keys(w).coarse for w in SAME[group]}


def test_different_names_stay_apart() -> None:
    keys = {w: _coarse(w) for w in DIFFERENT}
    clashes = [(a, b) for a, b in itertools.combinations(DIFFERENT, 2) if keys[a] & keys[b]]
    assert clashes == []


def test_names_apart_only_by_vowels_may_meet_but_rank_apart() -> None:
    """The price of Київ = Киев and Гродна = Гродно: vowels other than u are one class
    in the coarse key. The fine key (what ranks) still tells them apart."""
    assert _coarse("Anna") == _coarse("Inna")
    assert word_keys("Anna").fine != word_keys("Inna").fine


def test_the_groups_of_the_same_names_stay_apart_from_each_other() -> None:
    heads = {g: _coarse(v[0]) for g, v in SAME.items()}
    clashes = [(a, b) for a, b in itertools.combinations(SAME, 2) if heads[a] & heads[b]]
    assert clashes == []


@pytest.mark.parametrize(("word", "coarse", "fine"), [
    ("Minsk", ("mansk",), "xminsk"),
    ("Мінск", ("mansk",), "xminsk"),
    ("Гомель", ("hamal",), "xhomel"),
    ("Kyiv", ("kav",), "xkiv"),
    ("Киев", ("kav",), "xkev"),
    ("Щербаков", ("wqarbakav",), "xwqerbakov"),
    ("Юрий", ("ura",), "xiuri"),
    ("Дзмітрый", ("dmatra",), "xdmitri"),
])
def test_keys_as_documented(word: str, coarse: tuple[str, ...], fine: str) -> None:
    """The examples docs/search.md gives."""
    keys = word_keys(word)
    assert (keys.coarse, keys.fine) == (coarse, fine)


def test_exact_spellings_share_the_fine_key_and_others_do_not() -> None:
    assert word_keys("Minsk").fine == word_keys("Мінск").fine == word_keys("МИНСК").fine
    assert word_keys("Kyiv").fine == word_keys("Київ").fine
    assert word_keys("Kiev").fine != word_keys("Kyiv").fine


def test_case_and_diacritics_do_not_matter() -> None:
    assert word_keys("MINSK") == word_keys("minsk") == word_keys("Minsk")
    assert word_keys("ГРОДНА") == word_keys("гродна")
    assert word_keys("Łukaszenka").coarse == word_keys("lukashenka").coarse
    assert word_keys("Mińsk").coarse == word_keys("Minsk").coarse


def test_ambiguous_latin_keeps_every_reading() -> None:
    # "ch" is ч in English spellings and х in Polish, Czech and Belarusian Latin
    assert {"harkav", "qarkav"} <= _coarse("Charkow")
    # "c" is ц in Slavic spellings and к in "Victor"
    assert _coarse("Victor") & _coarse("Віктар")
    # a "u" after a vowel is Belarusian ў
    assert _coarse("Mahiliou") & _coarse("Могилёв")
    assert len(word_keys("chchchchcccc").coarse) <= MAX_VARIANTS


def test_apostrophes_and_soft_signs_are_dropped() -> None:
    assert _coarse("Mar'yana") & _coarse("Мар'яна") & _coarse("Maryana")
    assert _coarse("Ol'ga") & _coarse("Ольга") & _coarse("Olga")
    assert [w.text for w in words("Під’їзд O'Brien")] == ["Під’їзд", "O'Brien"]


def test_words_split_letters_from_digits_and_keep_offsets() -> None:
    text = "IMG_1234.JPG: Разгон у Мінску, 9 жніўня"
    found = list(words(text))
    assert [w.text for w in found] == ["IMG", "1234", "JPG", "Разгон", "у", "Мінску", "9",
                                       "жніўня"]
    assert all(text[w.start:w.end] == w.text for w in found)
    assert [w.number for w in found][:2] == [False, True]


def test_invisible_characters_do_not_split_a_word() -> None:
    assert word_keys("Mi\u200bnsk").coarse == word_keys("Minsk").coarse
    assert [w.text for w in words("Mi\u00adnsk")] == ["Mi\u00adnsk"]


def test_numbers_fold_to_ascii_digits() -> None:
    assert index_keys("badge ٤٥٦ 0123") == ["badha", "xbadhe", "456", "0123"]


def test_other_scripts_still_match_themselves() -> None:
    greek = word_keys("Αθήνα")
    assert greek.coarse == word_keys("αθηνα").coarse
    assert greek.coarse
    assert greek.coarse != word_keys("Ρώμη").coarse


def test_query_terms_prefix_only_the_last_word_being_typed() -> None:
    terms = query_terms("Гродна Mins")
    assert [t.prefix for t in terms] == [False, True]
    assert [t.prefix for t in query_terms("Гродна Minsk ")] == [False, False]
    # a half-typed digraph: "Lukas" is on its way to "Lukash…"
    assert any("lukawanka".startswith(k) for k in query_terms("Lukas")[0].coarse)
    assert any("wqarbakav".startswith(k) for k in query_terms("Shch")[0].coarse)


def test_query_leaves_out_function_words_unless_nothing_else_is_left() -> None:
    assert len(query_terms("the beating in Minsk")) == 2
    assert len(query_terms("збіццё ў Мінску")) == 2
    assert len(query_terms("the")) == 1


def test_hostile_text_yields_only_plain_keys() -> None:
    text = "\"'() AND OR * NOT -- ; DROP TABLE x\x00 {head}: ^ NEAR/3 :* & | ! \\"
    for key in index_keys(text):
        assert key.isascii()
        assert key.isalnum()
    for term in query_terms(text):
        assert all(k.isascii() and k.isalnum() for k in (*term.coarse, term.fine) if k)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_folds_to_plain_keys(text: str) -> None:
    for key in index_keys(text):
        assert key.isascii()
        assert key.isalnum()
        assert key == key.lower()
    for term in query_terms(text):
        assert term.coarse


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="абвгґдеёєжзиіїйклмнопрстуўфхцчшщъыьэюя'", min_size=1, max_size=12))
def test_folding_does_not_depend_on_case(word: str) -> None:
    assert word_keys(word.upper()) == word_keys(word)


def test_the_folding_examples_of_the_docs_hold() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "search.md").read_text("utf-8")
    table = doc.split("<!-- folding-examples -->")[1].split("<!-- /folding-examples -->")[0]
    rows = re.findall(r"^\| (\S+) \| `(\w+)` \| `(\w+)` \|$", table, flags=re.M)
    assert len(rows) > 20
    for word, coarse, fine in rows:
        keys = word_keys(word)
        assert (keys.coarse[0], keys.fine) == (coarse, fine), word
