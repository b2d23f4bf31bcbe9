"""Audio and video metadata: container and stream tags through PyAV, track matrices by hand.

FFmpeg is handed an open file object, never a path, and a pinned demuxer, so that neither
a crafted name (``concat:``, ``http:``) nor crafted content (an HLS playlist) makes it open
anything else. Headers are read with ``avformat_find_stream_info``, which may decode a few
frames to learn codec parameters; FFmpeg's ``max_pixels`` keeps that probe from allocating
a bomb's frame. No packet is demuxed by this module.

PyAV does not expose a stream's display matrix, so for MP4/QuickTime the ``tkhd`` boxes
are read directly (a bounded walk over box headers) to learn the rotation a phone recorded.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av

from sprava.media.limits import MediaLimits
from sprava.media.metadata import (
    _AV_DEMUXERS,
    _PARSE_ERRORS,
    _check_pixels,
    _corrupt,
    _finite,
    _iso_time,
    _jsonable,
    _note,
    _set_captured,
    _text,
    _warnings_as_problems,
)

_MAX_BOXES = 100_000
_AV_ERRORS: tuple[type[Exception], ...] = (av.FFmpegError, *_PARSE_ERRORS)
# Tags that name the same thing, most specific first (lower-cased; Matroska upper-cases).
_TIME_KEYS = ("com.apple.quicktime.creationdate", "creation_time", "date")
_TEXT_KEYS = {
    "camera_make": ("com.apple.quicktime.make", "make", "com.android.manufacturer"),
    "camera_model": ("com.apple.quicktime.model", "model", "com.android.model"),
    "lens": ("com.apple.quicktime.camera.lens_model",),
    "software": ("com.apple.quicktime.software", "software", "com.android.version", "encoder"),
}
_LOCATION_KEYS = ("com.apple.quicktime.location.iso6709", "location")


def extract_av(
    path: Path, media_type: str, limits: MediaLimits
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The raw dump and normalised fields of a video or audio file."""
    problems: list[str] = []
    demuxer = _AV_DEMUXERS[media_type]
    with path.open("rb") as fh, _warnings_as_problems(problems):
        try:
            container = av.open(
                fh,
                format=demuxer,
                metadata_errors="ignore",
                options={"max_pixels": str(limits.max_pixels)},
            )
        except _AV_ERRORS as exc:
            raise _corrupt(media_type, exc) from exc
        with container:
            raw: dict[str, Any] = {
                "format": _format_dump(container, media_type),
                "streams": [_stream_dump(stream) for stream in container.streams],
            }
        if not any(_readable(stream) for stream in raw["streams"]):
            # Raw demuxers (FLAC, MP3) "find" a stream in any bytes; its parameters tell.
            reason = "no stream with readable parameters (damaged, or frames larger than "
            raise _corrupt(media_type, ValueError(reason + "max_pixels that FFmpeg refused)"))
        if demuxer == "mov":
            raw["QuickTime"] = {"tracks": _quicktime_tracks(fh, problems)}
    raw["problems"] = problems
    fields = _fields(raw, problems)
    if "width" in fields and "height" in fields:
        _check_pixels(fields["width"], fields["height"], limits, media_type)
    return raw, fields


# --- PyAV -------------------------------------------------------------------------------


def _get(obj: Any, name: str) -> Any:
    """An attribute PyAV may not have for this kind of stream, or may fail to compute."""
    try:
        return getattr(obj, name, None)
    except _AV_ERRORS:
        return None


def _format_dump(container: Any, media_type: str) -> dict[str, Any]:
    duration = _get(container, "duration")
    fmt = _get(container, "format")
    return {
        "media_type": media_type,
        "name": _get(fmt, "name"),
        "long_name": _get(fmt, "long_name"),
        "duration_s": duration / av.time_base if isinstance(duration, int) else None,
        "start_time_s": _seconds(_get(container, "start_time"), Fraction(1, av.time_base)),
        "bit_rate": _get(container, "bit_rate"),
        "tags": _jsonable(dict(_get(container, "metadata") or {})),
    }


def _stream_dump(stream: Any) -> dict[str, Any]:
    time_base = _get(stream, "time_base")
    out: dict[str, Any] = {
        "index": _get(stream, "index"),
        "type": _get(stream, "type"),
        "time_base": _jsonable(time_base),
        "start_time_s": _seconds(_get(stream, "start_time"), time_base),
        "duration_s": _seconds(_get(stream, "duration"), time_base),
        "frames": _get(stream, "frames"),
        "disposition": _disposition(stream),
        "tags": _jsonable(dict(_get(stream, "metadata") or {})),
    }
    codec = _get(stream, "codec_context")
    if codec is not None:
        out.update(
            codec=_get(codec, "name"),
            codec_long_name=_get(_get(codec, "codec"), "long_name"),
            profile=_get(codec, "profile"),
            bit_rate=_get(codec, "bit_rate"),
        )
    if out["type"] == "video" and codec is not None:
        out.update(
            width=_get(codec, "width"),
            height=_get(codec, "height"),
            pix_fmt=_get(_get(codec, "format"), "name"),
            average_rate=_jsonable(_get(stream, "average_rate")),
            guessed_rate=_jsonable(_get(stream, "guessed_rate")),
            sample_aspect_ratio=_jsonable(_get(stream, "sample_aspect_ratio")),
        )
    elif out["type"] == "audio" and codec is not None:
        out.update(
            sample_rate=_get(codec, "sample_rate"),
            channels=_get(_get(codec, "layout"), "nb_channels"),
            layout=_get(_get(codec, "layout"), "name"),
            sample_format=_get(_get(codec, "format"), "name"),
        )
    return {key: _jsonable(value) for key, value in out.items()}


