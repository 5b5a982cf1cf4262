"""One rendered clip: frames and audio of one articulation track, with the ground truth that produced them."""

from __future__ import annotations

import dataclasses

import numpy as np

from modeformer_jax.data.synth import streams
from modeformer_jax.data.synth.articulation import articulation_track
from modeformer_jax.data.synth.audio import render_audio
from modeformer_jax.data.synth.speakers import SpeakerStyle
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


def num_frames(seconds: float, fps: float) -> int:
  """Frames in a clip of `seconds` (at least one)."""
  return max(1, int(round(seconds * fps)))


def num_samples(frames: int, fps: float, sample_rate: int) -> int:
  """Audio samples spanning exactly the video's frames."""
  return int(round(frames * sample_rate / fps))


def render_clip(seed: int, speaker: SpeakerStyle, seconds: float, offset_frames: int = 0, size: int = 160,
                fps: float = 25.0, sample_rate: int = 16000, face_scale: float = 1.0) -> RenderedClip:
  """Renders one clip (deterministic in all arguments).

  The video never depends on offset_frames; the audio for offset k equals the in-sync audio moved earlier by
  k frames (k > 0: audio leads, the sound of video frame i is at audio frame i - k), continued with real
  speech at the end (or beginning, k < 0) rather than padded.

  Returns frames uint8 [T, size, size, 3] and audio float32 [S], T = round(seconds * fps),
  S = round(T * sample_rate / fps).
  """
  frames = num_frames(seconds, fps)
  samples = num_samples(frames, fps, sample_rate)
  shift = int(round(offset_frames * sample_rate / fps))
  clip_audio = streams.generator(seed, streams.CLIP_AUDIO)
  rate = speaker.rate * clip_audio.uniform(0.9, 1.1)
  pitch = clip_audio.uniform(0.92, 1.08)
  audio_start, audio_end = shift / sample_rate, (shift + samples) / sample_rate
  track = articulation_track(seed, speaker, min(0.0, audio_start), max(frames / fps, audio_end), rate, pitch)
  audio = render_audio(seed, track, speaker, shift, samples, sample_rate, clip_audio)
  image, boxes, mouths, open_ = render_video(track, speaker, streams.generator(seed, streams.CLIP_VIDEO), frames,
                                             size, fps, face_scale)
  clip_seconds = frames / fps
  words = [(w, max(s, 0.0), min(e, clip_seconds))
           for w, s, e in track.words if 0 <= (s + e) / 2 < clip_seconds]
  return RenderedClip(frames=image, audio=audio, face_boxes=boxes, mouth_centers=mouths, mouth_open=open_,
                      transcript=" ".join(w for w, _, _ in words), words=words, fps=fps,
                      sample_rate=sample_rate, offset_frames=offset_frames)
