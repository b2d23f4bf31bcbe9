"""The inbox store: padding to buckets, nothing under a final name before its commit, and
the sweep after a killed process."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sprava.errors import NotFoundError
from sprava.inbox.storage import MIN_BUCKET, LocalInboxStore, padme


@given(st.integers(min_value=0, max_value=1 << 40))
def test_padme_buckets_are_bounded(length: int) -> None:
    padded = padme(length)
    assert padded >= max(length, MIN_BUCKET)
    if length >= MIN_BUCKET:
        assert padded <= length * 1.12 + 1
    assert padme(padded) == padded


def test_short_objects_all_look_alike() -> None:
    assert {padme(n) for n in (0, 1, 100, 5000, MIN_BUCKET)} == {MIN_BUCKET}
    assert len({padme(n) for n in range((1 << 20) + 1, (1 << 20) + 5000)}) == 1


@pytest.fixture
def store(tmp_path: Path) -> LocalInboxStore:
    found = LocalInboxStore(tmp_path / "inbox", fsync=False)
    found.create()
    return found


def test_an_object_gets_its_name_only_at_commit_and_is_padded(store: LocalInboxStore) -> None:
    writer = store.writer("ab" * 16)
    writer.write(b"x" * 1000)
    writer.finish()
    assert (writer.exact, writer.padded) == (1000, MIN_BUCKET)
    assert list(store.stored()) == []
    writer.commit()
    assert list(store.stored()) == ["ab" * 16]
    path = store.path_of("ab" * 16)
    assert path.stat().st_size == MIN_BUCKET
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    with store.open("ab" * 16) as handle:
        body = handle.read()
    assert body[:1000] == b"x" * 1000
    assert body[1000:] != bytes(MIN_BUCKET - 1000)


def test_a_discarded_object_leaves_nothing(store: LocalInboxStore) -> None:
    writer = store.writer("cd" * 16)
    writer.write(b"y" * 10)
    writer.discard()
    assert list(store.tmp.iterdir()) == []
    assert list(store.stored()) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "AB" * 16, "", "a" * 31, "ab" * 16 + "/"])
def test_object_names_cannot_leave_the_store(store: LocalInboxStore, bad: str) -> None:
    with pytest.raises(NotFoundError):
        store.open(bad)
    with pytest.raises(NotFoundError):
        store.writer(bad)


def test_sweep_finishes_recorded_leftovers_removes_others_and_spares_live_ones(
        store: LocalInboxStore) -> None:
    recorded, stray, live = "11" * 16, "22" * 16, "33" * 16
    for name in (recorded, stray, "not-an-object"):
        (store.tmp / name).write_bytes(b"ciphertext")
    writer = store.writer(live)  # holds its lock, as a running upload does
    try:
        assert store.sweep(lambda object_id: object_id == recorded) == 3
        assert list(store.stored()) == [recorded]
        assert sorted(p.name for p in store.tmp.iterdir()) == [live]
    finally:
        writer.discard()