def _readable(stream: dict[str, Any]) -> bool:
    if stream.get("type") == "video":
        return bool(stream.get("width")) and bool(stream.get("height"))
    if stream.get("type") == "audio":
        return bool(stream.get("sample_rate")) and bool(stream.get("channels"))
    return stream.get("type") in ("subtitle", "data")


def _disposition(stream: Any) -> list[str]:
    """Flag names such as ``default`` or ``attached_pic`` (cover art, not the video)."""
    flags = _get(stream, "disposition")
    if flags is None:
        return []
    return [flag.name for flag in type(flags) if flag.name and flag in flags]


def _seconds(value: Any, time_base: Any) -> float | None:
    if not isinstance(value, int) or time_base is None:
        return None
    return _finite(value * time_base)


# --- normalised fields -------------------------------------------------------------------


def _fields(raw: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    fmt = raw["format"]
    tags = _lower_keys(fmt["tags"])
    streams = [s for s in raw["streams"] if "attached_pic" not in s.get("disposition", [])]
    video = next((s for s in streams if s.get("type") == "video"), None)
    audio = next((s for s in streams if s.get("type") == "audio"), None)
    fields: dict[str, Any] = {}
    _captured_at(fields, tags, video, problems)
    for field, keys in _TEXT_KEYS.items():
        text = next((t for key in keys if (t := _text(tags.get(key)))), None)
        if text:
            fields[field] = text
    location = next((tags[key] for key in _LOCATION_KEYS if key in tags), None)
    if location is None:  # "location-eng" and other languages of the same ©xyz atom
        location = next((tags[key] for key in tags if key.startswith("location")), None)
    if location is not None:
        position = _iso6709(str(location))
        if position:
            fields["gps"] = position
        else:
            _note(problems, f"location tag is not ISO 6709: {location!r}")
    duration = _finite(fmt.get("duration_s"))
    if duration is None and streams:
        duration = max((d for s in streams if (d := _finite(s.get("duration_s")))), default=None)
    if duration is not None and duration > 0:
        fields["duration_s"] = duration
    if isinstance(fmt.get("bit_rate"), int) and fmt["bit_rate"] > 0:
        fields["bit_rate"] = fmt["bit_rate"]
    if video is not None:
        _video_fields(fields, video, raw.get("QuickTime", {}).get("tracks", []))
    if audio is not None and audio.get("codec"):
        fields["audio_codec"] = audio["codec"]
    return fields


def _lower_keys(tags: dict[str, Any]) -> dict[str, Any]:
    lowered: dict[str, Any] = {}
    for key, value in tags.items():
        lowered.setdefault(key.lower(), value)
    return lowered


def _captured_at(
    fields: dict[str, Any], tags: dict[str, Any], video: dict[str, Any] | None, problems: list[str]
) -> None:
    """Apple's creationdate carries the local offset; creation_time is UTC (mvhd)."""
    stream_tags = _lower_keys(video.get("tags", {})) if video else {}
    for source in (tags, stream_tags):
        for key in _TIME_KEYS:
            if key not in source:
                continue
            when = _iso_time(source[key])
            if when is not None:
                _set_captured(fields, when, key)
                return
            _note(problems, f"{key} is not a usable time: {source[key]!r}")


def _video_fields(fields: dict[str, Any], video: dict[str, Any], tracks: list[Any]) -> None:
    if video.get("codec"):
        fields["video_codec"] = video["codec"]
    if video.get("width") and video.get("height"):
        fields["width"], fields["height"] = video["width"], video["height"]
    for key in ("average_rate", "guessed_rate"):
        rate = video.get(key)
        if isinstance(rate, list) and len(rate) == 2 and rate[1] and rate[0] > 0:
            fields["frame_rate"] = rate[0] / rate[1]
            break
    track: dict[str, Any] = next((t for t in tracks if t.get("handler") == "vide"), {})
    rotation = track.get("rotation")
    if rotation is None:
        tag = _lower_keys(video.get("tags", {})).get("rotate")
        number = _finite(tag) if isinstance(tag, str) else None
        rotation = int(number) % 360 if number is not None and number % 90 == 0 else None
    if rotation is not None:
        fields["rotation"] = rotation


_ISO6709 = re.compile(r"\s*([+-][\d.]+)([+-][\d.]+)([+-][\d.]+)?(?:CRS[\w:]*)?/?\s*$")


def _iso6709(text: str) -> dict[str, float] | None:
    """``+53.9000+027.5667+220.000/`` (and the ±DDMM / ±DDMMSS forms) as a GPS position."""
    match = _ISO6709.match(text)
    if match is None:
        return None
    lat, lon = _iso_angle(match[1], 2), _iso_angle(match[2], 3)
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180 or lat == lon == 0:
        return None
    position = {"lat": lat, "lon": lon}
    altitude = _finite(match[3]) if match[3] and match[3].count(".") <= 1 else None
    if altitude is not None:
        position["altitude_m"] = altitude
    return position


def _iso_angle(token: str, degree_digits: int) -> float | None:
    """One ISO 6709 angle; the count of integer digits says degrees, +minutes, +seconds."""
    whole, _, fraction = token[1:].partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        return None
    extra = len(whole) - degree_digits
    if extra not in (0, 2, 4):
        return None
    parts = [whole[:degree_digits], whole[degree_digits:][:2], whole[degree_digits + 2 :]]
    value = float(parts[0]) if extra else float(token[1:])
    if extra >= 2:
        minutes = float(parts[1] + ("." + fraction if extra == 2 and fraction else ""))
        value += minutes / 60
    if extra == 4:
        value += float(parts[2] + ("." + fraction if fraction else "")) / 3600
    return -value if token[0] == "-" else value


# --- ISO-BMFF track headers --------------------------------------------------------------


def _quicktime_tracks(fh: IO[bytes], problems: list[str]) -> list[dict[str, Any]]:
    """Handler, size and display matrix of every ``moov/trak``, from box headers only."""
    end = fh.seek(0, 2)
    tracks: list[dict[str, Any]] = []
    try:
        for kind, start, stop in _boxes(fh, 0, end):
            if kind == b"moov":
                for child, c_start, c_stop in _boxes(fh, start, stop):
                    if child == b"trak":
                        tracks.append(_track(fh, c_start, c_stop))
                break
    except ValueError as exc:
        _note(problems, f"QuickTime box structure broken: {exc}")
    return tracks


def _boxes(fh: IO[bytes], start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``[start, end)``."""
    position = start
    for _ in range(_MAX_BOXES):
        if position + 8 > end:
            return
        fh.seek(position)
        size, kind = struct.unpack(">I4s", fh.read(8))
        header = 8
        if size == 1:
            large = fh.read(8)
            if len(large) < 8:
                raise ValueError(f"{kind!r} box cut short")
            size, header = struct.unpack(">Q", large)[0], 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            raise ValueError(f"{kind!r} box at {position} declares {size} bytes")
        yield kind, position + header, position + size
        position += size
    raise ValueError(f"more than {_MAX_BOXES} boxes")


def _track(fh: IO[bytes], start: int, end: int) -> dict[str, Any]:
    track: dict[str, Any] = {}
    for kind, b_start, b_stop in _boxes(fh, start, end):
        if kind == b"tkhd":
            fh.seek(b_start)
            track.update(_tkhd(fh.read(min(b_stop - b_start, 96))))
        elif kind == b"mdia":
            for child, c_start, c_stop in _boxes(fh, b_start, b_stop):
                if child == b"hdlr" and c_stop - c_start >= 12:
                    fh.seek(c_start + 8)
                    track["handler"] = fh.read(4).decode("latin-1")
    return track


def _tkhd(data: bytes) -> dict[str, Any]:
    """The display matrix and size from a track header (version 0 or 1)."""
    matrix_at = 52 if data[:1] == b"\x01" else 40
    if len(data) < matrix_at + 44:
        return {}
    matrix = list(struct.unpack_from(">9i", data, matrix_at))
    width, height = struct.unpack_from(">II", data, matrix_at + 36)
    track: dict[str, Any] = {"matrix": matrix, "width": width / 65536, "height": height / 65536}
    rotation = _rotation(matrix)
    if rotation is not None:
        track["rotation"] = rotation
    return track


def _rotation(matrix: list[int]) -> int | None:
    """Clockwise degrees a player turns the picture, when the matrix is a pure rotation.

    This is the convention of ExifTool's ``Rotation`` and FFmpeg's old ``rotate`` tag: an
    upright phone video is stored landscape with rotation 90.
    """
    a, b, c, d = (value / 65536 for value in (matrix[0], matrix[1], matrix[3], matrix[4]))
    if not all(abs(v - round(v)) < 1e-3 and abs(v) <= 1 for v in (a, b, c, d)):
        return None
    if round(a * d - b * c) != 1:
        return None  # mirrored or degenerate: the matrix in raw says what it is
    return round(math.degrees(math.atan2(b, a))) % 360
