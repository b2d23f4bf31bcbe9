"""Blobs in an S3-compatible object store (SeaweedFS, MinIO, AWS S3, …), addressed by SHA-256.

Threats guarded against, as for :mod:`sprava.store.blobs`: losing or silently altering
evidence, and a half-written object ever carrying a final name.

* Keys are ``[PREFIX/]sha256/ab/cd/<hex>``, the local layout; the digest type refuses
  anything else, so no caller can name a key outside it.
* An object is never overwritten: every write of a final key is conditional
  (``If-None-Match: *`` on PutObject, CompleteMultipartUpload and CopyObject), and a
  server that answers 412 tells us the content is already held. The store needs a server
  that honours these conditions (SeaweedFS, MinIO and AWS S3 do; the tests prove it for
  SeaweedFS).
* A multipart upload that fails or is interrupted is aborted, and a temporary object is
  deleted, so nothing half-written stays. Leftovers of a killed process (an upload that
  was never aborted) are removed by :meth:`S3BlobStore.clean_temp` once they are older
  than ``temp_grace`` seconds.

How a file gets its key (it is known only after hashing), and what that costs:

* A regular file (``sprava ingest``, derived copies): a first pass hashes it (the
  address; the page cache keeps it warm), a HEAD skips the upload when the content is
  already held, and the upload goes straight to the final key, hashed again in the same
  pass as it is sent; if the two hashes differ (the file changed meanwhile) the upload is
  aborted. The cost is the cost of ``openssl dgst`` plus a plain upload.
* A stream (API upload, a pipe): hashed in the same pass as it is uploaded to a temporary
  key, then copied by the server to the final key (conditionally) and checked with a HEAD
  (size and the ``sha256`` metadata), then the temporary is deleted. The server-side copy
  costs the server a second write of the bytes.
* Anything of at most one part (8 MiB) is read into memory, hashed and sent with one
  conditional PutObject that carries its SHA-256 for the server to check.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import os
import re
import secrets
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlparse

from sprava.domain.digest import Digest
from sprava.errors import (
    BackendUnavailableError,
    BadInputError,
    ConfigurationError,
    IntegrityError,
    NotFoundError,
    SpravaError,
)
from sprava.store.blobs import CHUNK, StoredBlob

PART_SIZE = 8 << 20
CONCURRENCY = 4
COPY_LIMIT = 5 << 30  # the largest single CopyObject S3 allows
TEMP_GRACE = 24 * 3600.0
_MAX_PARTS = 10_000
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def _ignore(_size: int) -> None:
    return None


@dataclass(frozen=True)
class S3Location:
    """Where the blobs live: a bucket and an optional key prefix (``""`` or ``"a/b/"``)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """Read ``s3://BUCKET[/PREFIX]``; raises ConfigurationError on anything else."""
        parsed = urlparse(url)
        hint = "use s3://BUCKET or s3://BUCKET/PREFIX (letters, digits, . _ -)"
        if parsed.scheme != "s3" or parsed.query or parsed.fragment or parsed.params \
                or not _BUCKET.fullmatch(parsed.netloc) or ".." in parsed.netloc:
            raise ConfigurationError(f"unsupported blob store URL {url!r}",
                                     code="bad-blob-url", hint=hint)
        segments = [s for s in parsed.path.split("/") if s]
        if any(not _SEGMENT.fullmatch(s) or s in (".", "..") for s in segments) \
                or "//" in parsed.path:
            raise ConfigurationError(f"unsupported key prefix in {url!r}",
                                     code="bad-blob-url", hint=hint)
        return cls(parsed.netloc, "".join(f"{s}/" for s in segments))


@dataclass(frozen=True)
class S3Options:
    """How to reach the store; empty values fall back on boto3's own lookup
    (``AWS_*`` environment variables, ``~/.aws``)."""

    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)


