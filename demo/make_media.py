"""Generate the demo's sample media on the spot (nothing is downloaded).

Writes a small folder that exercises what a documentation team meets in practice:
photos (PNG, drawn here), a re-post of one of them under another name, a pseudonymous
witness statement, an empty file (kept: it is evidence too) and a file name that is not
valid UTF-8, as phones and old archives produce.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path


def _png(width: int, height: int, pixel) -> bytes:
    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def make(folder: Path) -> None:
    photos = folder / "2020-08-10 Pushkinskaya"
    photos.mkdir(parents=True, exist_ok=True)
    scenes = {
        "IMG_0412.png": lambda x, y: (20 + x % 60, 30 + y % 90, 120),
        "IMG_0413.png": lambda x, y: (200 - y % 100, 40, 60 + x % 80),
        "IMG_0417.png": lambda x, y: ((x * y) % 256, 90, 90),
    }
    for name, pixel in scenes.items():
        (photos / name).write_bytes(_png(160, 120, pixel))
    reposts = folder / "telegram re-posts"
    reposts.mkdir(exist_ok=True)
    (reposts / "photo_2020-08-11_09-14-02.png").write_bytes((photos / "IMG_0412.png").read_bytes())
    # The same scene cropped by a few pixels on the left, as re-posts often are.
    first = scenes["IMG_0412.png"]
    (reposts / "photo_2020-08-11_10-02-45.png").write_bytes(
        _png(155, 120, lambda x, y: first(x + 5, y)))
    (folder / "statement-witness-W7.txt").write_text(
        "Statement of witness W7 (pseudonym), taken 2020-08-12.\n"
        "At about 22:40 a group of riot police without insignia detained three people\n"
        "near the metro exit and beat one of them on the ground.\n", encoding="utf-8")
    (folder / "empty-upload.bin").write_bytes(b"")
    odd = os.fsencode(folder) + b"/scan-\xff\xfe-cp1251.txt"
    with open(odd, "wb") as handle:
        handle.write("Протокол задержания (скан)\n".encode("cp1251"))


if __name__ == "__main__":
    make(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-media"))
