"""Face redaction: Sprava beside the ``deface`` command line, on the same clip and threshold.

Run alone with ``python -m bench.media_redact [--quick]``. The clip (720p, 25 fps, 10 s;
4 s with ``--quick``) is generated into a temporary folder from the 43 hand-labelled faces
of ``../shared/samples/dlib-faces``: 16 faces of 12–23 px and 8 of 30–80 px drifting
over a textured background, so every face's box is known in every frame.

Speed: each tool redacts the clip with its defaults (blur), as a separate process,
start-up and model loading included; frames per second = frames ÷ wall time.
Recall: each tool redacts the clip again painting faces solid black (deface
``--replacewith solid``, rectangles), and a labelled face counts as covered in a frame if
at least 80 % of its box is black in the output. The same rule is applied to the 43
labelled faces in their photos and to a still crowd of 12–20 px faces, where deface's
detector is run through its Python API exactly as its command line runs it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    REPO,
    RESULTS,
    Ctx,
    Result,
    Row,
    log,
    machine,
    measure,
    median,
    print_machine,
)
from bench.common import print_result as _print_result

NAME = "media_redact"
SAMPLES = REPO.parent / "shared" / "samples" / "dlib-faces"
WIDTH, HEIGHT, FPS = 1280, 720, 25
THRESHOLD = 0.2
SMALL = 24  # "small" faces are narrower than this many pixels
COVERED = 0.8  # share of a labelled box that must be obscured
DARK = 40  # solid-filled pixels stay below this after H.264; the scene never goes there


@dataclass(frozen=True)
class Face:
    """A labelled face cut from its photo with some context around it."""

    pixels: np.ndarray
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 inside ``pixels``


def labelled() -> dict[str, list[tuple[int, int, int, int]]]:
    """The hand-labelled boxes (x0, y0, x1, y1) per photo."""
    data = json.loads((SAMPLES / "expected_faces.json").read_text())
    return {name: [(b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"])
                   for b in entry["boxes_ltwh"]] for name, entry in sorted(data.items())}


def photo(name: str) -> np.ndarray:
    from PIL import Image

    with Image.open(SAMPLES / name) as image:
        return np.array(image.convert("RGB"))


def faces(margin: float = 0.5) -> list[Face]:
    cut = []
    for name, boxes in labelled().items():
        image = photo(name)
        height, width = image.shape[:2]
        for x0, y0, x1, y1 in boxes:
            m = round(max(x1 - x0, y1 - y0) * margin)
            cx0, cy0 = max(0, x0 - m), max(0, y0 - m)
            cx1, cy1 = min(width, x1 + m), min(height, y1 + m)
            cut.append(Face(image[cy0:cy1, cx0:cx1].copy(),
                            (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0)))
    return cut


def background(seed: int) -> np.ndarray:
    """Textured, never dark, so that solid black in the output can only be redaction."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (HEIGHT // 16, WIDTH // 16, 3), dtype=np.uint8)
    scene = cv2.GaussianBlur(cv2.resize(coarse, (WIDTH, HEIGHT),
                                        interpolation=cv2.INTER_CUBIC), (0, 0), 3)
    return np.clip(scene, DARK + 20, 235).astype(np.uint8)


