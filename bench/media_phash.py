"""PDQ hashing throughput against imagehash.phash on the same generated photo set.

``python -m bench.media_phash [--quick]`` runs it alone. The set is made from the sample
photos in ``../shared/samples`` (resized from 512 px to 12-megapixel 4032 px, cropped,
re-encoded as JPEG, PNG and WebP): 240 images, or 200 smaller ones with --quick.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path

from bench.common import (
    REPO,
    Ctx,
    Result,
    Row,
    log,
    median,
    percentile,
    print_machine,
    print_result,
)

NAME = "media_phash"
SAMPLES = REPO.parent / "shared" / "samples"
SOURCES = [
    *sorted((SAMPLES / "threatexchange-pdq" / "reg-test-input" / "labelme-subset").glob("*.jpg")),
    SAMPLES / "threatexchange-pdq" / "reg-test-input" / "dih" / "bridge-1-original.jpg",
    SAMPLES / "threatexchange-pdq" / "reg-test-input" / "pen-and-coaster.png",
    SAMPLES / "threatexchange-pdq" / "misc-images" / "c.png",
    *sorted((SAMPLES / "face_recognition").glob("*.jpg")),
    *sorted((SAMPLES / "dlib-faces").glob("*.jpg")),
    *sorted((SAMPLES / "exif-py" / "jpg" / "gps").glob("*.jpg"))[:3],
]
# (long side in px, share of the picture kept by a centred crop, format, JPEG/WebP quality)
VARIANTS = [(640, 1.0, "JPEG", 85), (1024, 1.0, "JPEG", 90), (1600, 0.9, "JPEG", 85),
            (2048, 1.0, "JPEG", 92), (4032, 1.0, "JPEG", 90), (1024, 0.8, "PNG", 0),
            (800, 1.0, "WEBP", 80), (1280, 0.95, "JPEG", 75), (3024, 1.0, "JPEG", 88),
            (512, 1.0, "PNG", 0)]
QUICK_VARIANTS = [(640, 1.0, "JPEG", 85), (1024, 1.0, "JPEG", 90), (1600, 0.9, "JPEG", 85),
                  (1024, 0.8, "PNG", 0), (800, 1.0, "WEBP", 80), (1280, 0.95, "JPEG", 75),
                  (512, 1.0, "PNG", 0), (320, 1.0, "JPEG", 80)]
PDQ_MATCH, PHASH_MATCH = 31, 10  # bits: PDQ's threshold of 256; a usual one for pHash's 64
BUCKETS = [("≤ 1024 px", 0, 1024), ("1025–2048 px", 1025, 2048), ("> 2048 px", 2049, 10**9)]


@dataclass(frozen=True)
class _Image:
    path: Path
    source: int  # which sample photo it was made from
    side: int  # long side in px
    cropped: bool


def _make_set(folder: Path, quick: bool) -> list[_Image]:
    """Write the images, cycling through the sources and each source's variants."""
    from PIL import Image

    variants = QUICK_VARIANTS if quick else VARIANTS
    want = 200 if quick else 240
    made: list[_Image] = []
    plan = cycle(enumerate(SOURCES))
    per_source: dict[int, int] = {}
    while len(made) < want:
        number, source = next(plan)
        k = per_source.get(number, 0)
        per_source[number] = k + 1
        side, keep, fmt, quality = variants[k % len(variants)]
        with Image.open(source) as image:
            picture = image.convert("RGB")
        if keep < 1.0:
            w, h = picture.size
            dx, dy = round(w * (1 - keep) / 2), round(h * (1 - keep) / 2)
            picture = picture.crop((dx, dy, w - dx, h - dy))
        scale = side / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * scale)),
                                  max(1, round(picture.height * scale))),
                                 Image.Resampling.LANCZOS)
        path = folder / f"{len(made):03d}-{number:02d}-{side}.{fmt.lower()}"
        options = {"quality": quality} if quality else {}
        picture.save(path, fmt, **options)
        made.append(_Image(path, number, side, keep < 1.0))
    return made


def _sprava(path: Path) -> str:
    from sprava.media.phash import pdq_image

    return pdq_image(path).hex


def _imagehash(path: Path) -> str:
    import imagehash
    from PIL import Image

    with Image.open(path) as image:
        return str(imagehash.phash(image))


def _check_peers() -> None:
    """Both sides as their authors publish them, before timing anything."""
    expected = json.loads((SAMPLES / "imagehash" / "expected_hashes.json").read_text())
    want = expected["imagehash.png"]["phash"]["hex"]
    got = _imagehash(SAMPLES / "imagehash" / "imagehash.png")
    if got != want:
        raise RuntimeError(f"imagehash.phash gives {got}, its own tests expect {want}")
    java = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    if _sprava(SOURCES[7]) != java:  # bridge-1-original, as PDQHasherTest.java asserts
        raise RuntimeError("Sprava's PDQ differs from ThreatExchange's Java reference")


