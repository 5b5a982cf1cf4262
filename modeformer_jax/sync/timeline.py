"""Offsets over time and who is speaking: `modeformer sync --timeline SECONDS`.

The file is cut into segments (window_s long, one every hop_s) and each segment gets syncnet_python's numbers
from the rows of the per-window distance matrices that fall in it: no window is embedded again, so a timeline
costs no model time beyond the one pass over the file (per face). With several faces every face is scored and
the segment's speaker is the face whose video matches the audio best at the offset the faces agree on around
the segment (speaking_faces); the segment reports that face's own offset and Confidence.

A segment is decided when its speaker's Confidence reaches the threshold; the others say so instead of giving
a number. The automatic threshold is what chance gives on this file: every face's windows scored again against
the file's own audio rotated by several seconds (so no candidate shift is the true one), segment by segment,
and the 99th percentile of those Confidences taken. That costs a few matrix products on the embeddings already
made, adapts to the model's scale (our cosine distances, SyncNet's Euclidean ones) and to the segment length,
and means about 1 segment in 100 without sync evidence is decided by chance.

On a short file that percentile is too low: a rotation by r + k scores the shifts of a rotation by r moved by
k, so all rotations together see only the file's few stretches of 2S+1 wrong alignments, and 99% of a handful
of independent values is their maximum (another clip's audio passed 24% of the segments of 4 s files). So the
threshold is also taken from Gaussian noise with the covariance of those segments' mdists over the 2S+1
shifts (a Confidence does not depend on mdist's mean, so the covariance of mdist less its mean is all it
needs), and the higher of the two used: the percentile where rotations are many, the Gaussian where they are
few. Measured with another clip's audio (bench/timeline_chance.py, 4 s segments): 4.4% of chance segments
decided in 4 s files (24% by the percentile alone), 2.0% at 8 s, 1.0% from 12 s on.

Decided segments feed sync.trend: a constant offset, a linear drift or a step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from modeformer_jax.sync import syncnet_metrics
from modeformer_jax.sync.trend import Trend, fit_trend

# Fewer scored windows than this (0.4 s) leave a face out of a segment.
MIN_WINDOWS = 10
# The automatic threshold: this quantile of the Confidences of segments scored against rotated audio.
NULL_QUANTILE = 0.99
# Rotations of the audio for the automatic threshold: enough for about this many chance segments, within limits.
_NULL_SAMPLES = 400
_MIN_ROTATIONS, _MAX_ROTATIONS = 4, 16
# Draws of Gaussian noise for chance_threshold: its 99th percentile within about 2% of the exact value.
_GAUSSIAN_DRAWS = 20000
# Segments that choose the speaking face when several faces are scored and no --timeline is given.
SPEAKER_WINDOW_S = 10.0
# The faces are compared at the offset the segments within this many seconds agree on (see speaking_faces).
AGREE_S = 10.0


@dataclasses.dataclass(frozen=True)
class TimelineOptions:
  """How the file is cut: window_s long segments every hop_s (default half a window); min_confidence None is
  the automatic threshold."""
  window_s: float = SPEAKER_WINDOW_S
  hop_s: float | None = None
  min_confidence: float | None = None

  @property
  def hop(self) -> float:
    return self.window_s / 2 if self.hop_s is None else self.hop_s

  def check(self) -> None:
    """Raises ValueError on lengths that cannot cut a file (named as the library's parameters)."""
    if not 0.5 <= self.window_s < float("inf"):
      raise ValueError(f"window_s {self.window_s}: a segment must be at least 0.5 s long")
    if not 0.04 <= self.hop < float("inf"):
      raise ValueError(f"hop_s {self.hop}: must be at least one frame (0.04 s)")
    if self.min_confidence is not None and not np.isfinite(self.min_confidence):
      raise ValueError(f"min_confidence {self.min_confidence}: must be a number")


@dataclasses.dataclass
class FaceScores:
  """One face's windows scored against the file's audio."""
  first: int  # window index of video[0]
  video: np.ndarray  # float32 [n, D] embeddings of windows first .. first + n - 1
  ok: np.ndarray  # bool [n] the face is on all 5 frames of the window
  sims: np.ndarray  # float32 [L, 2S+1] similarities over all L windows of the file (NaN: missing, no face)
  distances: np.ndarray  # float64 [L, 2S+1] syncnet distances, NaN likewise


@dataclasses.dataclass
class Segment:
  """One segment's verdict. Offsets in frames (> 0: audio leads), None where undecided."""
  start_s: float
  end_s: float
  windows: int  # scored windows of the face reported
  offset: int | None
  offset_fine: float | None  # between whole frames: the parabola through mdist around its minimum
  confidence: float | None  # the reported face's syncnet Confidence in this segment
  min_dist: float | None
  track: int | None  # the face track whose video matches the audio best (index into the result's tracks)
  track_confidences: list[float | None]  # every face's Confidence (None: too little of it in the segment)
  decided: bool
  note: str = ""

  @property
  def centre_s(self) -> float:
    return 0.5 * (self.start_s + self.end_s)

  def to_json(self, fps: float) -> dict[str, Any]:
    r = lambda x, d=4: None if x is None else round(float(x), d)
    return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "decided": self.decided,
            "av_offset_frames": self.offset, "av_offset_ms": r(self.offset and self.offset * 1000 / fps, 1)
            if self.offset is not None else None, "offset_fine_frames": r(self.offset_fine, 3),
            "confidence": r(self.confidence), "min_dist": r(self.min_dist), "windows": self.windows,
            "track": self.track, "track_confidences": [r(c) for c in self.track_confidences],
            "note": self.note}


