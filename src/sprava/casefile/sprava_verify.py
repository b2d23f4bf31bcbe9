#!/usr/bin/env python3
"""sprava-verify: check a Sprava case file offline, with no Sprava instance and no network.

Usage::

    python3 sprava_verify.py CASEFILE [--key KEY] [--since CHECKPOINT] [--json]

CASEFILE is the bag, zipped or as a folder. Needs Python 3.11 or later and the
``cryptography`` package (for Ed25519); nothing else. This file imports nothing from Sprava
on purpose: a court's technician can read it top to bottom and run it on a machine that
has never seen Sprava.

What it checks, in this order (docs/casefiles.md in Sprava explains each finding code):

1. The bag as RFC 8493 BagIt: ``bagit.txt``; every payload file against
   ``manifest-sha256.txt`` (none missing, none extra); every tag file against
   ``tagmanifest-sha256.txt``; ``Payload-Oxum``. Hostile input is refused by name: links,
   devices, unsafe or duplicate names, zip bombs, oversized or malformed files.
2. The signed checkpoint (``sprava/checkpoint.txt``, a C2SP signed note): its Ed25519
   signature against the bag's key (``sprava/verifier-key.txt``) and, when given, against
   a key you trust (``--key``, or one pinned earlier with ``--pin``).
3. Every custody event (``sprava/events.jsonl``, exact leaf bytes): RFC 8785 canonical,
   listed in leaf order, and proven in the checkpoint's tree by its RFC 9162 inclusion proof.
4. The export event: one event records this very export (case, recipient) and commits,
   by SHA-256, to ``sprava/contents.json``, which lists every item, every event and the
   SHA-256 of every other file in the bag. So what the bag holds is signed, not only hashed.
5. Every payload file: named by its SHA-256, listed, with an ingest or derive event that
   names the same digest and size.
6. The catalogue slice (``sprava/catalogue.json``): each record's state hashes to the
   ``state_sha256`` of its latest custody event.
7. Consistency (RFC 9162): the proofs the bag carries from earlier checkpoints, and with
   ``--since`` a checkpoint you already hold (the bag carries a proof from the sizes of
   earlier exports; for any other size pass the proof Sprava prints with
   ``sprava ledger consistency OLD NEW --json`` as ``--consistency FILE``).

Exit status: 0 the case file verifies; 1 something failed (every failure is listed);
2 the command line is wrong; 3 the case file cannot be read at all.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import os
import re
import stat
import struct
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2, 3
FORMAT = "sprava-casefile/1"
CHUNK = 1 << 20
MAX_TAG_FILE = 256 << 20  # a JSON tag file larger than this is refused, not read
MAX_LINE = 1 << 20  # one event line, one manifest line
MAX_FILES = 1_000_000
MAX_DEPTH = 32
MAX_INFLATE_RATIO = 200  # a deflated entry that claims more is treated as a zip bomb
EVENTS, CONTENTS, CATALOGUE = "sprava/events.jsonl", "sprava/contents.json", \
    "sprava/catalogue.json"
CHECKPOINT, KEY, CONSISTENCY = "sprava/checkpoint.txt", "sprava/verifier-key.txt", \
    "sprava/consistency.jsonl"
# Files whose truth comes from the signature chain itself, and the BagIt envelope: every
# other file must be listed with its SHA-256 in the signed contents.
SELF_PROVEN = {EVENTS, CONTENTS, CHECKPOINT, KEY, CONSISTENCY}
ENVELOPE = {"bagit.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt"}
STATELESS_CHANGES = ("view", "export")  # catalogue events that change no state

# Findings are reported in this order (then by subject), so two runs compare line by line.
ORDER = (
    "name-unsafe", "zip-unsafe", "file-unreadable", "bag-declaration", "manifest-malformed",
    "payload-missing", "payload-extra", "payload-hash-mismatch", "tag-missing", "tag-extra",
    "tag-hash-mismatch", "oxum-mismatch",
    "key-malformed", "key-mismatch", "checkpoint-malformed", "checkpoint-signature",
    "events-malformed", "event-malformed", "events-out-of-order", "event-beyond-checkpoint",
    "event-proof-invalid",
    "contents-malformed", "export-event-missing", "export-event-mismatch", "event-missing",
    "event-unlisted", "file-unlisted", "file-digest-mismatch",
    "item-missing", "item-unlisted", "item-hash-mismatch", "item-size-mismatch",
    "item-without-event",
    "catalogue-malformed", "record-unrecorded", "record-altered",
    "consistency-malformed", "consistency-invalid", "consistency-missing",
    "since-malformed", "since-signature", "since-unproven", "since-inconsistent",
)


class CaseFileError(Exception):
    """The case file cannot be read at all (not a folder or zip, unreadable archive)."""


@dataclass(frozen=True)
class Finding:
    code: str
    subject: str
    message: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    case: str | None = None
    recipient: str | None = None
    origin: str | None = None
    tree_size: int | None = None
    root: str | None = None
    key: str | None = None
    key_trusted: bool = False
    payload_files: int = 0
    payload_bytes: int = 0
    events: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, code: str, subject: str, message: str) -> None:
        self.findings.append(Finding(code, subject, message))

    def sort(self) -> None:
        rank = {c: i for i, c in enumerate(ORDER)}
        unique = {(f.code, f.subject, f.message): f for f in self.findings}
        self.findings = sorted(unique.values(),
                               key=lambda f: (rank.get(f.code, len(rank)), f.subject, f.message))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "case": self.case, "recipient": self.recipient,
                "origin": self.origin, "tree_size": self.tree_size, "root": self.root,
                "key": self.key, "key_trusted": self.key_trusted,
                "payload_files": self.payload_files, "payload_bytes": self.payload_bytes,
                "events": self.events,
                "findings": [{"code": f.code, "subject": f.subject, "message": f.message}
                             for f in self.findings],
                "notes": self.notes}


# --- RFC 8785 canonical JSON ---------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of a parsed JSON value; raises ValueError where JCS has none."""
    try:
        return _jcs(value).encode("utf-8")  # a lone surrogate fails here, as JCS requires
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _jcs(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return {None: "null", True: "true", False: "false"}[v]
    if isinstance(v, int):
        if abs(v) > 2**53 - 1:
            raise ValueError("integer outside the range JSON numbers hold exactly")
        return str(v)
    if isinstance(v, float):
        return _es_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # escapes exactly what JCS escapes
    if isinstance(v, list):
        return "[" + ",".join(_jcs(x) for x in v) + "]"
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise ValueError("object keys are strings")
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))  # JCS sorts by UTF-16 units
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _jcs(v[k])
                              for k in keys) + "}"
    raise ValueError(f"not a JSON value: {type(v).__name__}")


