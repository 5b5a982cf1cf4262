"""Face boxes: fixed, LRS3 tables, or a face detector with tracking (the crops around them: media/crops.py).

Detectors: MediaPipe's BlazeFace run in JAX (media/blazeface.py, the default) or OpenCV's Haar cascade.

Boxes are float32 [T, 4] rows (x, y, w, h) in pixels of the frame, x/y the top-left corner.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from scipy import ndimage

from modeformer_jax.errors import UserError
from modeformer_jax.media.decode import MediaError
from modeformer_jax.media.preprocess_config import with_face_defaults


@dataclasses.dataclass
class FaceTrack:
  """One face over a whole video (or the best of several, with every candidate in `tracks`)."""
  boxes: np.ndarray  # float32 [T, 4] (x, y, w, h), smoothed, defined for every frame (held / interpolated)
  valid: np.ndarray  # bool [T]: the face was seen here or in a short, interpolated gap
  coverage: float  # valid.mean()
  num_tracks: int  # face tracks found in the video
  # Every track, best (largest area x longest) first, each with `tracks=()`; a caller can re-rank them, e.g.
  # by how much the mouth moves with the audio.
  tracks: tuple[FaceTrack, ...] = dataclasses.field(default=(), repr=False)


def fixed_boxes(num_frames: int, height: int, width: int,
                box_fraction: Sequence[float] = (0.0, 0.0, 1.0, 1.0)) -> np.ndarray:
  """The same box on every frame, given as (x0, y0, x1, y1) fractions of the frame: float32 [T, 4]."""
  x0, y0, x1, y1 = box_fraction
  if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
    raise ValueError(f"box_fraction must satisfy 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {box_fraction}")
  box = np.array([x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height], np.float32)
  return np.tile(box, (num_frames, 1))


def read_lrs3_boxes(txt_path: str | os.PathLike, num_frames: int, width: int,
                    height: int) -> np.ndarray | None:
  """Per-frame face boxes from an LRS3 (pretrain) .txt, in pixels: float32 [T, 4], or None without a table.

  The table is a header line `FRAME X Y W H` then `<frame> <x> <y> <w> <h>` rows (relative 0..1 coordinates,
  any whitespace) up to a blank line or the next section header. Frame numbers count frames of the source
  video, so the clip's frame 0 is the table's first frame. Frames without a row get boxes interpolated
  between their neighbours (held constant past either end); rows past the clip's end only steer that
  interpolation.

  Raises:
    MediaError: missing / unreadable file, or a malformed table.
  """
  path = os.fspath(txt_path)
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      lines = f.read().splitlines()
  except FileNotFoundError:
    raise MediaError(path, "file not found") from None
  except OSError as e:
    raise MediaError(path, e.strerror or str(e)) from None
  header = next((i for i, line in enumerate(lines) if line.split() == ["FRAME", "X", "Y", "W", "H"]), None)
  if header is None:
    return None
  rows = []
  for number, line in enumerate(lines[header + 1:], start=header + 2):
    fields = line.split()
    if not fields or all(field.isalpha() for field in fields):
      break  # end of table: blank line or the next section's header (e.g. WORD START END ASDSCORE)
    try:
      if len(fields) != 5:
        raise ValueError(f"{len(fields)} columns")
      row = [int(fields[0])] + [float(v) for v in fields[1:]]
      if not (row[3] > 0 and row[4] > 0):
        raise ValueError("non-positive box size")
    except ValueError as e:
      raise MediaError(path, f"line {number}: expected '<frame> <x> <y> <w> <h>' ({e}): {line.strip()!r}") from None
    rows.append(row)
  if not rows:
    raise MediaError(path, f"line {header + 1}: face-box table has no rows")
  table = np.array(rows, np.float64)
  frames = table[:, 0] - table[:, 0].min()
  order = np.argsort(frames, kind="stable")
  frames, boxes = frames[order], table[order, 1:] * [width, height, width, height]
  if frames[0] >= num_frames:
    raise MediaError(path, f"face-box table starts past the video's {num_frames} frames")
  t = np.arange(num_frames)
  return np.stack([np.interp(t, frames, boxes[:, k]) for k in range(4)], axis=1).astype(np.float32)


def detect_faces(frames: np.ndarray, cfg) -> FaceTrack:
  """Face detection on every cfg.detect_stride-th frame, tracked over time.

  Args:
    frames: uint8 [T, H, W, 3] RGB.
    cfg: the preprocess config (face_detector and its settings, detect_stride, track_iou, max_gap_frames,
      median_window, smooth_window); fields it lacks take today's defaults (preprocess_config.with_face_defaults).

  Returns:
    The best track (largest x longest) with all tracks attached; without any face, a whole-frame box,
    valid all False, coverage 0 and num_tracks 0.
  """
  cfg = with_face_defaults(cfg)
  if cfg.max_gap_frames < cfg.detect_stride - 1:
    raise ValueError(f"max_gap_frames ({cfg.max_gap_frames}) must cover the frames skipped between detections "
                     f"(detect_stride - 1 = {cfg.detect_stride - 1})")
  num_frames, height, width = frames.shape[:3]
  return track_faces(run_detector(frames, cfg), num_frames, height, width, cfg)


def run_detector(frames: np.ndarray, cfg) -> dict[int, np.ndarray]:
  """Raw detections: {frame index: float32 [K, 4] boxes (x, y, w, h) in pixels} for the frames it ran on."""
  num_frames = len(frames)
  last = {num_frames - 1} if num_frames else set()  # the last frame too, so tracks reach the end
  indices = sorted(set(range(0, num_frames, cfg.detect_stride)) | last)
  if cfg.face_detector == "blazeface":
    from modeformer_jax.media import face_search

    return dict(zip(indices, face_search.detect_frames(frames, cfg, indices)))
  if cfg.face_detector == "haar":
    return {i: _haar_detections(frames[i], cfg) for i in indices}
  raise UserError(f"preprocess.face_detector: must be 'blazeface' or 'haar' (or a Haar cascade .xml), "
                  f"got {cfg.face_detector!r}")


def _haar_detections(frame: np.ndarray, cfg) -> np.ndarray:
  """The Haar cascade's faces in one uint8 [H, W, 3] RGB frame: float32 [K, 4] boxes in pixels."""
  cascade = _cascade(cfg.haar_cascade)
  height, width = frame.shape[:2]
  scale = min(1.0, cfg.detect_max_side / max(height, width))
  size = (max(1, round(width * scale)), max(1, round(height * scale)))
  min_side = max(1, round(cfg.min_face_fraction * min(size)))
  gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
  if scale < 1:
    gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
  if cfg.detect_equalize:
    gray = cv2.equalizeHist(gray)
  found = cascade.detectMultiScale(gray, scaleFactor=cfg.detect_scale_factor,
                                   minNeighbors=cfg.detect_min_neighbors, minSize=(min_side, min_side))
  return np.asarray(found, np.float32).reshape(-1, 4) / scale


