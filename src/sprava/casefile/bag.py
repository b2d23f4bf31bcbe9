"""Writing a BagIt bag (RFC 8493), as a folder or as one zip file, in constant memory.

Sprava writes its bags itself rather than with the ``bagit`` library (the tests check every
bag with ``bagit``). ``bagit.make_bag`` turns a folder of files already in place into a
bag, reading every file again to hash it, and writes no zip: a zipped case of 20 GiB would
cost the payload written twice and read three times. Here each file is written once, as a
stream, hashed on the way (one pass, a 1 MiB buffer), straight into the folder or the zip;
the manifests come from those hashes at the end.

Nothing is visible under the final name until the bag is complete: the bag is written to
a hidden ``.partial`` name beside it and renamed last, so an export that fails halfway
leaves no file that looks like a case file (the partial one is removed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sprava.errors import ConflictError

CHUNK = 1 << 20


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> object: ...


class _Hashing:
    """Writes through to ``out`` and hashes what passes."""

    def __init__(self, out: Sink) -> None:
        self._out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.hash.update(data)
        self._out.write(data)
        self.size += len(data)


class BagWriter:
    """One bag being written; ``file()`` adds a file, ``finish()`` writes the manifests and
    puts the bag under its final name. Use as a context manager so that a failure removes
    the partial bag."""

    def __init__(self, out: Path, *, zipped: bool, when: datetime) -> None:
        if out.exists() or out.is_symlink():
            raise ConflictError(f"{out} exists already", code="output-exists",
                                hint="give another --out, or move the old case file away")
        self.out = out
        self.zipped = zipped
        self.partial = out.with_name(f".{out.name}.partial")
        self.digests: dict[str, tuple[str, int]] = {}  # path in the bag → (SHA-256, size)
        self._when = when.timetuple()[:6]
        self._prefix = out.name.removesuffix(".zip") + "/"
        self._zip: zipfile.ZipFile | None = None
        self._discard()
        if zipped:
            self._zip = zipfile.ZipFile(self.partial, "x", allowZip64=True)
        else:
            self.partial.mkdir(mode=0o700)

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is not None:
            self.abort()

    @contextmanager
    def file(self, name: str, *, large: bool = False) -> Iterator[_Hashing]:
        """Write the bag file ``name`` (a relative POSIX path) through the yielded writer.
        ``large`` files (payload) are stored as they are; the others are compressed."""
        if name in self.digests:
            raise ValueError(f"{name} is in the bag already")
        if self._zip is not None:
            info = zipfile.ZipInfo(self._prefix + name, self._when)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_STORED if large else zipfile.ZIP_DEFLATED
            with self._zip.open(info, "w", force_zip64=large) as raw:
                sink = _Hashing(raw)
                yield sink
        else:
            path = self.partial / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb", buffering=0) as raw:
                sink = _Hashing(raw)
                yield sink
                os.fdatasync(raw.fileno())
        self.digests[name] = (sink.hash.hexdigest(), sink.size)

    def add(self, name: str, data: bytes) -> str:
        """Add a small file whole; returns its SHA-256."""
        with self.file(name) as sink:
            sink.write(data)
        return self.digests[name][0]

    def copy(self, name: str, src: Any,
             progress: Callable[[int], None] | None = None) -> tuple[str, int]:
        """Stream ``src`` into the bag file ``name``; returns its SHA-256 and size."""
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        with self.file(name, large=True) as sink:
            while n := src.readinto(view):
                sink.write(view[:n])
                if progress is not None:
                    progress(n)
        return self.digests[name]

    def add_bag_info(self, bag_info: dict[str, str]) -> str:
        """Write bag-info.txt, with the Payload-Oxum of the payload written so far (so
        write it after the payload); returns its SHA-256."""
        payload = [p for p in self.digests if p.startswith("data/")]
        octets = sum(self.digests[p][1] for p in payload)
        info = {**bag_info, "Payload-Oxum": f"{octets}.{len(payload)}"}
        return self.add("bag-info.txt", "".join(f"{k}: {_one_line(v)}\n"
                                                for k, v in info.items()).encode())

    def finish(self) -> Path:
        """Write bagit.txt and the manifests; then give the bag its name."""
        payload = sorted(p for p in self.digests if p.startswith("data/"))
        self.add("manifest-sha256.txt", _manifest(self.digests, payload))
        self.add("bagit.txt", b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
        tags = sorted(p for p in self.digests if not p.startswith("data/"))
        self.add("tagmanifest-sha256.txt", _manifest(self.digests, tags))
        if self._zip is not None:
            self._zip.close()
            self._zip = None
            with open(self.partial, "rb") as f:
                os.fsync(f.fileno())
        else:
            for folder, _dirs, _files in os.walk(self.partial):
                fd = os.open(folder, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        os.rename(self.partial, self.out)
        return self.out

    def abort(self) -> None:
        if self._zip is not None:
            with contextlib.suppress(OSError, ValueError):
                self._zip.close()
            self._zip = None
        self._discard()

    def _discard(self) -> None:
        if self.partial.is_dir() and not self.partial.is_symlink():
            shutil.rmtree(self.partial)
        elif self.partial.exists() or self.partial.is_symlink():
            self.partial.unlink()


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _manifest(digests: dict[str, tuple[str, int]], paths: list[str]) -> bytes:
    """RFC 8493 §2.1.3 manifest lines; CR, LF and % in names are percent-encoded."""
    def encoded(path: str) -> str:
        return path.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")

    return "".join(f"{digests[p][0]}  {encoded(p)}\n" for p in paths).encode()
