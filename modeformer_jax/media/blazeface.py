"""MediaPipe's BlazeFace face detectors run in JAX: the network, SSD anchors, box decoding, weighted NMS.

Two models (Apache-2.0, converted once from MediaPipe's .tflite files by tools/convert_blazeface.py; see
weights/README.md): "short" (128x128 input, faces within about 2 m, close-ups) and "full" (192x192, faces up
to about 5 m). Their constants and op graph live in weights/<model>.safetensors; `BlazeFace` runs the graph
as one jit-compiled function over a batch of images (on the accelerator when there is one).

Post-processing follows MediaPipe's face_detection_{short,full}_range_common.pbtxt: fixed-size anchors
(ssd_anchors_calculator), boxes and 6 keypoints decoded relative to them (tensors_to_detections_calculator:
raw / input size + anchor centre), sigmoid scores with raw values clipped to +-100, then weighted
non-maximum suppression (non_max_suppression_calculator, IoU): each kept detection is the score-weighted
mean of the boxes it suppresses, with the best one's score.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")
MODELS = {"short": "blazeface_short_range", "full": "blazeface_full_range"}
# SSD anchor layout per model (MediaPipe's ssd_anchors_calculator options): layer strides, and whether each
# layer repeats its anchor twice (interpolated_scale_aspect_ratio 1.0) or once (0.0). Anchors are fixed-size.
_ANCHOR_STRIDES = {"short": ((8, 16, 16, 16), 2), "full": ((4,), 1)}
_RAW_SCORE_CLIP = 100.0  # MediaPipe's score_clipping_thresh


def ssd_anchors(input_size: int, strides: tuple[int, ...], per_cell: int) -> np.ndarray:
  """Anchor centres float32 [A, 2] (x, y) in 0..1, in the network's output order (row-major, layer by layer;
  consecutive layers of one stride share a grid, each adding per_cell anchors per cell)."""
  anchors = []
  layer = 0
  while layer < len(strides):
    same = layer
    while same < len(strides) and strides[same] == strides[layer]:
      same += 1
    cells = input_size // strides[layer]
    centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
    y, x = np.meshgrid(centres, centres, indexing="ij")
    grid = np.stack([x.ravel(), y.ravel()], axis=1)
    anchors.append(np.repeat(grid, per_cell * (same - layer), axis=0))
    layer = same
  return np.concatenate(anchors).astype(np.float32)


class BlazeFace:
  """One BlazeFace model: `predict` runs the network and decodes boxes (detect_frames does the rest)."""

  def __init__(self, model: str = "full"):
    from safetensors import safe_open

    if model not in MODELS:
      raise ValueError(f"BlazeFace model must be one of {sorted(MODELS)}, got {model!r}")
    self.model = model
    path = os.path.join(WEIGHTS_DIR, MODELS[model] + ".safetensors")
    with safe_open(path, "numpy") as f:
      self.graph = json.loads(f.metadata()["graph"])
      constants = {name: f.get_tensor(name) for name in f.keys()}
    self.input_size = self.graph["input_size"]
    strides, per_cell = _ANCHOR_STRIDES[model]
    self.anchors = ssd_anchors(self.input_size, strides, per_cell)
    self._constants = constants
    self._forward = None

  def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network and box decoding on uint8 [B, S, S, 3] RGB images (S = input_size).

    Returns:
      (float32 [B, A, 16] decoded (x_centre, y_centre, w, h, then 6 keypoints (x, y): eyes, nose tip, mouth,
       ear tragions) in 0..1 of the input,
       float32 [B, A] scores in 0..1).
    """
    _cpu_in_workers()
    import jax
    import jax.numpy as jnp

    if self._forward is None:
      constants = {k: jnp.asarray(v, jnp.float32) for k, v in self._constants.items()}
      self._forward = jax.jit(functools.partial(_forward, self.graph, constants, jnp.asarray(self.anchors)))
    if images.shape[1:] != (self.input_size, self.input_size, 3):
      raise ValueError(f"images must be [B, {self.input_size}, {self.input_size}, 3], got {images.shape}")
    # Batches are padded to a power of two from 8 so that a video's varying window counts reuse a few
    # compilations.
    count = len(images)
    padded = max(8, 1 << max(0, count - 1).bit_length())
    if padded != count:
      images = np.concatenate([images, np.zeros((padded - count, *images.shape[1:]), images.dtype)])
    boxes, scores = self._forward(images)
    return np.asarray(boxes)[:count], np.asarray(scores)[:count]


