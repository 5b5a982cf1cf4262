"""syncnet_python's offset / confidence numbers (SPEC section 6) on a per-window distance matrix, plus
ModEFormer's histogram of per-window best offsets.

Matrices follow inference.offset_similarities: row = 5-frame video window, column j = audio shifted by
d = j - S frames (video window f against audio window f + d), NaN where that audio window falls outside the
utterance or the row was dropped (no face). syncnet_python's calc_pdist lays out its distances the same way,
so its formulas apply unchanged: AV offset = S - argmin(mdist) = -d*. AV offset > 0 means the audio LEADS
the video: the sound of video frame i is at audio frame i - offset.

Distances: syncnet compares raw 1024-d embeddings by Euclidean distance; ModEFormer compares unit-norm
embeddings by cosine similarity s. The Euclidean distance between two unit vectors is sqrt(2 - 2 s), so
applying syncnet's formulas to that keeps their meaning (a distance, lower is better, "Confidence" is how far
the best shift stands out of the median one) on a fixed 0..2 scale. The values are comparable between runs
and checkpoints of our models, not with published LSE-D / LSE-C (those need SyncNet's own weights).

Where syncnet zero-pads the audio features past the ends (which scores those candidates against a zero
vector), we leave them out by default: mdist of a shift is the mean over the pairs that have it, compared
within windows (shift_means). A shift near +-S lacks the pairs at the file's ends: a plain mean would compare
it on other video and audio windows than the rest, and where the windows at the ends match worse at every
shift (silence around speech, a face turning away), the edge shifts come out best for that alone. So each
video window's and each audio window's own level is taken out first and the average level put back; with
nothing missing (syncnet's padding) it is the plain mean. On 90 generated wide shots the demo-sized model's
wrong offsets went from 22 to 13 (BENCHMARKS.md, "Face detectors"). `padded_distances` reproduces the
zero-padding instead, for SyncNet checkpoints (the published weights give published LSE-D / LSE-C only when
scored exactly that way).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from modeformer_jax.media.filters import median_filter

# syncnet_python median-filters the framewise confidence with scipy.signal.medfilt(kernel_size=9).
FRAMEWISE_KERNEL = 9
# torch.nn.functional.pairwise_distance's default eps, added to the difference before the norm.
PAIRWISE_EPS = 1e-6


def padded_distances(video: np.ndarray, audio: np.ndarray, max_offset: int, start: int = 0) -> np.ndarray:
  """syncnet_python's calc_pdist: video [L, D] (windows start .. start + L - 1), audio [L', D] embeddings
  -> distances [L, 2S+1].

  The audio embeddings are zero-padded by S rows at both ends, so a candidate past either end is the
  distance to a zero vector and counts in every mean; column j is audio window f + j - S as elsewhere.
  Distances are ||v - a + 1e-6||, torch's pairwise_distance.
  """
  video = np.asarray(video, np.float64)
  padded = np.pad(np.asarray(audio, np.float64), ((max_offset, max_offset), (0, 0)))
  idx = start + np.arange(len(video))[:, None] + np.arange(2 * max_offset + 1)[None]
  return np.linalg.norm(video[:, None] - padded[idx] + PAIRWISE_EPS, axis=-1)


def similarity_to_distance(similarity: np.ndarray) -> np.ndarray:
  """Cosine similarity of unit vectors -> their Euclidean distance sqrt(2 - 2 s) in [0, 2]; NaN stays NaN."""
  s = np.asarray(similarity, np.float64)
  return np.sqrt(np.clip(2.0 - 2.0 * s, 0.0, 4.0))


# Alternating fits of the video windows' and audio windows' levels: the rounds BENCHMARKS.md's figures used.
_LEVEL_ROUNDS = 4


def window_levels(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """distances [L, 2S+1] -> (residual, level), both [L, 2S+1] with NaN where the distance is: level[f, j] is
  video window f's level plus audio window f + j - S's (each the mean of its pairs' distances less the other
  windows' levels, fitted in turn), residual the distance less it. Levels are 0 when every scored window has
  every shift (nothing to correct: the plain means are syncnet_python's)."""
  distances = np.asarray(distances, np.float64)
  count, width = distances.shape
  present = ~np.isnan(distances)
  if present[present.any(axis=1)].all():
    return distances, np.where(present, 0.0, np.nan)
  audio = np.clip(np.arange(count)[:, None] + np.arange(width)[None] - width // 2, 0, count - 1)
  values = np.where(present, distances, 0.0)
  per_video, per_audio = present.sum(axis=1), np.bincount(audio[present], minlength=count)
  video_level, audio_level = np.zeros(count), np.zeros(count)
  for _ in range(_LEVEL_ROUNDS):
    rest = np.where(present, values - audio_level[audio], 0.0)
    video_level = rest.sum(axis=1) / np.maximum(per_video, 1)
    rest = values - video_level[:, None]
    audio_level = np.bincount(audio[present], weights=rest[present], minlength=count) / np.maximum(per_audio, 1)
  level = np.where(present, video_level[:, None] + audio_level[audio], np.nan)
  return distances - level, level


def shift_means(distances: np.ndarray) -> np.ndarray:
  """mdist [2S+1] of distances [L, 2S+1]: each shift's mean over the pairs that have it, compared within
  windows (module doc); the plain column means when every scored window has every shift."""
  residual, level = window_levels(distances)
  return np.nanmean(residual, axis=0) + np.nanmean(level)


@dataclasses.dataclass
class SyncNetScores:
  """syncnet_python's numbers for one video (S = max offset)."""
  offset: int  # AV offset in frames, > 0: audio leads video
  min_dist: float  # min over shifts of mdist ("Min dist", averaged over videos: LSE-D)
  confidence: float  # median(mdist) - min(mdist) ("Confidence", averaged over videos: LSE-C)
  mdist: np.ndarray  # float64 [2S+1] mean distance per shift, column order (shift j = audio moved by j - S)
  framewise_conf: np.ndarray  # float64 [L] median(mdist) - window distance at the chosen shift, NaN if absent
  framewise_conf_filtered: np.ndarray  # float64 [L] the same median-filtered over 9 windows (NaN if absent)


def syncnet_scores(distances: np.ndarray) -> SyncNetScores:
  """syncnet_python's evaluation on distances [L, 2S+1] (NaN = missing candidate or dropped window).

  Same as syncnet_python's SyncNetInstance.evaluate when nothing is missing:
    mdist = mean over windows per shift (shift_means); offset = S - argmin(mdist); min_dist = min(mdist);
    confidence = median(mdist) - min_dist; fconf = median(mdist) - dist[:, argmin];
    fconfm = scipy.signal.medfilt(fconf, 9).
  """
  distances = np.asarray(distances, np.float64)
  if distances.ndim != 2 or distances.shape[1] % 2 != 1:
    raise ValueError(f"distances must be [L, 2S+1], got {distances.shape}")
  max_offset = distances.shape[1] // 2
  present = ~np.isnan(distances)
  if not present.any(axis=0).all():
    raise ValueError("every shift needs at least one window with a distance")
  mdist = shift_means(distances)
  best = int(np.argmin(mdist))
  median = float(np.median(mdist))
  fconf = median - distances[:, best]
  return SyncNetScores(offset=max_offset - best, min_dist=float(mdist[best]), confidence=median - float(mdist[best]),
                       mdist=mdist, framewise_conf=fconf,
                       framewise_conf_filtered=median_filter(fconf, FRAMEWISE_KERNEL))


@dataclasses.dataclass
class OffsetHistogram:
  """Per-window best offsets (ModEFormer's analysis of LRS2 / LRS3), in AV-offset convention."""
  offsets: np.ndarray  # int [2S+1] AV offsets -S..S
  counts: np.ndarray  # int [2S+1] windows whose best candidate is that offset
  mode: int  # the most frequent one (ties: the one nearest 0)


def offset_histogram(similarities: np.ndarray) -> OffsetHistogram:
  """similarities [L, 2S+1] (column order as above, NaN = missing) -> histogram over AV offsets.

  A missing candidate scores as the worst possible value (SPEC 5); rows without any candidate are skipped.
  """
  sims = np.asarray(similarities, np.float64)
  max_offset = sims.shape[1] // 2
  rows = ~np.isnan(sims).all(axis=1)
  best = np.argmax(np.where(np.isnan(sims[rows]), -np.inf, sims[rows]), axis=1)
  offsets = np.arange(-max_offset, max_offset + 1)
  counts = np.bincount(2 * max_offset - best, minlength=len(offsets))  # column j is AV offset S - j
  top = np.flatnonzero(counts == counts.max())
  return OffsetHistogram(offsets=offsets, counts=counts, mode=int(offsets[top[np.argmin(np.abs(offsets[top]))]]))
