"""Words and their search keys: one folded key space for Belarusian, Russian, Ukrainian
and the many Latin spellings of their names.

The same place or person is written "Мінск", "Минск", "Minsk" and "Miensk";
"Гродна", "Гродно", "Hrodna" and "Grodno"; "Щербаков", "Shcherbakov", "Ščarbakoŭ" and
"Szczerbakow". A word is folded in three steps, the same way when it is indexed and when
it is searched for:

1. **Letters to sounds.** Cyrillic letters of all three alphabets map straight to a small
   set of sound classes (``г ґ х`` → one class, ``ў в ф`` → one, ``щ`` → ``ш`` + ``ч`` as
   Belarusian writes it). Latin letters are read with the digraphs of the common
   romanisations: BGN/PCGN (``kh zh ts ch sh shch``), ISO 9 and the Belarusian Latin
   alphabet (``č š ž ŭ ć ł``), Polish (``cz sz szcz w``), German (``tsch sch w``) and
   passport spellings. Latin diacritics are stripped after those letters are read.
   Where a Latin spelling is ambiguous (``ch`` is ``ч`` in English but ``х`` in Polish,
   Czech and Belarusian Latin; ``c`` is ``ц`` in Slavic spellings but ``к`` in
   "Victor"; a ``u`` after a vowel is Belarusian ``ў``), every reading is kept, up to
   :data:`MAX_VARIANTS`.
2. **Merges.** ``дз`` → ``д`` and ``ц`` before a soft vowel → ``т`` (Belarusian
   "Дзмітрый" / Russian "Дмитрий", "Віцебск" / "Витебск"), ``тс`` → ``ц``, ``кх`` →
   ``х``, ``тч`` → ``ч``, doubled consonants → one, an ``i``-like glide before ``u``
   dropped ("Yuriy", "Iurii", "Юрий").
3. **Keys.** The *coarse* key keeps the consonant classes and two vowel classes, ``u``
   and everything else, with runs collapsed: "Kyiv", "Kiev", "Київ" and "Киев" are all
   ``kav``. It is what matches. The *fine* key keeps the vowels as written (``x`` +
   ``kiv`` for "Kyiv" and "Київ", ``x`` + ``kev`` for "Kiev" and "Киев"); it only ranks
   closer spellings first.

Numbers are their digits. Letters of other scripts are kept as opaque code points, so
they still match themselves exactly. Everything here is pure computation on text: no
I/O, no names of people are looked up or compared by anything but their letters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

#: Bumped whenever the keys of some word change, so that the index is rebuilt.
FOLD_VERSION = 1
#: The most readings of one ambiguous Latin word that are kept.
MAX_VARIANTS = 4
#: Longer words are cut to this many characters before folding.
MAX_WORD = 64
#: Keys are cut to this many characters (a word of another script can make long ones).
MAX_KEY = 120
#: Prefix matching needs at least this many characters of coarse key (two would match
#: a good part of any index: "Mi" is "ma", the start of every m-vowel word).
MIN_PREFIX = 3
FINE_MARK = "x"  # fine keys start with it; coarse keys never do

# --- sounds ------------------------------------------------------------------------------
# A consonant is its class letter; a vowel is a _Vowel. ``_SOFT`` is a soft sign (or an
# apostrophe standing for one): it softens what precedes it and then disappears.


@dataclass(frozen=True)
class _Vowel:
    cls: str  # "a" (every vowel but u) or "u"
    fine: str  # how the fine key writes it
    soft: bool = False  # softens a preceding ц (е ё є і ї и я ю, Latin e i y j)
    ilike: bool = False  # an i, y, j or й: dropped before a u, as a glide


_Sound = str | _Vowel
_SOFT = "'"

_A, _O, _U = _Vowel("a", "a"), _Vowel("a", "o"), _Vowel("u", "u")
_E = _Vowel("a", "e", soft=True)
_I = _Vowel("a", "i", soft=True, ilike=True)

_CYRILLIC: dict[str, tuple[_Sound, ...]] = {
    "а": (_A,), "б": ("b",), "в": ("v",), "г": ("h",), "ґ": ("h",), "д": ("d",),
    "е": (_E,), "ё": (_Vowel("a", "io", soft=True),), "є": (_Vowel("a", "ie", soft=True),),
    "ж": ("j",), "з": ("z",), "и": (_I,), "і": (_I,),
    "ї": (_Vowel("a", "ii", soft=True, ilike=True),), "й": (_I,), "к": ("k",),
    "л": ("l",), "м": ("m",), "н": ("n",), "о": (_O,), "п": ("p",), "р": ("r",),
    "с": ("s",), "т": ("t",), "у": (_U,), "ў": ("v",), "ф": ("v",), "х": ("h",),
    "ц": ("c",), "ч": ("q",), "ш": ("w",), "щ": ("w", "q"), "ъ": (), "ь": (_SOFT,),
    "ы": (_Vowel("a", "i", ilike=True),), "э": (_Vowel("a", "e"),),
    "ю": (_Vowel("u", "iu", soft=True),), "я": (_Vowel("a", "ia", soft=True),),
    # older and neighbouring Cyrillic letters that turn up in names
    "ѣ": (_E,), "ѳ": ("v",), "ѵ": (_I,), "ј": (_I,), "ѕ": ("d",), "џ": ("d", "j"),
    "ђ": ("d",), "ћ": ("q",), "љ": ("l",), "њ": ("n",), "ѓ": ("h",), "ќ": ("k",),
    "ә": (_A,), "ғ": ("h",), "қ": ("k",), "ң": ("n",), "ө": (_O,), "ұ": (_U,),
    "ү": (_U,), "һ": ("h",),
}

# Latin letters whose diacritic is part of the sound, read before diacritics are stripped.
_LATIN_SPECIAL: dict[str, tuple[_Sound, ...]] = {
    "š": ("w",), "č": ("q",), "ž": ("j",), "ŝ": ("w", "q"), "ŭ": ("v",), "ǔ": ("v",),
    "ż": ("j",), "ř": ("r",), "ĉ": ("q",), "ć": ("c", _SOFT), "ǆ": ("d", "j"),
}
# Latin letters that stand for a plain letter (and may take part in digraphs: "dź").
_LATIN_PLAIN = {"ł": "l", "ś": "s", "ź": "z", "ń": "n", "đ": "d", "ð": "d", "þ": "th",
                "æ": "ae", "œ": "oe", "ø": "o", "ı": "i", "ĸ": "k", "ŋ": "n"}

# Latin spellings, longest first. Each maps to its readings (the first is the usual one).
_LATIN: dict[str, tuple[tuple[_Sound, ...], ...]] = {
    "schtsch": (("w", "q"),),
    "shch": (("w", "q"),), "szcz": (("w", "q"),), "tsch": (("q",),),
    "sch": (("w",), ("w", "q")), "tch": (("q",),), "zgh": (("z", "h"),),
    "dzh": (("d", "j"),),
    "zh": (("j",),), "kh": (("h",),), "gh": (("h",),), "sh": (("w",),),
    "ch": (("q",), ("h",)), "cz": (("q",),), "sz": (("w",),), "tz": (("c",),),
    "ph": (("v",),), "th": (("t",),), "ck": (("k",),),
    "ou": ((_U,), (_O, "v")), "au": ((_A, _U), (_A, "v")), "eu": ((_E, _U), (_E, "v")),
    "a": ((_A,),), "e": ((_E,),), "i": ((_I,),), "o": ((_O,),), "u": ((_U,),),
    "y": ((_I,),), "j": ((_I,),),
    "b": (("b",),), "c": (("c",), ("k",)), "d": (("d",),), "f": (("v",),), "g": (("h",),),
    "h": (("h",),), "k": (("k",),), "l": (("l",),), "m": (("m",),), "n": (("n",),),
    "p": (("p",),), "q": (("k",),), "r": (("r",),), "s": (("s",),), "t": (("t",),),
    "v": (("v",),), "w": (("v",),), "x": (("k", "s"),), "z": (("z",),),
}
_LONGEST = max(len(k) for k in _LATIN)

# Two sounds that one romanisation writes as one (дз/д, тс/ц, кх/х, тч/ч).
_PAIRS = {("d", "z"): "d", ("t", "s"): "c", ("k", "h"): "h", ("t", "q"): "q"}

# Characters that join a word rather than split it: apostrophes (Ukrainian, and the
# primes of transliterations for ь and ъ), BGN's middle dot, invisible joiners.
_APOSTROPHES = frozenset("'’ʼʹʺ`´‘″ˈ")
_INVISIBLE = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff\u00b7")

# Words left out of a query (never out of the index): short function words of the four
# languages, which would otherwise demand that a record be written in that language.
STOPWORDS = frozenset({
    "a", "an", "and", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to",
    "with",  # English
    "в", "во", "и", "или", "к", "на", "не", "о", "об", "от", "по", "с", "со", "у", "за",
    "из", "до", "для", "что", "как",  # Russian
    "і", "й", "ў", "з", "са", "ад", "па", "да", "або", "ці", "як", "што",  # Belarusian
    "та", "чи", "від", "що",  # Ukrainian (the rest as above)
})


# --- words -------------------------------------------------------------------------------


class Word(NamedTuple):
    """One word of a text, where it stands in it, and what kind of word it is."""

    start: int
    end: int
    text: str
    number: bool


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LM"


_MARKS = "\u0300-\u036f\u0483-\u0489"  # combining accents that NFC leaves alone
_JOINERS = "".join(re.escape(c) for c in sorted(_APOSTROPHES | _INVISIBLE))
# Letters, with accents, apostrophes and invisible joiners inside (or after) them; or
# digits. (A word ending in an apostrophe keeps it: it folds to nothing.)
_WORD = re.compile(f"[^\\W\\d_]+(?:[{_MARKS}{_JOINERS}]+[^\\W\\d_]*)*|\\d+")


def words(text: str) -> Iterator[Word]:
    """The words of ``text``: runs of letters (apostrophes and invisible joiners inside a
    word do not split it) and runs of digits. Everything else separates words."""
    for match in _WORD.finditer(text):
        found = match.group()
        yield Word(match.start(), match.end(), found, found[0].isdecimal())


# --- folding -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """The keys of one word: coarse readings (they match) and the fine key (it ranks)."""

    coarse: tuple[str, ...]
    fine: str


def _segments(word: str) -> list[tuple[tuple[_Sound, ...], ...]]:
    """The word as a list of segments, each a tuple of alternative sound sequences."""
    out: list[tuple[tuple[_Sound, ...], ...]] = []
    latin: list[str] = []

    def flush() -> None:
        run = "".join(latin)
        latin.clear()
        i = 0
        while i < len(run):
            for size in range(min(_LONGEST, len(run) - i), 0, -1):
                readings = _LATIN.get(run[i:i + size])
                if readings is not None:
                    out.append(readings)
                    i += size
                    break
            else:
                i += 1  # cannot happen: every ASCII letter has a reading

    for ch in unicodedata.normalize("NFC", word).casefold():
        if ch in _INVISIBLE:
            continue
        if ch in _APOSTROPHES:
            flush()
            out.append(((_SOFT,),))
            continue
        sounds = _CYRILLIC.get(ch)
        if sounds is None:
            sounds = _LATIN_SPECIAL.get(ch)
        if sounds is not None:
            flush()
            out.append((sounds,))
            continue
        plain = _LATIN_PLAIN.get(ch)
        if plain is None:
            plain = "".join(c for c in unicodedata.normalize("NFKD", ch)
                            if not unicodedata.combining(c))
        for c in plain:
            if "a" <= c <= "z":
                latin.append(c)
            elif c.isdecimal() or unicodedata.combining(c) or not _is_letter(c):
                continue
            else:
                sub = _CYRILLIC.get(c)  # a Cyrillic letter with a stray accent
                flush()
                out.append((sub if sub is not None else (f"y{ord(c):x}",),))
    flush()
    return out


def _expand(segments: Sequence[tuple[tuple[_Sound, ...], ...]]) -> list[list[_Sound]]:
    """Every reading of the word, the usual one first, at most :data:`MAX_VARIANTS`."""
    readings: list[list[_Sound]] = [[]]
    for alternatives in segments:
        readings = [r + list(a) for r in readings for a in alternatives][:MAX_VARIANTS]
    return readings


def _merge(sounds: list[_Sound]) -> list[_Sound]:
    """Apply the merges that hold across languages and romanisations (see module doc)."""
    merged: list[_Sound] = []
    for s in sounds:
        prev = merged[-1] if merged else None
        if isinstance(s, str) and isinstance(prev, str):
            pair = _PAIRS.get((prev, s))
            if pair is not None:
                merged[-1] = pair
                continue
        if isinstance(s, _Vowel) and s.cls == "u" and isinstance(prev, _Vowel) and prev.ilike:
            merged[-1] = _Vowel("u", "iu", soft=True)  # "yu", "iu", "ju", "ію" are all ю
            continue
        if (prev == "c" and (s == _SOFT or (isinstance(s, _Vowel) and s.soft))):
            merged[-1] = "t"  # Belarusian ць/цi where Russian and Ukrainian have т
        merged.append(s)
    out: list[_Sound] = []
    for s in merged:
        if s == _SOFT:
            continue
        if isinstance(s, str) and out and out[-1] == s:
            continue  # doubled consonants: "Illia", "Savva", "Ivanoff"
        out.append(s)
    return out


def _coarse(sounds: Sequence[_Sound]) -> str:
    out: list[str] = []
    for s in sounds:
        letter = s.cls if isinstance(s, _Vowel) else s
        if isinstance(s, _Vowel) and out and out[-1] == letter:
            continue
        out.append(letter)
    return "".join(out)


def _fine(sounds: Sequence[_Sound]) -> str:
    text = "".join(s.fine if isinstance(s, _Vowel) else s for s in sounds)
    text = text.replace("ie", "e")
    out: list[str] = []
    for ch in text:
        if not out or out[-1] != ch:
            out.append(ch)
    return FINE_MARK + "".join(out)


@lru_cache(maxsize=200_000)
def word_keys(word: str) -> Keys:
    """The keys of one word of letters (see the module documentation)."""
    readings = [_merge(r) for r in _expand(_segments(word[:MAX_WORD]))]
    coarse: list[str] = []
    for reading in readings:
        key = _coarse(reading)[:MAX_KEY]
        if key and key not in coarse:
            coarse.append(key)
    if not coarse:
        return Keys((), "")
    return Keys(tuple(coarse), _fine(readings[0])[:MAX_KEY])


def number_key(digits: str) -> str:
    """A number's key: its digits in ASCII (Arabic-Indic and other digits included)."""
    return "".join(str(unicodedata.decimal(c, 0)) for c in digits[:MAX_WORD])