def _cpu_in_workers() -> None:
  """Worker processes (prep's and sync's decode pools) run the detector on their CPU: each would otherwise
  claim most of the accelerator's memory for itself. The main process (sync --workers 0) uses the accelerator.

  Workers also keep the detector's compiled programs in JAX's persistent cache (runtime.enable_compilation_cache):
  every new worker would otherwise compile it for each batch size again (13 s before its first file on the
  2-core dev machine, 4 s from the cache)."""
  import multiprocessing
  import sys

  if multiprocessing.parent_process() is not None and "jax" not in sys.modules:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    # The network's programs (a second or more each), not the trivial ones that place its constants.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
    from modeformer_jax import runtime

    runtime.enable_compilation_cache()


def _forward(graph: dict, constants: dict, anchors, images):
  """Runs the op graph on uint8 [B, S, S, 3]; returns decoded boxes [B, A, 16] and scores [B, A]."""
  import jax
  import jax.numpy as jnp

  values = dict(constants)
  values[graph["input"]] = images.astype(jnp.float32) * (2 / 255) - 1  # MediaPipe's [-1, 1] input range
  for op in graph["ops"]:
    args = [values[name] for name in op["inputs"]]
    values[op["output"]] = _OPS[op["op"]](op, *args)
  raw_boxes, raw_scores = (values[name] for name in graph["outputs"])
  size = graph["input_size"]
  batch = raw_boxes.shape[0]
  points = raw_boxes.reshape(batch, -1, 8, 2) / size
  centres = points.at[:, :, 0].add(anchors).at[:, :, 2:].add(anchors[:, None])
  scores = jax.nn.sigmoid(jnp.clip(raw_scores[..., 0], -_RAW_SCORE_CLIP, _RAW_SCORE_CLIP))
  return centres.reshape(batch, -1, 16), scores


def _conv(op, x, kernel, bias=None):
  import jax

  y = jax.lax.conv_general_dilated(x, kernel, tuple(op["stride"]), op["padding"],
                                   dimension_numbers=("NHWC", "OHWI", "NHWC"))
  return y if bias is None else y + bias


