"""The sync-accuracy protocol of SPEC section 5 on score arrays: pure numpy, no model.

It is the arithmetic of VocaLiST's test script (vskadandale/vocalist, test_lrs2.py, itself adapted from
syncnet_python), the protocol behind every number of the paper's Table 1, including what that script does with
short videos; every departure from a clean definition below is the script's and is named as a quirk.

Scores of one video are a float array [n, 2S+1]: row f is the 5-frame video window starting at frame f, an
L-frame video having n = L - 5 of them (`num_windows`: starts 0 .. L-6, as the script and syncnet_python count
them); column j is the audio window at offset d = j - S frames, i.e. video window f scored against audio window
f + d. The audio windows are those of the same n starts, so a candidate with f + d outside 0 .. n-1 is outside
the utterance whatever the array holds there (NaN by convention). Higher scores are better (cosine
similarities or logits; negate distances).

The script's rows (`reference_rows`): a candidate outside the utterance scores MASKED = -1000, worse than any
real score.
  Quirk 1 (fewer than 2S windows): the script masks the candidates before the start (f + d < 0) of the rows
  f < S and, in an `elif`, those past the end (f + d >= n) of the other rows, so the rows f < S of a video with
  n < 2S windows keep their candidates past the end, scored against the all-zero audio the script pads with:
  `padded[f]`, window f's score against an all-zero audio input window, stands in for them.

K-frame context (`context_rows`, K = 5 + 2h): window f's row is the mean of the rows f-h .. f+h clipped to
0 .. n-1 (truncated at the ends). A masked candidate enters the mean as -1000: the mean stays finite, and with
scores of magnitude below about 45 (cosines, logits) it stays below every candidate that no averaged row masks.
  Quirk 2 (fewer than 2h = K - 5 windows): the script builds h rows from the start, n - 2h middle rows and h
  rows from the end, which is 2h > n rows when n < 2h: they are the truncated means at the centres
  0 .. h-1 and n-h .. n-1, so some windows count twice and accuracy is over 2h rows.

A row's prediction is its best candidate (the first of equal ones, as torch.argmax); it is correct iff
|d| <= 1 frame. Accuracy per video = correct rows / rows; the reported number is the mean over videos.
Arithmetic here is float64, the script's float32: the two can disagree only where two candidates are equal to
within float32 rounding.

Reported offsets (histograms, per-video offsets) follow SPEC section 6 and `modeformer sync`: AV offset = -d,
> 0 when the audio leads the video (the sound of video frame i is at audio frame i - offset).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

TOLERANCE = 1  # a window is correct iff |predicted offset| <= 1 frame
MASKED = -1000.0  # the script's score of a candidate outside the utterance
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


def num_windows(length: int, window_frames: int = 5) -> int:
  """Windows the protocol scores in an L-frame video: starts 0 .. L-6, L - 5 of them (the script's
  `lastframe`); 0 when L <= 5 (the script cannot score such a video)."""
  return max(0, length - window_frames)


def max_offset_of(scores: np.ndarray) -> int:
  """S of a [n, 2S+1] score array."""
  if scores.ndim != 2 or scores.shape[1] % 2 == 0:
    raise ValueError(f"scores must be [windows, 2S+1], got shape {scores.shape}")
  return scores.shape[1] // 2


def reference_rows(scores: np.ndarray, padded: np.ndarray | None = None) -> np.ndarray:
  """[n, 2S+1] scores -> float64 [n, 2S+1] rows as the script scores them (module docstring): outside
  candidates MASKED, except past the end of rows f < S when n < 2S (quirk 1), which take padded [n].

  Raises ValueError when a candidate inside the utterance is not finite, or when quirk 1 applies and
  `padded` is None.
  """
  scores = np.asarray(scores, np.float64)
  s, n = max_offset_of(scores), len(scores)
  f, d = np.arange(n)[:, None], np.arange(-s, s + 1)[None]
  past_end = f + d >= n
  inside = (f + d >= 0) & ~past_end
  if not np.isfinite(scores[inside]).all():
    raise ValueError("scores: a candidate inside the utterance is not finite")
  rows = np.where(inside, scores, MASKED)
  zero_padded = past_end & (f < s)  # quirk 1: not empty only when n < 2S
  if zero_padded.any():
    if padded is None:
      raise ValueError(f"{n} windows < 2 x {s}: the script scores candidates past the end against zero-padded "
                       "audio; pass `padded` (each window's score against an all-zero audio window)")
    rows = np.where(zero_padded, np.asarray(padded, np.float64).reshape(n, 1), rows)
  return rows


def context_rows(rows: np.ndarray, clip_length: int, window_frames: int = 5) -> np.ndarray:
  """[n, 2S+1] `reference_rows` -> [max(n, K-5), 2S+1] K-frame rows (module docstring, quirk 2), K = clip_length."""
  extra = clip_length - window_frames
  if extra < 0 or extra % 2:
    raise ValueError(f"clip length {clip_length}: must be {window_frames} + an even number of frames")
  h, n = extra // 2, len(rows)
  if h == 0:
    return rows
  centres = np.arange(n) if n >= 2 * h else np.r_[np.arange(h), np.arange(n - h, n)]
  # Every window of 2h+1 rows around a centre, zero rows beyond the ends (a centre lies in -h .. n-1+h).
  padded = np.pad(rows, ((2 * h, 2 * h), (0, 0)))
  sums = np.lib.stride_tricks.sliding_window_view(padded, 2 * h + 1, axis=0)[centres + h].sum(-1)
  counts = np.minimum(centres + h, n - 1) - np.maximum(centres - h, 0) + 1
  return sums / counts[:, None]


def predicted_offsets(rows: np.ndarray) -> np.ndarray:
  """[n, 2S+1] rows -> int [n]: the best candidate's offset d (the first of equal ones: the smallest d)."""
  return np.argmax(rows, axis=1) - max_offset_of(rows)