def face_height(track: FaceTrack) -> float:
  """Median box height in pixels over the frames where the face was seen (0.0 without a face)."""
  return float(np.median(track.boxes[track.valid, 3])) if track.valid.any() else 0.0


def track_faces(detections: Mapping[int, np.ndarray], num_frames: int, height: int, width: int,
                cfg) -> FaceTrack:
  """Links per-frame detections into tracks by IoU and turns each into smooth per-frame boxes.

  A detection extends the track whose latest box it overlaps most (IoU >= cfg.track_iou, both boxes scaled by
  cfg.track_box_scale about their centres, so that a small face moving its own size between detections
  stays one track), however long ago that box was, so a face lost for a while keeps its track; otherwise it
  starts a new track, unless it overlaps (IoU >= cfg.track_iou) a detection of its frame that extended a track
  (the same face seen twice). Between two
  detections of a track at most cfg.max_gap_frames apart the boxes are interpolated and valid; longer gaps
  are interpolated but invalid.

  Args:
    detections: {frame index: float [K, 4] boxes (x, y, w, h)}; frames absent or with K = 0 saw no face.
    num_frames, height, width: the video's size.
    cfg: track_iou, track_box_scale, max_gap_frames, median_window, smooth_window.
  """
  raw = _link(detections, cfg.track_iou, cfg.get("track_box_scale", 1.0))
  raw.sort(key=lambda track: -sum(box[2] * box[3] for _, box in track))
  tracks = tuple(_track_to_frames(track, num_frames, cfg) for track in raw)
  if not tracks:
    return FaceTrack(boxes=fixed_boxes(num_frames, height, width), valid=np.zeros(num_frames, bool),
                     coverage=0.0, num_tracks=0)
  tracks = tuple(dataclasses.replace(t, num_tracks=len(tracks)) for t in tracks)
  return dataclasses.replace(tracks[0], tracks=tracks)


