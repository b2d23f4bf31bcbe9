"""The digest value type accepts exactly SHA-256 and prints as sha256:<hex>."""

from __future__ import annotations

import hashlib

import pytest

from sprava.domain.digest import Digest
from sprava.errors import BadInputError

HEX = hashlib.sha256(b"evidence").hexdigest()


def test_parse_accepts_prefixed_and_upper_case() -> None:
    assert Digest.parse(f"SHA256:{HEX.upper()}") == Digest(HEX)
    assert str(Digest(HEX)) == f"sha256:{HEX}"
    assert Digest.from_bytes(bytes.fromhex(HEX)).raw == bytes.fromhex(HEX)


@pytest.mark.parametrize(
    "text", [HEX[:-1], HEX + "0", "g" * 64, "", "sha256:", f"md5:{HEX}"],
    ids=["short", "long", "not-hex", "empty", "prefix-only", "other-prefix"],
)
def test_parse_refuses_what_is_not_a_sha256(text: str) -> None:
    with pytest.raises(BadInputError, match="not a SHA-256") as caught:
        Digest.parse(text)
    assert caught.value.code == "bad-digest"


def test_from_bytes_refuses_wrong_length() -> None:
    with pytest.raises(BadInputError, match="32 bytes"):
        Digest.from_bytes(b"\x00" * 31)
