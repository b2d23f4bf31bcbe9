"""What a file says about itself: EXIF, XMP, GPS and maker notes, container and stream tags.

Two views come out of :func:`extract`:

* ``raw``: every tag that could be read, grouped as the file groups them (``IFD0``,
  ``EXIF``, ``GPS``, ``Interop``, ``IFD1``, ``MakerNote``, ``XMP``, ``PNG``; ``format``,
  ``streams``, ``QuickTime`` for audio and video), JSON-serialisable, with the problems met
  on the way in ``raw["problems"]`` and ``raw["truncated"]`` saying whether values were cut
  to stay under ``MediaLimits.max_metadata_bytes``. Analysts read it; nothing is dropped
  because we did not think of it.
* ``fields``: the few normalised values the rest of Sprava relies on (capture time, place,
  device, size, orientation, codecs). A key is present only when the file gave a usable
  value for it.

The input is hostile. Files arrive from phones, messengers and adversaries, and a crafted
header must cost no more than reading a header:

* the extractor is chosen by the media type sniffed from content, never by the file name,
  and the parser is pinned to it (Pillow's ``formats=``, FFmpeg's ``format=``), so a text
  file cannot be read as an HLS playlist that makes FFmpeg open other files or URLs;
* no pixel is decoded: a 50,000 × 50,000 PNG of a few KB is refused from its header with
  ``too-many-pixels``;
* a broken tag, offset or count is a note in ``raw["problems"]``, not a crash; only a file
  whose header cannot be read at all is refused with ``corrupt-media``.

Pillow, pillow-heif and PyAV are imported only when a file of their kind is read, so that
importing this module stays light.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sprava.errors import BadInputError
from sprava.media.limits import MediaLimits

__all__ = ["SUPPORTED_MEDIA_TYPES", "Metadata", "extract", "supports"]

# Pillow plug-in ids per sniffed type. PNG is read by our own chunk walker (see
# metadata_image): Pillow's PNG ``getexif()`` and ``text`` decode every pixel to reach
# chunks stored after the image data.
_IMAGE_FORMATS: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("JPEG",),
    "image/png": (),
    "image/tiff": ("TIFF",),
    "image/webp": ("WEBP",),
    "image/heic": ("HEIF",),
    "image/heif": ("HEIF",),
    "image/avif": ("AVIF",),
    "image/gif": ("GIF",),
    "image/bmp": ("BMP",),
}

# FFmpeg demuxer per sniffed type. Pinning the demuxer is a security measure, not a hint:
# left to probe, FFmpeg also accepts playlists and concat scripts that name other files.
_AV_DEMUXERS: dict[str, str] = {
    "video/mp4": "mov",
    "video/quicktime": "mov",
    "video/3gpp": "mov",
    "video/3gpp2": "mov",
    "audio/mp4": "mov",
    "video/webm": "matroska",
    "video/x-matroska": "matroska",
    "video/x-msvideo": "avi",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/wav": "wav",
}

SUPPORTED_MEDIA_TYPES: frozenset[str] = frozenset(_IMAGE_FORMATS) | frozenset(_AV_DEMUXERS)

# What third-party parsers raise on malformed bytes. Anything else is a bug and surfaces.
_PARSE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    EOFError,
    SyntaxError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    struct.error,
    ZeroDivisionError,
    OverflowError,
    RecursionError,
    RuntimeError,
)

_MAX_PROBLEMS = 100
_DEFAULT_LIMITS = MediaLimits()


@dataclass(frozen=True)
class Metadata:
    """The metadata of one file: the full ``raw`` dump and the normalised ``fields``."""

    raw: dict[str, Any]
    fields: dict[str, Any]


def supports(media_type: str) -> bool:
    """Whether :func:`extract` has an extractor for this sniffed media type."""
    return _base_type(media_type) in SUPPORTED_MEDIA_TYPES


def extract(path: Path, media_type: str, limits: MediaLimits = _DEFAULT_LIMITS) -> Metadata:
    """Read the metadata of the file at ``path``, sniffed as ``media_type``.

    Raises ``BadInputError`` with code ``unsupported-media-type`` when there is no extractor
    for the type, ``too-many-pixels`` when the header declares more than
    ``limits.max_pixels`` pixels, ``corrupt-media`` when not even the header can be read.
    ``OSError`` from opening ``path`` itself propagates: a missing blob is not bad input.
    """
    base = _base_type(media_type)
    if base in _IMAGE_FORMATS:
        from sprava.media import metadata_image

        raw, fields = metadata_image.extract_image(path, base, limits)
    elif base in _AV_DEMUXERS:
        from sprava.media import metadata_video

        raw, fields = metadata_video.extract_av(path, base, limits)
    else:
        raise BadInputError(
            f"no metadata extractor for {media_type!r}",
            code="unsupported-media-type",
            hint="supported: " + ", ".join(sorted(SUPPORTED_MEDIA_TYPES)),
        )
    return Metadata(raw=_fit(raw, limits.max_metadata_bytes), fields=fields)


def _base_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


# --- helpers shared by metadata_image and metadata_video ------------------------------


def _corrupt(what: str, exc: BaseException) -> BadInputError:
    return BadInputError(
        f"cannot read the {what} header: {type(exc).__name__}: {exc}",
        code="corrupt-media",
        hint="the file is truncated, damaged, or not the type its content was sniffed as",
    )


def _check_pixels(width: int, height: int, limits: MediaLimits, what: str) -> None:
    """Refuse a picture whose header declares more pixels than any step may decode.

    Metadata reading needs no pixels, but every later step (hashes, thumbnails, redaction)
    would; refusing here keeps a decompression bomb out of the pipeline from its header.
    """
    if width * height > limits.max_pixels:
        raise BadInputError(
            f"{what} declares {width} × {height} = {width * height:,} pixels, "
            f"more than the limit of {limits.max_pixels:,}",
            code="too-many-pixels",
            hint="a decompression bomb, or a picture too large to analyse: raise "
            "MediaLimits.max_pixels only if the file is trusted",
        )


@contextmanager
def _warnings_as_problems(
    problems: list[str], ignore: tuple[type[Warning], ...] = ()
) -> Iterator[None]:
    """Turn parser warnings ("Possibly corrupt EXIF data ...") into noted problems.

    Pillow reports damaged tags with ``warnings.warn`` and carries on; they belong to the
    item's record, not to stderr. ``catch_warnings`` is process-wide state, so concurrent
    threads may see each other's warnings recorded here: harmless, they are notes.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        if not issubclass(warning.category, ignore):
            _note(problems, f"{warning.category.__name__}: {warning.message}")