@dataclasses.dataclass
class Timeline:
  options: TimelineOptions
  fps: float
  threshold: float | None  # Confidence a segment needs to be decided (None: could not be set automatically)
  threshold_from: str  # how it was set, in words
  segments: list[Segment]
  trend: Trend
  window_face: np.ndarray  # int [L] the face each window's row is taken from (-1: none)

  def to_json(self) -> dict[str, Any]:
    return {"window_s": self.options.window_s, "hop_s": self.options.hop,
            "min_confidence": None if self.threshold is None else round(self.threshold, 4),
            "min_confidence_from": self.threshold_from,
            "segments": [s.to_json(self.fps) for s in self.segments], "trend": self.trend.to_json()}

  def speaker_shares(self, num_faces: int) -> list[int]:
    """Decided segments per face."""
    return [sum(s.decided and s.track == k for s in self.segments) for k in range(num_faces)]

  def text(self, num_faces: int) -> list[str]:
    """The timeline as lines: a header, one line per segment, the trend."""
    decided = sum(s.decided for s in self.segments)
    threshold = "none" if self.threshold is None else f"{self.threshold:.3f}"
    lines = [f"Timeline: \t{self.options.window_s:g} s segments every {self.options.hop:g} s: {decided} of "
             f"{len(self.segments)} decided (Confidence >= {threshold}, {self.threshold_from})"]
    several = num_faces > 1
    head = f"  {'start':>7} {'end':>7} {'offset':>6} {'ms':>6} {'conf':>6}" + ("  face  (each face's conf)" if several
                                                                              else "")
    lines.append(head)
    for s in self.segments:
      line = f"  {s.start_s:>7.1f} {s.end_s:>7.1f} "
      if s.decided:
        line += f"{s.offset:>+6d} {s.offset * 1000 / self.fps:>+6.0f} {s.confidence:>6.3f}"
      else:
        conf = "-" if s.confidence is None else f"{s.confidence:.3f}"
        line += f"{'?':>6} {'':>6} {conf:>6}"
      if several:
        scores = ", ".join("-" if c is None else f"{c:.3f}" for c in s.track_confidences)
        line += f"  {'-' if s.track is None else s.track:>4}  ({scores})"
      if s.note:
        line += f"  {s.note}"
      lines.append(line)
    lines.append(f"Trend: \t{self.trend.text()}")
    return lines


def segment_frames(num_frames: int, window: int, hop: int) -> list[tuple[int, int]]:
  """[start, stop) frame ranges of the segments: every `hop` frames from 0 while a whole window fits, then one
  ending at the last frame if the hops left frames out; a file shorter than a window is one segment."""
  if num_frames <= window:
    return [(0, num_frames)]
  out = [(s, s + window) for s in range(0, num_frames - window + 1, hop)]
  if out[-1][1] < num_frames:
    out.append((num_frames - window, num_frames))
  return out


def _segment_stats(distances: np.ndarray, bounds: list[tuple[int, int]]) -> list[tuple | None]:
  """Per segment (windows [a, b)): (scored windows, mdist [2S+1]) or None with fewer than MIN_WINDOWS; mdist
  as syncnet_metrics.shift_means on the segment's pairs, with the windows' levels fitted on the whole file."""
  present = ~np.isnan(distances)
  rows = present.any(axis=1)
  residual, level = syncnet_metrics.window_levels(distances)
  zero = np.zeros((1, distances.shape[1]))
  sums = np.concatenate([zero, np.cumsum(np.where(present, residual, 0.0), axis=0)])
  counts = np.concatenate([zero, np.cumsum(present, axis=0)])
  levels = np.concatenate([[0.0], np.cumsum(np.where(present, level, 0.0).sum(axis=1))])
  scored = np.concatenate([[0], np.cumsum(rows)])
  out = []
  for a, b in bounds:
    n = int(scored[b] - scored[a])
    count = counts[b] - counts[a]
    if n < MIN_WINDOWS or not (count > 0).all():
      out.append(None)
      continue
    out.append((n, (sums[b] - sums[a]) / count + (levels[b] - levels[a]) / count.sum()))
  return out


