"""Image metadata: EXIF (with its Exif, GPS, Interop and thumbnail IFDs), maker notes, XMP.

JPEG, TIFF, WebP, HEIF/HEIC, AVIF, GIF and BMP are read with Pillow (and pillow-heif),
which parse headers on ``Image.open`` and decode pixels only on ``load()``; nothing here
calls ``load()``. PNG is walked chunk by chunk by :func:`_read_png`, because Pillow reaches
``eXIf`` and text chunks placed after the image data only by decoding the whole image.
"""

from __future__ import annotations

import re
import struct
import zlib
from functools import cache
from pathlib import Path
from typing import IO, Any

from PIL import ExifTags, Image

from sprava.errors import BadInputError
from sprava.media.limits import MediaLimits
from sprava.media.metadata import (
    _IMAGE_FORMATS,
    _PARSE_ERRORS,
    _check_pixels,
    _corrupt,
    _exif_time,
    _finite,
    _iso_time,
    _jsonable,
    _note,
    _set_captured,
    _text,
    _warnings_as_problems,
)

_IFD = ExifTags.IFD
_MAKER_NOTE = 0x927C
_ORIENTATION = 0x0112
# (Exif IFD time tag, its OffsetTime tag, its SubSecTime tag, name), most trusted first.
# IFD0 DateTime is not among them: editors rewrite it, so it is often the time of the last
# save, and calling that the capture time would misdate evidence. raw keeps it.
_TIME_TAGS = (
    (0x9003, 0x9011, 0x9291, "DateTimeOriginal"),
    (0x9004, 0x9012, 0x9292, "DateTimeDigitized"),
)


def extract_image(
    path: Path, media_type: str, limits: MediaLimits
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The raw dump and normalised fields of an image; see :func:`metadata.extract`."""
    problems: list[str] = []
    raw: dict[str, Any] = {"format": {"media_type": media_type}}
    exif: Image.Exif | bytes | None
    # Our own pixel limit decides; Pillow's lower warning threshold would only add noise.
    quiet = (Image.DecompressionBombWarning,)
    with path.open("rb") as fh, _warnings_as_problems(problems, ignore=quiet):
        if media_type == "image/png":
            width, height, exif, xmp = _read_png(fh, limits, raw, problems)
            orientation_override = None
        else:
            width, height, exif, xmp, orientation_override = _read_pillow(
                fh, media_type, limits, raw, problems
            )
        groups = _exif_groups(exif, problems)
    for name, group in groups.items():
        raw[name] = _named(group, ExifTags.GPSTAGS if name == "GPS" else ExifTags.TAGS)
    maker_note = groups.get("EXIF", {}).get(_MAKER_NOTE)
    if isinstance(maker_note, bytes):
        raw["EXIF"].pop("MakerNote", None)
        raw["MakerNote"] = {"$hex": maker_note.hex()}
    if xmp:
        raw["XMP"] = xmp
    raw["problems"] = problems
    fields = _exif_fields(groups, problems)
    if xmp:
        _xmp_fallbacks(fields, xmp)
    fields["width"], fields["height"] = width, height
    if orientation_override is not None:
        fields["orientation"] = orientation_override
    return raw, fields


# --- Pillow -----------------------------------------------------------------------------


@cache
def _register_heif() -> None:
    """Teach Pillow HEIF/HEIC once per process (pillow-heif registers globally)."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _read_pillow(
    fh: IO[bytes], media_type: str, limits: MediaLimits, raw: dict[str, Any], problems: list[str]
) -> tuple[int, int, Image.Exif | bytes | None, str | None, int | None]:
    """Open the header with Pillow pinned to the sniffed format; refuse bombs; no pixels.

    Returns the stored width and height, the EXIF (a block of bytes, or for TIFF, whose
    IFD0 *is* its EXIF, the parsed directory), the XMP packet and, for HEIF, the orientation
    the file was written with (pillow-heif resets it in the EXIF it hands back).
    """
    formats = _IMAGE_FORMATS[media_type]
    if "HEIF" in formats:
        _register_heif()
    try:
        image = Image.open(fh, formats=list(formats))
    except Image.DecompressionBombError as exc:
        # Pillow refuses beyond twice its own MAX_IMAGE_PIXELS, whatever our limit says.
        raise BadInputError(
            f"{media_type} header declares too many pixels: {exc}",
            code="too-many-pixels",
            hint="a decompression bomb, or a picture too large to analyse",
        ) from exc
    except _PARSE_ERRORS as exc:
        raise _corrupt(media_type, exc) from exc
    width, height = image.size
    if image.format == "TIFF":
        # Pillow reports a TIFF's size already turned by its Orientation; keep what is stored.
        tags = getattr(image, "tag_v2", {})
        width, height = _int(tags.get(256), width), _int(tags.get(257), height)
    _check_pixels(width, height, limits, media_type)
    info = dict(image.info)
    raw["format"].update(
        container=image.format,
        width=width,
        height=height,
        mode=image.mode,
        info=_jsonable({k: v for k, v in info.items() if k not in _BULKY_INFO}),
    )
    if info.get("icc_profile"):
        raw["format"]["icc_profile_bytes"] = len(info["icc_profile"])
    exif: Image.Exif | bytes | None = info.get("exif")
    if image.format == "TIFF" and exif is None:
        exif = _tiff_exif(image, problems)
    elif not isinstance(exif, bytes):
        exif = None
    orientation = info.get("original_orientation") if "HEIF" in formats else None
    return width, height, exif, _xmp(info.get("xmp")), _int(orientation, None)


