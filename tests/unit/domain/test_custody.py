"""Custody events become RFC 8785 canonical leaves, and only canonical leaves decode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sprava.domain.custody import decode_leaf, ingest_event, parse_rfc3339, rfc3339
from sprava.errors import BadInputError

SHA = "ab" * 32


def test_leaf_is_canonical_json_with_required_fields() -> None:
    moment = datetime(2020, 8, 10, 22, 40, 1, 5, tzinfo=UTC)
    leaf = ingest_event(sha256=SHA, size=12, actor="local:anna", time=moment, source=None,
                        new=True).to_leaf()
    assert leaf == (
        b'{"actor":"local:anna","kind":"ingest","new":true,"sha256":"' + SHA.encode()
        + b'","size":12,"source":null,"time":"2020-08-10T22:40:01.000005Z","v":1}'
    )
    body = decode_leaf(leaf)
    assert body["kind"] == "ingest"
    assert parse_rfc3339(body["time"]) == moment


def test_times_are_written_in_utc() -> None:
    minsk = timezone(timedelta(hours=3))
    assert rfc3339(datetime(2020, 8, 11, 1, 40, tzinfo=minsk)) == "2020-08-10T22:40:00.000000Z"
    with pytest.raises(BadInputError, match="time zone"):
        rfc3339(datetime(2020, 8, 11, 1, 40))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not json", "leaf-not-json"),
        (b"[1,2]", "leaf-not-event"),
        (b'{"kind": "ingest"}', "leaf-not-canonical"),
        (b'{"v":1,"kind":"ingest"}', "leaf-not-canonical"),
        (b"\xff\xfe", "leaf-not-json"),
    ],
    ids=["garbage", "array", "spaces", "key-order", "not-utf8"],
)
def test_decode_refuses_non_canonical_leaves(data: bytes, code: str) -> None:
    with pytest.raises(BadInputError) as caught:
        decode_leaf(data)
    assert caught.value.code == code
