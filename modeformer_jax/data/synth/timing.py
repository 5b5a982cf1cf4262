"""Where a clip's audio sits against its video over time, and who talks when: the ground truth of `modeformer
sync --timeline` on generated footage.

AudioTiming gives the AV offset as a function of time: a constant offset, a linear drift (a recorder whose clock
runs fast or slow against the camera's), and a step (an edit that changes the offset mid-clip). The offset at
time t is that of audio time t: audio sample n renders the articulation track at time n / sample_rate +
offset_seconds(n / sample_rate), so the sound of video time t is heard at about t - offset_seconds(t) (the two
readings of "at time t" differ by the offset times the drift rate, under a millisecond here).

Turns: a dialogue is a list of (start, end, face) intervals in seconds of the clip (video) time, face 0 or 1,
alternating, covering the clip; each face's speech is its articulation track silenced outside its own turns.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from modeformer_jax.data.synth import streams


@dataclasses.dataclass(frozen=True)
class AudioTiming:
  """The AV offset over time (> 0: the audio leads, SPEC section 6). Frames are video frames of the clip."""
  offset_frames: int = 0  # at time 0 (before the step)
  drift_ms_per_min: float = 0.0  # the offset grows by this much per minute (> 0: the audio leads more and more)
  step_s: float | None = None  # from this time on the offset is step_to_frames (plus the drift so far)
  step_to_frames: int = 0

  def offset_samples(self, seconds: np.ndarray, fps: float, sample_rate: int) -> np.ndarray:
    """The offset at `seconds` (float [N]) in audio samples: float64 [N]. The constant parts are whole samples
    (round(frames * sample_rate / fps)), as render_clip shifts an in-sync clip."""
    seconds = np.asarray(seconds, np.float64)
    out = np.full(seconds.shape, float(round(self.offset_frames * sample_rate / fps)))
    if self.step_s is not None:
      out[seconds >= self.step_s] = round(self.step_to_frames * sample_rate / fps)
    return out + self.drift_ms_per_min / 60_000 * seconds * sample_rate

  def offset_frames_at(self, seconds: np.ndarray, fps: float) -> np.ndarray:
    """The true AV offset at `seconds` in (fractional) video frames: float64 [N]."""
    seconds = np.asarray(seconds, np.float64)
    base = np.where(seconds >= self.step_s, self.step_to_frames, self.offset_frames) if self.step_s is not None \
        else np.full(seconds.shape, float(self.offset_frames))
    return base + self.drift_ms_per_min / 60_000 * seconds * fps


def alternating_turns(seed: int, seconds: float, turn_seconds: float) -> list[tuple[float, float, int]]:
  """Turns of two faces taking turns over [0, seconds]: face 0 first, each turn 0.6-1.4 x turn_seconds long
  (the last one cut at the clip's end). Deterministic in the arguments."""
  if not turn_seconds > 0:
    raise ValueError(f"turn_seconds must be positive, got {turn_seconds}")
  rng = streams.generator(seed, 0x7a1c)
  turns, start, face = [], 0.0, 0
  while start < seconds:
    end = min(seconds, start + turn_seconds * rng.uniform(0.6, 1.4))
    turns.append((round(start, 3), round(end, 3), face))
    start, face = end, 1 - face
  return turns


def talking_intervals(turns: list[tuple[float, float, int]], face: int) -> list[tuple[float, float]]:
  """The (start, end) seconds of `face`'s turns; the first and last turn reach out to -inf / +inf, so speech the
  audio shift brings in from beyond the clip belongs to whoever talks at that end."""
  out = []
  for i, (start, end, who) in enumerate(turns):
    if who == face:
      out.append((-np.inf if i == 0 else start, np.inf if i == len(turns) - 1 else end))
  return out


def speaking_face(turns: list[tuple[float, float, int]], seconds: np.ndarray) -> np.ndarray:
  """The face talking at each time in `seconds` (float [N]): int [N]."""
  seconds = np.asarray(seconds, np.float64)
  out = np.full(seconds.shape, turns[0][2], int)
  for start, _, face in turns[1:]:
    out[seconds >= start] = face
  return out
