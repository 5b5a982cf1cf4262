"""The one front end: decoded frames + face boxes -> the crops a model sees, and the rows of them it reads.

`modeformer prep` (data/prep/clip.py), offset detection (sync/detect.py), the training windows (data/windows.py)
and evaluation (inference.video_windows) all crop and slice through this module, so a model trained on prep's
crops is run on the same crops by `sync` (tests/test_front_end.py checks that prep and sync crops are equal).

Two steps, each one function:
  face_squares  boxes -> the squares cut from the frames (what records store as `boxes`): side max(w, h) x
                preprocess.face_crop_scale, centre moved down by face_crop_shift_y x max(w, h); with
                face_crop "syncnet", syncnet_python's crop_video geometry (median-filtered along the track);
                `centered` (frames that are face crops already, LRS2) takes the box itself.
  face_crops    frames + boxes -> uint8 crops [T, crop_size, crop_size, 3]: the squares resampled (crop_squares),
                or for face_crop "syncnet" syncnet_python's crop_video exactly (syncnet_crop_faces: its constant
                padding and integer bounds), so SyncNet's published weights see what they were trained on.
and mouth_rows, the rows of a crop a model reads (rows preprocess.mouth_row_start.. : ModEFormer's lower half,
SyncNet's whole face), optionally with `margin` rows above them for the crop jitter of training.

Boxes are float [T, 4] rows (x, y, w, h) in pixels of the frame, x/y the top-left corner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import ml_collections
import numpy as np

from modeformer_jax.media.filters import median_filter


def face_squares(boxes: np.ndarray, pp: ml_collections.ConfigDict, *, centered: bool = False) -> np.ndarray:
  """Face boxes float [T, 4] (x, y, w, h) -> the squares face_crops cuts, float32 [T, 4] (x, y, side, side).

  Records store these squares, so a crop pixel maps back to the source frame without knowing how the box was
  found (and face_crops of the squares with centered=True gives the same crops again).
  """
  boxes = np.asarray(boxes, np.float32)
  if pp.get("face_crop", "ours") == "syncnet" and not centered:
    c = pp.syncnet_crop_scale
    s = median_filter(boxes[:, 2:].max(axis=1) / 2, pp.syncnet_median_frames)
    cx = median_filter(boxes[:, 0] + boxes[:, 2] / 2, pp.syncnet_median_frames)
    cy = median_filter(boxes[:, 1] + boxes[:, 3] / 2, pp.syncnet_median_frames)
    side = 2 * s * (1 + c)
    return np.stack([cx - s * (1 + c), cy - s, side, side], axis=1).astype(np.float32)
  scale, shift_y = (1.0, 0.0) if centered else (pp.face_crop_scale, pp.face_crop_shift_y)
  extent = boxes[:, 2:].max(axis=1)
  side = extent * scale
  cx = boxes[:, 0] + boxes[:, 2] / 2
  cy = boxes[:, 1] + boxes[:, 3] / 2 + shift_y * extent
  return np.stack([cx - side / 2, cy - side / 2, side, side], axis=1).astype(np.float32)


def face_crops(frames: np.ndarray, boxes: np.ndarray, pp: ml_collections.ConfigDict, *,
               centered: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """The model's crops of frames uint8 [T, H, W, 3] around boxes float [T, 4]: (crops uint8 [T, S, S, 3] with
  S = pp.crop_size, the squares float32 [T, 4] they were cut from; see face_squares)."""
  return faces_crops(frames, [boxes], pp, centered=centered)[0]


def faces_crops(frames: np.ndarray, boxes: Sequence[np.ndarray], pp: ml_collections.ConfigDict, *,
                centered: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
  """face_crops of several faces' boxes (each float [T, 4]) in the same frames, reading each frame once: frames
  may be any sequence of T uint8 [H, W, 3] frames with a `shape`, e.g. a media.frames.FrameChunk, which
  converts a frame to RGB when it is read. Returns (crops, squares) per face."""
  squares = [face_squares(b, pp, centered=centered) for b in boxes]
  if pp.get("face_crop", "ours") == "syncnet" and not centered:
    croppers = [_syncnet_cropper(frames, b, pp) for b in boxes]
  else:
    croppers = [_square_cropper(frames, square, pp.crop_size) for square in squares]
  return list(zip(_every_frame(frames, croppers, pp.crop_size), squares))


def crop_squares(frames: np.ndarray, squares: np.ndarray, size: int) -> np.ndarray:
  """Squares (x, y, side, side) cut from frames uint8 [T, H, W, 3] and resized to uint8 [T, size, size, 3].

  A non-square box is taken as its max(w, h) square about its centre. Parts outside the frame repeat the
  frame's edge pixels (no black bars for the model to latch onto). Shrinking (side > size) averages the
  whole-pixel square (INTER_AREA, no aliasing; rounding moves it by under half a crop pixel). Enlarging samples
  the square where it is, to a fraction of a pixel (bilinear): a small face's square rounded to whole pixels
  jumps by 1/side of the crop whenever its tracked box crosses a pixel boundary, 5% of the crop for a 24 px
  face, a jitter the model reads as motion (BENCHMARKS.md "Face detectors").
  """
  return _every_frame(frames, [_square_cropper(frames, squares, size)], size)[0]


def _square_cropper(frames: np.ndarray, squares: np.ndarray, size: int) -> Callable[[int, np.ndarray], np.ndarray]:
  """crop_squares one frame at a time: crop(i, frames[i]) -> uint8 [size, size, 3]."""
  squares = _checked_boxes(frames, squares)
  height, width = frames.shape[1:3]
  side = np.maximum(1.0, squares[:, 2:].max(axis=1))
  x0 = squares[:, 0] + squares[:, 2] / 2 - side / 2
  y0 = squares[:, 1] + squares[:, 3] / 2 - side / 2

  def window(frame: np.ndarray, x: int, y: int, length: int) -> np.ndarray:
    """frame[y:y + length, x:x + length], the frame's edge pixels repeated where the window leaves it."""
    y_lo, y_hi, top, bottom = _span(y, length, height)
    x_lo, x_hi, left, right = _span(x, length, width)
    out = frame[y_lo:y_hi, x_lo:x_hi]
    if top or bottom or left or right:
      out = cv2.copyMakeBorder(out, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return out

  def crop(i: int, frame: np.ndarray) -> np.ndarray:
    if side[i] > size:
      whole = int(round(side[i]))
      x, y = (int(round(c + side[i] / 2 - whole / 2)) for c in (x0[i], y0[i]))
      return cv2.resize(window(frame, x, y, whole), (size, size), interpolation=cv2.INTER_AREA)
    # The whole pixels around the square and one more on each side, for bilinear sampling at its edges.
    x, y = int(np.floor(x0[i])) - 1, int(np.floor(y0[i])) - 1
    around = np.ascontiguousarray(window(frame, x, y, int(np.ceil(side[i])) + 3))
    step = side[i] / size  # frame pixels per crop pixel; pixel centres map onto pixel centres
    to_frame = [[step, 0, x0[i] - x + step / 2 - 0.5], [0, step, y0[i] - y + step / 2 - 0.5]]
    return cv2.warpAffine(around, np.array(to_frame), (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)

  return crop


def syncnet_crop_faces(frames: np.ndarray, boxes: np.ndarray, pp: ml_collections.ConfigDict) -> np.ndarray:
  """Face crops as syncnet_python's run_pipeline.crop_video makes them, for SyncNet's published weights.

  Per frame: half-size s = max(w, h) / 2 and the box centre (cx, cy), each median-filtered along the track over
  pp.syncnet_median_frames (scipy.signal.medfilt, zero-padded ends); the frame padded by int(s (1 + 2 c)) on
  every side with the value pp.syncnet_pad_value; rows cy - s .. cy + s (1 + 2 c) and columns
  cx - s (1 + c) .. cx + s (1 + c) (c = pp.syncnet_crop_scale, bounds truncated by int()), resized to
  pp.crop_size with INTER_LINEAR (cv2.resize's default).

  Args:
    frames: uint8 [T, H, W, 3] (channel order is kept).
    boxes: float [T, 4] (x, y, w, h) pixels.

  Returns:
    uint8 [T, crop_size, crop_size, 3].
  """
  return _every_frame(frames, [_syncnet_cropper(frames, boxes, pp)], pp.crop_size)[0]


def _every_frame(frames: np.ndarray, croppers: Sequence[Callable[[int, np.ndarray], np.ndarray]],
                 size: int) -> list[np.ndarray]:
  """Per cropper, crop(i, frames[i]) of every frame, reading each frame once: uint8 [T, size, size, 3] each."""
  out = [np.empty((len(frames), size, size, 3), np.uint8) for _ in croppers]
  for i, frame in enumerate(frames):
    for crops, crop in zip(out, croppers):
      crops[i] = crop(i, frame)
  return out


def _syncnet_cropper(frames: np.ndarray, boxes: np.ndarray,
                     pp: ml_collections.ConfigDict) -> Callable[[int, np.ndarray], np.ndarray]:
  """syncnet_crop_faces one frame at a time (the median filters run over the whole track first)."""
  boxes = _checked_boxes(frames, boxes)
  k, c = pp.syncnet_median_frames, pp.syncnet_crop_scale
  s = median_filter(boxes[:, 2:].max(axis=1) / 2, k)
  cx = median_filter(boxes[:, 0] + boxes[:, 2] / 2, k)
  cy = median_filter(boxes[:, 1] + boxes[:, 3] / 2, k)
  size, pad_value = pp.crop_size, pp.syncnet_pad_value

  def crop(i: int, frame: np.ndarray) -> np.ndarray:
    pad = int(s[i] * (1 + 2 * c))
    padded = cv2.copyMakeBorder(np.asarray(frame), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(pad_value,) * 3)
    my, mx = cy[i] + pad, cx[i] + pad
    face = padded[int(my - s[i]):int(my + s[i] * (1 + 2 * c)), int(mx - s[i] * (1 + c)):int(mx + s[i] * (1 + c))]
    return cv2.resize(face, (size, size))

  return crop


def mouth_rows(crops: np.ndarray, row_start: int, margin: int = 0) -> np.ndarray:
  """The rows of crops [..., S, S, 3] a model reads, row_start - margin .. S - 1: [..., S - row_start + margin,
  S, 3] (a view). ModEFormer: row_start 48, the lower half; SyncNet: 0, the whole face. margin (at most
  row_start) keeps rows above them for the crop jitter of training (data/augment.py)."""
  size = crops.shape[-3]
  if crops.shape[-2] != size or not 0 <= margin <= row_start < size:
    raise ValueError(f"crops must be [..., S, S, 3] with 0 <= margin ({margin}) <= row_start ({row_start}) < S, "
                     f"got {crops.shape}")
  return crops[..., row_start - margin:, :, :]


def _checked_boxes(frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
  """boxes as float64 [T, 4], one per frame, finite with positive width and height (else ValueError)."""
  boxes = np.asarray(boxes, np.float64)
  if boxes.shape != (len(frames), 4):
    raise ValueError(f"boxes must be [{len(frames)}, 4], got {boxes.shape}")
  if not np.all(np.isfinite(boxes)) or np.any(boxes[:, 2:] <= 0):
    raise ValueError("boxes must be finite with positive width and height")
  return boxes


def _span(start: int, length: int, limit: int) -> tuple[int, int, int, int]:
  """The in-frame part [lo, hi) of [start, start + length) and the padding before / after it.

  At least one pixel is kept, so a window wholly off the frame becomes the nearest edge row / column repeated.
  """
  lo = min(max(start, 0), limit - 1)
  hi = min(max(start + length, lo + 1), limit)
  before = min(max(lo - start, 0), length - (hi - lo))
  return lo, hi, before, length - (hi - lo) - before