def _confidence(mdist: np.ndarray) -> float:
  return float(np.median(mdist) - mdist.min())


def _fine_offset(mdist: np.ndarray) -> float:
  """AV offset (frames) at the minimum of mdist, refined by the parabola through it and its neighbours."""
  max_offset = len(mdist) // 2
  j = int(np.argmin(mdist))
  shift = 0.0
  if 0 < j < len(mdist) - 1:
    left, mid, right = mdist[j - 1], mdist[j], mdist[j + 1]
    curve = left - 2 * mid + right
    if curve > 0:
      shift = float(np.clip(0.5 * (left - right) / curve, -0.5, 0.5))
  return max_offset - (j + shift)


def _rotations(count: int, max_offset: int, video_frames: int, wanted: int) -> list[int]:
  """Audio rotations (windows) that keep every candidate shift away from the true alignment by at least a
  window: min(r, count - r) >= 2 S + video_frames; evenly spread, at most `wanted`."""
  lo, hi = 2 * max_offset + video_frames, count - 2 * max_offset - video_frames
  if hi < lo:
    return []
  return sorted({int(round(r)) for r in np.linspace(lo, hi, min(wanted, hi - lo + 1))})


def null_mdists(faces: list[FaceScores], audio: np.ndarray, bounds: list[tuple[int, int]],
                distances_of: Callable[[np.ndarray, np.ndarray, int], np.ndarray], max_offset: int,
                video_frames: int) -> np.ndarray:
  """mdists of the segments with every face scored against rotated audio: float [N, 2S+1] (see module doc)."""
  count = len(audio)
  wanted = int(np.clip(np.ceil(_NULL_SAMPLES / max(1, len(bounds) * len(faces))), _MIN_ROTATIONS,
                       _MAX_ROTATIONS))
  out = []
  for r in _rotations(count, max_offset, video_frames, wanted):
    rotated = np.roll(audio, -r, axis=0)
    for face in faces:
      distances = np.full((count, 2 * max_offset + 1), np.nan)
      part = distances_of(face.video, rotated, face.first)
      part[~face.ok] = np.nan
      distances[face.first:face.first + len(part)] = part
      out.extend(stats[1] for stats in _segment_stats(distances, bounds) if stats is not None)
  return np.asarray(out, np.float64).reshape(len(out), 2 * max_offset + 1)


def chance_threshold(null: np.ndarray, quantile: float = NULL_QUANTILE,
                     draws: int = _GAUSSIAN_DRAWS) -> tuple[float, bool]:
  """The Confidence that a segment without sync evidence reaches with probability 1 - quantile, from the mdists
  of segments against rotated audio (null_mdists, [N, 2S+1], N >= 1): the higher of their Confidences'
  quantile and that of Gaussian noise with the covariance of their deviations from their means (module doc).
  Returns (threshold, whether the Gaussian set it). Deterministic: the noise is drawn from a fixed seed."""
  deviations = null - null.mean(axis=1, keepdims=True)
  values, vectors = np.linalg.eigh(deviations.T @ deviations / len(null))
  noise = np.random.default_rng(0).standard_normal((draws, len(values))) @ (vectors * np.sqrt(
      np.clip(values, 0.0, None))).T
  confidences = lambda mdists: np.median(mdists, axis=1) - mdists.min(axis=1)
  gaussian, observed = float(np.quantile(confidences(noise), quantile)), float(np.quantile(confidences(null), quantile))
  return max(observed, gaussian), gaussian > observed