def _note(problems: list[str], message: str) -> None:
    """Record a problem; a hostile file can raise thousands, so keep the first few, short."""
    message = _clean_text(message if len(message) <= 300 else message[:299] + "…")
    if message in problems:
        return
    if len(problems) < _MAX_PROBLEMS:
        problems.append(message)
    elif len(problems) == _MAX_PROBLEMS:
        problems.append("further problems omitted")


def _clean_text(value: str) -> str:
    """Text safe for JSON and for PostgreSQL ``jsonb`` (which rejects ``\\u0000``)."""
    text = value.rstrip("\x00").replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def _text(value: Any) -> str | None:
    """A tag value as trimmed text, or None when it is empty or not text at all."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = _clean_text(value).strip(" \t\r\n\x00")
    return text or None


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON value for any tag value.

    Bytes become ``{"$hex": ...}``, rationals ``[numerator, denominator]`` (kept exact, and
    a zero denominator stays visible), non-finite floats their ``str``.
    """
    if depth > 16:
        return "<nested too deep>"
    if value is None or isinstance(value, bool | int | str):
        return _clean_text(value) if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$hex": bytes(value).hex()}
    if isinstance(value, numbers.Rational):
        num, den = value.numerator, value.denominator
        if isinstance(num, int) and isinstance(den, int):
            return [num, den]
        return _jsonable(float(value))
    if isinstance(value, dict):
        return {_clean_text(str(key)): _jsonable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item, depth + 1) for item in value]
    return f"<{type(value).__name__}>"


