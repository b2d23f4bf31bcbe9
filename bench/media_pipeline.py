"""Whole media pipeline: ``sprava ingest FOLDER --wait`` on photos and on a video.

Photos: the sample photos of ../shared/samples (camera JPEGs, group photos with faces,
ThreatExchange's photo and its edits), made into N distinct files by re-encoding each at a
different size, crop and quality (as messengers re-post them). Everything the pipeline does
is timed: ingest with custody events, metadata, PDQ with its variants, clustering, and the
redacted thumbnail. Video: a 720p clip built from the sample faces moving over a
background, ingested and analysed the same way (seconds of video per second).
No peer is named for this figure; it is what a team can expect per machine.
"""

from __future__ import annotations

import random
from pathlib import Path

from bench.common import REPO, Ctx, Result, Row, json_lines, log, measure, run_quiet

NAME = "media_pipeline"
SAMPLES = REPO.parent / "shared" / "samples"


def _sources() -> list[Path]:
    found = sorted((SAMPLES / "dlib-faces").glob("*.jpg"))
    found += sorted((SAMPLES / "exif-py" / "jpg").glob("*.jpg"))
    found += sorted((SAMPLES / "threatexchange-pdq" / "bridge-mods").glob("*.jpg"))
    if not found:
        raise RuntimeError(f"no sample photos under {SAMPLES}")
    return found


def make_photos(folder: Path, count: int, seed: int = 1) -> None:
    from PIL import Image

    folder.mkdir()
    rnd = random.Random(seed)
    sources = []
    for path in _sources():
        with Image.open(path) as image:
            sources.append(image.convert("RGB"))
    for i in range(count):
        image = sources[i % len(sources)]
        scale = rnd.uniform(0.5, 1.0)
        cut = rnd.uniform(0.0, 0.08)
        w, h = image.size
        box = (int(w * cut * rnd.random()), int(h * cut * rnd.random()), w, h)
        copy = image.crop(box)
        copy = copy.resize((max(32, int(copy.width * scale)), max(32, int(copy.height * scale))))
        copy.save(folder / f"photo-{i:05d}.jpg", quality=rnd.randint(60, 95))


def make_video(path: Path, seconds: int, fps: int = 25) -> None:
    import av
    import numpy as np
    from PIL import Image

    faces = []
    for src in sorted((SAMPLES / "dlib-faces").glob("*.jpg"))[:3]:
        with Image.open(src) as image:
            faces.append(image.convert("RGB").resize((320, 240)))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for n in range(seconds * fps):
            canvas = Image.new("RGB", (1280, 720), (40, 60, 80))
            for k, face in enumerate(faces):
                x = (n * (3 + k) + k * 400) % (1280 - 320)
                canvas.paste(face, (x, 80 + k * 200))
            frame = av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _pipeline(ctx: Ctx, src: Path, home: Path) -> tuple[float, int, int]:
    run_quiet([ctx.sprava, "--home", home, "init", "--json"])
    ctx.prepare_cache(src)
    m = measure([ctx.sprava, "--home", home, "ingest", src, "--wait", "--json"])
    stored = sum(1 for r in json_lines(m.stdout) if r.get("status") == "stored")
    jobs = json_lines(run_quiet([ctx.sprava, "--home", home, "jobs", "--json"]))[0]
    if jobs["counts"]["queued"] or jobs["counts"]["running"]:
        raise RuntimeError(f"analysis did not finish: {jobs['counts']}")
    return m.seconds, stored, int(jobs["counts"]["done"])


def run(ctx: Ctx) -> Result:
    photos = 100 if ctx.quick else 1_000
    seconds = 5 if ctx.quick else 20
    result = Result(NAME, f"ingest and analysis of {photos:,} photos and of a {seconds} s "
                          "720p video, `sprava ingest --wait` (2 workers)")
    with ctx.tempdir(NAME) as tmp:
        log(f"making {photos:,} photos")
        make_photos(tmp / "photos", photos)
        took, stored, done = _pipeline(ctx, tmp / "photos", tmp / "inst-photos")
        log(f"photos: {took:.1f} s, {stored} stored, {done} analysed")
        result.rows.append(Row("photos analysed per second", "items/s", stored / took))
        result.rows.append(Row("seconds per photo (wall, 2 workers)", "s", took / stored))
        log(f"making a {seconds} s 720p video")
        (tmp / "video").mkdir()
        make_video(tmp / "video" / "clip.mp4", seconds)
        took_v, _, done_v = _pipeline(ctx, tmp / "video", tmp / "inst-video")
        log(f"video: {took_v:.1f} s, {done_v} analysed")
        result.rows.append(Row("video seconds analysed per second", "s/s", seconds / took_v))
        result.notes.append(
            "each photo: ingest with its custody event, metadata, PDQ with 27 variants, "
            "clustering, and a redacted thumbnail (faces detected on a 1280 px copy); the "
            "video: ingest, metadata, PDQ of about one frame a second, redacted thumbnail")
        result.details.update(photos=photos, photo_seconds=took, video_seconds=seconds,
                              video_wall=took_v)
    return result
