"""Receipt codes, the two values derived from them, and the pseudonyms staff see.

A receipt code is :data:`WORDS` words drawn uniformly from the EFF long word list (7,776
words, as shipped inside the ``xkcdpass`` package): 7 × log2(7776) ≈ 90.5 bits, about
what SecureDrop's codenames carry. It is shown once and never stored. From it Argon2id
derives, under two different server peppers:

* the **lookup identifier**, from the code's first :data:`LOCATOR_WORDS` words only
  (≈ 38.8 bits): it finds the submission, so that wrong guesses that happen to hit a
  submission's first words can be counted against that submission (per-submission
  throttling) without telling the guesser anything;
* the **reply secret**, from the whole code: an X25519 private key whose public half is
  all the server keeps. Replies are encrypted to it; a code is right when the key it
  derives has the stored public half.

Threat guarded against: a seized database (without the keys folder) gives neither codes
nor reply keys: both derivations need the peppers, and each guess costs an Argon2id
evaluation. With the peppers too, recovering a code still costs about 2^38.8 + 2^51.7
Argon2id evaluations.

The pseudonym ("quiet heron") is drawn at random, independently of the code.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Protocol

from argon2.low_level import Type, hash_secret_raw

from sprava.errors import BadInputError, ConfigurationError

WORDS = 7
LOCATOR_WORDS = 3
LIST_SIZE = 7776
_LOOKUP_LABEL = b"sprava inbox lookup v1\x00"
_REPLY_LABEL = b"sprava inbox reply v1\x00"
_SEPARATORS = re.compile(r"[\s,.;:/_]+")


@lru_cache(maxsize=1)
def wordlist() -> tuple[str, ...]:
    """The EFF long word list from the installed ``xkcdpass`` package; checked, not trusted.

    Raises ConfigurationError if the list is missing or is not 7,776 distinct words.
    """
    try:
        text = (resources.files("xkcdpass") / "static" / "eff-long").read_text("utf-8")
    except (ModuleNotFoundError, OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"the receipt-code word list cannot be read: {exc}",
                                 code="wordlist-missing",
                                 hint="reinstall Sprava's dependencies (xkcdpass)") from None
    words = tuple(w.strip() for w in text.splitlines() if w.strip())
    if len(words) != LIST_SIZE or len(set(words)) != LIST_SIZE or any(
            not re.fullmatch(r"[a-z]+(-[a-z]+)?", w) for w in words):
        raise ConfigurationError("the receipt-code word list is not the EFF long list",
                                 code="wordlist-invalid")
    return words


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(wordlist())


@dataclass(frozen=True, repr=False)
class ReceiptCode:
    """A receipt code; ``repr`` never shows it (it must not reach a log)."""

    words: tuple[str, ...]

    def __str__(self) -> str:
        return " ".join(self.words)

    def __repr__(self) -> str:
        return "ReceiptCode(<secret>)"

    @property
    def locator(self) -> bytes:
        return " ".join(self.words[:LOCATOR_WORDS]).encode()

    @property
    def whole(self) -> bytes:
        return str(self).encode()


def new_code() -> ReceiptCode:
    words = wordlist()
    return ReceiptCode(tuple(secrets.choice(words) for _ in range(WORDS)))


def parse_code(text: object) -> ReceiptCode:
    """A code as typed: case, extra spaces and punctuation between words do not matter.

    Raises BadInputError ``bad-receipt-code`` for anything that cannot be a code (this
    says nothing about any submission: the word list is public).
    """
    if not isinstance(text, str) or len(text) > 400:
        raise BadInputError(f"a receipt code is {WORDS} words", code="bad-receipt-code")
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    words = tuple(w for w in _SEPARATORS.split(folded) if w)
    if len(words) != WORDS:
        raise BadInputError(f"a receipt code is {WORDS} words; this has {len(words)}",
                            code="bad-receipt-code", hint="check that no word is missing")
    unknown = [w for w in words if w not in _known()]
    if unknown:
        raise BadInputError("a word of this code is not one a receipt code can hold",
                            code="bad-receipt-code",
                            hint="check the spelling of each word")
    return ReceiptCode(words)


# --- Argon2id ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost: memory in KiB, passes, lanes. Stored with what it derived."""

    memory_kib: int
    passes: int
    lanes: int = 1

    def text(self) -> str:
        return f"argon2id:m={self.memory_kib},t={self.passes},p={self.lanes}"

    @classmethod
    def parse(cls, text: str) -> KdfParams:
        found = re.fullmatch(r"argon2id:m=(\d{1,8}),t=(\d{1,3}),p=(\d{1,2})", text)
        if not found:
            raise ConfigurationError(f"unknown key derivation {text!r}", code="bad-kdf")
        return cls(int(found[1]), int(found[2]), int(found[3]))

    @classmethod
    def from_settings(cls, memory_mb: int, passes: int) -> KdfParams:
        return cls(memory_mb * 1024, passes, 1)


