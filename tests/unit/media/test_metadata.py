"""Image metadata from real camera files, every container that carries EXIF, and hostile input.

The camera JPEGs and their expected values are ExifRead's regression corpus
(``../shared/samples/exif-py``); a missing corpus fails the run rather than skipping it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from test_metadata_assets import (
    EXPECTED_JSON,
    GPS_SAMPLE,
    bomb_png,
    exif_block,
    image_file,
    itxt,
    jpeg_bytes,
    png_chunk,
    png_file,
    require_samples,
)

from sprava.domain.mediatype import sniff
from sprava.errors import BadInputError
from sprava.media.limits import MediaLimits
from sprava.media.metadata import SUPPORTED_MEDIA_TYPES, Metadata, extract, supports

ORIENTATIONS = {
    "Horizontal (normal)": 1,
    "Mirrored horizontal": 2,
    "Rotated 180": 3,
    "Mirrored vertical": 4,
    "Mirrored horizontal then rotated 90 CCW": 5,
    "Rotated 90 CW": 6,
    "Mirrored horizontal then rotated 90 CW": 7,
    "Rotated 90 CCW": 8,
}


def _published() -> dict[str, dict[str, Any]]:
    if not EXPECTED_JSON.is_file():
        return {"<samples missing>": {}}
    files: dict[str, dict[str, Any]] = json.loads(EXPECTED_JSON.read_text())["files"]
    return files


PUBLISHED = _published()


DEFAULT_LIMITS = MediaLimits()


def _extract(path: Path, limits: MediaLimits = DEFAULT_LIMITS) -> Metadata:
    """Extract as the pipeline does: the type is sniffed from content, not the name."""
    return extract(path, sniff(path.read_bytes()[:4096]), limits)


def _exif_time(text: str) -> str:
    date, clock = text.split(" ")
    return f"{date.replace(':', '-')}T{clock}"


def _fraction(text: str) -> Fraction:
    return Fraction(text.strip())


# --- the published values of the camera corpus ---------------------------------------------


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_camera_samples_match_published_values(name: str) -> None:
    folder = require_samples()
    expected = PUBLISHED[name]
    meta = _extract(folder / name)
    fields, raw = meta.fields, meta.raw

    if "Image Make" in expected:
        assert fields["camera_make"] == expected["Image Make"].strip()
        assert fields["camera_model"] == expected["Image Model"].strip()
    else:
        assert "camera_make" not in fields
    if "EXIF DateTimeOriginal" in expected:
        assert fields["captured_at"] == _exif_time(expected["EXIF DateTimeOriginal"])
        assert fields["captured_at_offset_known"] is False
        assert fields["captured_at_source"] == "DateTimeOriginal"
    else:
        assert "captured_at" not in fields
    if "Image Orientation" in expected:
        assert fields["orientation"] == ORIENTATIONS[expected["Image Orientation"]]
    if "Image DateTime" in expected:
        assert raw["IFD0"]["DateTime"] == expected["Image DateTime"]
    for axis in ("Width", "Length"):
        if f"EXIF ExifImage{axis}" in expected:
            assert raw["EXIF"][f"ExifImage{axis.replace('Length', 'Height')}"] == int(
                expected[f"EXIF ExifImage{axis}"]
            )

    decimal = expected.get("_decimal_lat_lon (computed by us from the rationals)")
    if decimal is None:
        assert "gps" not in fields
    else:
        assert fields["gps"]["lat"] == pytest.approx(decimal[0], abs=1e-6)
        assert fields["gps"]["lon"] == pytest.approx(decimal[1], abs=1e-6)
        assert raw["GPS"]["GPSMapDatum"].strip() == expected["GPS GPSMapDatum"]
        for tag in ("GPSLatitude", "GPSLongitude", "GPSTimeStamp"):
            published = expected[f"GPS {tag}"].strip("[]").split(",")
            assert [Fraction(n, d) for n, d in raw["GPS"][tag]] == [
                _fraction(part) for part in published
            ]
        assert fields["gps_time"].startswith(expected["GPS GPSDate"].replace(":", "-") + "T")
        assert fields["gps_time"].endswith("+00:00")

    json.dumps(raw, allow_nan=False)  # storable as it is
    assert raw["truncated"] is False


@pytest.mark.parametrize("n", range(1, 9))
def test_orientation_one_to_eight(n: int) -> None:
    meta = _extract(require_samples() / "jpg" / "orientation" / f"landscape_{n}.jpg")
    assert meta.fields["orientation"] == n
    # width and height are the stored grid; orientation says how to turn it for display
    stored = (600, 450) if n <= 4 else (450, 600)
    assert (meta.fields["width"], meta.fields["height"]) == stored


def test_maker_notes_are_kept_whole_as_hex() -> None:
    meta = _extract(require_samples() / "jpg" / "gps" / "DSCN0010.jpg")
    note = bytes.fromhex(meta.raw["MakerNote"]["$hex"])
    assert note.startswith(b"Nikon\x00")
    assert len(note) == 3298
    assert "MakerNote" not in meta.raw["EXIF"]
    assert meta.raw["Interop"]["InteropIndex"] == "R98"


def test_file_that_exifread_finds_no_exif_in() -> None:
    """ExifRead reports no EXIF here; ExifTool and Pillow find a Photoshop IFD0 and XMP.

    Nothing in it says when or where the picture was taken or by which camera, and the
    IFD0 DateTime (a save by Photoshop) must not be passed off as the capture time.
    """
    meta = _extract(require_samples() / "jpg" / "xmp" / "no_exif.jpg")
    assert meta.raw["IFD0"]["DateTime"] == "2014:09:22 10:56:35"
    for absent in ("captured_at", "camera_make", "camera_model", "gps"):
        assert absent not in meta.fields
    assert "Der Goalie bin ig" in meta.raw["XMP"]
    assert (meta.fields["width"], meta.fields["height"]) == (322, 466)


def test_orientation_from_xmp_when_exif_has_none() -> None:
    meta = _extract(require_samples() / "jpg" / "Canon_DIGITAL_IXUS_400.jpg")
    assert "Orientation" not in meta.raw["IFD0"]
    assert "<tiff:Orientation>1</tiff:Orientation>" in meta.raw["XMP"]
    assert meta.fields["orientation"] == 1  # as ExifTool reads it


def test_pixel_data_is_never_decoded(tmp_path: Path) -> None:
    """Image data that no decoder could read does not matter: only headers are parsed."""
    png = tmp_path / "broken-pixels.png"
    png.write_bytes(png_file(16, 16, before=[png_chunk(b"eXIf", exif_block())]).replace(
        zlib.compress(b"\x00" + bytes(16), 9), b"not zlib at all!"
    ))
    assert _extract(png).fields["camera_make"] == "Sprava Test Camera"
    assert _extract(png).raw["problems"] == []

    jpeg = bytearray(GPS_SAMPLE.read_bytes())
    scan = jpeg.rindex(b"\xff\xda")  # the main image; the thumbnail has its own
    jpeg[scan + 200 : -2] = b"\x00" * (len(jpeg) - scan - 202)  # scan data wiped
    broken = tmp_path / "broken-pixels.jpg"
    broken.write_bytes(bytes(jpeg))
    assert _extract(broken).fields == _extract(GPS_SAMPLE).fields


def test_picture_without_any_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.jpg"
    path.write_bytes(jpeg_bytes())
    meta = _extract(path)
    assert meta.fields == {"width": 8, "height": 6}
    assert not {"IFD0", "EXIF", "GPS", "XMP", "MakerNote"} & set(meta.raw)
    assert meta.raw["problems"] == []


def test_empty_gps_ifd_gives_no_position() -> None:
    meta = _extract(require_samples() / "jpg" / "tests" / "45-gps_ifd.jpg")
    assert "gps" not in meta.fields
    assert meta.fields["camera_model"] == "Gran Turismo 5"
    assert meta.fields["captured_at"] == "2012-06-23T06:55:49"


def test_gps_ifd_with_only_a_version_gives_no_position() -> None:
    meta = _extract(require_samples() / "jpg" / "Canon_40D.jpg")
    assert meta.raw["GPS"]["GPSVersionID"] == {"$hex": "02020000"}
    assert "gps" not in meta.fields


def test_zeroed_gps_is_unset_not_null_island(tmp_path: Path) -> None:
    path = tmp_path / "zero.jpg"
    path.write_bytes(jpeg_bytes(exif_block(lat=(0.0, "N"), lon=(0.0, "E"))))
    meta = _extract(path)
    assert "gps" not in meta.fields
    assert any("0,0" in problem for problem in meta.raw["problems"])


def test_southern_western_below_sea_level_with_direction(tmp_path: Path) -> None:
    path = tmp_path / "dead-sea.jpg"
    exif = exif_block(lat=(31.5, "S"), lon=(35.25, "W"), altitude=(430.5, 1), direction=271.5)
    path.write_bytes(jpeg_bytes(exif))
    gps = _extract(path).fields["gps"]
    assert gps["lat"] == pytest.approx(-31.5, abs=1e-7)
    assert gps["lon"] == pytest.approx(-35.25, abs=1e-7)
    assert gps["altitude_m"] == pytest.approx(-430.5)
    assert gps["direction_deg"] == pytest.approx(271.5)


def test_capture_time_with_offset_and_subseconds(tmp_path: Path) -> None:
    path = tmp_path / "t.jpg"
    path.write_bytes(jpeg_bytes(exif_block(subsec="120", offset="+03:00",
                                           serial="SN 0042", lens="50mm f/1.8")))
    fields = _extract(path).fields
    assert fields["captured_at"] == "2024-01-02T03:04:05.12+03:00"
    assert fields["captured_at_offset_known"] is True
    assert fields["camera_serial"] == "SN 0042"
    assert fields["lens"] == "50mm f/1.8"


@pytest.mark.parametrize(
    "taken", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2024:13:01 00:00:00"]
)
def test_unset_or_impossible_capture_time_is_left_out(tmp_path: Path, taken: str) -> None:
    path = tmp_path / "t.jpg"
    path.write_bytes(jpeg_bytes(exif_block(taken=taken)))
    meta = _extract(path)
    assert "captured_at" not in meta.fields
    assert any("DateTimeOriginal" in problem for problem in meta.raw["problems"])


# --- every container that carries EXIF --------------------------------------------------------


@pytest.mark.parametrize(
    "media_type", ["image/jpeg", "image/png", "image/webp", "image/tiff", "image/heic"]
)
def test_same_exif_in_every_container(tmp_path: Path, media_type: str) -> None:
    path = image_file(tmp_path / "picture", media_type, exif_block())
    meta = _extract(path)
    assert meta.raw["format"]["media_type"] == media_type
    fields = meta.fields
    assert fields["camera_make"] == "Sprava Test Camera"
    assert fields["camera_model"] == "Model 7"
    assert fields["captured_at"] == "2024-01-02T03:04:05+02:00"
    assert fields["gps"]["lat"] == pytest.approx(53.9, abs=1e-6)
    assert fields["gps"]["lon"] == pytest.approx(27.5667, abs=1e-6)
    assert fields["orientation"] == 6
    if media_type == "image/heic":  # libheif presents the picture already turned
        assert (fields["width"], fields["height"]) == (48, 64)
    else:
        assert (fields["width"], fields["height"]) == (64, 48)


def test_png_chunks_after_the_image_data_are_read_without_decoding(tmp_path: Path) -> None:
    xmp = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    path = tmp_path / "late.png"
    path.write_bytes(png_file(
        16, 8,
        before=[png_chunk(b"tEXt", b"Author\x00W7")],
        after=[
            png_chunk(b"eXIf", exif_block()),
            itxt("XML:com.adobe.xmp", xmp),
            itxt("Comment", "затримання біля метро", compressed=True),
            png_chunk(b"zTXt", b"Note\x00\x00" + zlib.compress(b"squeezed")),
            png_chunk(b"tIME", bytes.fromhex("07e8030509") + b"\x0a\x0b"),
        ],
    ))
    meta = _extract(path)
    assert meta.fields["camera_make"] == "Sprava Test Camera"
    assert meta.raw["XMP"] == xmp
    assert meta.raw["PNG"]["text"] == {
        "Author": "W7", "Comment": "затримання біля метро", "Note": "squeezed"
    }
    assert meta.raw["PNG"]["tIME"] == "2024-03-05T09:10:11Z"
    assert meta.raw["PNG"]["chunks"]["IDAT"] == 1
    assert meta.raw["problems"] == []


def test_png_imagemagick_raw_exif_profile(tmp_path: Path) -> None:
    block = exif_block(make="Magick")
    profile = f"\nexif\n{len(block):8d}\n{block.hex()}\n".encode()
    path = tmp_path / "magick.png"
    path.write_bytes(png_file(4, 4, before=[
        png_chunk(b"zTXt", b"Raw profile type exif\x00\x00" + zlib.compress(profile))
    ]))
    assert _extract(path).fields["camera_make"] == "Magick"


def test_png_text_bomb_is_noted_not_inflated(tmp_path: Path) -> None:
    bomb = zlib.compress(bytes(64 << 20), 9)  # 64 MiB of zeros in ~64 KB
    path = tmp_path / "ztxt-bomb.png"
    path.write_bytes(png_file(4, 4, before=[png_chunk(b"zTXt", b"Bomb\x00\x00" + bomb)]))
    started = time.perf_counter()
    meta = _extract(path)
    assert time.perf_counter() - started < 1.0
    assert any("inflates to more than" in problem for problem in meta.raw["problems"])


def test_png_bad_crc_and_truncation_are_noted(tmp_path: Path) -> None:
    chunk = bytearray(png_chunk(b"tEXt", b"Title\x00hello"))
    chunk[-1] ^= 0xFF
    data = png_file(4, 4, before=[bytes(chunk)])
    path = tmp_path / "cut.png"
    path.write_bytes(data[:-12])  # IEND gone
    meta = _extract(path)
    assert meta.raw["PNG"]["text"] == {"Title": "hello"}
    assert any("bad CRC" in problem for problem in meta.raw["problems"])
    assert any("truncated" in problem for problem in meta.raw["problems"])


# --- hostile input ----------------------------------------------------------------------------


def test_decompression_bomb_png_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png())
    started = time.perf_counter()
    with pytest.raises(BadInputError, match="50000 × 50000") as caught:
        _extract(path)
    assert time.perf_counter() - started < 1.0
    assert caught.value.code == "too-many-pixels"


def test_decompression_bomb_jpeg_meets_pillows_own_refusal(tmp_path: Path) -> None:
    header = bytearray(jpeg_bytes(size=(8, 8)))
    sof = header.index(b"\xff\xc0")
    header[sof + 5 : sof + 9] = (65_000).to_bytes(2, "big") * 2  # height, width
    path = tmp_path / "bomb.jpg"
    path.write_bytes(bytes(header))
    with pytest.raises(BadInputError) as caught:
        _extract(path)
    assert caught.value.code == "too-many-pixels"


def test_pixel_limit_is_ours_to_set() -> None:
    sample = require_samples() / "jpg" / "gps" / "DSCN0010.jpg"
    assert _extract(sample, MediaLimits(max_pixels=640 * 480)).fields["width"] == 640
    with pytest.raises(BadInputError, match="640 × 480") as caught:
        _extract(sample, MediaLimits(max_pixels=640 * 480 - 1))
    assert caught.value.code == "too-many-pixels"


def test_truncated_jpeg_header_is_corrupt_media(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(GPS_SAMPLE.read_bytes()[:500])
    with pytest.raises(BadInputError, match="image/jpeg") as caught:
        _extract(path)
    assert caught.value.code == "corrupt-media"
    assert caught.value.hint


def test_jpeg_cut_after_its_header_keeps_all_metadata(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(GPS_SAMPLE.read_bytes()[:40_000])
    assert _extract(path).fields == _extract(GPS_SAMPLE).fields


@pytest.mark.parametrize("media_type", sorted(SUPPORTED_MEDIA_TYPES))
def test_garbage_is_corrupt_media(tmp_path: Path, media_type: str) -> None:
    path = tmp_path / "garbage"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(BadInputError) as caught:
        extract(path, media_type)
    assert caught.value.code == "corrupt-media"


def test_malformed_exif_yields_what_can_be_read(tmp_path: Path) -> None:
    """Bad offsets, a count of 2³¹, a directory pointing past the end: notes, not a crash."""
    def entry(tag: int, kind: int, count: int, value: bytes) -> bytes:
        return tag.to_bytes(2, "big") + kind.to_bytes(2, "big") + count.to_bytes(4, "big") + value

    entries = [
        entry(0x010F, 2, 6, (0x80).to_bytes(4, "big")),  # Make, fine
        entry(0x0110, 2, 0x7FFFFFFF, (0x90).to_bytes(4, "big")),  # Model, absurd count
        entry(0x0112, 3, 1, (6).to_bytes(2, "big") + b"\0\0"),  # Orientation, fine
        entry(0x8769, 4, 1, (0xFFFFFF00).to_bytes(4, "big")),  # Exif IFD past the end
        entry(0x8825, 4, 1, (0xA0).to_bytes(4, "big")),  # GPS IFD claiming 65535 entries
    ]
    ifd = len(entries).to_bytes(2, "big") + b"".join(entries) + (0xFFFF0000).to_bytes(4, "big")
    tiff = (b"MM\x00\x2a" + (8).to_bytes(4, "big") + ifd).ljust(0x80, b"\0")
    tiff += b"Canon\0".ljust(32, b"\0") + b"\xff\xff" + b"\x00\x02\x00\x05" * 3
    path = tmp_path / "bad-exif.jpg"
    path.write_bytes(jpeg_bytes(b"Exif\x00\x00" + tiff))

    meta = _extract(path)
    assert meta.fields["camera_make"] == "Canon"
    assert meta.fields["orientation"] == 6
    assert "camera_model" not in meta.fields
    problems = " | ".join(meta.raw["problems"])
    assert "Skipping tag 272" in problems
    assert "EXIF IFD pointer present" in problems


def test_exif_that_is_not_tiff_is_a_note(tmp_path: Path) -> None:
    path = tmp_path / "junk-exif.jpg"
    path.write_bytes(jpeg_bytes(b"Exif\x00\x00this is not a TIFF header at all"))
    meta = _extract(path)
    assert meta.fields == {"width": 8, "height": 6}
    assert any("EXIF unreadable" in problem for problem in meta.raw["problems"])


# --- the extractor is chosen by content type --------------------------------------------------


def test_type_decides_not_the_name(tmp_path: Path) -> None:
    disguised = tmp_path / "holiday.png"
    shutil.copy(GPS_SAMPLE, disguised)
    assert extract(disguised, "image/jpeg").fields["camera_model"] == "COOLPIX P6000"
    with pytest.raises(BadInputError) as caught:
        extract(disguised, "image/png")  # the parser is pinned to the sniffed type
    assert caught.value.code == "corrupt-media"


def test_unsupported_type_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(b"%PDF-1.7\n")
    assert not supports("application/pdf")
    assert supports("image/jpeg; charset=binary")
    with pytest.raises(BadInputError, match="application/pdf") as caught:
        extract(path, "application/pdf")
    assert caught.value.code == "unsupported-media-type"


def test_missing_file_is_not_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        extract(tmp_path / "gone.jpg", "image/jpeg")


# --- the raw dump stays storable --------------------------------------------------------------


def test_raw_is_cut_to_the_limit_largest_values_first() -> None:
    sample = require_samples() / "jpg" / "Sony_alpha_a58.JPG"
    whole = _extract(sample)
    cut = _extract(sample, MediaLimits(max_metadata_bytes=8_000))
    assert len(json.dumps(whole.raw, ensure_ascii=False, separators=(",", ":"))) > 8_000
    assert len(json.dumps(cut.raw, ensure_ascii=False, separators=(",", ":")).encode()) <= 8_000
    assert cut.raw["truncated"] is True
    assert "$omitted_bytes" in cut.raw["MakerNote"]
    assert cut.raw["IFD0"]["Make"] == "SONY"  # small values survive
    assert cut.fields == whole.fields  # the normalised fields are never cut


def test_tiny_limit_still_gives_valid_json() -> None:
    meta = _extract(GPS_SAMPLE, MediaLimits(max_metadata_bytes=64))
    assert meta.raw["truncated"] is True
    assert len(json.dumps(meta.raw, separators=(",", ":"))) <= 64
    assert meta.fields["camera_make"] == "NIKON"


def test_metadata_is_frozen() -> None:
    meta = _extract(GPS_SAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.fields = {}  # type: ignore[misc]