def _es_number(x: float) -> str:
    """A float as ECMAScript's Number.prototype.toString writes it (RFC 8785 §3.2.2.3)."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("NaN and infinity are not JSON")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")  # repr: the shortest round-trip digits
    whole, _, frac = mantissa.partition(".")
    raw = whole + frac
    digits = raw.lstrip("0")
    n = len(whole) + int(exp or 0) - (len(raw) - len(digits))  # value = 0.DIGITS × 10^n
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    return f"{sign}{digits[0]}{'.' + digits[1:] if k > 1 else ''}e{'+' if e >= 0 else '-'}{abs(e)}"


def _loads(data: bytes | str) -> Any:
    """json.loads that turns every way hostile JSON can fail into ValueError."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)[:200]) from None


# --- RFC 6962 / RFC 9162 Merkle proofs -----------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion_root(index: int, size: int, hashed_leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root an inclusion proof leads to; raises ValueError."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    if any(len(h) != 32 for h in [hashed_leaf, *proof]):
        raise ValueError("a hash is not 32 bytes")
    fn, sn, r = index, size - 1, hashed_leaf
    for p in proof:
        if sn == 0:
            raise ValueError("the proof is longer than the tree")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("the proof is shorter than the tree")
    return r


def check_consistency(m: int, n: int, proof: list[bytes], old: bytes, new: bytes) -> None:
    """RFC 9162 §2.1.4.2: tree (n, new) extends tree (m, old); raises ValueError."""
    if m < 1 or n < m:
        raise ValueError(f"no consistency proof exists from size {m} to size {n}")
    if m == n:
        if proof or old != new:
            raise ValueError("two trees of the same size differ: the log forked")
        return
    if any(len(h) != 32 for h in [old, new, *proof]):
        raise ValueError("a hash is not 32 bytes")
    path = ([old] if m & (m - 1) == 0 else []) + list(proof)
    if not path:
        raise ValueError("the proof is empty")
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ValueError("the proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old or sr != new:
        raise ValueError(f"the proof does not lead from the root of size {m} to that of {n}")


def _hashes(value: Any) -> list[bytes]:
    """A list of 64-hex-digit strings as raw hashes; raises ValueError."""
    if not isinstance(value, list) or len(value) > 128:
        raise ValueError("a proof is a list of at most 128 hashes")
    out = []
    for h in value:
        if not isinstance(h, str) or not re.fullmatch(r"[0-9a-f]{64}", h):
            raise ValueError("a proof hash is 64 lower-case hex digits")
        out.append(bytes.fromhex(h))
    return out


# --- C2SP signed notes, checkpoints, and Go note keys --------------------------------------


@dataclass(frozen=True)
class Key:
    """An Ed25519 note verifier key: ``name+keyid+base64(0x01 ‖ public key)``."""

    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.name.encode() + b"\n\x01" + self.public).digest()[:4]

    def __str__(self) -> str:
        body = base64.b64encode(b"\x01" + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{body}"

    @classmethod
    def parse(cls, text: str) -> Key:
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not parts[0] or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise ValueError("not a note verifier key (name+keyid+base64key)")
        if any(c.isspace() or ord(c) < 0x20 for c in parts[0]):
            raise ValueError("a key name has no spaces or control characters")
        raw = _b64(parts[2])
        if len(raw) != 33 or raw[0] != 1:
            raise ValueError("not an Ed25519 key")
        key = cls(parts[0], raw[1:])
        if key.key_id.hex() != parts[1]:
            raise ValueError("the key id does not match the name and key")
        return key


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


def open_checkpoint(note: bytes, key: Key) -> tuple[int, bytes]:
    """Verify a signed checkpoint by ``key``; returns (tree size, root). Raises ValueError.

    The note's text is everything up to and including the last blank line's newline;
    signature lines follow: an em dash, a space, the key name, a space, base64 of the 4-byte
    key id and the 64-byte signature. Signatures by other keys are ignored (C2SP).
    """
    try:
        text_all = note.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the checkpoint is not UTF-8") from None
    split = text_all.rfind("\n\n")
    if split < 0 or not text_all.endswith("\n"):
        raise ValueError("the checkpoint has no signature block")
    text, sigs = text_all[: split + 1], text_all[split + 2 : -1].split("\n")
    signed = False
    for line in sigs[:100]:
        name, _, b64 = line.removeprefix("— ").partition(" ")
        if not line.startswith("— ") or not b64:
            raise ValueError(f"malformed signature line {line[:80]!r}")
        raw = _b64(b64)
        if name != key.name or raw[:4] != key.key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(key.public).verify(raw[4:], text.encode())
        except InvalidSignature:
            raise ValueError(f"the signature by {key.name} does not verify") from None
        signed = True
    if not signed:
        raise ValueError(f"no signature by {key.name}+{key.key_id.hex()}")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or lines[0] != key.name:
        raise ValueError("the checkpoint is not for this key's log")
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", lines[1]):
        raise ValueError("bad tree size")
    root = _b64(lines[2])
    if len(root) != 32:
        raise ValueError("the root hash is not 32 bytes")
    return int(lines[1]), root


# --- reading the bag, zipped or as a folder, as hostile input ------------------------------


_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _unsafe_name(name: str) -> str | None:
    """Why a file name inside the bag is unsafe to use, or None."""
    if not name or len(name) > 1024 or name.startswith("/") or "\\" in name:
        return "absolute, too long, or with a backslash"
    if _CONTROL.search(name):
        return "holds control characters or bytes that are not UTF-8"
    if any(part in ("", ".", "..") for part in name.split("/")) or ":" in name.split("/")[0]:
        return "has an empty, '.', '..' or drive component"
    return None


class _Source:
    """The files of a bag by relative path; streams them so memory stays flat."""

    files: dict[str, int]  # relative POSIX path -> size

    def open(self, name: str) -> Any:
        """A binary stream with ``readinto`` over the file's bytes."""
        raise NotImplementedError

    def sha256(self, name: str) -> tuple[str, int]:
        h, total = hashlib.sha256(), 0
        view = memoryview(bytearray(CHUNK))
        with self.open(name) as f:
            while n := f.readinto(view):
                h.update(view[:n])
                total += n
        return h.hexdigest(), total

    def buffered(self, name: str) -> IO[bytes]:
        raw = self.open(name)
        return io.BufferedReader(raw, CHUNK) if isinstance(raw, io.RawIOBase) else raw

    def read(self, name: str, limit: int = MAX_TAG_FILE) -> bytes:
        if self.files[name] > limit:
            raise ValueError(f"{name} is {self.files[name]} bytes, over the {limit} allowed")
        with self.buffered(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"{name} is over the {limit} bytes allowed")
        return data

    def lines(self, name: str) -> Iterator[bytes]:
        with self.buffered(name) as f:
            while line := f.readline(MAX_LINE + 1):
                if len(line) > MAX_LINE:
                    raise ValueError(f"a line of {name} is over {MAX_LINE} bytes")
                yield line

    def close(self) -> None:
        pass


class _Folder(_Source):
    def __init__(self, root: Path, report: Report) -> None:
        self.root = root
        self.files = {}
        self._walk(root, "", 0, report)

    def _walk(self, folder: Path, prefix: str, depth: int, report: Report) -> None:
        if depth > MAX_DEPTH:
            report.add("name-unsafe", prefix, "folders are nested too deeply")
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            report.add("file-unreadable", prefix or ".", f"cannot list: {exc.strerror}")
            return
        for entry in entries:
            name = prefix + entry.name
            why = _unsafe_name(name)
            if why:
                report.add("name-unsafe", ascii(name)[1:-1], f"the name {why}")
            elif entry.is_symlink():
                report.add("name-unsafe", name, "a symbolic link: a bag holds only files")
            elif entry.is_dir(follow_symlinks=False):
                self._walk(Path(entry.path), name + "/", depth + 1, report)
            elif entry.is_file(follow_symlinks=False):
                if len(self.files) >= MAX_FILES:
                    raise CaseFileError(f"the bag holds more than {MAX_FILES} files")
                self.files[name] = entry.stat(follow_symlinks=False).st_size
            else:
                report.add("name-unsafe", name, "not a regular file (a device, socket or pipe)")

    def open(self, name: str) -> Any:
        # O_NOFOLLOW: a file swapped for a link after the walk is not followed.
        fd = os.open(self.root / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK |
                     getattr(os, "O_CLOEXEC", 0))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{name} is no longer a regular file")
        return os.fdopen(fd, "rb", buffering=0)


class _Zip(_Source):
    """A zipped bag. Stored entries are read straight from the archive (their SHA-256 is
    the real check; zipfile's CRC-32 would only slow that down); deflated ones (small tag
    files) through zipfile, with their claimed size and ratio bounded first."""

    def __init__(self, path: Path, report: Report) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError,
                EOFError, struct.error) as exc:
            raise CaseFileError(f"not a readable zip archive: {exc}") from None
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._size = os.fstat(self._fd).st_size
        if len(infos) > MAX_FILES:
            raise CaseFileError(f"the archive holds more than {MAX_FILES} entries")
        names = [i.filename for i in infos if not i.is_dir()]
        top = names[0].split("/")[0] + "/" if names else ""
        prefix = top if names and all(n.startswith(top) for n in names) and \
            top + "bagit.txt" in names else ""
        self.files, self._info = {}, {}
        stored_total = 0
        for info in infos:
            if info.is_dir():
                continue
            name = info.filename[len(prefix):]
            kind = (info.external_attr >> 16) & 0o170000
            why = _unsafe_name(name)
            if why:
                report.add("name-unsafe", ascii(name)[1:-1], f"the name {why}")
            elif name in self.files:
                report.add("name-unsafe", name, "the archive holds this name twice")
            elif kind not in (0, stat.S_IFREG):
                report.add("name-unsafe", name, "not a regular file (a link or a device)")
            elif info.flag_bits & 1:
                report.add("zip-unsafe", name, "encrypted entry")
            elif info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                report.add("zip-unsafe", name, f"unsupported compression {info.compress_type}")
            elif info.compress_type == zipfile.ZIP_STORED and \
                    info.compress_size != info.file_size:
                report.add("zip-unsafe", name, "a stored entry whose sizes disagree")
            elif info.compress_type == zipfile.ZIP_DEFLATED and (
                    info.file_size > MAX_TAG_FILE or
                    info.file_size > MAX_INFLATE_RATIO * info.compress_size + CHUNK):
                report.add("zip-unsafe", name,
                           f"claims {info.file_size} bytes from {info.compress_size}: "
                           "refused as a possible zip bomb")
            else:
                stored_total += info.compress_size
                self.files[name], self._info[name] = info.file_size, info
        if stored_total > self._size:  # entries that overlap: the same bytes read many times
            raise CaseFileError("the archive's entries overlap (a zip bomb)")

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        header = os.pread(self._fd, 30, info.header_offset)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise OSError("a local file header is missing")
        n, m = struct.unpack("<HH", header[26:30])
        start: int = info.header_offset + 30 + n + m
        if start + info.compress_size > self._size:
            raise OSError("the entry runs past the end of the archive")
        return start

    def open(self, name: str) -> Any:
        info = self._info[name]
        if info.compress_type == zipfile.ZIP_STORED:
            return _Slice(self._fd, self._data_offset(info), info.compress_size)
        return self._zip.open(info)

    def close(self) -> None:
        self._zip.close()
        os.close(self._fd)


