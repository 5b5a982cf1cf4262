"""Where BlazeFace looks in a video's frames (media/blazeface.py runs the network): tiles over the frame for the
smallest face wanted, a window around each known face on the frames between full scans, and zoomed second looks
where a neighbouring frame saw a face; every frame's windows merged into its faces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from modeformer_jax.media.blazeface import MIN_FACE_FRACTION, BlazeFace, model, weighted_nms

# A face searched for in a window of its own (between scans, or again where a neighbour saw it) fills this share of
# the window's side, which goes through the network at _ZOOMED_INPUT pixels: the face is then as many pixels tall
# as at 0.2 of a 192-px window (MediaPipe's), with 0.44x the network's work, and room to move a face height.
# Measured on generated wide shots (24-216 px faces): the same boxes (centres within 0.5% of the face height,
# heights within 1%, medians) and 0.72x the detector's windows.
_FACE_SHARE_OF_WINDOW = 0.3
_ZOOMED_INPUT = 128
# Boxes (framed, as returned) under this share of cfg.min_face_px are dropped, as _detect_windows drops those
# under 0.75 of the model's smallest face in a window: a face of min_face_px may be boxed a little smaller.
_SMALLEST_KEPT = 0.75


class Window(NamedTuple):
  """A square of frame pixels (x0, y0, side), run through the network at size x size (black outside the frame)."""
  x0: float
  y0: float
  side: float
  size: int


def windows(height: int, width: int, smallest_face: float, fraction: float, overlap: float,
            size: int) -> list[Window]:
  """Windows (run at size x size) that together find faces from smallest_face frame pixels up.

  A window of side s finds faces from fraction * s (the model's limit) up to overlap * s (larger ones may be
  cut by every window of its level: neighbours overlap by overlap * s). Levels of tiles grow from
  side smallest_face / fraction until the whole frame, letterboxed into one window (always the last), takes
  over at fraction * max(height, width). Windows may reach past the frame; that part is black. (One larger input
  per level instead of tiles is cheaper, but the models, trained on their own input size, score small faces in
  it lower: blazeface.BlazeFace.predict.)
  """
  longest = max(height, width)
  whole = Window((width - longest) / 2, (height - longest) / 2, float(longest), size)
  growth = min(2.0, overlap / fraction)
  if growth <= 1:
    raise ValueError(f"tile overlap {overlap} must exceed the model's smallest face fraction {fraction}")
  out = []
  side = smallest_face / fraction
  while side < longest and overlap * side / growth < fraction * longest:
    stride = side * (1 - overlap)
    out += [Window(x, y, side, size) for y in _starts(height, side, stride) for x in _starts(width, side, stride)]
    side *= growth
  return out + [whole]


def _starts(length: int, side: float, stride: float) -> np.ndarray:
  """Evenly spaced window starts along one axis, at most stride apart, covering [0, length)."""
  if side >= length:
    return np.array([(length - side) / 2])
  return np.linspace(0, length - side, int(np.ceil((length - side) / stride)) + 1)


def detect_frames(frames: np.ndarray, cfg, indices: Sequence[int] | None = None) -> list[np.ndarray]:
  """Faces in frames of uint8 [N, H, W, 3] RGB: per frame of `indices` (default: all N, in time order),
  float32 [K, 4] boxes (x, y, w, h) in frame pixels.

  cfg.blazeface_model "full" or "short" runs that model on the windows of `windows`: tiles for faces down to
  cfg.min_face_px (or cfg.blazeface_min_face_fraction of the frame's shorter side, if larger), then the
  whole frame. This full scan runs on every cfg.blazeface_scan_every-th of the frames (and the last); the
  frames between them are searched only where the scans before and after them found faces, one window per
  face (_around, as MediaPipe's pipeline tracks a face in a region of interest; the full scan again where
  that takes as many windows), so a face that appears between scans is found from the next one on (and on
  the frames before it, where it has not moved far). "auto" runs the full-range model so, and the short-range one on
  the whole frame of the frames where it found nothing: the full-range model misses faces larger than the
  frame (measured on generated close-ups: 2 of 16 found at 1.6x LRS2 framing, short-range 16 of 16), and the
  short-range one, run on wide frames, adds loose boxes around small faces. Detections of every window are
  merged per frame by weighted NMS; a window's detections touching one of its edges inside the frame are
  dropped first (a face cut by a tile is whole in a neighbouring tile). Where a neighbouring frame saw a face
  that a frame lacks, that frame is searched again, zoomed in (_refind, cfg.blazeface_refind_rounds times), and
  if it still lacks it, with the full scan (a face near the model's smallest size can be found by the tiles and
  missed by every window zoomed in on it).
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
  wins = windows(height, width, smallest, MIN_FACE_FRACTION[first], cfg.blazeface_tile_overlap,
                 model(first).input_size)
  scans = sorted(set(range(0, len(order), cfg.blazeface_scan_every)) | {len(order) - 1} if order else set())
  found = _detect_windows(model(first), frames, {order[p]: wins for p in scans}, cfg)
  between = {}
  for before, after in zip(scans[:-1], scans[1:]):
    faces = np.concatenate([found[order[before]][0], found[order[after]][0]])
    around = _around(faces, wins[-1])
    for p in range(before + 1, after):
      between[order[p]] = around if _pixels(around) < _pixels(wins) else wins
  found.update(_detect_windows(model(first), frames, between, cfg))
  for _ in range(cfg.blazeface_refind_rounds):
    _refind(model(first), frames, order, found, cfg)
  # A small face can be found by the tiles (the network looking at it from further away) and missed by every
  # window zoomed in on it; a frame that still lacks a face its neighbours saw gets the full scan after all.
  scanned = {order[p] for p in scans}
  rescan = {i: wins for i in _missing_faces(order, found) if i not in scanned}
  for i, (boxes, scores) in _detect_windows(model(first), frames, rescan, cfg).items():
    found[i] = weighted_nms(np.concatenate([found[i][0], boxes]), np.concatenate([found[i][1], scores]),
                            cfg.blazeface_nms_iou)
  if cfg.blazeface_model == "auto":
    close_up = wins[-1]._replace(size=model("short").input_size)
    empty = {i: [close_up] for i in order if not len(found[i][0])}
    found.update(_detect_windows(model("short"), frames, empty, cfg))
  out = []
  for i in order:
    boxes = found[i][0]
    centre, size = boxes[:, :2], boxes[:, 2:4] * cfg.blazeface_box_scale
    centre = centre + [0, cfg.blazeface_box_shift_y] * size[:, 1:]
    # A zoomed window around a small face shows clutter at sizes no tile looks for (4-11 px beside 24 px).
    keep = size[:, 1] >= _SMALLEST_KEPT * cfg.min_face_px
    out.append(np.concatenate([centre - size / 2, size], axis=1)[keep].astype(np.float32))
  return out


def _zoomed(box: np.ndarray) -> Window:
  """The window centred on a box [16] (centre, size, ...) that it fills _FACE_SHARE_OF_WINDOW of."""
  side = max(box[3] / _FACE_SHARE_OF_WINDOW, 32.0)
  return Window(box[0] - side / 2, box[1] - side / 2, side, _ZOOMED_INPUT)


def _pixels(wins: Sequence[Window]) -> int:
  """The network's work for wins: their input pixels."""
  return sum(w.size ** 2 for w in wins)


def _around(faces: np.ndarray, whole: Window) -> list[Window]:
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
      out.append(zoomed if zoomed.side < whole.side else whole)
  return list(dict.fromkeys(out))


def _refind(detector: BlazeFace, frames: np.ndarray, order: list[int],
            found: dict[int, tuple[np.ndarray, np.ndarray]], cfg) -> None:
  """Looks again, zoomed in, where a neighbouring frame (in `order`, time order) saw a face this one lacks.

  A small face near the model's limit is missed on some frames, and a run of misses breaks its track. Each
  such face gets one window centred where the neighbour saw it (_zoomed); what is found there near that place
  joins the frame's detections.
  """
  wanted = _missing_faces(order, found)
  jobs = {i: [_zoomed(box) for box in boxes] for i, boxes in wanted.items()}
  for i, (extra_boxes, extra_scores) in _detect_windows(detector, frames, jobs, cfg, edge_filter=False).items():
    keep = [k for k, b in enumerate(extra_boxes) if any(_near(b[None], w) for w in wanted[i])]
    if keep:
      boxes = np.concatenate([found[i][0], extra_boxes[keep]])
      scores = np.concatenate([found[i][1], extra_scores[keep]])
      found[i] = weighted_nms(boxes, scores, cfg.blazeface_nms_iou)


def _missing_faces(order: list[int], found: Mapping[int, tuple[np.ndarray, np.ndarray]]) -> dict[int, list[np.ndarray]]:
  """{frame index: the boxes [16] that its neighbours in `order` found and it did not (none near them)}."""
  wanted: dict[int, list[np.ndarray]] = {}
  for p, i in enumerate(order):
    for q in (p - 1, p + 1):
      if 0 <= q < len(order):
        for box in found[order[q]][0]:
          if not _near(found[i][0], box):
            wanted.setdefault(i, []).append(box)
  return wanted


def _near(boxes: np.ndarray, box: np.ndarray) -> bool:
  """Whether any of boxes [K, 16] (centre, size, ...) has its centre within one box height of box's."""
  return bool(len(boxes)) and bool((np.abs(boxes[:, :2] - box[:2]).max(axis=1) < box[3]).any())


def _detect_windows(detector: BlazeFace, frames: np.ndarray, jobs: Mapping[int, Sequence[Window]],
                    cfg, edge_filter: bool = True) -> dict[int, tuple[np.ndarray, np.ndarray]]:
  """For each frame index of jobs {frame index: its windows}: (float32 [K, 16] boxes in frame pixels, float32 [K]
  scores), merged over its windows; every window of every frame goes through the network, windows of one input
  size together, cfg.blazeface_batch a call.

  With edge_filter, a window's boxes touching one of its edges inside the frame are dropped."""
  height, width = frames.shape[1:3]
  # Boxes well under the model's reliable size are mostly clutter (the windows show real faces above it).
  smallest = 0.75 * MIN_FACE_FRACTION[detector.model] * detector.input_size  # input pixels
  found = {i: ([np.zeros((0, 16), np.float32)], [np.zeros(0, np.float32)]) for i in jobs}
  by_size: dict[int, list[tuple[int, Window]]] = {}
  for i, wins in jobs.items():  # frame-major within a size: one frame's shrunk copies serve all its windows
    for win in wins:
      by_size.setdefault(win.size, []).append((i, win))
  for flat in by_size.values():
    shrunk_frame, shrunk = None, {}
    for lo in range(0, len(flat), cfg.blazeface_batch):
      batch = flat[lo:lo + cfg.blazeface_batch]
      images = []
      for i, win in batch:
        if i != shrunk_frame:
          shrunk_frame, shrunk = i, {}
        images.append(_window_image(frames[i], win, shrunk))
      boxes, scores = detector.predict(np.stack(images))
      for (i, win), image_boxes, image_scores in zip(batch, boxes, scores):
        keep = ((image_scores >= cfg.blazeface_min_score) & (image_boxes[:, 3] * win.size >= smallest)
                & (image_boxes[:, 2] > 0))
        merged, merged_scores = weighted_nms(image_boxes[keep], image_scores[keep], cfg.blazeface_nms_iou)
        points = merged.reshape(-1, 8, 2) * win.side
        points[:, 0] += (win.x0, win.y0)
        points[:, 2:] += (win.x0, win.y0)
        inside = _clear_of_inner_edges(points, win, height, width) if edge_filter else np.ones(len(points), bool)
        found[i][0].append(points[inside].reshape(-1, 16))
        found[i][1].append(merged_scores[inside])
  return {i: weighted_nms(np.concatenate(boxes), np.concatenate(scores), cfg.blazeface_nms_iou)
          for i, (boxes, scores) in found.items()}


def _window_image(frame: np.ndarray, win: Window, shrunk: dict[int, np.ndarray] | None = None) -> np.ndarray:
  """What the network sees of frame through win: uint8 [win.size, win.size, 3] (black outside the frame).

  shrunk: the frame's area-averaged copies by factor, made here once for all windows of the frame (a 1080p
  frame is shrunk once per tile level instead of once per tile)."""
  import cv2

  height, width = frame.shape[:2]
  scale = scale_x = scale_y = win.size / win.side
  factor = int(0.5 / scale)
  if factor > 1:  # area averaging first, so that a large downscale does not alias
    shrunk = {} if shrunk is None else shrunk
    if factor not in shrunk:
      shrunk[factor] = cv2.resize(frame, (max(1, round(width / factor)), max(1, round(height / factor))),
                                  interpolation=cv2.INTER_AREA)
    frame = shrunk[factor]
    scale_x, scale_y = scale_x * width / frame.shape[1], scale_y * height / frame.shape[0]
  # One affine warp crops, pads (black) and resizes; pixel centres sit at +0.5 in both images.
  matrix = np.array([[scale_x, 0, 0.5 * scale_x - win.x0 * scale - 0.5],
                     [0, scale_y, 0.5 * scale_y - win.y0 * scale - 0.5]], np.float64)
  return cv2.warpAffine(frame, matrix, (win.size, win.size), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def _clear_of_inner_edges(points: np.ndarray, win: Window, height: int, width: int) -> np.ndarray:
  """bool [K]: each box (points [K, 8, 2] in frame pixels, centre and size first) keeps clear of the window's
  edges that lie inside the frame (by 2% of the window)."""
  margin = 0.02 * win.side
  lo = points[:, 0] - points[:, 1] / 2
  hi = points[:, 0] + points[:, 1] / 2
  ok = np.ones(len(points), bool)
  for axis, start, limit in ((0, win.x0, width), (1, win.y0, height)):
    if start > 0:
      ok &= lo[:, axis] > start + margin
    if start + win.side < limit:
      ok &= hi[:, axis] < start + win.side - margin
  return ok


def compile_batches(cfg) -> None:
  """Compiles both models for every input size and batch size (`predict` pads to powers of two) that detect_frames
  runs with cfg.blazeface_batch windows a call, so that a timing that follows leaves XLA's compilation out."""
  for name in ("full", "short"):
    detector = model(name)
    for size in {detector.input_size, _ZOOMED_INPUT}:
      batch = 4
      while batch < max(16, 2 * cfg.blazeface_batch):
        detector.predict(np.zeros((batch, size, size, 3), np.uint8))
        batch *= 2
