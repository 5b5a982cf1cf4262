"""The sync-accuracy protocol of SPEC section 5 on score arrays: pure numpy, no model.

Scores of one video are a float array [n, 2S+1]: row f is the 5-frame video window starting at frame f
(f = 0 .. L-5, n = L - 4 windows), column j is the audio window at offset d = j - S frames, i.e. video
window f scored against audio window f + d. Higher scores are better (cosine similarity; negate
distances). NaN or -inf marks a candidate outside the utterance: it scores as the worst possible value,
-inf, so it is never the prediction while any candidate is inside (offset 0 always is).

K-frame context (K = 7, 9, .., 15): the score vector of window f is the mean of those of windows
f - h .. f + h, h = (K - 5) // 2 (K - 4 windows), clipped to 0 .. n-1, so the first and last h windows
average fewer (truncated at the ends). A candidate outside the utterance for any of the averaged windows
stays -inf: the mean includes the worst possible value.

Reported offsets (histograms, per-video offsets) follow SPEC section 6 and `modeformer sync`: AV offset = -d,
> 0 when the audio leads the video (the sound of video frame i is at audio frame i - offset).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

TOLERANCE = 1  # a window is correct iff |predicted offset| <= 1 frame
MISSING = -np.inf
CLIP_LENGTHS = (5, 7, 9, 11, 13, 15)  # K frames of context the paper reports


def parse_clip_lengths(text: str) -> tuple[int, ...]:
  """'5,7,9' -> (5, 7, 9): clip lengths K in frames, odd and >= 5, sorted and deduplicated (ValueError if not)."""
  try:
    lengths = tuple(int(x) for x in text.split(","))
  except ValueError:
    raise ValueError("expected comma-separated integers, e.g. 5,7,9,11,13,15") from None
  bad = [k for k in lengths if k < 5 or k % 2 == 0]
  if bad:
    raise ValueError(f"{bad[0]} is not an odd number of frames >= 5")
  return tuple(sorted(set(lengths)))


def max_offset_of(scores: np.ndarray) -> int:
  """S of a [n, 2S+1] score array."""
  if scores.ndim != 2 or scores.shape[1] % 2 == 0:
    raise ValueError(f"scores must be [windows, 2S+1], got shape {scores.shape}")
  return scores.shape[1] // 2


def context_scores(scores: np.ndarray, clip_length: int, window_frames: int = 5) -> np.ndarray:
  """[n, 2S+1] 5-frame scores -> [n, 2S+1] float64 K-frame scores (module docstring), missing = -inf."""
  extra = clip_length - window_frames
  if extra < 0 or extra % 2:
    raise ValueError(f"clip length {clip_length}: must be {window_frames} + an even number of frames")
  max_offset_of(scores)
  scores = np.asarray(scores, np.float64)
  missing = ~np.isfinite(scores)  # NaN from inference.offset_similarities, or -inf already
  h = extra // 2
  if h == 0:
    return np.where(missing, MISSING, scores)
  # Zero rows stand in for the absent windows beyond the ends; `present` counts the real ones per mean.
  pad = ((h, h), (0, 0))
  window_sum = np.lib.stride_tricks.sliding_window_view(np.pad(np.where(missing, 0.0, scores), pad), 2 * h + 1,
                                                        axis=0).sum(-1)
  any_missing = np.lib.stride_tricks.sliding_window_view(np.pad(missing, pad), 2 * h + 1, axis=0).any(-1)
  f = np.arange(len(scores))
  present = np.minimum(f + h, len(scores) - 1) - np.maximum(f - h, 0) + 1
  return np.where(any_missing, MISSING, window_sum / present[:, None])


def predicted_offsets(scores: np.ndarray) -> np.ndarray:
  """[n, 2S+1] (missing as NaN or -inf) -> int [n]: the best candidate's offset d (ties: the smallest d)."""
  scores = np.asarray(scores, np.float64)
  return np.argmax(np.where(np.isfinite(scores), scores, MISSING), axis=1) - max_offset_of(scores)


def correct_windows(scores: np.ndarray, clip_length: int, window_frames: int = 5) -> np.ndarray:
  """bool [n]: |predicted offset| <= TOLERANCE with K = clip_length frames of context."""
  return np.abs(predicted_offsets(context_scores(scores, clip_length, window_frames))) <= TOLERANCE


def video_offset(scores: np.ndarray) -> int:
  """The most likely offset d of a whole video: argmax over d of the mean score at d, each mean over the
  windows that have that candidate (SyncNet's mean distance per shift, with similarities)."""
  scores = np.asarray(scores, np.float64)
  present = np.isfinite(scores)
  mean = np.where(present, scores, 0.0).sum(0) / np.maximum(present.sum(0), 1)
  return int(np.argmax(np.where(present.any(0), mean, MISSING)) - max_offset_of(scores))


def histogram(offsets: np.ndarray, max_offset: int) -> list[int]:
  """Counts of offsets -S..S (index j = offset j - S)."""
  return np.bincount(np.asarray(offsets, np.int64) + max_offset, minlength=2 * max_offset + 1).tolist()


def protocol_results(videos: Sequence[np.ndarray], clip_lengths: Sequence[int],
                     window_frames: int = 5) -> dict:
  """The reported numbers for a set of videos' [n_i, 2S+1] scores.

  Returns {"clip_lengths": {"K": {"accuracy", "windows", "videos"}}, "per_video": {"K": [accuracy per video]},
  "window_offset_histogram": counts of the per-window best AV offsets -S..S at 5 frames, "video_offsets":
  [AV offset per video (-video_offset)], "video_offset_histogram": their counts}. Accuracy per video =
  correct windows / windows; the reported accuracy is the mean over videos (macro average).
  """
  if not videos:
    raise ValueError("protocol_results needs at least one video")
  max_offset = max_offset_of(videos[0])
  summary, per_video = {}, {}
  for k in clip_lengths:
    accuracies = [float(correct_windows(s, k, window_frames).mean()) for s in videos]
    per_video[str(k)] = accuracies
    summary[str(k)] = {"accuracy": float(np.mean(accuracies)), "windows": int(sum(len(s) for s in videos)),
                       "videos": len(videos)}
  video_offsets = [-video_offset(s) for s in videos]
  return {
      "clip_lengths": summary,
      "per_video": per_video,
      "window_offset_histogram": histogram(-np.concatenate([predicted_offsets(s) for s in videos]), max_offset),
      "video_offsets": video_offsets,
      "video_offset_histogram": histogram(np.array(video_offsets), max_offset),
  }