def _depthwise_conv(op, x, kernel, bias=None):
  """Depthwise convolution (kernel [1, kh, kw, C]) as kh * kw shifted multiply-adds, which XLA fuses into one
  loop: on CPU several times faster than a grouped convolution (feature_group_count = C), equal to 1e-6."""
  import jax.numpy as jnp

  kh, kw = kernel.shape[1:3]
  (sh, sw), (height, width) = op["stride"], x.shape[1:3]
  if op["padding"] == "SAME":  # TensorFlow's: the output covers ceil(in / stride), the odd pixel padded after
    out_h, out_w = -(-height // sh), -(-width // sw)
    pad_h, pad_w = max((out_h - 1) * sh + kh - height, 0), max((out_w - 1) * sw + kw - width, 0)
    x = jnp.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
  else:
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
  y = bias
  for dy in range(kh):
    for dx in range(kw):
      term = x[:, dy:dy + (out_h - 1) * sh + 1:sh, dx:dx + (out_w - 1) * sw + 1:sw] * kernel[0, dy, dx]
      y = term if y is None else y + term
  return y


def _max_pool(op, x):
  # The maximum of four strided slices: as a reduction (reduce_window, or a reshape and max) XLA:CPU in jax 0.10
  # fuses it with the channel pad, add and ReLU before it and gets it wrong (scores off by 0.09 on the short-range
  # model). BlazeFace pools 2x2 with stride 2 on even sizes, where SAME and VALID padding agree.
  height, width = x.shape[1:3]
  if op["window"] != [2, 2] or op["stride"] != [2, 2] or height % 2 or width % 2:
    raise ValueError(f"max pool {op['output']}: only 2x2 windows with stride 2 on even sizes are supported")
  import jax.numpy as jnp

  return jnp.maximum(jnp.maximum(x[:, 0::2, 0::2], x[:, 0::2, 1::2]), jnp.maximum(x[:, 1::2, 0::2], x[:, 1::2, 1::2]))


def _pad(op, x, paddings):
  import jax.numpy as jnp

  return jnp.pad(x, [tuple(int(v) for v in row) for row in np.asarray(paddings)])


def _resize_bilinear(op, x, size):
  import jax

  # Half-pixel centres with edge clamping, as tflite's RESIZE_BILINEAR (half_pixel_centers=True) upsamples.
  height, width = (int(v) for v in np.asarray(size))
  return jax.image.resize(x, (x.shape[0], height, width, x.shape[3]), "bilinear", antialias=False)


def _concatenate(op, *xs):
  import jax.numpy as jnp

  return jnp.concatenate(xs, axis=op["axis"])


def _relu(op, x):
  import jax

  return jax.nn.relu(x)


_OPS = {
    "conv_2d": _conv,
    "depthwise_conv_2d": _depthwise_conv,
    "max_pool_2d": _max_pool,
    "relu": _relu,
    "add": lambda op, a, b: a + b,
    "pad": _pad,
    "resize_bilinear": _resize_bilinear,
    "reshape": lambda op, x: x.reshape(x.shape[0], -1, op["last_dim"]),
    "concatenation": _concatenate,
}


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
  """MediaPipe's weighted non-maximum suppression.

  Repeatedly takes the best remaining detection and every remaining one overlapping it by IoU >
  iou_threshold (itself included): they become one detection, their score-weighted mean, with the best score.

  Args:
    boxes: float [K, 16] (x_centre, y_centre, w, h, 6 x (x, y)), any consistent unit.
    scores: float [K].

  Returns:
    (float32 [N, 16], float32 [N]) best first.
  """
  order = np.argsort(-scores, kind="stable")
  boxes, scores = np.asarray(boxes, np.float64)[order], np.asarray(scores, np.float64)[order]
  corners = np.concatenate([boxes[:, :2] - boxes[:, 2:4] / 2, boxes[:, :2] + boxes[:, 2:4] / 2], axis=1)
  remaining = np.arange(len(boxes))
  kept_boxes, kept_scores = [], []
  while len(remaining):
    best = remaining[0]
    overlap = _corner_iou(corners[best], corners[remaining]) > iou_threshold
    overlap[0] = True
    group = remaining[overlap]
    weights = scores[group][:, None]
    kept_boxes.append((boxes[group] * weights).sum(axis=0) / weights.sum())
    kept_scores.append(scores[best])
    remaining = remaining[~overlap]
  return (np.asarray(kept_boxes, np.float32).reshape(-1, boxes.shape[1]),
          np.asarray(kept_scores, np.float32))


def _corner_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
  """IoU of one (x0, y0, x1, y1) box with each of boxes [K, 4]."""
  x0 = np.maximum(box[0], boxes[:, 0])
  y0 = np.maximum(box[1], boxes[:, 1])
  x1 = np.minimum(box[2], boxes[:, 2])
  y1 = np.minimum(box[3], boxes[:, 3])
  inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
  area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
  union = area(box) + area(boxes) - inter
  return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


# Smallest face each model finds reliably, as its box height over the input side (measured on generated faces,
# every face found from these sizes on; half as large: none): full-range about 13 px of 192, short-range 21 of 128.
MIN_FACE_FRACTION = {"full": 0.08, "short": 0.18}


def windows(height: int, width: int, smallest_face: float, fraction: float,
            overlap: float) -> list[tuple[float, float, float]]:
  """Square windows (x0, y0, side) in frame pixels that together find faces from smallest_face up.

  A window of side s finds faces from fraction * s (the model's limit) up to overlap * s (larger ones may be
  cut by every window of its level: neighbours overlap by overlap * s). Levels of tiles grow from
  side smallest_face / fraction until the whole frame, letterboxed into one window (always the last), takes
  over at fraction * max(height, width). Windows may reach past the frame; that part is black.
  """
  longest = max(height, width)
  whole = ((width - longest) / 2, (height - longest) / 2, float(longest))
  growth = min(2.0, overlap / fraction)
  if growth <= 1:
    raise ValueError(f"tile overlap {overlap} must exceed the model's smallest face fraction {fraction}")
  out = []
  side = smallest_face / fraction
  while side < longest and overlap * side / growth < fraction * longest:
    stride = side * (1 - overlap)
    out += [(x, y, side) for y in _starts(height, side, stride) for x in _starts(width, side, stride)]
    side *= growth
  return out + [whole]


def _starts(length: int, side: float, stride: float) -> np.ndarray:
  """Evenly spaced window starts along one axis, at most stride apart, covering [0, length)."""
  if side >= length:
    return np.array([(length - side) / 2])
  return np.linspace(0, length - side, int(np.ceil((length - side) / stride)) + 1)


@functools.lru_cache(maxsize=None)
def model(name: str) -> BlazeFace:
  """The process's one instance of each model (weights loaded and the network compiled once)."""
  return BlazeFace(name)


def compile_batches(cfg) -> None:
  """Compiles both models for every batch size `predict` pads to with cfg.blazeface_batch windows a call, so that
  a timing that follows leaves XLA's compilation out (benchmarks)."""
  for name in MODELS:
    detector = model(name)
    batch = 8
    while batch < max(16, 2 * cfg.blazeface_batch):
      detector.predict(np.zeros((batch, detector.input_size, detector.input_size, 3), np.uint8))
      batch *= 2


def detect_frames(frames: np.ndarray, cfg, indices: Sequence[int] | None = None) -> list[np.ndarray]:
  """Faces in frames of uint8 [N, H, W, 3] RGB: per frame of `indices` (default: all N, in time order),
  float32 [K, 4] boxes (x, y, w, h) in frame pixels.

  cfg.blazeface_model "full" or "short" runs that model on the windows of `windows`: tiles for faces down to
  cfg.min_face_px (or cfg.blazeface_min_face_fraction of the frame's shorter side, if larger), then the
  whole frame. This full scan runs on every cfg.blazeface_scan_every-th of the frames (and the last); the
  frames between them are searched only where the scans before and after them found faces, one window per
  face (_around, as MediaPipe's pipeline tracks a face in a region of interest), so a face that appears
  between scans is found at the next one. "auto" runs the full-range model so, and the short-range one on
  the whole frame of the frames where it found nothing: the full-range model misses faces larger than the
  frame (measured on generated close-ups: 2 of 16 found at 1.6x LRS2 framing, short-range 16 of 16), and the
  short-range one, run on wide frames, adds loose boxes around small faces. Detections of every window are
  merged per frame by weighted NMS; a window's detections touching one of its edges inside the frame are
  dropped first (a face cut by a tile is whole in a neighbouring tile). Where a neighbouring frame saw a face
  that a frame lacks, that frame is searched again, zoomed in (_refind, cfg.blazeface_refind_rounds times).
  Boxes are then rescaled by cfg.blazeface_box_scale and moved down by cfg.blazeface_box_shift_y of their
  height, which frames faces as the Haar cascade did.
  """
  if cfg.blazeface_model not in ("auto", "full", "short"):
    from modeformer_jax.errors import UserError
    raise UserError(f"preprocess.blazeface_model: must be 'auto', 'full' or 'short', got {cfg.blazeface_model!r}")
  if cfg.blazeface_scan_every < 1:
    raise ValueError(f"preprocess.blazeface_scan_every must be at least 1, got {cfg.blazeface_scan_every}")
  order = list(range(len(frames)) if indices is None else indices)
  height, width = frames.shape[1:3]
  smallest = max(cfg.min_face_px, cfg.blazeface_min_face_fraction * min(height, width)) / cfg.blazeface_box_scale
  first = "short" if cfg.blazeface_model == "short" else "full"
  wins = windows(height, width, smallest, MIN_FACE_FRACTION[first], cfg.blazeface_tile_overlap)
  scans = sorted(set(range(0, len(order), cfg.blazeface_scan_every)) | {len(order) - 1} if order else set())
  found = _detect_windows(model(first), frames, {order[p]: wins for p in scans}, cfg)
  between = {}
  for before, after in zip(scans[:-1], scans[1:]):
    faces = np.concatenate([found[order[before]][0], found[order[after]][0]])
    for p in range(before + 1, after):
      between[order[p]] = _around(faces, wins[-1])
  found.update(_detect_windows(model(first), frames, between, cfg))
  for _ in range(cfg.blazeface_refind_rounds):
    _refind(model(first), frames, order, found, cfg)
  if cfg.blazeface_model == "auto":
    empty = {i: wins[-1:] for i in order if not len(found[i][0])}
    found.update(_detect_windows(model("short"), frames, empty, cfg))
  out = []
  for i in order:
    boxes = found[i][0]
    centre, size = boxes[:, :2], boxes[:, 2:4] * cfg.blazeface_box_scale
    centre = centre + [0, cfg.blazeface_box_shift_y] * size[:, 1:]
    out.append(np.concatenate([centre - size / 2, size], axis=1).astype(np.float32))
  return out


# A face searched for in a window of its own (between scans, or again where a neighbour saw it) fills this share of
# the window's side: well inside the full-range model's range (from 0.08), with room to move two face heights.
_FACE_SHARE_OF_WINDOW = 0.2


def _zoomed(box: np.ndarray) -> tuple[float, float, float]:
  """The window (x0, y0, side) centred on a box [16] (centre, size, ...) that it fills _FACE_SHARE_OF_WINDOW of."""
  side = max(box[3] / _FACE_SHARE_OF_WINDOW, 32.0)
  return (box[0] - side / 2, box[1] - side / 2, side)


def _around(faces: np.ndarray, whole: tuple[float, float, float]) -> list[tuple[float, float, float]]:
  """One zoomed window per face of faces [K, 16] (the scans' detections on both sides of a frame); a face whose
  centre is within a face height of one already windowed (the same face seen by both scans) shares its window.
  A face too large for its zoomed window to fit the frame (a close-up) gets the scan's whole-frame window, so
  that it is seen as the scans see it."""
  windowed = np.zeros((0, 16), np.float32)
  out = []
  for box in faces:
    if not _near(windowed, box):
      windowed = np.concatenate([windowed, box[None]])
      zoomed = _zoomed(box)
      out.append(zoomed if zoomed[2] < whole[2] else whole)
  return list(dict.fromkeys(out))


def _refind(detector: BlazeFace, frames: np.ndarray, order: list[int],
            found: dict[int, tuple[np.ndarray, np.ndarray]], cfg) -> None:
  """Looks again, zoomed in, where a neighbouring frame (in `order`, time order) saw a face this one lacks.

  A small face near the model's limit is missed on some frames, and a run of misses breaks its track. Each
  such face gets one window centred where the neighbour saw it (_zoomed); what is found there near that place
  joins the frame's detections.
  """
  wanted: dict[int, list[np.ndarray]] = {}
  for p, i in enumerate(order):
    for q in (p - 1, p + 1):
      if 0 <= q < len(order):
        for box in found[order[q]][0]:
          if not _near(found[i][0], box):
            wanted.setdefault(i, []).append(box)
  jobs = {i: [_zoomed(box) for box in boxes] for i, boxes in wanted.items()}
  for i, (extra_boxes, extra_scores) in _detect_windows(detector, frames, jobs, cfg, edge_filter=False).items():
    keep = [k for k, b in enumerate(extra_boxes) if any(_near(b[None], w) for w in wanted[i])]
    if keep:
      boxes = np.concatenate([found[i][0], extra_boxes[keep]])
      scores = np.concatenate([found[i][1], extra_scores[keep]])
      found[i] = weighted_nms(boxes, scores, cfg.blazeface_nms_iou)


def _near(boxes: np.ndarray, box: np.ndarray) -> bool:
  """Whether any of boxes [K, 16] (centre, size, ...) has its centre within one box height of box's."""
  return bool(len(boxes)) and bool((np.abs(boxes[:, :2] - box[:2]).max(axis=1) < box[3]).any())


def _detect_windows(detector: BlazeFace, frames: np.ndarray, jobs: Mapping[int, Sequence[tuple[float, float, float]]],
                    cfg, edge_filter: bool = True) -> dict[int, tuple[np.ndarray, np.ndarray]]:
  """For each frame index of jobs {frame index: its windows}: (float32 [K, 16] boxes in frame pixels, float32 [K]
  scores), merged over its windows; every window of every frame goes through the network in batches of
  cfg.blazeface_batch.

  With edge_filter, a window's boxes touching one of its edges inside the frame are dropped."""
  height, width = frames.shape[1:3]
  size = detector.input_size
  # Boxes well under the model's reliable size are mostly clutter (the windows show real faces above it).
  smallest = 0.75 * MIN_FACE_FRACTION[detector.model]  # of the input side, as the decoded boxes are
  flat = [(i, win) for i, wins in jobs.items() for win in wins]  # frame-major: one frame's shrunk copies serve all
  found = {i: ([np.zeros((0, 16), np.float32)], [np.zeros(0, np.float32)]) for i in jobs}
  shrunk_frame, shrunk = None, {}
  for lo in range(0, len(flat), cfg.blazeface_batch):
    batch = flat[lo:lo + cfg.blazeface_batch]
    images = []
    for i, win in batch:
      if i != shrunk_frame:
        shrunk_frame, shrunk = i, {}
      images.append(_window_image(frames[i], win, size, shrunk))
    boxes, scores = detector.predict(np.stack(images))
    for (i, (x0, y0, side)), image_boxes, image_scores in zip(batch, boxes, scores):
      keep = (image_scores >= cfg.blazeface_min_score) & (image_boxes[:, 3] >= smallest) & (image_boxes[:, 2] > 0)
      merged, merged_scores = weighted_nms(image_boxes[keep], image_scores[keep], cfg.blazeface_nms_iou)
      points = merged.reshape(-1, 8, 2) * side
      points[:, 0] += (x0, y0)
      points[:, 2:] += (x0, y0)
      inside = (_clear_of_inner_edges(points, (x0, y0, side), height, width) if edge_filter
                else np.ones(len(points), bool))
      found[i][0].append(points[inside].reshape(-1, 16))
      found[i][1].append(merged_scores[inside])
  return {i: weighted_nms(np.concatenate(boxes), np.concatenate(scores), cfg.blazeface_nms_iou)
          for i, (boxes, scores) in found.items()}


def _window_image(frame: np.ndarray, window: tuple[float, float, float], size: int,
                  shrunk: dict[int, np.ndarray] | None = None) -> np.ndarray:
  """The square window of frame (black outside the frame) resized to size x size: uint8 [size, size, 3].

  shrunk: the frame's area-averaged copies by factor, made here once for all windows of the frame (a 1080p
  frame is shrunk once per tile level instead of once per tile)."""
  import cv2

  x0, y0, side = window
  height, width = frame.shape[:2]
  scale_x = scale_y = size / side
  factor = int(0.5 / scale_x)
  if factor > 1:  # area averaging first, so that a large downscale does not alias
    shrunk = {} if shrunk is None else shrunk
    if factor not in shrunk:
      shrunk[factor] = cv2.resize(frame, (max(1, round(width / factor)), max(1, round(height / factor))),
                                  interpolation=cv2.INTER_AREA)
    frame = shrunk[factor]
    scale_x, scale_y = scale_x * width / frame.shape[1], scale_y * height / frame.shape[0]
  # One affine warp crops, pads (black) and resizes; pixel centres sit at +0.5 in both images.
  matrix = np.array([[scale_x, 0, 0.5 * scale_x - x0 * size / side - 0.5],
                     [0, scale_y, 0.5 * scale_y - y0 * size / side - 0.5]], np.float64)
  return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=(0, 0, 0))


def _clear_of_inner_edges(points: np.ndarray, window: tuple[float, float, float], height: int,
                          width: int) -> np.ndarray:
  """bool [K]: each box (points [K, 8, 2] in frame pixels, centre and size first) keeps clear of the window's
  edges that lie inside the frame (by 2% of the window)."""
  x0, y0, side = window
  margin = 0.02 * side
  lo = points[:, 0] - points[:, 1] / 2
  hi = points[:, 0] + points[:, 1] / 2
  ok = np.ones(len(points), bool)
  for axis, start, limit in ((0, x0, width), (1, y0, height)):
    if start > 0:
      ok &= lo[:, axis] > start + margin
    if start + side < limit:
      ok &= hi[:, axis] < start + side - margin
  return ok