def keys_of(word: Word) -> Keys:
    if word.number:
        key = number_key(word.text)
        return Keys((key,), "")
    return word_keys(word.text)


@lru_cache(maxsize=200_000)
def _keys_of_text(found: str) -> tuple[str, ...]:
    if found[0].isdecimal():
        return (number_key(found),)
    keys = word_keys(found)
    return (*keys.coarse, keys.fine) if keys.fine else keys.coarse


def index_keys(text: str, limit: int = 20_000) -> list[str]:
    """Every key of every word of ``text``, in order (at most ``limit`` words)."""
    out: list[str] = []
    for count, match in enumerate(_WORD.finditer(text)):
        if count >= limit:
            break
        out.extend(_keys_of_text(match.group()))
    return out


def coarse_keys(text: str) -> list[str]:
    """Every coarse reading of every word of ``text`` (for facets such as places)."""
    out: list[str] = []
    for word in words(text):
        for key in keys_of(word).coarse:
            if key not in out:
                out.append(key)
    return out


# --- queries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One word of a query: any of ``coarse`` must match (as a prefix if ``prefix``);
    ``fine`` only raises the score of closer spellings."""

    coarse: tuple[str, ...]
    fine: str
    prefix: bool


# A Latin word typed so far may end half-way through a digraph ("Lukas" for "Lukash…",
# "Shc" for "Shch…"): its last letter is also read as the start of each of these.
_COMPLETIONS = {"c": ("ch", "cz"), "s": ("sh", "sz"), "z": ("zh",), "k": ("kh",),
                "t": ("ts", "tch"), "d": ("dz", "dzh"), "g": ("gh",), "p": ("ph",)}


def query_terms(text: str, *, prefix_last: bool = True) -> list[Term]:
    """The terms of a query. The last word also matches as a prefix when it ends the
    text (the user may still be typing it) and is long enough (:data:`MIN_PREFIX`)."""
    found = list(words(text))
    meaningful = [w for w in found if w.number or w.text.casefold() not in STOPWORDS]
    if meaningful:
        found = meaningful
    terms: list[Term] = []
    for n, word in enumerate(found):
        keys = keys_of(word)
        if not keys.coarse:
            continue
        last = n == len(found) - 1 and prefix_last and word.end == len(text)
        coarse = list(keys.coarse)
        if last and not word.number:
            for ending in _COMPLETIONS.get(word.text[-1:].casefold(), ()):
                for key in word_keys(word.text[:-1] + ending).coarse:
                    if key not in coarse:
                        coarse.append(key)
        usable = [k for k in coarse if len(k) >= MIN_PREFIX]
        prefix = last and bool(usable)
        terms.append(Term(tuple(usable if prefix else coarse), keys.fine, prefix))
    return terms
