"""The blob-store contract, on a folder and on a real S3 server (SeaweedFS on loopback):
one pass, content-addressed, never overwrite, nothing half-written, constant memory."""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import (
    BLOBS,
    S3_KEY,
    S3_SECRET,
    SHARED_BUCKET,
    S3Server,
    new_bucket,
    new_prefix,
)
from sprava.domain.digest import Digest
from sprava.errors import (
    BackendUnavailableError,
    BadInputError,
    ConfigurationError,
    IntegrityError,
    NotFoundError,
)
from sprava.store.blobs import BlobStore, LocalBlobStore, StoredBlob
from sprava.store.s3 import S3BlobStore, S3Location, S3Options

PART = 5 << 20  # S3's smallest part: the multipart paths run on small files


def _s3(server: S3Server, spool: Path, **kwargs: object) -> S3BlobStore:
    options = S3Options(server.endpoint, "", S3_KEY, S3_SECRET)
    store = S3BlobStore(S3Location(SHARED_BUCKET, f"{new_prefix()}/evidence/"), options, spool,
                        part_size=PART, **kwargs)  # type: ignore[arg-type]
    store.create()
    return store


@pytest.fixture(params=["s3"] if BLOBS == "s3" else ["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Each store in turn; only the S3 store when the run is on S3 (the scaled pass)."""
    if request.param == "file":
        local = LocalBlobStore(tmp_path / "blobs")
        local.create()
        return local
    return _s3(request.getfixturevalue("s3_server"), tmp_path / "spool")


def _put_file(store: BlobStore, path: Path) -> StoredBlob:
    fd = os.open(path, os.O_RDONLY)
    try:
        return store.put_fd(fd)
    finally:
        os.close(fd)


def _read(store: BlobStore, digest: Digest) -> bytes:
    with store.open(digest) as handle:
        return handle.read()


def _sha(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("size", [0, 1, PART, PART + 1, 3 * PART + 17],
                         ids=["empty", "one-byte", "one-part", "two-parts", "four-parts"])
def test_put_get_exists_from_a_file_and_from_a_stream(store: BlobStore, tmp_path: Path,
                                                      size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    from_file = _put_file(store, tmp_path / "src")
    assert (from_file.digest, from_file.size, from_file.created) == (_sha(data), size, True)
    assert from_file.head == data[:4096]
    chunks = (data[i:i + 70_000] for i in range(0, size, 70_000))
    from_stream = store.put_chunks(chunks)
    assert (from_stream.digest, from_stream.size, from_stream.created) == (_sha(data), size,
                                                                          False)
    assert store.exists(_sha(data))
    assert _read(store, _sha(data)) == data
    with store.local_path(_sha(data)) as path:
        assert path.read_bytes() == data
    assert list(store.digests()) == [_sha(data)]
    assert store.temp_count() == 0


def test_a_stream_is_stored_under_its_hash(store: BlobStore) -> None:
    data = os.urandom(2 * PART + 5)
    blob = store.put_chunks([data[:PART + 3], data[PART + 3:]])
    assert (blob.digest, blob.created) == (_sha(data), True)
    assert _read(store, blob.digest) == data
    assert store.temp_count() == 0


def _plant(store: BlobStore, digest: Digest, data: bytes) -> None:
    """Put ``data`` under ``digest``'s name behind the store's back (a corrupt copy)."""
    if isinstance(store, LocalBlobStore):
        path = store.path_of(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    else:
        assert isinstance(store, S3BlobStore)
        store._client.put_object(Bucket=store.location.bucket, Key=store.key_of(digest),
                                 Body=data)


@pytest.mark.parametrize("size", [10, 2 * PART + 1], ids=["small", "multipart"])
def test_an_existing_object_is_never_overwritten(store: BlobStore, tmp_path: Path,
                                                 size: int) -> None:
    data = os.urandom(size)
    _plant(store, _sha(data), b"planted")
    (tmp_path / "src").write_bytes(data)
    assert _put_file(store, tmp_path / "src").created is False
    assert store.put_chunks([data]).created is False
    assert _read(store, _sha(data)) == b"planted"  # `sprava verify` reports it; not replaced
    assert store.temp_count() == 0


@pytest.mark.parametrize("size", [10, 2 * PART + 1], ids=["small", "multipart"])
def test_concurrent_writers_of_the_same_content_create_it_once(
        store: BlobStore, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    results: list[StoredBlob] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def write(from_file: bool) -> None:
        try:
            start.wait()
            blob = _put_file(store, tmp_path / "src") if from_file else store.put_chunks([data])
            results.append(blob)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(b.created for b in results) == [False, False, False, True]
    assert _read(store, _sha(data)) == data
    assert store.temp_count() == 0


def test_an_aborted_stream_leaves_nothing(store: BlobStore) -> None:
    def upload() -> Iterator[bytes]:
        yield os.urandom(PART)
        yield os.urandom(PART)  # a part is on its way by now
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        store.put_chunks(upload())
    assert list(store.digests()) == []
    assert store.temp_count() == 0


def test_a_missing_blob_is_not_found(store: BlobStore) -> None:
    missing = _sha(b"never stored")
    assert not store.exists(missing)
    with pytest.raises(NotFoundError) as caught:
        store.open(missing)
    assert caught.value.code == "blob-missing"


@pytest.mark.parametrize("name", ["../../etc/passwd", "AB" * 32, "ab" * 31, "tmp/in-1",
                                  "sha256/ab/cd/" + "ab" * 32, ""])
def test_hostile_keys_are_refused(name: str) -> None:
    with pytest.raises(BadInputError):
        Digest(name)


@pytest.mark.parametrize("url", ["s3://", "s3://ab", "s3://Bucket", "s3://bucket/../x",
                                 "s3://bucket/a//b", "s3://bucket/a?x=1", "s3://b..c",
                                 "s3://bucket/a b", "file:///x", "s3://user@bucket"])
def test_hostile_store_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        S3Location.parse(url)
    assert caught.value.code == "bad-blob-url"


def test_prefix_keeps_blobs_apart(s3_server: S3Server, tmp_path: Path) -> None:
    assert S3Location.parse("s3://bucket/a/b").prefix == "a/b/"
    store = _s3(s3_server, tmp_path)
    blob = store.put_chunks([b"x"])
    assert store.key_of(blob.digest) == f"{store.location.prefix}sha256/" \
        f"{blob.digest.hex[:2]}/{blob.digest.hex[2:4]}/{blob.digest.hex}"
    assert store.location.prefix.endswith("/evidence/")


def test_large_stream_in_constant_memory(store: BlobStore) -> None:
    block = os.urandom(1 << 20)
    total = 96

    def chunks() -> Iterator[bytes]:
        for _ in range(total):
            yield block

    tracemalloc.start()
    try:
        blob = store.put_chunks(chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.sha256()
    for _ in range(total):
        expected.update(block)
    assert (blob.digest.hex, blob.size) == (expected.hexdigest(), total << 20)
    # At most the parts in flight (4) and the one filling, whatever the size.
    assert peak < 6 * PART + (4 << 20), peak
    tracemalloc.start()
    try:
        seen = hashlib.sha256()
        with store.open(blob.digest) as handle:
            while piece := handle.read(1 << 20):
                seen.update(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen.hexdigest() == expected.hexdigest()
    assert peak < 8 << 20, peak


def test_a_file_that_changes_while_stored_leaves_nothing(s3_server: S3Server,
                                                         tmp_path: Path) -> None:
    store = _s3(s3_server, tmp_path)
    src = tmp_path / "src"
    src.write_bytes(os.urandom(3 * PART))

    def meddle(_size: int) -> None:  # after the first part is read, the file is changed
        with src.open("r+b") as out:
            out.seek(3 * PART - 10)
            out.write(b"X" * 10)

    fd = os.open(src, os.O_RDONLY)
    try:
        with pytest.raises(IntegrityError) as caught:
            store.put_fd(fd, meddle)
    finally:
        os.close(fd)
    assert caught.value.code == "changed-during-ingest"
    assert list(store.digests()) == []
    assert store.temp_count() == 0


def test_a_copy_larger_than_one_copy_request_is_made_in_parts(s3_server: S3Server,
                                                              tmp_path: Path) -> None:
    store = _s3(s3_server, tmp_path, copy_limit=PART)
    data = os.urandom(2 * PART + 3)
    blob = store.put_chunks([data])
    assert blob.created
    assert _read(store, blob.digest) == data
    assert store.temp_count() == 0


def test_a_local_copy_of_an_altered_object_is_refused(s3_server: S3Server,
                                                      tmp_path: Path) -> None:
    store = _s3(s3_server, tmp_path / "spool")
    digest = _sha(b"the original")
    _plant(store, digest, b"an altered copy")
    with pytest.raises(IntegrityError) as caught, store.local_path(digest):
        pass
    assert caught.value.code == "blob-altered"
    assert list((tmp_path / "spool").iterdir()) == []


def test_abandoned_uploads_are_cleaned_after_their_grace(s3_server: S3Server,
                                                         tmp_path: Path) -> None:
    store = _s3(s3_server, tmp_path)
    store._client.create_multipart_upload(Bucket=store.location.bucket,
                                          Key=f"{store.location.prefix}tmp/in-killed")
    store._client.put_object(Bucket=store.location.bucket,
                             Key=f"{store.location.prefix}tmp/in-left", Body=b"x")
    assert store.temp_count() == 2
    assert store.clean_temp() == 0  # young: perhaps another process is still writing
    old = S3BlobStore(store.location, store.options, tmp_path, temp_grace=0)
    assert old.clean_temp() == 2
    assert store.temp_count() == 0


def test_wrong_credentials_and_unreachable_server_are_named(s3_server: S3Server,
                                                            tmp_path: Path) -> None:
    bad_key = S3BlobStore(S3Location(new_bucket()),
                          S3Options(s3_server.endpoint, "", S3_KEY, "wrong"), tmp_path)
    with pytest.raises(ConfigurationError) as denied:
        bad_key.create()
    assert denied.value.code == "s3-access-denied"
    nowhere = S3BlobStore(S3Location(new_bucket()),
                          S3Options("http://127.0.0.1:9", "", "k", "s"), tmp_path)
    with pytest.raises(BackendUnavailableError) as unreachable:
        nowhere.check()
    assert unreachable.value.code == "s3-unreachable"
    missing = S3BlobStore(S3Location(new_bucket()),
                          S3Options(s3_server.endpoint, "", S3_KEY, S3_SECRET), tmp_path)
    with pytest.raises(ConfigurationError) as absent:
        missing.check()
    assert absent.value.code == "blob-store-missing"


def test_the_server_honours_every_conditional_write_the_store_relies_on(
        s3_server: S3Server, tmp_path: Path) -> None:
    """Without these 412s, "never overwrite" would rest on a HEAD that races."""
    from botocore.exceptions import ClientError

    store = _s3(s3_server, tmp_path)
    client, bucket = store._client, store.location.bucket
    key, other = f"{store.location.prefix}held", f"{store.location.prefix}other"
    client.put_object(Bucket=bucket, Key=key, Body=b"original")
    client.put_object(Bucket=bucket, Key=other, Body=b"replacement")
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1,
                              Body=b"replacement")
    attempts = {
        "put": lambda: client.put_object(Bucket=bucket, Key=key, Body=b"x", IfNoneMatch="*"),
        "copy": lambda: client.copy_object(Bucket=bucket, Key=key, IfNoneMatch="*",
                                           CopySource={"Bucket": bucket, "Key": other}),
        "complete": lambda: client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, IfNoneMatch="*",
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]}),
    }
    for name, attempt in attempts.items():
        with pytest.raises(ClientError) as caught:
            attempt()
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412, name
    client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"original"