def _timed(images: list[_Image], hasher: Callable[[Path], str]
           ) -> tuple[float, list[float], list[str]]:
    times, hashes = [], []
    began = time.perf_counter()
    for image in images:
        start = time.perf_counter()
        hashes.append(hasher(image.path))
        times.append(time.perf_counter() - start)
    return time.perf_counter() - began, times, hashes


def _matching(images: list[_Image], hashes: list[str], bits: int) -> dict[str, float]:
    """Shares of image pairs within ``bits``: variants of one photo (resized and
    re-encoded only, or with a crop on either side), and pairs of different photos."""
    values = [int(h, 16) for h in hashes]
    pairs: dict[str, list[int]] = {"resized": [0, 0], "cropped": [0, 0], "different": [0, 0]}
    for i, a in enumerate(images):
        for j in range(i + 1, len(images)):
            b = images[j]
            kind = ("different" if a.source != b.source
                    else "cropped" if a.cropped or b.cropped else "resized")
            pairs[kind][0] += 1
            pairs[kind][1] += (values[i] ^ values[j]).bit_count() <= bits
    return {kind: 100 * hit / total for kind, (total, hit) in pairs.items()}


def run(ctx: Ctx) -> Result:
    rounds = 1 if ctx.quick else 3
    result = Result(NAME, "perceptual hashes per second, from file to hex, one process")
    for source in SOURCES:
        if not source.is_file():
            raise RuntimeError(f"sample missing: {source}")
    _check_peers()
    with ctx.tempdir(NAME) as tmp:
        log(f"writing the image set from {len(SOURCES)} sample photos")
        images = _make_set(tmp, ctx.quick)
        megapixels = sum(_pixels(image.path) for image in images) / 1e6
        log(f"{len(images)} images, {megapixels:,.0f} megapixels; {rounds} round(s), "
            "the two hashers alternating")
        totals: dict[str, list[float]] = {"sprava": [], "peer": []}
        per_image: dict[str, list[list[float]]] = {"sprava": [], "peer": []}
        hashes: dict[str, list[str]] = {}
        for _ in range(rounds):
            for who, hasher in (("sprava", _sprava), ("peer", _imagehash)):
                ctx.prepare_cache(tmp)
                total, times, out = _timed(images, hasher)
                totals[who].append(total)
                per_image[who].append(times)
                hashes[who] = out
    peer = "imagehash.phash"
    n = len(images)
    s_rate, p_rate = n / median(totals["sprava"]), n / median(totals["peer"])
    result.rows.append(Row(f"images/s, all {n}", "/s", s_rate, peer, p_rate))
    result.rows.append(Row("megapixels/s, all", "MP/s", megapixels * s_rate / n, peer,
                           megapixels * p_rate / n))
    for label, low, high in BUCKETS:
        chosen = [i for i, image in enumerate(images) if low <= image.side <= high]
        if not chosen:
            continue
        s_ms = [min(r[i] for r in per_image["sprava"]) * 1e3 for i in chosen]
        p_ms = [min(r[i] for r in per_image["peer"]) * 1e3 for i in chosen]
        result.rows.append(Row(f"ms per image, {label} ({len(chosen)})", "ms", median(s_ms),
                               peer, median(p_ms)))
        result.rows.append(Row(f"p99 ms per image, {label}", "ms", percentile(s_ms, 99),
                               peer, percentile(p_ms, 99)))
    s_match = _matching(images, hashes["sprava"], PDQ_MATCH)
    p_match = _matching(images, hashes["peer"], PHASH_MATCH)
    result.rows += [
        Row("pairs matched: same photo, resized/re-encoded", "%", s_match["resized"], peer,
            p_match["resized"]),
        Row("pairs matched: same photo, one side cropped", "%", s_match["cropped"], peer,
            p_match["cropped"]),
        Row("pairs matched: different photos", "%", s_match["different"], peer,
            p_match["different"]),
    ]
    result.notes += [
        "Both read each file, decode it with Pillow and hash it; Sprava's PDQ reduces large "
        "JPEGs while decoding (to 2048 px), imagehash decodes at full size.",
        f"Rates use the median of {rounds} round(s); per-image figures take each image's "
        "fastest round.",
        f"Matching: PDQ at ≤ {PDQ_MATCH} of 256 bits, pHash at ≤ {PHASH_MATCH} of 64, over "
        "every pair of images in the set; variants of one photo are resized (320 to 4032 "
        "px), re-encoded (JPEG 75–92, PNG, WebP) and some centre-cropped by 5–20%.",
        "Checked first: imagehash.phash reproduces its own test value for imagehash.png; "
        "Sprava's PDQ of bridge-1-original.jpg equals ThreatExchange's Java test hash.",
    ]
    result.details = {"images": n, "megapixels": megapixels,
                      "sprava_seconds": totals["sprava"], "peer_seconds": totals["peer"]}
    return result


def _pixels(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return int(image.width * image.height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.media_phash",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="200 smaller images and one round")
    args = parser.parse_args(argv)
    from bench.common import machine

    print_machine(machine(), "hot")
    print_result(run(Ctx(quick=args.quick, cache="hot", sprava="")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