def _link(detections: Mapping[int, np.ndarray], min_iou: float,
          box_scale: float = 1.0) -> list[list[tuple[int, np.ndarray]]]:
  """Greedy IoU association (of boxes scaled by box_scale), best-overlapping pairs first: tracks, each
  [(frame, box [4]), ...] in frame order."""
  tracks: list[list[tuple[int, np.ndarray]]] = []
  for frame in sorted(detections):
    boxes = np.asarray(detections[frame], np.float32).reshape(-1, 4)
    taken_tracks, taken_boxes = set(), set()
    if tracks and len(boxes):
      iou = scaled_iou(np.stack([track[-1][1] for track in tracks]), boxes, box_scale)  # [tracks, boxes]
      for ti, bi in zip(*np.unravel_index(np.argsort(-iou, axis=None), iou.shape)):
        if iou[ti, bi] < min_iou:
          break
        if ti not in taken_tracks and bi not in taken_boxes:
          tracks[ti].append((frame, boxes[bi]))
          taken_tracks.add(ti)
          taken_boxes.add(bi)
    # A box left over that overlaps one taken in this frame is the same face seen twice (e.g. its mouth and
    # its whole face, by two windows): as a track of its own it would take that face's later detections in
    # turn with the first, and split it into two half-covered tracks.
    taken = boxes[sorted(taken_boxes)]
    for bi in range(len(boxes)):
      if bi not in taken_boxes and not (len(taken) and (_iou(boxes[bi:bi + 1], taken) >= min_iou).any()):
        tracks.append([(frame, boxes[bi])])
  return tracks


def scaled_iou(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
  """IoU of every box in a [N, 4] with every one in b [M, 4], both scaled by `scale` about their centres, as
  the tracker compares them (a track's last box with a detection): [N, M]."""
  return _iou(_scaled(a, scale), _scaled(b, scale))


def _scaled(boxes: np.ndarray, scale: float) -> np.ndarray:
  """(x, y, w, h) boxes [N, 4] scaled by `scale` about their centres."""
  centre = boxes[:, :2] + boxes[:, 2:] / 2
  return np.concatenate([centre - boxes[:, 2:] * scale / 2, boxes[:, 2:] * scale], axis=1)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """IoU of every (x, y, w, h) box in a [N, 4] with every one in b [M, 4]: [N, M]."""
  x0 = np.maximum(a[:, None, 0], b[None, :, 0])
  y0 = np.maximum(a[:, None, 1], b[None, :, 1])
  x1 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
  y1 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
  inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
  union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
  return inter / np.maximum(union, 1e-9)


def _track_to_frames(track: list[tuple[int, np.ndarray]], num_frames: int, cfg) -> FaceTrack:
  frames = np.array([f for f, _ in track])
  boxes = np.stack([b for _, b in track]).astype(np.float64)
  # Median over consecutive detections drops a single bad detection before interpolation can spread it.
  if len(boxes) >= cfg.median_window > 1:
    boxes = ndimage.median_filter(boxes, size=(cfg.median_window, 1), mode="nearest")
  t = np.arange(num_frames)
  dense = np.stack([np.interp(t, frames, boxes[:, k]) for k in range(4)], axis=1)
  if cfg.smooth_window > 1:
    dense = ndimage.uniform_filter1d(dense, cfg.smooth_window, axis=0, mode="nearest")
  valid = np.zeros(num_frames, bool)
  valid[frames] = True
  for start, end in zip(frames[:-1], frames[1:]):
    if end - start - 1 <= cfg.max_gap_frames:
      valid[start:end] = True
  return FaceTrack(boxes=dense.astype(np.float32), valid=valid, coverage=float(valid.mean()), num_tracks=1)


@functools.lru_cache(maxsize=4)
def _cascade(name: str) -> cv2.CascadeClassifier:
  """Loads a cascade by file name from OpenCV's bundled data, or by path."""
  bundled = getattr(getattr(cv2, "data", None), "haarcascades", None)
  path = name if os.path.isfile(name) else os.path.join(bundled or "", name)
  if not os.path.isfile(path):
    raise UserError(f"{path}: face detector cascade not found (opencv-python-headless 5.x ships no Haar "
                    f"cascades; install opencv-python-headless<5 or set preprocess.haar_cascade to a path)")
  cascade = cv2.CascadeClassifier(path)
  if cascade.empty():
    raise UserError(f"{path}: OpenCV could not load this face detector cascade")
  return cascade