class _Slice(io.RawIOBase):
    """A read-only window onto the archive: one stored entry's bytes, via pread."""

    def __init__(self, fd: int, start: int, size: int) -> None:
        self._fd, self._pos, self._end = fd, start, start + size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._end - self._pos)
        if want <= 0:
            return 0
        n = os.preadv(self._fd, [view[:want]], self._pos)
        if n == 0:
            raise OSError("the archive ended early")
        self._pos += n
        return n


def open_bag(path: Path, report: Report) -> _Source:
    """The bag at ``path``: a folder, or a zip file. Raises CaseFileError."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise CaseFileError(f"cannot read {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        return _Folder(path, report)
    if stat.S_ISREG(mode):
        return _Zip(path, report)
    raise CaseFileError(f"{path} is neither a folder nor a zip file")


# --- the checks ----------------------------------------------------------------------------


@dataclass
class _Event:
    index: int
    body: dict[str, Any]


class _Verifier:
    def __init__(self, bag: _Source, report: Report) -> None:
        self.bag, self.report = bag, report
        self.actual: dict[str, str] = {}  # SHA-256 of every file read, by path
        self.events: dict[int, _Event] = {}
        self.root: bytes | None = None
        self.size: int | None = None
        self.key: Key | None = None
        self.export_state: str | None = None  # the case state the export event recorded

    def add(self, code: str, subject: str, message: str) -> None:
        self.report.add(code, subject, message)

    def read_json(self, name: str, code: str) -> Any:
        if name not in self.bag.files:
            self.add(code, name, f"{name} is missing")
            return None
        try:
            return _loads(self.bag.read(name))
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            self.add(code, name, f"{name} cannot be read as JSON: {exc}")
            return None

    def hash_file(self, name: str) -> str | None:
        if name not in self.actual:
            try:
                digest, size = self.bag.sha256(name)
            except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
                self.add("file-unreadable", name, f"reading failed: {exc}")
                return None
            if name.startswith("data/"):
                self.report.payload_files += 1
                self.report.payload_bytes += size
            self.actual[name] = digest
        return self.actual[name]

    # 1. BagIt
    def bagit(self) -> None:
        files = self.bag.files
        try:
            declaration = self.bag.read("bagit.txt", 4096).decode("utf-8") \
                if "bagit.txt" in files else ""
        except (ValueError, OSError, UnicodeDecodeError, zipfile.BadZipFile):
            declaration = ""
        if not re.fullmatch(r"BagIt-Version: 1\.\d+\r?\nTag-File-Character-Encoding: UTF-8"
                            r"\r?\n", declaration):
            self.add("bag-declaration", "bagit.txt",
                     "bagit.txt is missing or not a BagIt 1.x declaration in UTF-8")
        payload = self.manifest("manifest-sha256.txt", payload=True)
        for name in sorted(n for n in files if n.startswith("data/") and n not in payload):
            self.add("payload-extra", name, "a payload file that the manifest does not list")
        tags = self.manifest("tagmanifest-sha256.txt", payload=False)
        for name in sorted(n for n in files if not n.startswith("data/") and n not in tags
                           and n != "tagmanifest-sha256.txt"):
            self.add("tag-extra", name, "a tag file that the tag manifest does not list")
        self.oxum(payload)

    def manifest(self, name: str, *, payload: bool) -> dict[str, str]:
        listed: dict[str, str] = {}
        missing_code = "payload-missing" if payload else "tag-missing"
        if name not in self.bag.files:
            self.add(missing_code, name, f"{name} is missing")
            return listed
        try:
            lines = list(self.bag.lines(name))
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            self.add("manifest-malformed", name, str(exc))
            return listed
        for number, raw in enumerate(lines, 1):
            match = re.fullmatch(rb"([0-9a-fA-F]{64})[ \t]+([^\r\n]+)\r?\n?", raw)
            path = match and match.group(2).decode("utf-8", "replace")
            path = path and path.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
            if not match or not path or _unsafe_name(path) or \
                    path.startswith("data/") != payload or path in listed:
                self.add("manifest-malformed", f"{name} line {number}",
                         "not a line 'SHA-256 path' naming a file of the right part, once")
                continue
            listed[path] = match.group(1).decode().lower()
        wrong = "payload-hash-mismatch" if payload else "tag-hash-mismatch"
        for path, digest in sorted(listed.items()):
            if path not in self.bag.files:
                self.add(missing_code, path, f"{name} lists {path}, which is not in the bag")
            elif (actual := self.hash_file(path)) is not None and actual != digest:
                self.add(wrong, path, f"its SHA-256 is {actual}, {name} says {digest}")
        return listed

    def oxum(self, payload: dict[str, str]) -> None:
        try:
            info = self.bag.read("bag-info.txt", 1 << 20).decode("utf-8", "replace")
        except (KeyError, ValueError, OSError, zipfile.BadZipFile):
            return
        match = re.search(r"^Payload-Oxum:\s*(\d+)\.(\d+)\s*$", info, flags=re.M)
        if match:
            have = [self.bag.files[p] for p in self.bag.files if p.startswith("data/")]
            if (int(match.group(1)), int(match.group(2))) != (sum(have), len(have)):
                self.add("oxum-mismatch", "bag-info.txt",
                         f"Payload-Oxum says {match.group(1)}.{match.group(2)}; the bag "
                         f"holds {sum(have)}.{len(have)}")

    # 2. key and checkpoint
    def checkpoint(self, trusted: Key | None, pinned: dict[str, str]) -> None:
        bag_key = None
        try:
            bag_key = Key.parse(self.bag.read(KEY, 4096).decode("utf-8"))
        except (KeyError, ValueError, OSError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            self.add("key-malformed", KEY, f"the bag's verifier key is missing or bad: {exc}")
        if trusted is None and bag_key is not None and bag_key.name in pinned:
            trusted = Key.parse(pinned[bag_key.name])
            self.report.notes.append(f"using the key pinned earlier for {bag_key.name}")
        if trusted is not None and bag_key is not None and bag_key != trusted:
            self.add("key-mismatch", KEY, f"the bag carries key {bag_key}, not the key you "
                     f"trust ({trusted})")
        self.key = trusted or bag_key
        self.report.key = str(self.key) if self.key else None
        self.report.key_trusted = trusted is not None
        if self.key is None:
            return
        try:
            note = self.bag.read(CHECKPOINT, 64 << 10)
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
            self.add("checkpoint-malformed", CHECKPOINT, f"missing or unreadable: {exc}")
            return
        try:
            self.size, self.root = open_checkpoint(note, self.key)
        except ValueError as exc:
            self.add("checkpoint-signature", CHECKPOINT, f"{exc}")
            return
        self.report.origin, self.report.tree_size = self.key.name, self.size
        self.report.root = self.root.hex()

    # 3. events
    def read_events(self) -> None:
        if EVENTS not in self.bag.files:
            self.add("events-malformed", EVENTS, f"{EVENTS} is missing")
            return
        last = -1
        try:
            for number, line in enumerate(self.bag.lines(EVENTS), 1):
                index = self.event_line(number, line, last)
                last = max(last, -1 if index is None else index)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            self.add("events-malformed", EVENTS, str(exc))
        self.report.events = len(self.events)

    def event_line(self, number: int, line: bytes, last: int) -> int | None:
        """Check one line; returns the leaf index it names (None if unreadable)."""
        subject = f"{EVENTS} line {number}"
        try:
            entry = _loads(line)
            index, leaf = entry["index"], entry["leaf"].encode("utf-8")
            proof = _hashes(entry["proof"])
            if type(index) is not int or index < 0 or set(entry) != {"index", "leaf", "proof"}:
                raise ValueError("expected {index, leaf, proof}")
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeEncodeError) as exc:
            self.add("events-malformed", subject, f"not an event line: {exc}")
            return None
        subject = f"event {index}"
        if index <= last:
            self.add("events-out-of-order", subject,
                     f"line {number} holds leaf {index} after leaf {last}: events are listed "
                     "once each, in leaf order")
            return index
        try:
            body = _loads(leaf)
            if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
                raise ValueError("not a custody event")
            if canonical_json(body) != leaf:
                raise ValueError("not RFC 8785 canonical JSON")
        except ValueError as exc:
            self.add("event-malformed", subject, f"leaf {index}: {exc}")
            body = {}
        if self.size is not None and self.root is not None:
            if index >= self.size:
                self.add("event-beyond-checkpoint", subject,
                         f"leaf {index} is beyond the checkpoint's {self.size} leaves")
                return index
            try:
                if inclusion_root(index, self.size, leaf_hash(leaf), proof) != self.root:
                    raise ValueError("it leads to another root")
            except ValueError as exc:
                self.add("event-proof-invalid", subject,
                         f"the inclusion proof of leaf {index} fails: {exc}")
                return index
        self.events[index] = _Event(index, body)
        return index

    # 4-5. contents, export event, items, files
    def contents(self) -> dict[str, Any] | None:
        contents = self.read_json(CONTENTS, "contents-malformed")
        if contents is None:
            return None
        try:
            if contents.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT}")
            case, items = str(contents["case"]), contents["items"]
            listed, files = contents["events"], contents["files"]
            proven = contents["consistency_from"]
            if not (isinstance(items, list) and isinstance(files, dict) and
                    all(isinstance(x, list) and all(type(i) is int for i in x)
                        for x in (listed, proven))):
                raise ValueError("items, events, consistency_from or files have the wrong types")
            for item in items:
                if not (re.fullmatch(r"[0-9a-f]{64}", item["sha256"]) and
                        type(item["size"]) is int and isinstance(item["path"], str)):
                    raise ValueError("an item without sha256, size and path")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.add("contents-malformed", CONTENTS, f"{exc}")
            return None
        self.report.case, self.report.recipient = case, str(contents.get("recipient"))
        return dict(contents)

    def export_event(self, contents: dict[str, Any]) -> None:
        digest = self.actual.get(CONTENTS) or self.hash_file(CONTENTS)
        exports = [e for e in self.events.values() if e.body.get("change") == "export"
                   and e.body.get("entity") == "case" and e.body.get("id") == contents["case"]]
        if not exports:
            self.add("export-event-missing", CONTENTS,
                     f"no event in the bag records the export of case {contents['case']}")
            return
        export = exports[-1]
        if export.body.get("contents_sha256") != digest:
            self.add("export-event-mismatch", f"event {export.index}",
                     f"the export event commits to contents {export.body.get('contents_sha256')}"
                     f"; {CONTENTS} hashes to {digest}")
        if export.body.get("recipient") != contents.get("recipient"):
            self.add("export-event-mismatch", f"event {export.index}",
                     "the export event names another recipient than the contents")
        listed = set(contents["events"])
        for index in sorted(listed - set(self.events)):
            self.add("event-missing", f"event {index}",
                     f"leaf {index} is listed in the signed contents but not in {EVENTS}")
        for index in sorted(set(self.events) - listed - {export.index}):
            self.add("event-unlisted", f"event {index}",
                     f"leaf {index} is in {EVENTS} but not in the signed contents")
        self.export_state = export.body.get("state_sha256")

    def files(self, contents: dict[str, Any]) -> None:
        files = {str(k): v for k, v in contents["files"].items()}
        for name in sorted(self.bag.files):
            if name.startswith("data/") or name in ENVELOPE | SELF_PROVEN:
                continue
            if name not in files:
                self.add("file-unlisted", name, "the signed contents do not list this file")
            elif (actual := self.hash_file(name)) is not None and actual != files[name]:
                self.add("file-digest-mismatch", name,
                         f"its SHA-256 is {actual}, the signed contents say {files[name]}")
        for name in sorted(set(files) - set(self.bag.files)):
            self.add("file-unlisted", name, "listed in the signed contents, missing from the bag")

    def items(self, contents: dict[str, Any]) -> None:
        origins: dict[str, set[Any]] = {}
        for e in self.events.values():
            if e.body.get("kind") in ("ingest", "derive") and isinstance(e.body.get("sha256"), str):
                origins.setdefault(e.body["sha256"], set()).add(e.body.get("size"))
        paths = set()
        for item in contents["items"]:
            sha, path, size = item["sha256"], item["path"], item["size"]
            paths.add(path)
            subject = f"item {sha}"
            if path not in self.bag.files or not path.startswith("data/"):
                self.add("item-missing", subject, f"{path} is not in the bag's payload")
                continue
            if not re.fullmatch(re.escape(f"data/{sha}") + r"(\.[a-z0-9]{1,8})?", path):
                self.add("item-hash-mismatch", subject, f"{path} is not named by its SHA-256")
            actual = self.hash_file(path)
            if actual is not None and actual != sha:
                self.add("item-hash-mismatch", subject,
                         f"{path} hashes to {actual}: it is not the item it is named for")
            if self.bag.files[path] != size:
                self.add("item-size-mismatch", subject,
                         f"{path} has {self.bag.files[path]} bytes; the contents say {size}")
            if sha not in origins:
                self.add("item-without-event", subject,
                         "no ingest or derive event in the bag names this item")
            elif size not in origins[sha]:
                self.add("item-size-mismatch", subject,
                         f"its ingest events say {sorted(origins[sha], key=str)} bytes, not {size}")
        for name in sorted(n for n in self.bag.files if n.startswith("data/") and n not in paths):
            self.add("item-unlisted", name, "a payload file the signed contents do not list")

    # 6. catalogue
    def catalogue(self, contents: dict[str, Any]) -> None:
        data = self.read_json(CATALOGUE, "catalogue-malformed")
        if data is None:
            return
        latest: dict[tuple[str, str], str] = {}
        for e in sorted(self.events.values(), key=lambda e: e.index):
            b = e.body
            if b.get("kind") == "catalogue" and b.get("change") not in STATELESS_CHANGES:
                latest[(str(b.get("entity")), str(b.get("id")))] = str(b.get("state_sha256"))
        records = [r for part in data.values() if isinstance(part, list | dict)
                   for r in (part if isinstance(part, list) else [part])] \
            if isinstance(data, dict) else []
        for record in records:
            state = record.get("state") if isinstance(record, dict) else None
            if not isinstance(state, dict):
                continue
            what = (str(state.get("entity")), str(state.get("id")))
            subject = f"{what[0]} {what[1]}"
            try:
                digest = hashlib.sha256(canonical_json(state)).hexdigest()
            except ValueError as exc:
                self.add("catalogue-malformed", subject, f"its state has no RFC 8785 form: {exc}")
                continue
            if what not in latest:
                self.add("record-unrecorded", subject, "no custody event in the bag records it")
            elif latest[what] != digest:
                self.add("record-altered", subject,
                         "its state does not hash to what its latest custody event recorded")
            if what == ("case", contents["case"]) and self.export_state not in (None, digest):
                self.add("export-event-mismatch", subject,
                         "the export event recorded another state of the case")

    # 7. consistency
    def consistency(self) -> dict[int, tuple[bytes, list[bytes]]]:
        proofs: dict[int, tuple[bytes, list[bytes]]] = {}
        if CONSISTENCY not in self.bag.files or self.size is None or self.root is None:
            return proofs
        try:
            lines = list(self.bag.lines(CONSISTENCY))
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            self.add("consistency-malformed", CONSISTENCY, str(exc))
            return proofs
        for number, line in enumerate(lines, 1):
            subject = f"{CONSISTENCY} line {number}"
            try:
                entry = _loads(line)
                old, old_root = entry["old_size"], bytes.fromhex(entry["old_root"])
                proof = _hashes(entry["proof"])
                if type(old) is not int or len(old_root) != 32:
                    raise ValueError("bad old_size or old_root")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.add("consistency-malformed", subject, f"{exc}")
                continue
            try:
                check_consistency(old, self.size, proof, old_root, self.root)
                if entry.get("checkpoint") is not None and self.key is not None and \
                        open_checkpoint(str(entry["checkpoint"]).encode(), self.key) != \
                        (old, old_root):
                    raise ValueError("its signed checkpoint names another tree")
            except ValueError as exc:
                self.add("consistency-invalid", f"size {old}",
                         f"no consistency from size {old} to {self.size}: {exc}")
                continue
            proofs[old] = (old_root, proof)
        return proofs

    def since(self, note: bytes, external: Any, proofs: dict[int, tuple[bytes, list[bytes]]]
              ) -> None:
        if self.key is None or self.size is None or self.root is None:
            return
        try:
            old, old_root = open_checkpoint(note, self.key)
        except ValueError as exc:
            self.add("since-signature", "--since", f"the checkpoint you hold: {exc}")
            return
        subject = f"size {old}"
        if external is not None:
            try:
                m, n = int(external["old_size"]), int(external["new_size"])
                ext_proof = _hashes(external["proof"])
            except (ValueError, KeyError, TypeError) as exc:
                self.add("since-malformed", "--consistency", f"not a consistency proof: {exc}")
                return
            small, large = sorted([(old, old_root), (self.size, self.root)])
            if (m, n) != (small[0], large[0]):
                self.add("since-malformed", "--consistency",
                         f"the proof is from size {m} to {n}; {small[0]} to {large[0]} is needed")
                return
            try:
                check_consistency(small[0], large[0], ext_proof, small[1], large[1])
            except ValueError as exc:
                self.add("since-inconsistent", subject, f"{exc}: the log was rewritten")
            return
        if old == self.size:
            if old_root != self.root:
                self.add("since-inconsistent", subject,
                         "the checkpoint you hold and the bag's have the same size and different "
                         "roots: the log forked")
        elif old < self.size and old in proofs:
            if proofs[old][0] != old_root:
                self.add("since-inconsistent", subject,
                         "the bag proves consistency with another tree of this size: the log "
                         "forked")
        else:
            self.add("since-unproven", subject,
                     f"the bag carries no consistency proof between size {old} and size "
                     f"{self.size}; ask for `sprava ledger consistency {min(old, self.size)} "
                     f"{max(old, self.size)} --json` and pass it with --consistency")


def verify(path: Path, *, key: str | None = None, since: bytes | None = None,
           consistency: Any = None, pinned: dict[str, str] | None = None) -> Report:
    """Check the case file at ``path``; the report lists every failure in a fixed order.

    ``key`` is a verifier key you trust, ``pinned`` keys trusted earlier by log name (used
    when ``key`` is not given), ``since`` a signed checkpoint you already hold,
    ``consistency`` a parsed proof between it and the bag's. Raises CaseFileError when the
    case file cannot be read at all, ValueError when a key is not a verifier key.
    """
    trusted = Key.parse(key) if key is not None else None
    report = Report()
    bag = open_bag(path, report)
    try:
        v = _Verifier(bag, report)
        v.bagit()
        v.checkpoint(trusted, pinned or {})
        v.read_events()
        contents = v.contents()
        if contents is not None:
            v.export_event(contents)
            v.files(contents)
            v.items(contents)
            v.catalogue(contents)
        proofs = v.consistency()
        if contents is not None and v.size is not None:
            for old in sorted(set(contents["consistency_from"]) - set(proofs)):
                v.add("consistency-missing", f"size {old}",
                      f"the signed contents promise a consistency proof from size {old}; "
                      f"{CONSISTENCY} has no valid one")
        if since is not None:
            v.since(since, consistency, proofs)
    finally:
        bag.close()
    if not report.key_trusted:
        report.notes.append("no trusted key given: this shows the bag agrees with itself and "
                            "with the key it carries; pass --key with the key you got from the "
                            "team by another channel to show who signed it")
    report.sort()
    return report


# --- command line --------------------------------------------------------------------------


def _pins_file() -> Path:
    return Path(os.environ.get("SPRAVA_VERIFY_PINS") or
                Path.home() / ".config" / "sprava-verify" / "pinned-keys")


def _pinned() -> dict[str, str]:
    """Keys pinned earlier with --pin, by log name (one verifier key a line)."""
    try:
        text = _pins_file().read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    return {line.split("+")[0]: line.strip() for line in text.splitlines() if "+" in line}


def _key_arg(value: str) -> str:
    """A key given as the key itself or as a file holding it."""
    candidate = Path(value)
    if "+" not in value or candidate.is_file():
        try:
            return candidate.read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the key file {value}: {exc}") from None
    return value


def _head(path: Path, limit: int) -> bytes:
    with path.open("rb") as f:
        return f.read(limit)


def run(path: Path, *, key: str | None = None, since: Path | None = None,
        consistency: Path | None = None, pin: bool = False, as_json: bool = False,
        out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Verify, print the result for people or as JSON, and return the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        key_text = _key_arg(key) if key is not None else None
        since_note = _head(since, 65536) if since is not None else None
        external = _loads(_head(consistency, MAX_LINE)) if consistency is not None else None
        report = verify(path, key=key_text, since=since_note, consistency=external,
                        pinned=_pinned())
    except (ValueError, OSError) as exc:
        print(f"error [usage]: {exc}", file=err)
        return EXIT_USAGE
    except CaseFileError as exc:
        print(f"error [case-file-unreadable]: {exc}", file=err)
        return EXIT_UNREADABLE
    if pin and report.ok and report.key and report.origin and report.origin not in _pinned():
        _pins_file().parent.mkdir(parents=True, exist_ok=True)
        with _pins_file().open("a", encoding="utf-8") as f:
            f.write(report.key + "\n")
        report.notes.append(f"pinned {report.key} in {_pins_file()}")
    if as_json:
        out.write(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")
    else:
        _print(report, out, err)
    return EXIT_OK if report.ok else EXIT_FAILED


def _print(report: Report, out: IO[str], err: IO[str]) -> None:
    out.write(f"case {report.case} for {report.recipient!r}\n")
    out.write(f"checked {report.payload_files} payload file(s) ({report.payload_bytes} bytes), "
              f"{report.events} custody event(s), checkpoint of log {report.origin!r} at "
              f"size {report.tree_size}\n")
    out.write(f"key {report.key} ({'trusted' if report.key_trusted else 'from the bag'})\n")
    for note in report.notes:
        out.write(f"note: {note}\n")
    if report.ok:
        out.write("OK: every file, event, proof and signature verifies\n")
        return
    for f in report.findings:
        err.write(f"FAIL [{f.code}] {f.subject}: {f.message}\n")
    err.write(f"{len(report.findings)} failure(s)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sprava-verify",
                                     description="Check a Sprava case file offline.")
    parser.add_argument("casefile", type=Path, help="the case file: a zip or a folder")
    parser.add_argument("--key", help="the verifier key you trust (the key or a file with it)")
    parser.add_argument("--since", type=Path, metavar="CHECKPOINT",
                        help="a signed checkpoint you hold from earlier")
    parser.add_argument("--consistency", type=Path, metavar="FILE",
                        help="a consistency proof (JSON) between --since and the bag")
    parser.add_argument("--pin", action="store_true",
                        help="after a clean check, remember the bag's key for its log")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    return run(args.casefile, key=args.key, since=args.since, consistency=args.consistency,
               pin=args.pin, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