def build(faces: list[FaceScores], audio: np.ndarray, options: TimelineOptions, fps: float, max_offset: int,
          video_frames: int, distances_of: Callable[[np.ndarray, np.ndarray, int], np.ndarray]) -> Timeline:
  """The timeline of one file.

  Args:
    faces: every face's scores (one for a single face or a face-centred file).
    audio: float32 [L, D] the audio embeddings of the L windows.
    distances_of: (video [n, D], audio [L, D], first window) -> distances [n, 2S+1], as the faces' were made.
  """
  options.check()
  count = len(audio)
  num_frames = count + video_frames - 1
  frames = segment_frames(num_frames, max(video_frames, round(options.window_s * fps)),
                          max(1, round(options.hop * fps)))
  bounds = [(a, max(a, min(b - video_frames + 1, count))) for a, b in frames]  # windows wholly inside
  stats = [_segment_stats(face.distances, bounds) for face in faces]
  if options.min_confidence is not None:
    threshold, source = float(options.min_confidence), "given"
  else:
    null = null_mdists(faces, audio, bounds, distances_of, max_offset, video_frames)
    if len(null):
      threshold, from_noise = chance_threshold(null)
      source = (f"auto: {NULL_QUANTILE:.0%} of " + ("Gaussian noise fitted to " if from_noise else "")
                + f"{len(null)} segments against audio from elsewhere in the file")
    else:
      threshold = None
      source = f"auto impossible: under {2 * (2 * max_offset + video_frames)} windows; give min_confidence"
  speakers = speaking_faces(stats, [(a + b) / 2 / fps for a, b in frames])
  segments = []
  for i, (a, b) in enumerate(frames):
    confs = [None if s[i] is None else _confidence(s[i][1]) for s in stats]
    seg = dict(start_s=a / fps, end_s=b / fps, track_confidences=confs)
    best = speakers[i]
    if best is None:
      segments.append(Segment(**seg, windows=0, offset=None, offset_fine=None, confidence=None, min_dist=None,
                              track=None, decided=False, note="no face"))
      continue
    decided = threshold is not None and confs[best] >= threshold
    windows, mdist = stats[best][i]
    note = "" if decided else ("no threshold" if threshold is None else
                               f"confidence {confs[best]:.3f} < {threshold:.3f}: too low to decide")
    segments.append(Segment(**seg, windows=windows, offset=max_offset - int(np.argmin(mdist)) if decided else None,
                            offset_fine=_fine_offset(mdist) if decided else None, confidence=confs[best],
                            min_dist=float(mdist.min()), track=best, decided=decided, note=note))
  window_face = _window_faces(segments, count, video_frames, fps)
  rows = np.full_like(faces[0].sims, np.nan)
  for k, face in enumerate(faces):
    rows[window_face == k] = face.sims[window_face == k]
  decided = [s for s in segments if s.decided]
  trend = fit_trend(np.array([s.centre_s for s in decided]), np.array([s.offset_fine for s in decided]), fps,
                    evidence=min(1.0, options.hop / options.window_s), window_scores=rows,
                    window_times=(np.arange(count) + video_frames / 2) / fps)
  return Timeline(options=options, fps=fps, threshold=threshold, threshold_from=source, segments=segments,
                  trend=trend, window_face=window_face)


def speaking_faces(stats: list[list[tuple | None]], centres_s: list[float], agree_s: float = AGREE_S) -> list[int | None]:
  """The face speaking in each segment (None: no face there), from every face's segment statistics
  (_segment_stats: stats[k][i] = (windows, mdist [2S+1]) of face k in segment i, or None).

  All faces of a file share one audio, so the speaker is the face whose video matches it best at the offset
  the faces agree on, not at each face's own best offset: a listener's mdist has no true minimum, and the
  deepest of its 2S+1 noisy values scores like evidence (on generated dialogues its Confidence at its own best
  offset came near the speaker's in weak segments). Face k's evidence at offset o in segment i is
  median(mdist) - mdist[o] (its Confidence there). The agreed offset of segment i is the offset with the most
  evidence summed over the segments whose centres lie within agree_s seconds, each counting its best face's;
  so a drift or a step moves it along with the segments. Each face is then scored by its evidence within a
  frame of the agreed offset (the offset may fall between frames).
  """
  count = len(centres_s)
  known = [[k for k, s in enumerate(stats) if s[i] is not None] for i in range(count)]
  if not stats or count == 0:
    return [None] * count
  width = next((s[i][1].shape[0] for s in stats for i in range(count) if s[i] is not None), 1)
  evidence = np.full((count, len(stats), width), -np.inf)
  for k, face in enumerate(stats):
    for i, found in enumerate(face):
      if found is not None:
        evidence[i, k] = np.median(found[1]) - found[1]
  pooled = np.where(np.isfinite(evidence.max(axis=1)), evidence.max(axis=1), 0.0)  # [segments, 2S+1]
  centres = np.asarray(centres_s, np.float64)
  out = []
  for i in range(count):
    if not known[i]:
      out.append(None)
      continue
    agreed = int(np.argmax(pooled[np.abs(centres - centres[i]) <= agree_s].sum(axis=0)))
    near = evidence[i, :, max(0, agreed - 1):agreed + 2].max(axis=1)
    out.append(max(known[i], key=lambda k: near[k]))
  return out


def _window_faces(segments: list[Segment], count: int, video_frames: int, fps: float) -> np.ndarray:
  """int [L]: the face of the segment whose centre is nearest each window's centre (-1: that segment has none)."""
  centres = np.array([s.centre_s for s in segments]) * fps
  nearest = np.searchsorted(0.5 * (centres[1:] + centres[:-1]), np.arange(count) + video_frames / 2)
  return np.array([-1 if s.track is None else s.track for s in segments])[nearest]