class Kdf(Protocol):
    """Argon2id, as a one-method interface (tests count calls through a wrapper)."""

    def derive(self, secret: bytes, salt: bytes, params: KdfParams) -> bytes: ...


class Argon2Kdf:
    """RFC 9106 Argon2id through argon2-cffi; 32-byte output."""

    def derive(self, secret: bytes, salt: bytes, params: KdfParams) -> bytes:
        return hash_secret_raw(secret, salt, time_cost=params.passes,
                               memory_cost=params.memory_kib, parallelism=params.lanes,
                               hash_len=32, type=Type.ID)


def lookup_id(kdf: Kdf, code: ReceiptCode, pepper: bytes, params: KdfParams) -> str:
    """The stored identifier that finds a submission from its code's first words."""
    return kdf.derive(_LOOKUP_LABEL + code.locator, pepper, params).hex()


def reply_secret(kdf: Kdf, code: ReceiptCode, pepper: bytes, params: KdfParams) -> bytes:
    """The X25519 private key of the insider's replies, from the whole code."""
    return kdf.derive(_REPLY_LABEL + code.whole, pepper, params)


# --- pseudonyms -------------------------------------------------------------------------------

# Written for Sprava: calm, neutral words, none of them a rank, a place or a trait that
# could be read as a judgement of the person.
_ADJECTIVES = (
    "quiet", "amber", "brisk", "calm", "distant", "early", "faint", "gentle", "hidden",
    "idle", "keen", "late", "level", "lunar", "mellow", "misty", "nimble", "northern",
    "olive", "pale", "patient", "plain", "quick", "rainy", "rare", "russet", "silent",
    "silver", "slow", "small", "soft", "southern", "steady", "still", "sunny", "tawny",
    "tidy", "velvet", "violet", "warm", "western", "wild", "windy", "winter", "young",
    "autumn", "cedar", "copper", "coral", "dusky", "eastern", "frosty", "golden", "hazel",
    "humble", "ivory", "jade", "linen", "marble", "mossy", "nocturnal", "opal", "pearl",
)
_NOUNS = (
    "heron", "badger", "beaver", "bison", "bittern", "crane", "curlew", "dipper", "egret",
    "falcon", "finch", "fox", "grebe", "hare", "harrier", "hedgehog", "ibis", "jay",
    "kestrel", "kingfisher", "lark", "linnet", "lynx", "marten", "merlin", "mink", "newt",
    "nightjar", "oriole", "osprey", "otter", "owl", "pelican", "pike", "plover", "quail",
    "raven", "redstart", "robin", "rook", "sable", "sandpiper", "shrike", "siskin",
    "sparrow", "squirrel", "starling", "stoat", "stork", "swallow", "swift", "teal",
    "thrush", "vole", "wagtail", "warbler", "waxwing", "weasel", "wolf", "wren", "bream",
    "perch", "salmon", "sturgeon",
)


def new_pseudonym(taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A random "adjective noun" pseudonym not in ``taken`` (a number is added when the
    pairs run out)."""
    for _ in range(64):
        name = f"{secrets.choice(_ADJECTIVES)} {secrets.choice(_NOUNS)}"
        if name not in taken:
            return name
    while True:
        name = (f"{secrets.choice(_ADJECTIVES)} {secrets.choice(_NOUNS)} "
                f"{secrets.randbelow(10_000)}")
        if name not in taken:
            return name
