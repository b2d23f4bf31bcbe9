"""The blob store: one pass, never overwrite, nothing half-written under a final name."""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
from pathlib import Path

import pytest

from sprava.domain.digest import Digest
from sprava.errors import ConfigurationError, NotFoundError
from sprava.store.blobs import CHUNK, LocalBlobStore


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    blobs = LocalBlobStore(tmp_path / "blobs")
    blobs.create()
    return blobs


def _put(store: LocalBlobStore, path: Path) -> object:
    fd = os.open(path, os.O_RDONLY)
    try:
        return store.put_fd(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, 5 * CHUNK + 17],
                         ids=["empty", "one-byte", "under-chunk", "chunk", "pipelined"])
def test_put_hashes_in_the_same_pass_and_stores_read_only(
    store: LocalBlobStore, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    src = tmp_path / "src"
    src.write_bytes(data)
    blob = _put(store, src)
    digest = Digest(hashlib.sha256(data).hexdigest())
    assert (blob.digest, blob.size, blob.created) == (digest, size, True)  # type: ignore[attr-defined]
    assert blob.head == data[:4096]  # type: ignore[attr-defined]
    with store.open(digest) as handle:
        assert handle.read() == data
    assert stat.S_IMODE(store.path_of(digest).stat().st_mode) == 0o400
    assert store.temp_count() == 0


def test_existing_blob_is_never_overwritten(store: LocalBlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"original evidence")
    first = _put(store, src)
    final = store.path_of(first.digest)  # type: ignore[attr-defined]
    before = final.stat()
    again = _put(store, src)
    assert again.created is False  # type: ignore[attr-defined]
    after = final.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert store.temp_count() == 0


def test_clean_temp_removes_only_abandoned_temporaries(store: LocalBlobStore) -> None:
    tmp = store.root / "tmp"
    (tmp / "in-abandoned").write_bytes(b"half")
    live = tmp / "in-live"
    fd = os.open(live, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a writer in another process holds it
        assert store.clean_temp() == 1
        assert live.exists()
        assert not (tmp / "in-abandoned").exists()
    finally:
        os.close(fd)
    assert store.clean_temp() == 1


def test_missing_blob_is_not_found(store: LocalBlobStore) -> None:
    with pytest.raises(NotFoundError, match="no blob"):
        store.open(Digest("0" * 64))


def test_digests_lists_what_is_stored(store: LocalBlobStore, tmp_path: Path) -> None:
    wanted = set()
    for i in range(5):
        src = tmp_path / f"f{i}"
        src.write_bytes(f"item {i}".encode())
        wanted.add(_put(store, src).digest)  # type: ignore[attr-defined]
    assert set(store.digests()) == wanted


@pytest.mark.parametrize("url", ["s3://bucket", "file://host/path", "http://x/y"],
                         ids=["s3", "remote-file", "http"])
def test_only_local_file_urls(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        LocalBlobStore.from_url(url)
    assert caught.value.code == "bad-blob-url"


def test_check_refuses_a_missing_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="missing"):
        LocalBlobStore(tmp_path / "nowhere").check()
