"""Receipt codes: entropy, parsing as people type, and the two derivations."""

from __future__ import annotations

import math

import pyrage
import pytest

from sprava.errors import BadInputError
from sprava.inbox import age, codes
from sprava.inbox.codes import Argon2Kdf, KdfParams, ReceiptCode

PARAMS = KdfParams(1024, 1)
PEPPER_A, PEPPER_B = b"a" * 32, b"b" * 32


def test_the_word_list_is_the_eff_long_list_and_codes_carry_over_80_bits() -> None:
    words = codes.wordlist()
    assert len(words) == len(set(words)) == 7776
    assert codes.WORDS * math.log2(len(words)) >= 80
    code = codes.new_code()
    assert len(code.words) == codes.WORDS
    assert all(w in words for w in code.words)
    assert len({str(codes.new_code()) for _ in range(50)}) == 50


def test_a_code_is_read_as_people_type_it() -> None:
    code = codes.new_code()
    typed = "  " + ",  ".join(w.upper() for w in code.words) + ". "
    assert codes.parse_code(typed) == code
    assert str(code) not in repr(code)
    assert "secret" in repr(code)


@pytest.mark.parametrize("text", ["", "abacus " * 6, "abacus " * 8, "abacus " * 6 + "zzzzz",
                                  None, 7, "a" * 1000])
def test_what_cannot_be_a_code_is_refused_before_any_work(text: object) -> None:
    with pytest.raises(BadInputError) as caught:
        codes.parse_code(text)
    assert caught.value.code == "bad-receipt-code"


def test_the_lookup_comes_from_the_first_words_and_the_reply_key_from_all() -> None:
    kdf = Argon2Kdf()
    one = ReceiptCode(("acid", "acorn", "acre", "banana", "bamboo", "canal", "cargo"))
    same_start = ReceiptCode((*one.words[:3], "zebra", "zesty", "zippy", "zoom"))
    assert codes.lookup_id(kdf, one, PEPPER_A, PARAMS) == codes.lookup_id(
        kdf, same_start, PEPPER_A, PARAMS)
    assert codes.reply_secret(kdf, one, PEPPER_B, PARAMS) != codes.reply_secret(
        kdf, same_start, PEPPER_B, PARAMS)
    # the peppers matter, and the two derivations differ for the same pepper
    assert codes.lookup_id(kdf, one, PEPPER_A, PARAMS) != codes.lookup_id(
        kdf, one, PEPPER_B, PARAMS)
    assert codes.lookup_id(kdf, one, PEPPER_A, PARAMS) != codes.reply_secret(
        kdf, one, PEPPER_A, PARAMS).hex()
    # deterministic: coming back with the code finds the same key
    secret = codes.reply_secret(kdf, one, PEPPER_B, PARAMS)
    assert secret == codes.reply_secret(kdf, codes.parse_code(str(one)), PEPPER_B, PARAMS)
    identity = age.Identity(secret)
    assert str(pyrage.x25519.Identity.from_str(str(identity)).to_public()) == str(
        identity.recipient)


def test_kdf_parameters_round_trip() -> None:
    params = KdfParams.from_settings(64, 3)
    assert KdfParams.parse(params.text()) == params == KdfParams(65536, 3, 1)


def test_pseudonyms_are_two_calm_words_and_avoid_those_taken() -> None:
    name = codes.new_pseudonym()
    assert len(name.split()) == 2
    taken = {f"{a} {n}" for a in codes._ADJECTIVES for n in codes._NOUNS}
    assert len(codes.new_pseudonym(taken).split()) == 3