# Info entries kept elsewhere in raw, or bulky and not tags (ICC describes colour).
_BULKY_INFO = frozenset({"exif", "xmp", "icc_profile", "thumbnails", "depth_images", "aux"})


def _int(value: Any, default: int | None) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _tiff_exif(image: Image.Image, problems: list[str]) -> Image.Exif | None:
    """The directory Pillow parsed from the TIFF's IFD0 (read from the file, not pixels)."""
    try:
        return image.getexif()
    except _PARSE_ERRORS as exc:
        _note(problems, f"TIFF IFD0 unreadable: {type(exc).__name__}: {exc}")
        return None


def _xmp(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return _text(value.lstrip("\ufeff")) if isinstance(value, str) else None


# A property is written as an attribute (tiff:Orientation="6") or an element
# (<tiff:Orientation>6</tiff:Orientation>). Matched as text: no XML parser ever sees a
# hostile packet (entity expansion, external entities).
_XMP_PROPERTY = r"(?<![\w.-]){name}\s*(?:=\s*[\"']|>)\s*([^\"'<]{{1,64}})"
_XMP_ORIENTATION = re.compile(_XMP_PROPERTY.format(name="tiff:Orientation"))
_XMP_TAKEN = re.compile(_XMP_PROPERTY.format(name="exif:DateTimeOriginal"))


def _xmp_fallbacks(fields: dict[str, Any], xmp: str) -> None:
    """Orientation and capture time from XMP, for files whose EXIF lacks them (as ExifTool)."""
    if "orientation" not in fields and (match := _XMP_ORIENTATION.search(xmp)):
        value = match[1].strip()
        if value.isdigit() and 1 <= int(value) <= 8:
            fields["orientation"] = int(value)
    if "captured_at" not in fields and (match := _XMP_TAKEN.search(xmp)):
        when = _iso_time(match[1])
        if when is not None:
            _set_captured(fields, when, "XMP exif:DateTimeOriginal")


# --- EXIF -------------------------------------------------------------------------------


def _exif_groups(
    source: Image.Exif | bytes | None, problems: list[str]
) -> dict[str, dict[int, Any]]:
    """Every readable IFD of an EXIF block, by group; an unreadable IFD is a problem note."""
    if not source:
        return {}
    try:
        if isinstance(source, bytes):
            exif = Image.Exif()
            exif.load(source)
        else:
            exif = source
        groups = {"IFD0": dict(exif)}
    except _PARSE_ERRORS as exc:
        _note(problems, f"EXIF unreadable: {type(exc).__name__}: {exc}")
        return {}
    for name, tag in (
        ("EXIF", _IFD.Exif),
        ("GPS", _IFD.GPSInfo),
        ("Interop", _IFD.Interop),
        ("IFD1", _IFD.IFD1),
    ):
        if name == "Interop" and _IFD.Interop not in groups.get("EXIF", {}):
            continue  # Pillow looks it up in the Exif IFD and fails if that is missing
        try:
            ifd = dict(exif.get_ifd(tag))
        except _PARSE_ERRORS as exc:
            _note(problems, f"{name} IFD unreadable: {type(exc).__name__}: {exc}")
            continue
        if ifd:
            groups[name] = ifd
        elif tag in groups["IFD0"]:
            _note(problems, f"{name} IFD pointer present but the IFD is empty or unreadable")
    return groups


def _named(group: dict[int, Any], names: dict[int, str]) -> dict[str, Any]:
    """Tag ids to names (``0x1234`` for unknown or clashing ones), values to JSON."""
    out: dict[str, Any] = {}
    for tag, value in group.items():
        name = names.get(tag) if isinstance(tag, int) else None
        if name is None or name in out:
            name = f"0x{tag:04X}" if isinstance(tag, int) else str(tag)
        out[name] = _jsonable(value)
    return out


def _exif_fields(groups: dict[str, dict[int, Any]], problems: list[str]) -> dict[str, Any]:
    ifd0, exif, gps = groups.get("IFD0", {}), groups.get("EXIF", {}), groups.get("GPS", {})
    fields: dict[str, Any] = {}
    for time_tag, offset_tag, subsec_tag, name in _TIME_TAGS:
        when = _exif_time(exif.get(time_tag), exif.get(subsec_tag), exif.get(offset_tag))
        if when is not None:
            _set_captured(fields, when, name)
            break
        if exif.get(time_tag) is not None:
            _note(problems, f"{name} is not a usable time: {exif.get(time_tag)!r}")
    for key, value in (
        ("camera_make", ifd0.get(0x010F)),
        ("camera_model", ifd0.get(0x0110)),
        ("camera_serial", exif.get(0xA431) or ifd0.get(0xC62F)),
        ("lens", exif.get(0xA434) or exif.get(0xA433)),
        ("software", ifd0.get(0x0131)),
    ):
        text = _text(value)
        if text:
            fields[key] = text
    orientation = ifd0.get(_ORIENTATION)
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        fields["orientation"] = orientation
    elif orientation is not None:
        _note(problems, f"Orientation out of range 1-8: {orientation!r}")
    position = _gps_position(gps, problems)
    if position:
        fields["gps"] = position
    gps_time = _gps_time(gps)
    if gps_time:
        fields["gps_time"] = gps_time
    return fields


def _gps_position(gps: dict[int, Any], problems: list[str]) -> dict[str, float] | None:
    """Signed decimal degrees from the GPS IFD; None when absent, zeroed or impossible."""
    lat, lon = _degrees(gps.get(2)), _degrees(gps.get(4))
    if lat is None or lon is None:
        if gps.get(2) is not None or gps.get(4) is not None:
            _note(problems, "GPS latitude/longitude present but unreadable")
        return None
    if _text(gps.get(1)) == "S":
        lat = -lat
    if _text(gps.get(3)) == "W":
        lon = -lon
    if lat == 0 and lon == 0:
        _note(problems, "GPS position is 0,0: treated as unset")
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        _note(problems, f"GPS position out of range: {lat}, {lon}")
        return None
    position = {"lat": lat, "lon": lon}
    altitude = _finite(gps.get(6))
    if altitude is not None:
        below_sea = gps.get(5) in (1, b"\x01")
        position["altitude_m"] = -altitude if below_sea else altitude
    direction = _finite(gps.get(17))
    if direction is not None and 0 <= direction <= 360:
        position["direction_deg"] = direction
    return position


def _degrees(value: Any) -> float | None:
    """Degrees, minutes, seconds (or a single decimal value) as decimal degrees."""
    parts = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [_finite(part) for part in parts]
    if any(number is None or number < 0 for number in numbers):
        return None
    return sum(n / 60.0**i for i, n in enumerate(numbers) if n is not None)


def _gps_time(gps: dict[int, Any]) -> str | None:
    """GPSDateStamp + GPSTimeStamp: UTC by definition, so a check on the camera clock."""
    stamp, clock = _text(gps.get(29)), gps.get(7)
    if not stamp or not isinstance(clock, tuple | list) or len(clock) != 3:
        return None
    hour, minute, second = (_finite(part) for part in clock)
    if hour is None or minute is None or second is None or not 0 <= second < 61:
        return None
    if hour != int(hour) or minute != int(minute):
        return None
    fraction = f"{second % 1:.6f}"[2:]
    when = f"{stamp} {int(hour):02d}:{int(minute):02d}:{int(second):02d}"
    parsed = _exif_time(when, fraction, "+00:00")
    return parsed[0] if parsed else None


# --- PNG --------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")
_PNG_READ = (*_PNG_TEXT, b"eXIf", b"tIME")
_MAX_PNG_CHUNKS = 200_000  # a 100-megapixel PNG in 8 KiB IDAT chunks has ~20,000
_MAX_PNG_TEXTS = 1_000
_MAX_PNG_CHUNK_TYPES = 64
_MAX_PNG_INFLATE = 8 << 20  # a zTXt of a few KB may inflate to gigabytes


def _read_png(
    fh: IO[bytes], limits: MediaLimits, raw: dict[str, Any], problems: list[str]
) -> tuple[int, int, bytes | None, str | None]:
    """Walk the chunks of a PNG, reading only metadata chunks and skipping image data.

    The size is checked from IHDR before anything else is read. A truncated file or a bad
    CRC after IHDR is a note, and what was read up to there is kept.
    """
    head = fh.read(33)
    if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise _corrupt("image/png", ValueError("no PNG signature and IHDR chunk"))
    width, height = struct.unpack(">II", head[16:24])
    if width == 0 or height == 0:
        raise _corrupt("image/png", ValueError(f"IHDR declares {width} × {height}"))
    _check_pixels(width, height, limits, "image/png")
    counts: dict[str, int] = {}
    text: dict[str, str] = {}
    exif: bytes | None = None
    png: dict[str, Any] = {"bit_depth": head[24], "color_type": head[25], "chunks": counts}
    budget = limits.max_metadata_bytes
    for _ in range(_MAX_PNG_CHUNKS):
        header = fh.read(8)
        if len(header) < 8:
            _note(problems, "PNG ends before its IEND chunk: truncated")
            break
        length, kind = struct.unpack(">I4s", header)
        name = kind.decode("latin-1")
        if name in counts or len(counts) < _MAX_PNG_CHUNK_TYPES:
            counts[name] = counts.get(name, 0) + 1
        if kind == b"IEND":
            break
        if kind not in _PNG_READ or length > min(budget, 1 << 30):
            fh.seek(length + 4, 1)  # image data, or more than we would keep: skip it
            continue
        data, crc = fh.read(length), fh.read(4)
        if len(crc) < 4:
            _note(problems, f"PNG {name} chunk truncated")
            break
        budget -= length + 12
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + data):
            _note(problems, f"PNG {name} chunk has a bad CRC")
        if kind == b"eXIf":
            exif = exif or data
        elif kind == b"tIME" and length == 7:
            year, month, day, hour, minute, second = struct.unpack(">HBBBBB", data)
            png["tIME"] = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"
        elif kind in _PNG_TEXT and len(text) < _MAX_PNG_TEXTS:
            _png_text(kind, data, text, problems)
        elif kind in _PNG_TEXT:
            _note(problems, f"PNG has more than {_MAX_PNG_TEXTS} text chunks: rest skipped")
    else:
        _note(problems, f"PNG has more than {_MAX_PNG_CHUNKS} chunks: stopped reading")
    if text:
        png["text"] = text
    raw["PNG"] = png
    raw["format"].update(container="PNG", width=width, height=height)
    xmp = text.pop("XML:com.adobe.xmp", None)
    if exif is None and "Raw profile type exif" in text:
        exif = _raw_profile(text["Raw profile type exif"], problems)
    return width, height, exif, xmp


