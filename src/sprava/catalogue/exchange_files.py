"""Reading exchange files that may be hostile: bounded reads, strict UTF-8, strict JSON,
ZIP archives of known members only, and CSV cells that cannot become formulas.

Threats guarded against here, before anything is parsed as catalogue data: files too large
to hold (refused before they are read whole), ZIP bombs (a member is read only up to what
is left of the limit, whatever its header claims), ZIP members with paths, duplicate or
unexpected names (refused; nothing is ever extracted to disk), encrypted or exotic
compression, text that is not UTF-8, JSON with duplicate keys, ``NaN`` or nesting deep
enough to exhaust the stack, and cells that a spreadsheet would run as a formula. Every
refusal is a :class:`~sprava.errors.BadInputError` (:class:`~sprava.errors.TooLargeError`
for size) with a message naming the file and the place; never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, BinaryIO

from sprava.errors import BadInputError, NotFoundError, TooLargeError

MAX_BYTES = 256 * 1024 * 1024  # a whole exchange file, and the sum of a ZIP's members
_READ = 1 << 20
_ZIP_MAGIC = b"PK\x03\x04"
_BOM = "\ufeff"

# A cell starting with one of these is run by spreadsheets as a formula (or, for tab and
# carriage return, hides one). ``'`` is escaped too, so that unescaping is exact.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a file to import, refusing what is not a regular file before reading from it
    (a FIFO or a device would block or never end). Raises NotFoundError ``not-found`` or
    BadInputError ``unreadable``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise NotFoundError(f"no file {os.fspath(path)}", code="not-found") from None
    except OSError as exc:
        raise BadInputError(f"{os.fspath(path)}: {exc.strerror}", code="unreadable") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BadInputError(f"{os.fspath(path)} is not a regular file", code="unreadable")
    return os.fdopen(fd, "rb")


def read_bounded(data: BinaryIO, what: str, limit: int = MAX_BYTES) -> bytes:
    """All of ``data``, refused with TooLargeError ``too-large`` past ``limit`` bytes (the
    excess is never held in memory) and BadInputError ``unreadable`` on a read error."""
    parts: list[bytes] = []
    total = 0
    try:
        while True:
            chunk = data.read(min(_READ, limit + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise TooLargeError(f"{what} is larger than {limit} bytes", code="too-large",
                                    hint="split it, or raise the limit for this import")
            parts.append(bytes(chunk))
    except OSError as exc:
        raise BadInputError(f"{what} cannot be read: {exc.strerror or exc}",
                            code="unreadable") from None
    return b"".join(parts)


def utf8(data: bytes, what: str) -> str:
    """Strict UTF-8 text (a leading byte-order mark is dropped); BadInputError
    ``bad-encoding`` naming the first bad byte otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(
            f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            code="bad-encoding", hint="save the file as UTF-8 and try again") from None
    return text.removeprefix(_BOM)


def _no_duplicates(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadInputError(f"the key {key!r} appears twice in one object",
                                code="duplicate-key")
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise BadInputError(f"{name} is not a JSON number", code="bad-json")


def parse_json(data: bytes, what: str) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN or Infinity; BadInputError
    ``bad-json`` (with line and column), ``bad-encoding`` or ``duplicate-key``."""
    text = utf8(data, what)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates,
                          parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{what} is not JSON: {exc.msg} at line {exc.lineno} column "
                            f"{exc.colno}", code="bad-json") from None
    except RecursionError:
        raise BadInputError(f"{what} is nested too deeply", code="bad-json") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise BadInputError(f"{what} is not usable JSON: {exc}", code="bad-json") from None


def is_zip(data: bytes) -> bool:
    return data.startswith(_ZIP_MAGIC)


def read_zip(data: bytes, what: str, allowed: Iterable[str],
             limit: int = MAX_BYTES) -> dict[str, bytes]:
    """The members of a ZIP archive by name, each one of ``allowed``, in total at most
    ``limit`` bytes once uncompressed. Raises BadInputError ``bad-zip``, ``zip-member``
    or TooLargeError ``too-large``."""
    names = set(allowed)
    if not is_zip(data):
        raise BadInputError(f"{what} is not a ZIP archive", code="bad-zip")
    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > len(names):
                raise BadInputError(f"{what} holds {len(infos)} members; a catalogue export "
                                    f"has at most {len(names)}", code="zip-member")
            total = 0
            for info in infos:
                name = info.filename
                if name not in names:
                    raise BadInputError(f"{what} holds an unexpected member {name[:200]!r}",
                                        code="zip-member",
                                        hint=f"expected only: {', '.join(sorted(names))}")
                if name in out:
                    raise BadInputError(f"{what} holds {name!r} twice", code="zip-member")
                if info.flag_bits & 0x1:
                    raise BadInputError(f"{what}: {name} is encrypted", code="bad-zip")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise BadInputError(f"{what}: {name} uses an unsupported compression",
                                        code="bad-zip", hint="use deflate or no compression")
                left = limit - total
                if info.file_size > left:
                    raise TooLargeError(f"{what}: {name} is larger than the {limit} bytes "
                                        "allowed", code="too-large")
                with archive.open(info) as member:
                    raw = member.read(left + 1)  # never more, whatever the header says
                total += len(raw)
                if total > limit:
                    raise TooLargeError(f"{what} unpacks to more than {limit} bytes",
                                        code="too-large")
                out[name] = raw
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
            RuntimeError, ValueError) as exc:
        raise BadInputError(f"{what} is not a readable ZIP archive: {exc}",
                            code="bad-zip") from None
    return out


def write_zip(members: Mapping[str, bytes]) -> bytes:
    """A ZIP of ``members`` in the given order, with fixed times, so that the same
    content gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, body)
    return buffer.getvalue()


# --- CSV ---------------------------------------------------------------------------------


def escape_cell(value: str) -> str:
    """Prefix ``'`` to a cell that a spreadsheet would run as a formula (``=``, ``+``,
    ``-``, ``@``, tab, carriage return) or that starts with ``'`` itself; plain numbers
    such as ``-27.5`` stay as they are. :func:`unescape_cell` undoes it exactly."""
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def write_csv(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """UTF-8 with a byte-order mark (so that spreadsheets read it as UTF-8), CRLF lines,
    every cell escaped against formulas."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([escape_cell(cell) for cell in row])
    return (_BOM + out.getvalue()).encode("utf-8")


def read_csv(data: bytes, what: str, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a CSV whose header is exactly ``columns`` (in any order), cells unescaped.
    Raises BadInputError ``bad-csv`` naming the file and line."""
    text = utf8(data, what)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or sorted(header) != sorted(columns):
            raise BadInputError(f"{what}: the header must name the columns "
                                f"{', '.join(columns)}", code="bad-csv")
        rows = []
        for row in reader:
            if len(row) != len(header):
                raise BadInputError(f"{what} line {reader.line_num}: {len(row)} cells, the "
                                    f"header has {len(header)}", code="bad-csv")
            rows.append({k: unescape_cell(v) for k, v in zip(header, row, strict=True)})
    except csv.Error as exc:
        raise BadInputError(f"{what} line {reader.line_num}: not valid CSV ({exc})",
                            code="bad-csv") from None
    return rows
