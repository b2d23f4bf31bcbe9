"""Password hashing, tokens and TOTP codes, against published vectors where there are any."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from sprava.accounts import secrets as creds
from sprava.errors import BadInputError
from sprava.settings import load_settings

# RFC 6238 Appendix B: the SHA-1 seed and the 8-digit codes at these times; authenticator
# apps show the last six digits.
RFC6238_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC6238 = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
           (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")]


def test_password_hash_is_argon2id_and_verifies() -> None:
    stored = creds.hash_password("four unrelated words here")
    assert stored.startswith("$argon2id$")
    assert creds.verify_password(stored, "four unrelated words here")
    assert not creds.verify_password(stored, "four unrelated words hers")
    assert not creds.needs_rehash(stored)


def test_the_default_cost_is_rfc_9106s_second_option_and_settings_change_it(
        tmp_path: Path) -> None:
    stored = creds.hash_password("four unrelated words here")
    assert "$m=65536,t=3,p=4$" in stored
    assert creds.PasswordCost.of(load_settings(tmp_path, environ={})) == creds.DEFAULT_COST
    cheap = creds.PasswordCost.of(load_settings(
        tmp_path, {"password_kdf_memory_mb": 1, "password_kdf_passes": 1}, environ={}))
    low = creds.hash_password("four unrelated words here", cheap)
    assert "$m=1024,t=1,p=4$" in low
    assert creds.verify_password(low, "four unrelated words here")  # any cost verifies
    assert creds.verify_password(stored, "four unrelated words here", cheap)
    # a hash made at another cost is made again at the next login
    assert creds.needs_rehash(low)
    assert creds.needs_rehash(stored, cheap)
    assert not creds.needs_rehash(low, cheap)


def test_unknown_account_never_verifies() -> None:
    assert not creds.verify_password(None, "")
    assert not creds.verify_password(None, "anything at all here")


def test_garbage_hash_and_huge_password_are_refused_not_raised() -> None:
    assert not creds.verify_password("not a hash", "four unrelated words here")
    stored = creds.hash_password("four unrelated words here")
    assert not creds.verify_password(stored, "x" * 100_000)


@pytest.mark.parametrize("password", ["short", " leading space here", "aaaaaaaaaaaaaaaa",
                                      "x" * 1025, 12345678901234])
def test_password_policy_refuses(password: object) -> None:
    with pytest.raises(BadInputError, match="password"):
        creds.check_password_policy(password)


def test_tokens_are_random_and_stored_as_digests() -> None:
    token, digest = creds.new_token("spt")
    again, other = creds.new_token("spt")
    assert token.startswith("spt_")
    assert token != again
    assert digest != other
    assert creds.token_digest(token) == digest
    assert len(digest) == 64


@pytest.mark.parametrize(("moment", "code8"), RFC6238)
def test_totp_matches_rfc_6238_vectors(moment: int, code8: str) -> None:
    step = creds.totp_step(RFC6238_SECRET, code8[-6:], last_step=None, now=moment)
    assert step == moment // 30


def test_totp_allows_one_step_of_drift_and_no_more() -> None:
    code = "287082"  # valid for step 1 (t = 30..59)
    assert creds.totp_step(RFC6238_SECRET, code, last_step=None, now=59 + 30) == 1
    assert creds.totp_step(RFC6238_SECRET, code, last_step=None, now=59 + 60) is None


def test_totp_code_is_single_use() -> None:
    assert creds.totp_step(RFC6238_SECRET, "287082", last_step=1, now=59) is None
    assert creds.totp_step(RFC6238_SECRET, "287082", last_step=0, now=59) == 1


@pytest.mark.parametrize("code", [None, "", "28708", "2870820", "abcdef", 287082])
def test_totp_refuses_malformed_codes(code: object) -> None:
    assert creds.totp_step(RFC6238_SECRET, code, last_step=None, now=59) is None
