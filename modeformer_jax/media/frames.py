"""Decoded video frames as the rest of the library reads them: upright uint8 RGB, and chunks of decoded frames
converted to RGB only where they are read (media/decode.py's read_media hands these to its on_frames)."""

from __future__ import annotations

import time

import av
import numpy as np


def to_rgb(frame) -> np.ndarray:
  """A decoded frame as uint8 [H, W, 3] RGB, turned upright as its display matrix says."""
  rgb = frame.to_ndarray(format="rgb24")
  turn = rotation(frame)
  return np.ascontiguousarray(np.rot90(rgb, turn // 90)) if turn else rgb


def rotation(frame) -> int:
  """Degrees counter-clockwise to turn a decoded frame to show it upright (its display matrix), 0..270."""
  return round(getattr(frame, "rotation", 0) / 90) % 4 * 90


class FrameChunk:
  """Consecutive output frames of read_media's on_frames, held decoded and converted to RGB when read.

  Reads like a uint8 [n, H, W, 3] array where it matters: len, shape, frames[i] (uint8 [H, W, 3]; kept, since
  face detection reads its frames again and again) and iteration (each frame converted once and not kept:
  cropping reads every frame once). np.asarray(chunk) converts all of them.
  """

  def __init__(self, sources: list):
    self._sources = sources  # av.VideoFrame per output frame; a repeated frame is the same object
    self._read: dict[int, np.ndarray] = {}  # id(source frame) -> RGB, of the frames read by index
    height, width = sources[0].height, sources[0].width
    if rotation(sources[0]) in (90, 270):
      height, width = width, height
    self.shape = (len(sources), height, width, 3)
    self.dtype = np.dtype(np.uint8)
    self.convert_seconds = 0.0  # spent converting frames to RGB so far

  def _convert(self, frame) -> np.ndarray:
    started = time.perf_counter()
    rgb = to_rgb(frame)
    self.convert_seconds += time.perf_counter() - started
    return rgb

  def __len__(self) -> int:
    return len(self._sources)

  def __getitem__(self, index: int) -> np.ndarray:
    frame = self._sources[index]
    key = id(frame)  # the sources hold their frames: ids stay unique
    if key not in self._read:
      self._read[key] = self._convert(frame)
    return self._read[key]

  def __iter__(self):
    """Each frame as uint8 [H, W, 3]: the RGB array when it was read by index, else a _RegionFrame (a crop reads
    a small part of a frame)."""
    source, rgb = None, None
    for frame in self._sources:
      if frame is not source:
        source = frame
        rgb = self._read.get(id(frame))
        if rgb is None:
          rgb = _RegionFrame(frame, self) if _RegionFrame.fits(frame) else self._convert(frame)
      yield rgb

  def __array__(self, dtype=None, copy=None) -> np.ndarray:
    out = np.empty(self.shape, np.uint8)
    for index, rgb in enumerate(self):
      out[index] = rgb
    return out if dtype is None else out.astype(dtype)


class _RegionFrame:
  """A decoded yuv420p frame that converts to RGB only the part sliced from it: frame[y0:y1, x0:x1] is that part
  of the whole frame's RGB, pixel for pixel (FFmpeg converts yuv420p pointwise, each 2x2 block with its chroma
  sample, so the part is widened to even bounds and converted alone); np.asarray converts all of it."""

  def __init__(self, frame, chunk: FrameChunk):
    self._frame, self._chunk = frame, chunk
    self.shape = (frame.height, frame.width, 3)
    self._rgb = None

  @staticmethod
  def fits(frame) -> bool:
    """Whether a decoded frame can be read by parts: yuv420p, even sides, not turned."""
    return frame.format.name == "yuv420p" and not frame.width % 2 and not frame.height % 2 and not rotation(frame)

  def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
    rows, cols = key
    y0, y1, _ = rows.indices(self.shape[0])
    x0, x1, _ = cols.indices(self.shape[1])
    if y1 <= y0 or x1 <= x0:
      return np.zeros((max(0, y1 - y0), max(0, x1 - x0), 3), np.uint8)
    ey0, ey1, ex0, ex1 = y0 & ~1, min(self.shape[0], y1 + 1 & ~1), x0 & ~1, min(self.shape[1], x1 + 1 & ~1)
    started = time.perf_counter()
    planes = [np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size) for plane in self._frame.planes]
    part = np.concatenate([planes[0][ey0:ey1, ex0:ex1].ravel()] +
                          [p[ey0 // 2:ey1 // 2, ex0 // 2:ex1 // 2].ravel() for p in planes[1:]])
    piece = av.VideoFrame.from_ndarray(part.reshape(-1, ex1 - ex0), format="yuv420p")
    piece.colorspace, piece.color_range = self._frame.colorspace, self._frame.color_range
    rgb = piece.to_ndarray(format="rgb24")
    self._chunk.convert_seconds += time.perf_counter() - started
    return rgb[y0 - ey0:y1 - ey0, x0 - ex0:x1 - ex0]

  def __array__(self, dtype=None, copy=None) -> np.ndarray:
    if self._rgb is None:  # kept: each face's crop of a frame may read all of it (syncnet_python's padding)
      self._rgb = self._chunk._convert(self._frame)
    return self._rgb if dtype is None else self._rgb.astype(dtype)