def correct_windows(scores: np.ndarray, clip_length: int, padded: np.ndarray | None = None,
                    window_frames: int = 5) -> np.ndarray:
  """bool [max(n, K-5)]: |predicted offset| <= TOLERANCE with K = clip_length frames of context."""
  rows = context_rows(reference_rows(scores, padded), clip_length, window_frames)
  return np.abs(predicted_offsets(rows)) <= TOLERANCE


def video_offset(scores: np.ndarray) -> int:
  """The most likely offset d of a whole video: argmax over d of the mean score at d, each mean over the
  windows that have that candidate (finite scores; SyncNet's mean distance per shift, with similarities)."""
  scores = np.asarray(scores, np.float64)
  present = np.isfinite(scores)
  mean = np.where(present, scores, 0.0).sum(0) / np.maximum(present.sum(0), 1)
  return int(np.argmax(np.where(present.any(0), mean, -np.inf)) - max_offset_of(scores))


def histogram(offsets: np.ndarray, max_offset: int) -> list[int]:
  """Counts of offsets -S..S (index j = offset j - S)."""
  return np.bincount(np.asarray(offsets, np.int64) + max_offset, minlength=2 * max_offset + 1).tolist()


def protocol_results(videos: Sequence[np.ndarray], clip_lengths: Sequence[int], window_frames: int = 5,
                     padded: Sequence[np.ndarray | None] | None = None) -> dict:
  """The reported numbers for a set of videos' [n_i, 2S+1] scores (padded: each video's [n_i] scores against
  all-zero audio, needed where n_i < 2S; see `reference_rows`).

  Returns {"clip_lengths": {"K": {"accuracy", "windows", "videos"}}, "per_video": {"K": [accuracy per video]},
  "window_offset_histogram": counts of the per-window best AV offsets -S..S at 5 frames, "video_offsets":
  [AV offset per video (-video_offset)], "video_offset_histogram": their counts}. Accuracy per video =
  correct rows / rows; the reported accuracy is the mean over videos (macro average); "windows" counts each
  video's n windows once.
  """
  if not videos:
    raise ValueError("protocol_results needs at least one video")
  padded = [None] * len(videos) if padded is None else padded
  max_offset = max_offset_of(videos[0])
  rows = [reference_rows(s, p) for s, p in zip(videos, padded, strict=True)]
  summary, per_video = {}, {}
  for k in clip_lengths:
    accuracies = [float(np.mean(np.abs(predicted_offsets(context_rows(r, k, window_frames))) <= TOLERANCE))
                  for r in rows]
    per_video[str(k)] = accuracies
    summary[str(k)] = {"accuracy": float(np.mean(accuracies)), "windows": int(sum(len(s) for s in videos)),
                       "videos": len(videos)}
  video_offsets = [-video_offset(s) for s in videos]
  return {
      "clip_lengths": summary,
      "per_video": per_video,
      "window_offset_histogram": histogram(-np.concatenate([predicted_offsets(r) for r in rows]), max_offset),
      "video_offsets": video_offsets,
      "video_offset_histogram": histogram(np.array(video_offsets), max_offset),
  }