def make_client(options: S3Options, pool: int = CONCURRENCY * 2 + 2) -> Any:
    """A boto3 S3 client: path-style addressing for a custom endpoint, short retries."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigurationError("an s3:// blob store needs boto3", code="s3-not-installed",
                                 hint="install Sprava with the s3 extra: pip install "
                                      "'sprava[s3]'") from None
    config = Config(
        s3={"addressing_style": "path"} if options.endpoint_url else {},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10, read_timeout=120, max_pool_connections=pool,
        # Our own SHA-256 guards the content end to end; small objects carry it for the
        # server to check (ChecksumSHA256), large ones are checked by `sprava verify`.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session()
    return session.client(
        "s3", endpoint_url=options.endpoint_url or None,
        region_name=options.region or ("us-east-1" if options.endpoint_url else None),
        aws_access_key_id=options.access_key_id or None,
        aws_secret_access_key=options.secret_access_key or None, config=config)


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _backend_error(exc: Exception, what: str, endpoint: str) -> SpravaError:
    """Translate a boto3 failure into the error a caller can act on."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    where = endpoint or "the default AWS endpoint"
    if isinstance(exc, ClientError):
        status, code = _status(exc), _code(exc)
        if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId",
                                     "SignatureDoesNotMatch"):
            return ConfigurationError(
                f"the object store at {where} refused {what} ({code or status})",
                code="s3-access-denied",
                hint="check s3_access_key_id and s3_secret_access_key (or AWS_ACCESS_KEY_ID "
                     "and AWS_SECRET_ACCESS_KEY) and the key's rights on the bucket")
        return BackendUnavailableError(
            f"the object store at {where} failed {what}: {code or 'error'} (HTTP {status})",
            code="s3-error")
    if isinstance(exc, NoCredentialsError):
        return ConfigurationError("no credentials for the object store", code="s3-no-credentials",
                                  hint="set s3_access_key_id and s3_secret_access_key, or "
                                       "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, EndpointConnectionError):
        return BackendUnavailableError(
            f"cannot reach the object store at {where}", code="s3-unreachable",
            hint="check s3_endpoint_url and that the server is running")
    return BackendUnavailableError(f"the object store at {where} failed {what}: {exc}",
                                   code="s3-error")


class _ObjectReader(io.RawIOBase):
    """A GetObject body as a plain binary stream; transport failures become OSError(EIO)
    so that readers report an unreadable blob rather than crash."""

    def __init__(self, body: Any, digest: Digest) -> None:
        super().__init__()
        self._body = body
        self._digest = digest

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        from botocore.exceptions import BotoCoreError

        try:
            data = self._body.read(None if size is None or size < 0 else size)
        except (BotoCoreError, OSError) as exc:
            raise OSError(errno.EIO, f"reading {self._digest} from the object store failed: "
                                     f"{exc}") from exc
        return cast(bytes, data)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


class _Multipart:
    """One multipart upload with up to ``concurrency`` parts in flight (memory: that many
    parts plus the one being read). :meth:`abort` leaves nothing on the server."""

    def __init__(self, store: S3BlobStore, key: str, metadata: dict[str, str]) -> None:
        self._store = store
        self._key = key
        self._parts: dict[int, str] = {}
        self._inflight: set[Future[None]] = set()
        self._number = 0
        self._finished = False
        self._id: str = store._call("starting an upload", store._client.create_multipart_upload,
                                    Bucket=store.location.bucket, Key=key,
                                    Metadata=metadata)["UploadId"]
        self._pool = ThreadPoolExecutor(store._concurrency, thread_name_prefix="sprava-s3")
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        self._number += 1
        if self._number > _MAX_PARTS:
            raise BackendUnavailableError("the upload needs more than 10,000 parts",
                                          code="s3-too-many-parts")
        while len(self._inflight) >= self._store._concurrency:
            self._collect(FIRST_COMPLETED)
        self._inflight.add(self._pool.submit(self._upload, self._number, data))

    def _upload(self, number: int, data: bytes) -> None:
        store = self._store
        answer = store._call("uploading a part", store._client.upload_part,
                             Bucket=store.location.bucket, Key=self._key, UploadId=self._id,
                             PartNumber=number, Body=data)
        with self._lock:
            self._parts[number] = answer["ETag"]

    def _collect(self, when: str) -> None:
        done, self._inflight = wait(self._inflight, return_when=when)
        for future in done:
            future.result()  # raises the part's error

    def complete(self, *, exclusive: bool) -> bool:
        """Finish the object; with ``exclusive``, only if the key is free (False if not)."""
        from botocore.exceptions import ClientError

        self._collect("ALL_COMPLETED")
        store = self._store
        parts = [{"ETag": etag, "PartNumber": n} for n, etag in sorted(self._parts.items())]
        condition = {"IfNoneMatch": "*"} if exclusive else {}
        try:
            store._client.complete_multipart_upload(
                Bucket=store.location.bucket, Key=self._key, UploadId=self._id,
                MultipartUpload={"Parts": parts}, **condition)
        except ClientError as exc:
            if _status(exc) == 412:
                return False  # held already: abort() removes our parts
            raise store._error(exc, "finishing an upload") from exc
        except Exception as exc:
            raise store._error(exc, "finishing an upload") from exc
        self._finished = True
        return True

    def close(self) -> None:
        """Abort unless completed; always stops the threads."""
        for future in self._inflight:
            future.cancel()
        self._pool.shutdown(wait=True)
        if not self._finished:
            store = self._store
            with contextlib.suppress(Exception):
                store._client.abort_multipart_upload(Bucket=store.location.bucket,
                                                     Key=self._key, UploadId=self._id)


def _read_full(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at end of file (a pipe returns short reads)."""
    pieces: list[bytes] = []
    left = size
    while left:
        piece = os.read(fd, min(left, 1 << 24))
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def _seekable_start(fd: int) -> int | None:
    """Where a regular file's reading starts, or None for a pipe, socket or device."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return None


class S3BlobStore:
    """Blobs as objects ``[PREFIX/]sha256/ab/cd/<hex>``; see the module docstring."""

    def __init__(self, location: S3Location, options: S3Options, spool: Path, *,
                 part_size: int = PART_SIZE, concurrency: int = CONCURRENCY,
                 copy_limit: int = COPY_LIMIT, temp_grace: float = TEMP_GRACE) -> None:
        self.location = location
        self.options = options
        self._spool = spool
        self._part_size = part_size
        self._concurrency = concurrency
        self._copy_limit = copy_limit
        self._temp_grace = temp_grace
        self._client = make_client(options, concurrency * 2 + 2)

    @classmethod
    def from_url(cls, url: str, options: S3Options, spool: Path) -> S3BlobStore:
        return cls(S3Location.parse(url), options, spool)

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.location.bucket}/{self.location.prefix})"

    # -- plumbing ---------------------------------------------------------------------

    def _error(self, exc: Exception, what: str) -> SpravaError:
        if isinstance(exc, SpravaError):
            return exc
        return _backend_error(exc, what, self.options.endpoint_url)

    def _call(self, what: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except Exception as exc:
            raise self._error(exc, what) from exc

    def key_of(self, digest: Digest) -> str:
        h = digest.hex
        return f"{self.location.prefix}sha256/{h[:2]}/{h[2:4]}/{h}"

    def _temp_key(self) -> str:
        return f"{self.location.prefix}tmp/in-{secrets.token_hex(12)}"

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return cast(dict[str, Any], self._client.head_object(
                Bucket=self.location.bucket, Key=key))
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise self._error(exc, "looking up an object") from exc
        except Exception as exc:
            raise self._error(exc, "looking up an object") from exc

    # -- the bucket -------------------------------------------------------------------

    def create(self) -> None:
        """Create the bucket if it is missing; raises ConfigurationError when the store
        refuses the credentials, BackendUnavailableError when it cannot be reached."""
        from botocore.exceptions import ClientError

        bucket = self.location.bucket
        try:
            self._client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if _status(exc) != 404:
                raise self._error(exc, f"access to bucket {bucket}") from exc
        except Exception as exc:
            raise self._error(exc, f"access to bucket {bucket}") from exc
        region = self.options.region
        where = {"CreateBucketConfiguration": {"LocationConstraint": region}} \
            if region and region != "us-east-1" else {}
        try:
            self._client.create_bucket(Bucket=bucket, **where)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou",):
                raise self._error(exc, f"creating bucket {bucket}") from exc
        except Exception as exc:
            raise self._error(exc, f"creating bucket {bucket}") from exc

    def check(self) -> None:
        """Refuse to start when the bucket is missing or the store refuses us."""
        from botocore.exceptions import ClientError

        bucket = self.location.bucket
        try:
            self._client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _status(exc) == 404:
                raise ConfigurationError(
                    f"the bucket {bucket} does not exist", code="blob-store-missing",
                    hint="run `sprava init` for this instance, or check blob_url") from None
            raise self._error(exc, f"access to bucket {bucket}") from exc
        except Exception as exc:
            raise self._error(exc, f"access to bucket {bucket}") from exc

    # -- reading ----------------------------------------------------------------------

    def exists(self, digest: Digest) -> bool:
        return self._head(self.key_of(digest)) is not None

    def size_of(self, digest: Digest) -> int:
        found = self._head(self.key_of(digest))
        if found is None:
            raise NotFoundError(f"no blob {digest} in the store", code="blob-missing")
        return int(found["ContentLength"])

    def open(self, digest: Digest) -> BinaryIO:
        """The object's bytes, streamed as they are read (constant memory)."""
        from botocore.exceptions import ClientError

        try:
            answer = self._client.get_object(Bucket=self.location.bucket,
                                             Key=self.key_of(digest))
        except ClientError as exc:
            if _status(exc) == 404 or _code(exc) == "NoSuchKey":
                raise NotFoundError(f"no blob {digest} in the store",
                                    code="blob-missing") from None
            raise self._error(exc, f"reading {digest}") from exc
        except Exception as exc:
            raise self._error(exc, f"reading {digest}") from exc
        return cast(BinaryIO, io.BufferedReader(_ObjectReader(answer["Body"], digest), CHUNK))

    @contextlib.contextmanager
    def local_path(self, digest: Digest) -> Iterator[Path]:
        """A verified local copy in the spool folder, removed afterwards: decoders
        (Pillow, PyAV) seek, an object body does not. The copy is hashed as it is
        written, so a decoder never reads an altered object (IntegrityError)."""
        self._spool.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="blob-", dir=self._spool)
        path = Path(name)
        try:
            hasher = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, self.open(digest) as source:
                while chunk := source.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
            if hasher.hexdigest() != digest.hex:
                raise IntegrityError(f"the stored content of {digest} no longer hashes to it",
                                     code="blob-altered", hint="run `sprava verify`")
            path.chmod(0o400)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def digests(self) -> Iterator[Digest]:
        """Every object under ``sha256/``, in key order, which is digest order."""
        base = f"{self.location.prefix}sha256/"
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=base)
        try:
            for page in pages:
                for entry in page.get("Contents", ()):
                    parts = entry["Key"][len(base):].split("/")
                    if len(parts) != 3 or parts[0] != parts[2][:2] or parts[1] != parts[2][2:4]:
                        continue  # not a blob: a stray object is no evidence
                    try:
                        yield Digest(parts[2])
                    except BadInputError:
                        continue
        except SpravaError:
            raise
        except Exception as exc:
            raise self._error(exc, "listing the blobs") from exc

    # -- writing ----------------------------------------------------------------------

    def put_fd(self, fd: int, progress: Callable[[int], None] | None = None) -> StoredBlob:
        """Store what ``fd`` holds until EOF (see the module docstring for how).

        Raises IntegrityError (``changed-during-ingest``) when a file changes while it is
        stored; nothing is then left on the server.
        """
        report = progress or _ignore
        start = _seekable_start(fd)
        if start is None:
            return self.put_chunks(self._fd_chunks(fd, report))
        digest, size = self._hash_fd(fd)
        head = os.pread(fd, 4096, start)
        key = self.key_of(digest)
        if self._head(key) is not None:
            report(size)
            return StoredBlob(digest, size, False, head)
        os.lseek(fd, start, os.SEEK_SET)
        if size <= self._part_size:
            data = _read_full(fd, size + 1)
            report(len(data))
            if len(data) != size or hashlib.sha256(data).hexdigest() != digest.hex:
                raise self._changed()
            return StoredBlob(digest, size, self._put_new(key, data, digest), head)
        return StoredBlob(digest, size, self._upload_known(fd, key, digest, size, report), head)

    @staticmethod
    def _changed() -> IntegrityError:
        return IntegrityError("the file changed while it was being stored",
                              code="changed-during-ingest",
                              hint="ingest it again once nothing writes to it")

    @staticmethod
    def _hash_fd(fd: int) -> tuple[Digest, int]:
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        hasher = hashlib.sha256()
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        size = 0
        while count := os.readv(fd, [buffer]):
            hasher.update(view[:count])
            size += count
        return Digest(hasher.hexdigest()), size

    def _fd_chunks(self, fd: int, report: Callable[[int], None]) -> Iterator[bytes]:
        while chunk := os.read(fd, CHUNK):
            report(len(chunk))
            yield chunk

    def _part_for(self, size: int) -> int:
        """Parts grow with the file so that it fits in S3's 10,000 parts."""
        return max(self._part_size, -(-size // (_MAX_PARTS - 1)))

    def _upload_known(self, fd: int, key: str, digest: Digest, size: int,
                      report: Callable[[int], None]) -> bool:
        """Second pass: upload to the final key, re-hashing what is sent; abort on any
        difference from the first pass."""
        part = self._part_for(size)
        upload = _Multipart(self, key, {"sha256": digest.hex})
        try:
            hasher = hashlib.sha256()
            sent = 0
            while data := _read_full(fd, part):
                hasher.update(data)
                sent += len(data)
                upload.add(data)
                report(len(data))
            if sent != size or hasher.hexdigest() != digest.hex:
                raise self._changed()
            return upload.complete(exclusive=True)
        finally:
            upload.close()

    def _put_new(self, key: str, data: bytes, digest: Digest) -> bool:
        """One conditional PutObject; False when the key is already held."""
        from botocore.exceptions import ClientError

        for _attempt in range(3):
            try:
                self._client.put_object(
                    Bucket=self.location.bucket, Key=key, Body=data, IfNoneMatch="*",
                    Metadata={"sha256": digest.hex},
                    ChecksumSHA256=base64.b64encode(digest.raw).decode("ascii"))
                return True
            except ClientError as exc:
                if _status(exc) == 412:
                    return False
                if _status(exc) == 409 and self._head(key) is None:
                    continue  # a concurrent conditional write that failed: try again
                if _status(exc) == 409:
                    return False
                raise self._error(exc, "writing a blob") from exc
            except Exception as exc:
                raise self._error(exc, "writing a blob") from exc
        raise BackendUnavailableError("the object store kept refusing a write",
                                      code="s3-conflict")

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredBlob:
        """Stream chunks in, hashed in the same pass as they are uploaded; an exception
        from the iterator (too large, the client went away) leaves nothing behind."""
        hasher = hashlib.sha256()
        buffer = bytearray()
        head = b""
        size = 0
        upload: _Multipart | None = None
        temp: str | None = None
        uploaded = False
        try:
            for chunk in chunks:
                if not chunk:
                    continue
                if len(head) < 4096:
                    head += bytes(chunk[: 4096 - len(head)])
                hasher.update(chunk)
                size += len(chunk)
                buffer += chunk
                if len(buffer) >= self._part_for(size):
                    if upload is None:
                        temp = self._temp_key()
                        upload = _Multipart(self, temp, {})
                    upload.add(bytes(buffer))
                    buffer = bytearray()
            digest = Digest(hasher.hexdigest())
            if upload is None:
                return StoredBlob(digest, size, self._put_new(self.key_of(digest),
                                                              bytes(buffer), digest), head)
            if buffer:
                upload.add(bytes(buffer))
            uploaded = upload.complete(exclusive=False)
            created = self._promote(cast(str, temp), digest, size)
            return StoredBlob(digest, size, created, head)
        finally:
            if upload is not None:
                upload.close()
            if uploaded and temp is not None:
                with contextlib.suppress(Exception):
                    self._client.delete_object(Bucket=self.location.bucket, Key=temp)

    def _promote(self, temp: str, digest: Digest, size: int) -> bool:
        """Copy the temporary to its final key unless held; check the result."""
        from botocore.exceptions import ClientError

        key = self.key_of(digest)
        if self._head(key) is None:
            source = {"Bucket": self.location.bucket, "Key": temp}
            try:
                if size <= self._copy_limit:
                    self._client.copy_object(
                        Bucket=self.location.bucket, Key=key, CopySource=source,
                        IfNoneMatch="*", MetadataDirective="REPLACE",
                        Metadata={"sha256": digest.hex})
                    created = True
                else:
                    created = self._copy_parts(source, key, digest, size)
            except ClientError as exc:
                if _status(exc) != 412:
                    raise self._error(exc, "copying a blob to its name") from exc
                created = False
            except SpravaError:
                raise
            except Exception as exc:
                raise self._error(exc, "copying a blob to its name") from exc
        else:
            created = False
        # A held object is left as it is, like a local one: `sprava verify` judges it.
        final = self._head(key)
        if final is None or (created and (int(final["ContentLength"]) != size or
                                         final.get("Metadata", {}).get("sha256") != digest.hex)):
            raise IntegrityError(f"the object store did not keep {digest} as sent",
                                 code="s3-copy-mismatch", hint="run `sprava verify`")
        return created

    def _copy_parts(self, source: dict[str, str], key: str, digest: Digest,
                    size: int) -> bool:
        """A copy larger than one CopyObject allows, as a multipart copy."""
        upload = _Multipart(self, key, {"sha256": digest.hex})
        try:
            step = self._copy_limit
            for number, offset in enumerate(range(0, size, step), start=1):
                answer = self._call("copying a part", self._client.upload_part_copy,
                                    Bucket=self.location.bucket, Key=key,
                                    UploadId=upload._id, PartNumber=number,
                                    CopySource=source,
                                    CopySourceRange=f"bytes={offset}-"
                                                    f"{min(offset + step, size) - 1}")
                upload._parts[number] = answer["CopyPartResult"]["ETag"]
            return upload.complete(exclusive=True)
        finally:
            upload.close()

    def sync(self) -> None:
        """Nothing to do: the store has made an object durable once it answers."""

    # -- temporaries ------------------------------------------------------------------

    def _leftovers(self) -> Iterator[tuple[str, str | None, datetime]]:
        """(key, upload id or None, started) of temporaries and unfinished uploads."""
        prefix = self.location.prefix
        bucket = self.location.bucket
        for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{prefix}tmp/"):
            for entry in page.get("Contents", ()):
                yield entry["Key"], None, entry["LastModified"]
        for space in ("tmp/", "sha256/"):  # ours only: the bucket may hold other things
            for page in self._client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=bucket, Prefix=f"{prefix}{space}"):
                for entry in page.get("Uploads", ()):
                    yield entry["Key"], entry["UploadId"], entry["Initiated"]

    def clean_temp(self) -> int:
        """Remove temporaries and unfinished uploads older than ``temp_grace`` seconds:
        an S3 store has no lock to tell a live upload from one whose writer was killed,
        so age decides."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self._temp_grace)
        removed = 0
        try:
            for key, upload_id, started in list(self._leftovers()):
                if started > cutoff:
                    continue
                if upload_id is None:
                    self._client.delete_object(Bucket=self.location.bucket, Key=key)
                else:
                    self._client.abort_multipart_upload(Bucket=self.location.bucket,
                                                        Key=key, UploadId=upload_id)
                removed += 1
        except Exception as exc:
            raise self._error(exc, "removing temporaries") from exc
        return removed

    def temp_count(self) -> int:
        try:
            return sum(1 for _ in self._leftovers())
        except Exception as exc:
            raise self._error(exc, "listing temporaries") from exc