def _png_text(kind: bytes, data: bytes, text: dict[str, str], problems: list[str]) -> None:
    """Decode one tEXt, zTXt or iTXt chunk into ``text`` (duplicate keys get a suffix)."""
    key, _, rest = data.partition(b"\x00")
    keyword = key.decode("latin-1")
    try:
        if kind == b"tEXt":
            value = rest.decode("latin-1")
        elif kind == b"zTXt":
            value = _inflate(rest[1:]).decode("latin-1")
        else:
            compressed, _method = rest[:1] == b"\x01", rest[1:2]
            _language, _, rest = rest[2:].partition(b"\x00")
            _translated, _, body = rest.partition(b"\x00")
            value = (_inflate(body) if compressed else body).decode("utf-8", "replace")
    except (zlib.error, ValueError) as exc:
        _note(problems, f"PNG {kind.decode()} chunk {keyword!r} unreadable: {exc}")
        return
    name = keyword if keyword not in text else f"{keyword} [{len(text) + 1}]"
    text[name] = value


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, _MAX_PNG_INFLATE)
    if inflater.unconsumed_tail:
        raise ValueError(f"inflates to more than {_MAX_PNG_INFLATE} bytes")
    return out


def _raw_profile(value: str, problems: list[str]) -> bytes | None:
    """ImageMagick's "Raw profile type exif": a name, a length, then the EXIF in hex."""
    try:
        return bytes.fromhex("".join(value.split("\n")[3:]))
    except ValueError as exc:
        _note(problems, f"PNG raw EXIF profile unreadable: {exc}")
        return None