def paste(scene: np.ndarray, face: Face, x: float, y: float, width: float,
          owner: np.ndarray | None = None, ident: int = 0) -> tuple[float, float, float, float]:
    """Paste ``face`` so that its labelled box is ``width`` px wide with corner (x, y).

    ``owner`` (if given) records which face each pixel now shows, so that a face hidden
    by a later one can be left out of the ground truth.
    """
    import cv2

    fx0, fy0, fx1, _ = face.box
    scale = width / (fx1 - fx0)
    crop = cv2.resize(face.pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    left, top = round(x - fx0 * scale), round(y - fy0 * scale)
    h, w = crop.shape[:2]
    sx0, sy0 = max(0, left), max(0, top)
    sx1, sy1 = min(scene.shape[1], left + w), min(scene.shape[0], top + h)
    if sx1 > sx0 and sy1 > sy0:
        scene[sy0:sy1, sx0:sx1] = crop[sy0 - top:sy1 - top, sx0 - left:sx1 - left]
        if owner is not None:
            owner[sy0:sy1, sx0:sx1] = ident
    bx0, by0, bx1, by1 = (v * scale for v in face.box)
    return left + bx0, top + by0, left + bx1, top + by1


def visible(owner: np.ndarray, ident: int, box: tuple[float, ...]) -> bool:
    """Whether at least 90 % of the box still shows face ``ident`` (and is in the frame)."""
    x0, y0, x1, y1 = (round(v) for v in box)
    if x0 < 0 or y0 < 0 or x1 > owner.shape[1] or y1 > owner.shape[0] or x1 <= x0:
        return False
    return bool((owner[y0:y1, x0:x1] == ident).mean() >= 0.9)


class Clip:
    """A deterministic scene: faces drifting (and bouncing off the edges) over texture."""

    def __init__(self, seconds: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.frames = seconds * FPS
        self.faces = faces()
        count = 24
        self.sizes = np.concatenate([rng.uniform(12, SMALL - 1, 16), rng.uniform(30, 80, 8)])
        self.which = rng.permutation(len(self.faces))[:count]
        self.start = rng.uniform([40, 40], [WIDTH - 140, HEIGHT - 140], (count, 2))
        self.velocity = rng.uniform(-45, 45, (count, 2))  # px per second
        self.scene = background(seed)

    def _position(self, i: int, t: float) -> tuple[float, float]:
        span = np.array([WIDTH - 120.0, HEIGHT - 120.0])
        raw = self.start[i] - 20 + self.velocity[i] * t
        folded = np.abs((raw + span) % (2 * span) - span)  # bounce between the edges
        return float(folded[0] + 20), float(folded[1] + 20)

    def frame(self, index: int) -> tuple[np.ndarray, list[tuple[float, ...]]]:
        """The frame and the boxes of the faces it shows (not those hidden by others)."""
        image = self.scene.copy()
        owner = np.full(image.shape[:2], -1, np.int32)
        boxes = []
        for i, face in enumerate(self.which):
            x, y = self._position(i, index / FPS)
            boxes.append(paste(image, self.faces[face], x, y, float(self.sizes[i]), owner, i))
        return image, [b for i, b in enumerate(boxes) if visible(owner, i, b)]

    def write(self, path: Path) -> None:
        import av

        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.options = {"crf": "16", "preset": "veryfast"}
            for index in range(self.frames):
                image, _ = self.frame(index)
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)


def covered(source: np.ndarray, output: np.ndarray, box: tuple[float, ...]) -> bool:
    """At least 80 % of the box's (not already dark) pixels are solid black in the output."""
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1 = min(source.shape[1], int(np.ceil(box[2])))
    y1 = min(source.shape[0], int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return True
    lit = source[y0:y1, x0:x1].max(axis=2) >= DARK
    black = output[y0:y1, x0:x1].max(axis=2) < DARK
    return bool(lit.sum() == 0 or (black & lit).sum() >= COVERED * lit.sum())


def decoded(path: Path) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def video_recall(clip: Clip, output: Path) -> tuple[float, float, float, int]:
    """(recall of all faces, of faces under 24 px, of frames with every face covered)."""
    hits = small_hits = small_total = full_frames = total = frames = 0
    for index, out in enumerate(decoded(output)):
        source, boxes = clip.frame(index)
        all_in = True
        for box in boxes:
            ok = covered(source, out, box)
            hits += ok
            total += 1
            all_in &= ok
            if box[2] - box[0] < SMALL:
                small_hits += ok
                small_total += 1
        full_frames += all_in
        frames += 1
    if frames != clip.frames:
        raise RuntimeError(f"the output has {frames} frames, the clip {clip.frames}")
    return hits / total, small_hits / small_total, full_frames / frames, frames


# --- stills: deface's detector through its Python API, ours in-process ----------------


def _mask(shape: tuple[int, ...], boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return mask


def box_recall(mask: np.ndarray, truth: Sequence[tuple[float, ...]]) -> list[bool]:
    hits = []
    for box in truth:
        x0, y0 = int(box[0]), int(box[1])
        x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
        hits.append(bool(mask[y0:y1, x0:x1].mean() >= COVERED))
    return hits


def deface_mask(centerface: Any, image: np.ndarray, ellipse: bool) -> np.ndarray:
    """Where ``deface`` would obscure: its detector, its box scaling, its drawing code."""
    from deface.deface import anonymize_frame

    dets, _ = centerface(image, threshold=THRESHOLD)
    # A checkerboard changes wherever deface's blur touches it, and only there.
    board = ((np.indices(image.shape[:2]).sum(axis=0) % 2) * 255).astype(np.uint8)
    canvas = np.repeat(board[:, :, None], 3, axis=2)
    before = canvas.copy()
    anonymize_frame(dets, canvas, mask_scale=1.3, replacewith="blur", ellipse=ellipse,
                    draw_scores=False, replaceimg=None, mosaicsize=20)
    return np.asarray((canvas != before).any(axis=2))


def sprava_mask(detector: Any, image: np.ndarray) -> np.ndarray:
    from sprava.media.redact import RedactionSettings, face_regions, pixel_bounds

    regions = face_regions(image, detector, RedactionSettings(threshold=THRESHOLD))
    h, w = image.shape[:2]
    return _mask(image.shape, [b for r in regions if (b := pixel_bounds(r, w, h))])


def crowd(seed: int = 3, smallest: float = 12, largest: float = 20
          ) -> tuple[np.ndarray, Sequence[tuple[float, ...]]]:
    """A 1280×720 still with a grid of 190 faces of ``smallest``–``largest`` px."""
    rng = np.random.default_rng(seed)
    cut = faces()
    scene = background(seed)
    boxes = []
    for n, (gy, gx) in enumerate((y, x) for y in range(30, HEIGHT - 50, 64)
                                 for x in range(30, WIDTH - 50, 64)):
        width = float(rng.uniform(smallest, largest))
        boxes.append(paste(scene, cut[n % len(cut)], gx + rng.uniform(-8, 8),
                           gy + rng.uniform(-8, 8), width))
    return scene, boxes


def still_recall() -> dict[str, float]:
    from deface.centerface import CenterFace

    from sprava.media.faces import FaceDetector

    centerface = CenterFace(in_shape=None, backend="auto")
    ours = FaceDetector()
    tally: dict[str, list[bool]] = {k: [] for k in ("sprava", "deface", "deface_ellipse")}
    small: dict[str, list[bool]] = {k: [] for k in tally}
    for name, truth in labelled().items():
        image = photo(name)
        tally["sprava"] += box_recall(sprava_mask(ours, image), truth)
        tally["deface"] += box_recall(deface_mask(centerface, image, False), truth)
        tally["deface_ellipse"] += box_recall(deface_mask(centerface, image, True), truth)
    out = {f"labelled_{k}": sum(v) / len(v) for k, v in tally.items()}
    for band, (smallest, largest) in (("crowd", (12, 20)), ("tiny", (8, 12))):
        scene, truth_small = crowd(3, smallest, largest)
        small["sprava"] = box_recall(sprava_mask(ours, scene), truth_small)
        small["deface"] = box_recall(deface_mask(centerface, scene, False), truth_small)
        small["deface_ellipse"] = box_recall(deface_mask(centerface, scene, True), truth_small)
        out.update({f"{band}_{k}": sum(v) / len(v) for k, v in small.items()})
    out["labelled_faces"], out["crowd_faces"] = len(tally["sprava"]), len(truth_small)
    return out


# --- the benchmark ---------------------------------------------------------------------


def _sprava(src: Path, dst: Path, mode: str) -> list[str]:
    return [sys.executable, "-m", "bench.media_redact", "--child", str(src), str(dst), mode]


def _deface(src: Path, dst: Path, mode: str) -> list[str]:
    command = [str(Path(sys.executable).parent / "deface"), "--thresh", str(THRESHOLD),
               "-o", str(dst), str(src)]
    return command + (["--replacewith", "solid"] if mode == "solid" else [])


def _timed(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, the child and its own children, such as
    deface's ffmpeg) and peak RSS of one run."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    measured = measure(command, cwd=REPO)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return measured.seconds, cpu, measured.max_rss


def run(ctx: Ctx) -> Result:
    seconds = 4 if ctx.quick else 10
    repeats = 1 if ctx.quick else 3
    result = Result(NAME, f"face redaction of a {seconds} s 720p {FPS} fps clip "
                          f"(24 faces, 16 under {SMALL} px), threshold {THRESHOLD}, "
                          f"median of {repeats}")
    clip = Clip(seconds)
    frames = clip.frames
    tools = (("sprava", _sprava), ("deface", _deface))
    with ctx.tempdir(NAME) as tmp:
        source = tmp / "clip.mp4"
        log(f"writing the {seconds} s clip")
        clip.write(source)
        wall: dict[str, list[float]] = {"sprava": [], "deface": []}
        cpu: dict[str, list[float]] = {"sprava": [], "deface": []}
        rss: dict[str, int] = {"sprava": 0, "deface": 0}
        for rep in range(repeats):  # alternate, so that a busy spell hits both tools
            for tool, command in tools if rep % 2 == 0 else tools[::-1]:
                ctx.prepare_cache(source)
                took, used, peak = _timed(command(source, tmp / f"{tool}-blur.mp4", "blur"))
                wall[tool].append(took)
                cpu[tool].append(used)
                rss[tool] = max(rss[tool], peak)
                log(f"run {rep + 1}/{repeats} {tool} (blur): {frames / took:.2f} fps, "
                    f"{1000 * used / frames:.0f} CPU-ms per frame, {peak / 2**20:.0f} MiB")
        recall = {}
        for tool, command in tools:
            log(f"{tool}: redacting (solid) for recall")
            out = tmp / f"{tool}-solid.mp4"
            measure(command(source, out, "solid"), cwd=REPO)
            recall[tool] = video_recall(clip, out)
            log(f"{tool}: recall {recall[tool][0]:.3f}, under {SMALL} px {recall[tool][1]:.3f}")
    log("stills: the labelled photos and a crowd of 12–20 px faces")
    stills = still_recall()
    fps = {tool: frames / median(v) for tool, v in wall.items()}
    cpu_ms = {tool: 1000 * median(v) / frames for tool, v in cpu.items()}
    speed = {"fps": fps, "cpu_ms_per_frame": cpu_ms,
             "wall_seconds": wall, "cpu_seconds": cpu}
    result.rows += [
        Row("frames per second (blur)", "fps", fps["sprava"], "deface CLI", fps["deface"],
            "≥ 1.5× deface", fps["sprava"] >= 1.5 * fps["deface"]),
        Row("CPU time per frame (blur)", "ms", cpu_ms["sprava"], "deface CLI",
            cpu_ms["deface"]),
        Row("peak RSS", "MiB", rss["sprava"] / 2**20, "deface CLI", rss["deface"] / 2**20),
        Row("clip: face-frames covered", "%", 100 * recall["sprava"][0], "deface CLI",
            100 * recall["deface"][0], "≥ deface", recall["sprava"][0] >= recall["deface"][0]),
        Row(f"clip: face-frames under {SMALL} px covered", "%", 100 * recall["sprava"][1],
            "deface CLI", 100 * recall["deface"][1], "> deface",
            recall["sprava"][1] > recall["deface"][1]),
        Row("clip: frames with every face covered", "%", 100 * recall["sprava"][2],
            "deface CLI", 100 * recall["deface"][2]),
        Row(f"labelled photos: {stills['labelled_faces']} faces covered", "%",
            100 * stills["labelled_sprava"], "deface (boxes)", 100 * stills["labelled_deface"],
            "≥ deface", stills["labelled_sprava"] >= stills["labelled_deface"]),
        Row(f"crowd still: {stills['crowd_faces']} faces of 12–20 px covered", "%",
            100 * stills["crowd_sprava"], "deface (boxes)", 100 * stills["crowd_deface"],
            "> deface", stills["crowd_sprava"] > stills["crowd_deface"]),
        Row(f"crowd still: {stills['crowd_faces']} faces of 8–12 px covered", "%",
            100 * stills["tiny_sprava"], "deface (boxes)", 100 * stills["tiny_deface"]),
    ]
    result.notes += [
        "deface runs its CenterFace model through OpenCV's DNN module here: its onnxruntime "
        "path needs the `onnx` package, which is not installed (Sprava edits the model in "
        "memory instead)",
        "deface with its default ellipse masks covers "
        f"{100 * stills['labelled_deface_ellipse']:.1f} % of the labelled faces and "
        f"{100 * stills['crowd_deface_ellipse']:.1f} % of the crowd (the table uses its "
        "rectangles, the kinder comparison)",
        "Sprava searches each frame at ≤ 480 px plus one of six tiles (3×2) at 1.5×, boxes "
        "carried ±5 frames; deface searches each whole frame at its native size",
    ]
    result.details.update({"speed": speed, "video_recall": recall, "stills": stills,
                           "frames": frames})
    return result


def _child(src: str, dst: str, mode: str) -> None:
    """Redact one file in this process (timed from outside, start-up included)."""
    from typing import cast

    from sprava.media.redact import Mode, RedactionSettings, redact_video

    report = redact_video(Path(src), Path(dst),
                          RedactionSettings(mode=cast(Mode, mode), threshold=THRESHOLD))
    print(json.dumps({"frames": report.frames, "faces": report.faces_total}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.media_redact",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 4 s clip instead of 10 s")
    parser.add_argument("--child", nargs=3, metavar=("SRC", "DST", "MODE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    info = machine()
    print_machine(info, "hot")
    result = run(Ctx(quick=args.quick, cache="hot", sprava=""))
    _print_result(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = RESULTS / f"{NAME}-{stamp}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps({"machine": info, "result": result.to_dict()}, indent=2,
                              ensure_ascii=False, default=str) + "\n")
    print(f"\nresults written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