def _finite(value: Any) -> float | None:
    """A number as a finite float (a rational with a zero denominator is not one)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


# --- time ------------------------------------------------------------------------------

_EXIF_DATETIME = re.compile(r"\s*(\d{4})[:\-/](\d\d)[:\-/](\d\d)[ T](\d\d):(\d\d):(\d\d)")
_ISO_DATETIME = re.compile(
    r"\s*(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?\s*$"
)
_OFFSET = re.compile(r"\s*([+-])(\d\d):?(\d\d)\s*$")
# Clocks that were never set write their epoch: QuickTime's, Unix's, or zeros.
_UNSET_TIMES = ("1904-01-01T00:00:00", "1970-01-01T00:00:00")


def _exif_time(when: Any, subsec: Any, offset: Any) -> tuple[str, bool] | None:
    """An EXIF ``YYYY:MM:DD HH:MM:SS`` plus its SubSecTime and OffsetTime as ISO 8601.

    Returns the text and whether its UTC offset is known; None for an unset or impossible
    time ("0000:00:00 00:00:00", blanks, month 13).
    """
    text = _text(when)
    match = _EXIF_DATETIME.match(text) if text else None
    if match is None:
        return None
    fraction = _text(subsec)
    fraction = fraction if fraction and fraction.isdigit() else None
    return _iso(match.groups(), fraction, _text(offset))


def _iso_time(value: Any) -> tuple[str, bool] | None:
    """A container timestamp (``2024-03-05T10:11:12.000000Z``, ``...+0200``) as ISO 8601."""
    text = _text(value)
    match = _ISO_DATETIME.match(text) if text else None
    if match is None:
        return None
    *parts, fraction, zone = match.groups()
    offset = "+00:00" if zone == "Z" else zone
    return _iso(tuple(parts), fraction, offset)


def _iso(
    parts: tuple[str, ...], fraction: str | None, offset: str | None
) -> tuple[str, bool] | None:
    year, month, day, hour, minute, second = (int(part) for part in parts)
    try:
        datetime(year, month, day, hour, minute, second)  # validation only
    except ValueError:
        return None
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    if text in _UNSET_TIMES:
        return None
    fraction = (fraction or "")[:6].rstrip("0")
    if fraction:
        text += "." + fraction
    zone = _OFFSET.match(offset) if offset else None
    if zone is None:
        return text, False
    sign, hours, minutes = zone.groups()
    try:
        timezone(timedelta(hours=int(hours), minutes=int(minutes)))
    except ValueError:
        return text, False
    if int(minutes) >= 60:
        return text, False
    return f"{text}{sign}{hours}:{minutes}", True


def _set_captured(fields: dict[str, Any], when: tuple[str, bool], source: str) -> None:
    fields["captured_at"], fields["captured_at_offset_known"] = when
    fields["captured_at_source"] = source


# --- the size bound on raw -------------------------------------------------------------


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _fit(raw: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Cut ``raw`` until its compact UTF-8 JSON fits in ``max_bytes``, largest values first.

    A maker note or an XMP packet with an embedded preview can be megabytes; the original
    keeps them bit for bit, the record keeps a mark of what was left out and how big it was.
    """
    raw["truncated"] = False
    size = _json_size(raw)
    if size <= max_bytes:
        return raw
    raw["truncated"] = True
    size = _json_size(raw)
    leaves = sorted(
        (leaf for leaf in _leaves(raw) if leaf[0] is not raw or leaf[1] != "problems"),
        key=lambda leaf: leaf[2],
        reverse=True,
    )
    for parent, key, leaf_size in leaves:
        if size <= max_bytes or leaf_size <= 32:  # a marker would be no smaller
            break
        marker = {"$omitted_bytes": leaf_size}
        parent[key] = marker
        size -= leaf_size - _json_size(marker)
    if _json_size(raw) <= max_bytes:
        return raw
    # Many small values: drop whole groups, keeping what says why.
    for group in sorted(raw, key=lambda name: _json_size(raw[name]), reverse=True):
        if group in ("truncated", "problems"):
            continue
        raw[group] = {"$omitted_bytes": _json_size(raw[group])}
        if _json_size(raw) <= max_bytes:
            return raw
    return {"truncated": True}


def _leaves(node: Any) -> Iterator[tuple[Any, Any, int]]:
    """(container, key, JSON size) of every value that can be replaced by a marker."""
    items: Any = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if (isinstance(value, dict) and "$hex" not in value) or (
            isinstance(value, list) and any(isinstance(item, dict | list) for item in value)
        ):
            yield from _leaves(value)
        elif isinstance(value, dict | list | str):
            yield node, key, _json_size(value)
