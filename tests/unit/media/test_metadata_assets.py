"""Files the metadata tests build, and checks that they are what they claim to be.

Real camera files come from ``/work/shared/samples`` (never copied into the project); what
no sample covers (EXIF in PNG, WebP, TIFF and HEIC, time offsets, southern and western
positions, videos with location tags, decompression bombs) is written here with Pillow,
pillow-heif and PyAV, so every test reads real files that real decoders accept.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "samples"
EXIF_PY = SAMPLES / "exif-py"
EXPECTED_JSON = EXIF_PY / "expected_exif.json"
GPS_SAMPLE = EXIF_PY / "jpg" / "gps" / "DSCN0010.jpg"

CREATION_TIME = "2024-03-05T10:11:12.000000Z"
ISO6709 = "+53.9000+027.5667+220.000/"
PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP",
               "image/tiff": "TIFF", "image/heic": "HEIF"}


def require_samples() -> Path:
    """The shared samples folder; its absence fails the run (a skipped oracle proves nothing)."""
    assert EXPECTED_JSON.is_file(), (
        f"sample media missing: {EXPECTED_JSON} not found. The metadata tests read real "
        "camera files from ../shared/samples/exif-py (see ../shared/samples/README.md)."
    )
    return EXIF_PY


def sample_jpegs() -> list[Path]:
    jpg = EXIF_PY / "jpg"
    return sorted(p for p in jpg.rglob("*") if p.suffix.lower() == ".jpg")


# --- images -------------------------------------------------------------------------------


def exif_block(
    *,
    make: str | None = "Sprava Test Camera",
    model: str | None = "Model 7",
    taken: str | None = "2024:01:02 03:04:05",
    offset: str | None = "+02:00",
    subsec: str | None = None,
    orientation: int | None = 6,
    lat: tuple[float, str] | None = (53.9, "N"),
    lon: tuple[float, str] | None = (27.5667, "E"),
    altitude: tuple[float, int] | None = None,
    direction: float | None = None,
    serial: str | None = None,
    lens: str | None = None,
) -> bytes:
    """An EXIF block written by Pillow, as a camera would lay it out (IFD0, Exif, GPS)."""
    exif = Image.Exif()
    for tag, value in ((0x010F, make), (0x0110, model), (0x0112, orientation)):
        if value is not None:
            exif[tag] = value
    sub = exif.get_ifd(0x8769)
    for tag, value in ((0x9003, taken), (0x9011, offset), (0x9291, subsec),
                       (0xA431, serial), (0xA434, lens)):
        if value is not None:
            sub[tag] = value
    gps = exif.get_ifd(0x8825)
    if lat is not None and lon is not None:
        gps[1], gps[2] = lat[1], _dms(lat[0])
        gps[3], gps[4] = lon[1], _dms(lon[0])
    if altitude is not None:
        gps[5], gps[6] = bytes([altitude[1]]), Fraction(altitude[0]).limit_denominator(1000)
    if direction is not None:
        gps[16], gps[17] = "T", Fraction(direction).limit_denominator(100)
    return exif.tobytes()


def _dms(degrees: float) -> tuple[Fraction, Fraction, Fraction]:
    whole = int(degrees)
    minutes = int((degrees - whole) * 60)
    seconds = Fraction((degrees - whole) * 3600 - minutes * 60).limit_denominator(10_000)
    return Fraction(whole), Fraction(minutes), seconds


def image_file(path: Path, media_type: str, exif: bytes | None = None,
               size: tuple[int, int] = (64, 48)) -> Path:
    """A small real image of ``media_type`` carrying ``exif``."""
    if media_type == "image/heic":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    image = Image.new("RGB", size, (200, 30, 30))
    options: dict[str, Any] = {"exif": exif} if exif else {}
    image.save(path, format=PIL_FORMATS[media_type], **options)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_file(width: int, height: int, *, before: Sequence[bytes] = (), after: Sequence[bytes] = (),
             rows: int | None = None) -> bytes:
    """A grey PNG with extra chunks before and after its image data.

    ``rows`` limits the IDAT to that many rows: a header may promise far more than the
    data holds, which is exactly what a decompression bomb does.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    scanlines = b"".join(b"\x00" + bytes(width) for _ in range(height if rows is None else rows))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + b"".join(before)
            + png_chunk(b"IDAT", zlib.compress(scanlines, 9)) + b"".join(after)
            + png_chunk(b"IEND", b""))


def bomb_png() -> bytes:
    """A valid PNG header declaring 50,000 × 50,000 pixels, with a tiny IDAT: a few KB."""
    return png_file(50_000, 50_000, rows=40)


def itxt(keyword: str, text: str, *, compressed: bool = False) -> bytes:
    body = zlib.compress(text.encode()) if compressed else text.encode()
    flag = b"\x01\x00" if compressed else b"\x00\x00"
    return png_chunk(b"iTXt", keyword.encode("latin-1") + b"\x00" + flag + b"\x00\x00" + body)


def jpeg_bytes(exif: bytes | None = None, size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, Any] = {"exif": exif} if exif else {}
    Image.new("RGB", size, (10, 120, 10)).save(buffer, "JPEG", **options)
    return buffer.getvalue()


# --- video --------------------------------------------------------------------------------


def encoder(*names: str) -> str:
    """The first of ``names`` this PyAV build can encode with."""
    for name in names:
        try:
            av.Codec(name, "w")
        except (av.FFmpegError, ValueError):
            continue
        return name
    pytest.fail(f"this PyAV build has none of the encoders {names}")


def video_file(
    path: Path,
    container: str,
    codec: str,
    *,
    tags: dict[str, str] | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    audio: str | None = None,
    size: tuple[int, int] = (64, 48),
) -> Path:
    """Ten frames of noise at 25 fps, with container tags, a display rotation and audio."""
    rng = np.random.default_rng(7)
    width, height = size
    with av.open(str(path), "w", format=container, options=options or {}) as out:
        for key, value in (tags or {}).items():
            out.metadata[key] = value
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        sound = out.add_stream(audio, rate=48_000) if audio else None
        for _ in range(10):
            noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noise, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            _silence(out, sound, 0.4)
    return path


def audio_file(path: Path, container: str, codec: str, tags: dict[str, str]) -> Path:
    with av.open(str(path), "w", format=container) as out:
        for key, value in tags.items():
            out.metadata[key] = value
        _silence(out, out.add_stream(codec, rate=48_000), 1.0)
    return path


def _silence(out: Any, stream: Any, seconds: float) -> None:
    for start in range(0, int(48_000 * seconds), 960):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = 48_000, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


# --- the assets are what they claim -------------------------------------------------------


def test_bomb_png_is_a_valid_header_of_a_few_kilobytes() -> None:
    data = bomb_png()
    assert len(data) < 8_000
    with pytest.raises(Image.DecompressionBombError, match="2500000000 pixels"):
        Image.open(io.BytesIO(data))  # Pillow parses the header and refuses, as it should


def test_built_images_carry_their_exif(tmp_path: Path) -> None:
    for media_type, fmt in PIL_FORMATS.items():
        path = image_file(tmp_path / f"x.{fmt.lower()}", media_type, exif_block())
        if media_type == "image/heic":
            continue  # pillow-heif checks itself; its orientation handling is tested elsewhere
        with Image.open(path) as image:
            assert image.getexif()[0x010F] == "Sprava Test Camera", fmt
