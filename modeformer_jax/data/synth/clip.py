"""One rendered clip: frames and audio of one articulation track, with the ground truth that produced them."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from modeformer_jax.data.synth import streams
from modeformer_jax.data.synth.articulation import articulation_track, silenced_outside
from modeformer_jax.data.synth.audio import render_audio
from modeformer_jax.data.synth.speakers import SpeakerStyle
from modeformer_jax.data.synth.timing import AudioTiming
from modeformer_jax.data.synth.video import render_video


@dataclasses.dataclass
class RenderedClip:
  """One clip. T = round(seconds * fps) frames, S = round(T * sample_rate / fps) samples."""
  frames: np.ndarray  # uint8 [T, H, W, 3] RGB
  audio: np.ndarray  # float32 [S] in [-1, 1]
  face_boxes: np.ndarray  # float32 [T, 4]: x, y, w, h of the face ellipse's bounding box, pixels
  mouth_centers: np.ndarray  # float32 [T, 2]: cx, cy, pixels
  mouth_open: np.ndarray  # float32 [T] in 0..1, the opening shown in each frame
  transcript: str
  words: list[tuple[str, float, float]]  # (word, start, end) seconds from the clip start, video time
  fps: float
  sample_rate: int
  offset_frames: int
  timing: AudioTiming = AudioTiming()  # the offset over time (drift, step); offset_frames is its value at 0


def num_frames(seconds: float, fps: float) -> int:
  """Frames in a clip of `seconds` (at least one)."""
  return max(1, int(round(seconds * fps)))


def num_samples(frames: int, fps: float, sample_rate: int) -> int:
  """Audio samples spanning exactly the video's frames."""
  return int(round(frames * sample_rate / fps))


def render_clip(seed: int, speaker: SpeakerStyle, seconds: float, offset_frames: int = 0, size: int = 160,
                fps: float = 25.0, sample_rate: int = 16000, face_scale: float = 1.0, *,
                drift_ms_per_min: float = 0.0, step: tuple[float, int] | None = None,
                talking: Sequence[tuple[float, float]] | None = None) -> RenderedClip:
  """Renders one clip (deterministic in all arguments).

  The video never depends on the offset; the audio for offset k equals the in-sync audio moved earlier by
  k frames (k > 0: audio leads, the sound of video frame i is at audio frame i - k), continued with real
  speech at the end (or beginning, k < 0) rather than padded. drift_ms_per_min adds a linear drift to the
  offset (synth.timing.AudioTiming); step (seconds, offset_frames after) changes it from that time on, the
  audio jumping there as at an edit. talking: the (start, end) seconds this face speaks (None: throughout);
  outside them its lips rest and its voice is silent.

  Returns frames uint8 [T, size, size, 3] and audio float32 [S], T = round(seconds * fps),
  S = round(T * sample_rate / fps).
  """
  frames = num_frames(seconds, fps)
  samples = num_samples(frames, fps, sample_rate)
  timing = AudioTiming(offset_frames, drift_ms_per_min, *(step or (None, 0)))
  positions = np.arange(samples) + timing.offset_samples(np.arange(samples) / sample_rate, fps, sample_rate)
  clip_audio = streams.generator(seed, streams.CLIP_AUDIO)
  rate = speaker.rate * clip_audio.uniform(0.9, 1.1)
  pitch = clip_audio.uniform(0.92, 1.08)
  audio_start, audio_end = positions.min() / sample_rate, (positions.max() + 1) / sample_rate
  track = articulation_track(seed, speaker, min(0.0, audio_start), max(frames / fps, audio_end), rate, pitch)
  if talking is not None:
    track = silenced_outside(track, speaker, talking)
  audio = render_audio(seed, track, speaker, positions, sample_rate, clip_audio)
  image, boxes, mouths, open_ = render_video(track, speaker, streams.generator(seed, streams.CLIP_VIDEO), frames,
                                             size, fps, face_scale)
  clip_seconds = frames / fps
  words = [(w, max(s, 0.0), min(e, clip_seconds))
           for w, s, e in track.words if 0 <= (s + e) / 2 < clip_seconds]
  return RenderedClip(frames=image, audio=audio, face_boxes=boxes, mouth_centers=mouths, mouth_open=open_,
                      transcript=" ".join(w for w, _, _ in words), words=words, fps=fps,
                      sample_rate=sample_rate, offset_frames=offset_frames, timing=timing)
