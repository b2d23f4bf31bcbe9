"""Types come from content, never from the name."""

from __future__ import annotations

import pytest

from sprava.domain.mediatype import sniff


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/quicktime"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", "video/x-matroska"),
        (b"II*\x00\x08\x00\x00\x00", "image/tiff"),
        (b"%PDF-1.7\n", "application/pdf"),
        ("Свидетель W7: задержание у метро\n".encode(), "text/plain"),
        (b"", "application/x-empty"),
        (b"\x00\x01\x02\x03binary", "application/octet-stream"),
    ],
    ids=["jpeg", "png", "mp4", "mov", "heic", "webp", "wav", "webm", "mkv", "tiff", "pdf",
         "utf8-text", "empty", "binary"],
)
def test_sniff_reads_content(head: bytes, expected: str) -> None:
    assert sniff(head) == expected


def test_text_cut_in_the_middle_of_a_character_is_still_text() -> None:
    text = ("ж" * 3000).encode()[:4095]  # 4 KiB head ending inside a two-byte character
    assert sniff(text) == "text/plain"
