"""Training examples from one prepared record: a 5-frame video window, its audio and N hard negatives.

SPEC sections 1 and 3. The audio window of video frame f starts at mel frame 80 f / 25 and is 16 frames
long. Hard negatives are audio windows of the same utterance at offsets d, min_offset <= |d| <= max_offset,
drawn without replacement; when the utterance has too few such positions they come from farther away, and
when it is too short even for that, the missing ones are masked (audio_mask False).
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from modeformer_jax.data.features import features_field
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

  def num_windows(self, num_frames: int, num_features: int, num_samples: int | None = None,
                  samples_per_frame: int = 640) -> int:
    """Windows f = 0..n-1 whose video window and audio window both lie inside the record (num_features audio
    feature frames); with num_samples (raw audio), also inside the L = min(frames, samples // samples_per_frame)
    frames that have audio (SPEC section 5)."""
    by_video = num_frames - self.video_frames + 1
    # Largest f with mel_start(f) + mel_frames <= num_features.
    by_audio = ((num_features - self.mel_frames) * self.fps) // self.mel_frames_per_second + 1
    if num_samples is not None:
      by_video = min(by_video, num_samples // samples_per_frame - self.video_frames + 1)
    return max(0, min(by_video, by_audio))

  num_starts = num_windows  # the old name, while callers move

  def clip(self, video_frames: int) -> "WindowSpec":
    """The geometry of clips of `video_frames` frames with the audio that covers them (ceil(3.2 T) mel frames)."""
    return dataclasses.replace(self, video_frames=video_frames, mel_frames=mel_frames_covering(
        video_frames, self.mel_frames_per_second, self.fps))

  def audio_windows(self, mel: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """mel [M, F] (time-major, as stored), frames [K] -> [K, F, mel_frames] (frequency, time) float32."""
    idx = mel_window_start(frames, self)[:, None] + np.arange(self.mel_frames)[None]
    return np.ascontiguousarray(np.asarray(mel, np.float32)[idx].transpose(0, 2, 1))


def negative_offsets(start: int, num_starts: int, n: int, min_offset: int, max_offset: int,
                     rng: np.random.Generator) -> np.ndarray:
  """Up to n distinct offsets d != 0 with 0 <= start + d < num_starts: near ones first, then farther ones."""
  d = np.arange(-start, num_starts - start)
  near = d[(np.abs(d) >= min_offset) & (np.abs(d) <= max_offset)]
  if len(near) >= n:
    return rng.choice(near, n, replace=False)
  far = d[np.abs(d) > max_offset]
  extra = rng.choice(far, min(n - len(near), len(far)), replace=False)
  return np.concatenate([near, extra]).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Augment:
  """Training-time augmentation strengths (config.data.augment); all zero disables it (evaluation)."""
  crop_jitter: int = 0
  brightness: float = 0.0
  contrast: float = 0.0
  audio_gain: float = 0.0
  audio_noise: float = 0.0

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict) -> "Augment":
    return cls(cfg.crop_jitter, cfg.brightness, cfg.contrast, cfg.audio_gain, cfg.audio_noise)

  def video(self, crops: np.ndarray, row_start: int, rng: np.random.Generator) -> np.ndarray:
    """crops [T, S, S, 3] uint8 -> mouth half [T, S - row_start, S, 3] uint8, jittered and photometric."""
    j = self.crop_jitter
    if j:
      dy, dx = rng.integers(-j, j + 1, size=2)
      # Edge padding keeps the shifted crop free of black borders the model could key on.
      crops = np.pad(crops, ((0, 0), (j, j), (j, j), (0, 0)), mode="edge")
      crops = crops[:, j + dy:j + dy + crops.shape[1] - 2 * j, j + dx:j + dx + crops.shape[2] - 2 * j]
    mouth = crops[:, row_start:]
    if self.brightness or self.contrast:
      gain = 1.0 + rng.uniform(-self.contrast, self.contrast)
      bias = 255.0 * rng.uniform(-self.brightness, self.brightness)
      mean = mouth.mean()
      mouth = np.clip((mouth - mean) * gain + mean + bias, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(mouth)

  def audio(self, windows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """windows [K, F, T] normalised log-mel; one gain for the whole example so it cannot tell candidates apart."""
    if self.audio_gain:
      windows = windows + rng.uniform(-self.audio_gain, self.audio_gain)
    if self.audio_noise:
      windows = windows + rng.normal(0.0, self.audio_noise, windows.shape).astype(np.float32)
    return windows.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ExampleSampler:
  """record -> example dict; picklable so grain worker processes can run it.

  Example: video uint8 [T=5, 48, 96, 3], audio float32 [1+N, 80, 16] (index 0 the positive), audio_mask
  bool [1+N], offsets int32 [1+N] (0 for the positive), audio_ids int32 [1+N, 2]: (record["index"], start
  frame) of each audio window, -1 where masked; two windows with the same id are the same audio, which the
  loss must not count as a negative (windows of one record drawn at overlapping positions). With windows > 1,
  each array gets a leading [windows] axis: windows drawn from one record read.

  With clip_frames = (lo, hi) (variable-length models, AVST): a clip of T frames, T drawn uniformly from
  lo..hi (fewer where the record is too short), and its audio windows of ceil(3.2 T) mel frames, zero-padded to
  hi frames and ceil(3.2 hi) mel frames, with video_mask bool [hi] (the first T frames True).
  """
  spec: WindowSpec
  num_negatives: int
  min_offset: int
  max_offset: int
  augment: Augment = Augment()
  windows: int = 1
  clip_frames: tuple[int, int] | None = None

  def __call__(self, record: dict, rng: np.random.Generator) -> dict:
    if self.windows == 1:
      return self.one(record, rng)
    examples = [self.one(record, rng) for _ in range(self.windows)]
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}

  def one(self, record: dict, rng: np.random.Generator) -> dict:
    crops, mel = record["crops"], record[self.spec.features]
    spec = self.spec
    if self.clip_frames:
      spec = spec.clip(int(rng.integers(self.clip_frames[0], self.clip_frames[1] + 1)))
      while spec.video_frames > self.clip_frames[0] and spec.num_windows(len(crops), len(mel)) < 1:
        spec = spec.clip(spec.video_frames - 1)
    num_starts = spec.num_windows(len(crops), len(mel))
    if num_starts < 1:
      raise ValueError(f"record {record.get('id', '?')}: too short for one window "
                       f"({len(crops)} frames, {len(mel)} mel frames)")
    start = int(rng.integers(num_starts))
    offsets = negative_offsets(start, num_starts, self.num_negatives, self.min_offset, self.max_offset, rng)
    k = 1 + self.num_negatives
    frames = np.full(k, start, np.int64)
    frames[1:1 + len(offsets)] += offsets
    mask = np.arange(k) < 1 + len(offsets)
    # A slice, so lazily decoded JPEG crops (records.JpegFrames) decode these 5 frames only.
    video = self.augment.video(crops[start:start + spec.video_frames], spec.mouth_row_start, rng)
    audio = self.augment.audio(spec.audio_windows(mel, frames), rng)
    ids = np.where(mask[:, None], np.stack([np.full(k, record["index"]), frames], axis=1), -1)
    example = {"video": video, "audio": audio, "audio_mask": mask,
               "offsets": np.where(mask, frames - start, 0).astype(np.int32), "audio_ids": ids.astype(np.int32)}
    if self.clip_frames:
      longest = self.spec.clip(self.clip_frames[1])
      example["video"] = _pad_axis(video, 0, longest.video_frames)
      example["audio"] = _pad_axis(audio, 2, longest.mel_frames)
      example["video_mask"] = np.arange(longest.video_frames) < spec.video_frames
    return example


def _pad_axis(x: np.ndarray, axis: int, size: int) -> np.ndarray:
  """x zero-padded at the end of `axis` to `size`."""
  pad = [(0, 0)] * x.ndim
  pad[axis] = (0, size - x.shape[axis])
  return np.pad(x, pad)
