"""MediaPipe's BlazeFace face detectors run in JAX: the network, SSD anchors, box decoding, weighted NMS.

Two models (Apache-2.0, converted once from MediaPipe's .tflite files by tools/convert_blazeface.py; see
weights/README.md): "short" (128x128 input, faces within about 2 m, close-ups) and "full" (192x192, faces up
to about 5 m). Their constants and op graph live in weights/<model>.safetensors; `BlazeFace` runs the graph
as one jit-compiled function over a batch of images (on the accelerator when there is one). Where in a video's
frames it looks: media/face_search.py.

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
  """One BlazeFace model: `predict` runs the network and decodes boxes (face_search.detect_frames does the rest)."""

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
    self.anchors = ssd_anchors(self.input_size, *_ANCHOR_STRIDES[model])
    self._constants = constants
    self._forward = None

  def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network and box decoding on uint8 [B, S, S, 3] RGB images.

    S is the model's input_size (MediaPipe's), or another multiple of 32: the network is convolutional (its
    upsampling follows the input's size) and finds a face as many pixels tall in the same way, as long as the
    window is not much larger (face_search's windows: 192 or 128 px; a whole 1080p frame in one 576x320 pass
    scores small faces lower than 192-px tiles do, 0.66 of them found against 0.93).

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
      self._forward = jax.jit(functools.partial(_forward, self.graph, constants, _ANCHOR_STRIDES[self.model]))
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[1] % 32 or images.shape[3] != 3:
      raise ValueError(f"images must be [B, S, S, 3] with S a multiple of 32, got {images.shape}")
    # Batches are padded to a power of two from 4 so that a video's varying window counts reuse a few
    # compilations; a re-find round of one or two windows (often) computes 4, not 8.
    count = len(images)
    padded = max(4, 1 << max(0, count - 1).bit_length())
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


def _forward(graph: dict, constants: dict, anchor_layout: tuple, images):
  """Runs the op graph on uint8 [B, S, S, 3]; returns decoded boxes [B, A, 16] and scores [B, A]."""
  import jax
  import jax.numpy as jnp

  size = images.shape[1]
  anchors = ssd_anchors(size, *anchor_layout)
  values = dict(constants)
  values[graph["input"]] = images.astype(jnp.float32) * (2 / 255) - 1  # MediaPipe's [-1, 1] input range
  for op in graph["ops"]:
    args = [values[name] for name in op["inputs"]]
    if op["op"] == "resize_bilinear":  # its constant output size is the one for the graph's own input size
      args[1] = np.asarray(args[1]) * size // graph["input_size"]
    values[op["output"]] = _OPS[op["op"]](op, *args)
  raw_boxes, raw_scores = (values[name] for name in graph["outputs"])
  # The network regresses in input pixels (MediaPipe divides by its input size: x_scale = 192 and so on).
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


@functools.lru_cache(maxsize=None)
def model(name: str) -> BlazeFace:
  """The process's one instance of each model (weights loaded and the network compiled once)."""
  return BlazeFace(name)
