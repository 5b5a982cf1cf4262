"""Training examples, a whole batch at a time: per record a 5-frame video window, its audio and N hard negatives.

SPEC sections 1 and 3. The audio window of video frame f starts at mel frame 80 f / 25 and is 16 frames
long. Hard negatives are audio windows of the same utterance at offsets d, min_offset <= |d| <= max_offset,
drawn without replacement; when the utterance has too few such positions they come from farther away, and
when it is too short even for that, the missing ones are masked (audio_mask False).

BatchSampler draws every row of a batch with array operations (no per-example Python): the window start and
the negatives of example k come from a counter-based hash of (seed, k), so an example is a function of the
seed and its position alone, however the batch is split over processes. It reads through a WindowReader:
RecordWindows cuts windows from whole records (any source: prepared shards, the in-memory generator, SyncNet's
MFCCs), data/window_store.py reads them from the store `modeformer prep` writes for training (a window costs
5 frames and 3 blocks of mel, whatever the clip's length). Augmentation is not done here: the train step
applies it on the device (data/augment.py), so the video keeps `margin` rows above the mouth for its crop
jitter.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

import ml_collections
import numpy as np

from modeformer_jax.data.features import features_field
from modeformer_jax.media.crops import mouth_rows
from modeformer_jax.media.logmel import mel_frames_covering, mel_window_start


@dataclasses.dataclass(frozen=True)
class WindowSpec:
  """Window geometry from config.preprocess (SPEC section 1)."""
  video_frames: int = 5
  mel_frames: int = 16
  mel_frames_per_second: int = 80
  fps: int = 25
  mouth_row_start: int = 48
  features: str = "mel"  # the record field audio windows are cut from: "mel" (log-mel) or "mfcc" (SyncNet)

  @classmethod
  def from_config(cls, pp: ml_collections.ConfigDict) -> "WindowSpec":
    return cls(pp.video_window_frames, pp.mel_window_frames, pp.mel_frames_per_second, int(pp.fps),
               pp.mouth_row_start, features_field(pp))

  def num_windows(self, num_frames, num_features, num_samples=None, samples_per_frame: int = 640):
    """Windows f = 0..n-1 whose video window and audio window both lie inside the record (num_features audio
    feature frames); with num_samples (raw audio), also inside the L = min(frames, samples // samples_per_frame)
    frames that have audio (SPEC section 5). Ints, or arrays of them (one count per record)."""
    by_video = np.asarray(num_frames) - self.video_frames + 1
    # Largest f with mel_start(f) + mel_frames <= num_features.
    by_audio = ((np.asarray(num_features) - self.mel_frames) * self.fps) // self.mel_frames_per_second + 1
    if num_samples is not None:
      by_video = np.minimum(by_video, np.asarray(num_samples) // samples_per_frame - self.video_frames + 1)
    count = np.maximum(0, np.minimum(by_video, by_audio))
    return int(count) if count.ndim == 0 else count

  def audio_rows(self, mel: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """mel [M, F] (time-major, as stored), frames [...] -> [..., mel_frames, F]: the rows of each frame's audio
    window, time-major in mel's dtype (what the loader hands the train step, which transposes on the device)."""
    return mel[mel_window_start(np.asarray(frames), self)[..., None] + np.arange(self.mel_frames)]

  def clip(self, video_frames: int) -> "WindowSpec":
    """The geometry of clips of `video_frames` frames with the audio that covers them (ceil(3.2 T) mel frames)."""
    return dataclasses.replace(self, video_frames=video_frames, mel_frames=mel_frames_covering(
        video_frames, self.mel_frames_per_second, self.fps))

  def audio_windows(self, mel: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """mel [M, F] (time-major, as stored), frames [...] -> [..., F, mel_frames] (frequency, time) float32."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(self.audio_rows(mel, frames), np.float32), -1, -2))


class WindowBatch(Protocol):
  """Some records of a WindowReader, opened for one batch (see WindowReader.open)."""
  num_frames: np.ndarray  # int [n] video frames of each record
  num_mel: np.ndarray  # int [n] audio feature frames of each record

  def video(self, rows: np.ndarray, starts: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """Record rows [m] (indices into the opened records), window starts [m] -> uint8 [m, T, H, W, 3]: the
    model's rows of crops start..start+T-1 (T = spec.video_frames) with the reader's margin rows above them."""

  def audio(self, rows: np.ndarray, frames: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """Record rows [m], video frames [m, K] -> [m, K, spec.mel_frames, F] audio windows of those frames,
    time-major (float16 log-mel or float32 features)."""


class WindowReader(Protocol):
  """Random access to the training windows of a split's records."""

  def __len__(self) -> int: ...

  def open(self, records: np.ndarray) -> WindowBatch: ...


class RecordWindows:
  """Windows cut from whole records (dicts with crops [T, S, S, 3] and mel [M, F]; crops may decode lazily, e.g.
  records.JpegFrames), optionally through a record transform (SyncNet's MFCCs, data/features.py). Picklable
  when the records are."""

  def __init__(self, records: Sequence[dict], spec: WindowSpec, margin: int, transform=None):
    self.records, self.spec, self.margin, self.transform = records, spec, margin, transform

  def __len__(self) -> int:
    return len(self.records)

  def open(self, records: np.ndarray) -> "_OpenRecords":
    loaded = [self.records[int(i)] for i in records]
    return _OpenRecords([self.transform(r) for r in loaded] if self.transform else loaded, self)


class _OpenRecords:

  def __init__(self, records: list[dict], reader: RecordWindows):
    self.records, self.reader = records, reader
    self.num_frames = np.array([len(r["crops"]) for r in records])
    self.num_mel = np.array([len(r[reader.spec.features]) for r in records])

  def video(self, rows: np.ndarray, starts: np.ndarray, spec: WindowSpec) -> np.ndarray:
    # A slice, so lazily decoded JPEG crops decode these 5 frames only.
    return np.stack([mouth_rows(self.records[r]["crops"][s:s + spec.video_frames], spec.mouth_row_start,
                                self.reader.margin) for r, s in zip(rows, starts)])

  def audio(self, rows: np.ndarray, frames: np.ndarray, spec: WindowSpec) -> np.ndarray:
    mel = [self.records[r][spec.features] for r in rows]
    dtype = np.float16 if all(m.dtype == np.float16 for m in mel) else np.float32
    return np.stack([spec.audio_rows(m, f).astype(dtype, copy=False) for m, f in zip(mel, frames)])


class JoinedWindows:
  """Several readers' records as one (split "pretrain+train"), in that order; picklable when its parts are."""

  def __init__(self, parts: list[WindowReader]):
    self.parts = parts
    self._ends = np.cumsum([len(p) for p in parts])

  def __len__(self) -> int:
    return int(self._ends[-1])

  def open(self, records: np.ndarray) -> "_OpenJoined":
    part = np.searchsorted(self._ends, records, side="right")
    local = records - np.concatenate([[0], self._ends[:-1]])[part]
    return _OpenJoined(part, {p: self.parts[p].open(local[part == p]) for p in np.unique(part)})


class _OpenJoined:

  def __init__(self, part: np.ndarray, opened: dict[int, WindowBatch]):
    self.part, self.opened = part, opened
    # Record i is row `within[i]` of its part's opened records.
    self.within = np.zeros(len(part), np.int64)
    for p in opened:
      self.within[part == p] = np.arange(np.sum(part == p))
    self.num_frames = np.zeros(len(part), np.int64)
    self.num_mel = np.zeros(len(part), np.int64)
    for p, batch in opened.items():
      self.num_frames[part == p], self.num_mel[part == p] = batch.num_frames, batch.num_mel

  def _gather(self, method: str, rows: np.ndarray, arg: np.ndarray, spec: WindowSpec) -> np.ndarray:
    out = None
    for p, batch in self.opened.items():
      take = self.part[rows] == p
      if take.any():
        values = getattr(batch, method)(self.within[rows[take]], arg[take], spec)
        out = np.empty((len(rows), *values.shape[1:]), values.dtype) if out is None else out
        out[take] = values
    return out

  def video(self, rows: np.ndarray, starts: np.ndarray, spec: WindowSpec) -> np.ndarray:
    return self._gather("video", rows, starts, spec)

  def audio(self, rows: np.ndarray, frames: np.ndarray, spec: WindowSpec) -> np.ndarray:
    return self._gather("audio", rows, frames, spec)


def uniform(seed: int, *ids) -> np.ndarray:
  """Counter-based uniform floats in [0, 1): a splitmix64 hash of (seed, *ids), broadcast over the id arrays.
  The same ids give the same number in any process and any batch layout."""
  with np.errstate(over="ignore"):  # 0-d arrays warn where arrays wrap silently
    x = _mix(np.full((), seed, np.uint64) + _GOLDEN)
    for i in ids:
      x = _mix(x ^ (np.asarray(i).astype(np.uint64) + _GOLDEN))
  return (x >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
  """splitmix64's finaliser (uint64 arithmetic wraps, as intended)."""
  x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return x ^ (x >> np.uint64(31))


# Streams of `uniform` per example: the window start, the near negatives' order, the far ones' order, the
# clip length (clip_frames).
_START, _NEAR, _FAR, _LENGTH = 0, 1, 2, 3


def draw_negatives(starts: np.ndarray, num_starts: np.ndarray, n: int, min_offset: int, max_offset: int,
                   seed: int, example: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Up to n distinct offsets d != 0 per row with 0 <= start + d < num_starts: near ones
  (min_offset <= |d| <= max_offset) drawn without replacement; where fewer than n exist, all of them and then
  farther ones drawn without replacement; where those run out too, fewer.

  starts, num_starts [m]; example [m, ...]: the hash ids of each row (uniform). Returns (offsets int64 [m, n],
  count int [m]: the first count of each row are drawn, the rest 0).
  """
  near = np.concatenate([np.arange(-max_offset, -min_offset + 1), np.arange(min_offset, max_offset + 1)])
  near = near[near != 0]
  inside = (starts[:, None] + near >= 0) & (starts[:, None] + near < num_starts[:, None])  # [m, J]
  # A uniformly random subset: the n valid candidates with the smallest random keys.
  keys = np.where(inside, uniform(seed, *example.T, _NEAR, np.arange(len(near))[:, None]).T, np.inf)
  order = np.argsort(keys, axis=1, kind="stable")[:, :n]
  count = np.minimum(inside.sum(axis=1), n)
  offsets = np.zeros((len(starts), n), np.int64)
  offsets[:, :order.shape[1]] = np.where(np.arange(order.shape[1]) < count[:, None], near[order], 0)
  for row in np.nonzero(count < n)[0]:  # short utterances: farther positions fill in
    d = np.arange(-starts[row], num_starts[row] - starts[row])
    far = d[np.abs(d) > max_offset]
    take = min(n - count[row], len(far))
    if take:
      pick = far[np.argsort(uniform(seed, *example[row], _FAR, np.arange(len(far))), kind="stable")[:take]]
      offsets[row, count[row]:count[row] + take] = pick
      count[row] += take
  return offsets, count


@dataclasses.dataclass(frozen=True)
class BatchSampler:
  """(slice index s, record indices [r]) -> the r x windows training examples of that batch slice; picklable so
  grain worker processes can run it.

  Example k = s * r + i (record i of the slice) draws `windows` windows from its record. Rows (record-major):
  video uint8 [r w, 5, S - mouth_row_start + margin, S, 3] (not augmented: data/augment.py crops the margin
  away on the device), audio [r w, 1+N, T, F] time-major, float16 log-mel as stored or float32 features (index
  0 the positive; data/augment.py transposes it to the model's [F, T] in float32), audio_mask bool [r w, 1+N],
  offsets int32 [r w, 1+N] (0 for the positive), audio_ids int32 [r w, 1+N, 2]: (record index, start frame)
  of each audio window, -1 where masked; two windows with the same id are the same audio, which the loss must
  not count as a negative (windows of one record drawn at overlapping positions).

  With clip_frames = (lo, hi) (variable-length models, AVST): a clip of T frames, T drawn uniformly from
  lo..hi (fewer where the record is too short), and its audio windows of ceil(3.2 T) mel frames, zero-padded to
  hi frames and ceil(3.2 hi) mel frames, with video_mask bool [r w, hi] (the first T frames True).
  """
  reader: WindowReader
  spec: WindowSpec
  num_negatives: int
  min_offset: int
  max_offset: int
  seed: int
  windows: int = 1
  clip_frames: tuple[int, int] | None = None

  def __call__(self, slice_index: int, records: np.ndarray) -> dict[str, np.ndarray]:
    records = np.asarray(records, np.int64)
    opened = self.reader.open(records)
    rows = np.repeat(np.arange(len(records)), self.windows)
    # Hash ids of each row: (example, window); example k = slice_index * records + i.
    example = np.stack([slice_index * len(records) + rows, np.tile(np.arange(self.windows), len(records))], axis=1)
    if not self.clip_frames:
      return self._windows(opened, records, rows, example, self.spec)
    # Variable-length clips: rows of one length at a time, padded to the longest.
    lengths = self._lengths(opened, rows, example)
    longest = self.spec.clip(self.clip_frames[1])
    out = {}
    for length in np.unique(lengths):
      at = np.nonzero(lengths == length)[0]
      part = self._windows(opened, records, rows[at], example[at], self.spec.clip(int(length)))
      part["video"] = _pad_axis(part["video"], 1, longest.video_frames)
      part["audio"] = _pad_axis(part["audio"], 2, longest.mel_frames)
      for key, value in part.items():
        out.setdefault(key, np.empty((len(rows), *value.shape[1:]), value.dtype))[at] = value
    out["video_mask"] = np.arange(longest.video_frames) < lengths[:, None]
    return out

  def _lengths(self, opened: WindowBatch, rows: np.ndarray, example: np.ndarray) -> np.ndarray:
    """Clip length T [m] of each row: uniform in clip_frames' lo..hi, shortened (not below lo) until the record
    holds a clip of T frames."""
    lo, hi = self.clip_frames
    lengths = lo + (uniform(self.seed, *example.T, _LENGTH) * (hi - lo + 1)).astype(np.int64)
    for t in range(hi, lo, -1):
      fits = self.spec.clip(t).num_windows(opened.num_frames[rows], opened.num_mel[rows]) >= 1
      lengths = np.where((lengths == t) & ~fits, t - 1, lengths)
    return lengths

  def _windows(self, opened: WindowBatch, records: np.ndarray, rows: np.ndarray, example: np.ndarray,
               spec: WindowSpec) -> dict[str, np.ndarray]:
    """The examples of `rows` (indices into the opened records, hash ids `example`) with windows of `spec`."""
    num_starts = spec.num_windows(opened.num_frames[rows], opened.num_mel[rows])
    if (short := np.nonzero(num_starts < 1)[0]).size:
      i = rows[short[0]]
      raise ValueError(f"record {records[i]}: too short for one window ({opened.num_frames[i]} frames, "
                       f"{opened.num_mel[i]} mel frames)")
    starts = (uniform(self.seed, *example.T, _START) * num_starts).astype(np.int64)
    offsets, count = draw_negatives(starts, num_starts, self.num_negatives, self.min_offset, self.max_offset,
                                    self.seed, example)
    k = 1 + self.num_negatives
    mask = np.arange(k) < 1 + count[:, None]
    frames = starts[:, None] + np.concatenate([np.zeros((len(rows), 1), np.int64), offsets], axis=1)
    ids = np.where(mask[..., None], np.stack([np.broadcast_to(records[rows, None], frames.shape), frames], -1), -1)
    return {"video": opened.video(rows, starts, spec), "audio": opened.audio(rows, frames, spec),
            "audio_mask": mask, "offsets": np.where(mask, frames - starts[:, None], 0).astype(np.int32),
            "audio_ids": ids.astype(np.int32)}


def _pad_axis(x: np.ndarray, axis: int, size: int) -> np.ndarray:
  """x zero-padded at the end of `axis` to `size`."""
  pad = [(0, 0)] * x.ndim
  pad[axis] = (0, size - x.shape[axis])
  return np.pad(x, pad)
