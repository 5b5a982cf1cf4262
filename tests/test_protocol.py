"""The SPEC section 5 protocol (evaluation/protocol.py) against the arithmetic of VocaLiST's test script
(vskadandale/vocalist, test_lrs2.py): hand-computed cases for each of its rules and quirks, and a transcription
of its steps compared on random videos of every length."""

import numpy as np
import pytest

from modeformer_jax.evaluation import protocol
from modeformer_jax.inference import offset_similarities

pytestmark = pytest.mark.unit

nan = np.nan
M = protocol.MASKED


def _band(n: int, s: int, value: float = 0.0) -> np.ndarray:
  """[n, 2S+1] scores: `value` inside the utterance, NaN outside."""
  f, d = np.arange(n)[:, None], np.arange(-s, s + 1)[None]
  return np.where((f + d >= 0) & (f + d < n), value, nan)


def test_an_l_frame_video_has_l_minus_5_windows():
  # The script's lastframe = L - 5: windows start at frames 0 .. L-6. Of a 35-frame video whose windows all
  # peak at offset 0 but the one starting at frame 30 (best -7), that window is not scored: accuracy 1.0.
  assert [protocol.num_windows(length) for length in (35, 6, 5, 0)] == [30, 1, 0, 0]
  scores = np.where(np.isnan(_band(31, 15)), nan, 0.0)
  scores[:, 15] = 1.0
  scores[30, 15 - 7] = 2.0
  assert protocol.protocol_results([scores[:protocol.num_windows(35)]], (5,))["clip_lengths"]["5"]["accuracy"] == 1.0


def test_outside_candidates_score_minus_1000_by_position_not_value():
  # n = 5 >= 2S = 4: every candidate outside 0 <= f + d < n is masked, whatever the array holds there.
  scores = np.arange(25, dtype=float).reshape(5, 5) / 100
  rows = protocol.reference_rows(scores)
  assert (rows == M).sum() == 6
  assert rows[0, :2].tolist() == [M, M] and rows[1, 0] == M and rows[3, 4] == M and rows[4, 3:].tolist() == [M, M]
  np.testing.assert_array_equal(rows[2], scores[2])
  # The masked candidate loses even to very negative scores.
  assert protocol.predicted_offsets(protocol.reference_rows(np.array([[9.0, -5.0, -9.0], [0.0, -5.0, 9.0]])))[0] == 0
  with pytest.raises(ValueError, match="not finite"):
    protocol.reference_rows(np.array([[nan, nan, 1.0], [nan, 0.0, nan]]))


def test_quirk_1_short_videos_score_candidates_past_the_end_against_zero_audio():
  # n = 5 < 2S = 6. Rows f < S keep the candidates past the end (the script's `elif` skips them), scored
  # against zero-padded audio: here only row 2 has one (d = +3). Rows 3 and 4 (f >= S) are masked there.
  scores = np.array([
      [nan, nan, nan, 0.5, 0.1, 0.0, 0.2],   # d = 0 best: correct
      [nan, nan, 0.0, 0.1, 0.2, 0.7, 0.3],   # d = +2: wrong
      [nan, 0.1, 0.0, 0.4, 0.2, 0.1, nan],   # d = 0 best inside, but the zero-audio candidate at d = +3 wins
      [0.0, 0.1, 0.3, 0.2, 0.0, nan, nan],   # d = -1: correct
      [0.7, 0.0, 0.1, 0.2, nan, nan, nan],   # d = -3: wrong
  ])
  padded = np.array([0.8, 0.8, 0.9, 0.8, 0.8])  # only padded[2] is used
  rows = protocol.reference_rows(scores, padded)
  assert rows[2, 6] == 0.9 and rows[3, 5:].tolist() == [M, M] and rows[4, 4:].tolist() == [M, M, M]
  assert rows[0, :3].tolist() == [M, M, M] and rows[1, :2].tolist() == [M, M] and rows[2, 0] == M
  np.testing.assert_array_equal(protocol.predicted_offsets(rows), [0, 2, 3, -1, -3])
  results = protocol.protocol_results([scores], (5, 7, 9, 11), padded=[padded])["per_video"]
  # K=7: window means of rows (0,1), (0..2), (1..3), (2..4), (3,4): best d = +2, +3, 0, 0, -3.
  # K=9: (0..2), (0..3), (0..4), (1..4), (2..4): only the first is wrong. K=11 (6 rows, quirk 2): all right.
  assert results == {"5": [0.4], "7": [0.4], "9": [0.8], "11": [1.0]}
  with pytest.raises(ValueError, match="pass `padded`"):
    protocol.reference_rows(scores)


def test_quirk_2_fewer_than_k_minus_5_windows_count_the_middle_twice():
  # n = 8 windows, S = 15: every row is past the end from d = 8 - f on (quirk 1), so columns d >= 8 hold the
  # zero-audio scores of all eight windows. Windows 0 and 1 prefer them (1.8 against 0.5 at d = 0).
  scores = np.where(np.isnan(_band(8, 15)), nan, 0.0)
  scores[:, 15] = 0.5
  padded = np.array([1.8, 1.8, 0, 0, 0, 0, 0, 0])
  per_video = protocol.protocol_results([scores], (5, 7, 9, 11, 13, 15), padded=[padded])["per_video"]
  # A mean over windows prefers the zero-audio columns when 1.8 x (how many of windows 0, 1 it holds) / (its
  # windows) > 0.5: K=5: windows 0, 1 wrong (6/8); K=7: centres 0..2 wrong (5/8); K=9: 0..2 (5/8);
  # K=11: 0..3 (4/8); K=13 (n = K - 5: no repeat): 0..2 (5/8).
  # K=15 (quirk 2): 10 rows, the truncated means at centres 0..4 and 3..7: windows 0..5 and 0..6 wrong, then
  # six rows of all eight windows (centres 2, 3, 4, 3, 4, 5) and two right ones: 8/10, where the clipped
  # means of the 8 windows alone would give 6/8.
  assert per_video == {"5": [0.75], "7": [0.625], "9": [0.625], "11": [0.5], "13": [0.625], "15": [0.8]}
  assert len(protocol.context_rows(protocol.reference_rows(scores, padded), 15)) == 10


def test_masked_candidates_average_as_minus_1000_not_minus_infinity():
  # Logits of large magnitude: d = -2 is masked in window 1 and wins the mean over windows 1..3 all the same
  # (as -inf it would lose to d = -1, the first of the zeros).
  scores = np.array([[nan, nan, 0.0, 1.0, 0.0], [nan, 0.0, 0.0, 0.0, 0.0], [3000.0, 0.0, 0.0, 0.0, 0.0],
                     [3000.0, 0.0, 0.0, 0.0, nan], [3000.0, 0.0, 0.0, nan, nan]])
  k7 = protocol.context_rows(protocol.reference_rows(scores), 7)
  assert k7[2, 0] == pytest.approx((M + 6000.0) / 3) and protocol.predicted_offsets(k7)[2] == -2
  assert protocol.predicted_offsets(k7)[0] == 1  # windows 0, 1: d = -2 averages (M + M) / 2


def test_tolerance_is_plus_minus_one_frame():
  s = 15
  for d in range(-s, s + 1):
    scores = np.zeros((40, 2 * s + 1))
    scores[:, d + s] = 1.0
    # Where the candidate at d is outside the utterance, the window picks the first of the others.
    inside = (np.arange(40) + d >= 0) & (np.arange(40) + d < 40)
    correct = protocol.correct_windows(scores, 5)[inside]
    assert correct.all() if abs(d) <= 1 else not correct.any(), d


def test_macro_average_over_videos_and_histograms():
  a = np.where(np.isnan(_band(40, 2)), nan, 0.0)
  a[:, 2] = 1.0        # d = 0 everywhere ...
  a[2:10, 0] = 2.0     # ... but windows 2..9 prefer d = -2
  b = np.where(np.isnan(_band(10, 2)), nan, 0.0)
  b[:9, 3] = 1.0       # d = +1 (window 9 has no d = +1: d = 0): all correct
  b[9, 2] = 1.0
  results = protocol.protocol_results([a, b], (5, 7))
  assert results["per_video"]["5"] == [0.8, 1.0]
  assert results["clip_lengths"]["5"] == {"accuracy": pytest.approx(0.9), "windows": 50, "videos": 2}
  # Per-window best d (a: 0 x 32, -2 x 8; b: +1 x 9, 0 x 1), counted as AV offsets -d = -2..2.
  assert results["window_offset_histogram"] == [0, 9, 33, 0, 8]
  # Per video: the mean score per d over the windows that have it. a: d = 0 (1.0 > 2 x 8 / 38), b: d = +1.
  assert results["video_offsets"] == [0, -1]
  assert results["video_offset_histogram"] == [0, 1, 1, 0, 0]


def test_rejects_even_or_short_clip_lengths():
  rows = protocol.reference_rows(_band(5, 2))
  for k in (4, 6):
    with pytest.raises(ValueError, match="clip length"):
      protocol.context_rows(rows, k)


def test_inference_scores_plug_in():
  # Audio embeddings shifted by 3 windows: video window f matches audio window f + 3 wherever it exists.
  rng = np.random.default_rng(0)
  emb = np.linalg.qr(rng.normal(size=(64, 64)))[0][:50].astype(np.float32)
  video, audio = emb[:46], np.roll(emb[:46], 3, axis=0)
  scores = offset_similarities(video, audio, 15)
  assert np.isnan(scores[0, :15]).all() and np.isnan(scores[-1, 16:]).all()
  predicted = protocol.predicted_offsets(protocol.reference_rows(scores))
  assert (predicted[:43] == 3).all()
  assert protocol.correct_windows(scores, 5)[:43].sum() == 0


@pytest.mark.parametrize("length, audio_length, start", [(40, 40, 0), (30, 50, 7), (10, 40, 3), (50, 20, 0),
                                                        (12, 30, 25), (20, 30, 60)])
@pytest.mark.parametrize("scoring", ["cosine", "euclidean"])
def test_offset_similarities_pair_each_video_window_with_the_audio_window_it_names(length, audio_length, start,
                                                                                   scoring):
  # Video windows start .. start + length - 1 against audio windows 0 .. audio_length - 1, pair by pair.
  rng = np.random.default_rng(length + start)
  video, audio = rng.normal(size=(length, 8)).astype(np.float32), rng.normal(size=(audio_length, 8)).astype(np.float32)
  scores = offset_similarities(video, audio, 5, scoring, start=start)
  for f in range(length):
    for j, d in enumerate(range(-5, 6)):
      a = start + f + d
      if not 0 <= a < audio_length:
        assert np.isnan(scores[f, j])
      else:
        want = video[f] @ audio[a] if scoring == "cosine" else -np.linalg.norm(video[f] - audio[a])
        assert scores[f, j] == pytest.approx(want, rel=1e-5, abs=1e-5)


# ---- A transcription of the script's steps (test_lrs2.py: calc_pdist, then the K-frame blocks of eval_model) ---

def _script_rows(scores: np.ndarray, padded: np.ndarray, s: int) -> np.ndarray:
  """calc_pdist: row i scores window i against the audio zero-padded by S windows on each side, then masks
  columns 0 .. S-i-1 if i < S, elif i >= n - S columns S+n-i .. 2S."""
  n = len(scores)
  rows = []
  for i in range(n):
    row = np.array([scores[i, j] if 0 <= i + j - s < n else padded[i] for j in range(2 * s + 1)])
    if i < s:
      row[:s - i] = M
    elif n - s <= i < n:
      row[s + n - i:] = M
    rows.append(row)
  return np.array(rows)


def _script_context(dist: np.ndarray, k: int) -> np.ndarray:
  """The K-frame block: (sum of the 2h+1 slices dist[h+o : n-h+o]) / (2h+1) in the middle, with h rows of
  prefix means before it (dist[:2h+1-j], j = h..1) and h of suffix means after it (dist[-(2h+1-j):], j = 1..h).
  The slices follow Python's clipping, so with fewer than 2h rows the middle is empty."""
  h = (k - 5) // 2
  if h == 0:
    return dist
  n = len(dist)
  middle = sum(dist[h + o:max(n - h + o, 0) if h - o else n] for o in range(-h, h + 1)) / (2 * h + 1)
  before = [dist[:2 * h + 1 - j].mean(0) for j in range(h, 0, -1)]
  after = [dist[-(2 * h + 1 - j):].mean(0) for j in range(1, h + 1)]
  return np.concatenate([np.array(before), np.reshape(middle, (-1, dist.shape[1])), np.array(after)])


def test_equals_a_transcription_of_the_script_on_random_videos():
  """Random scores and zero-audio scores of 120 videos of 6 to 139 frames (1 to 134 windows, S = 15), with
  most windows near offset 0: every per-video accuracy at every K equals the transcription's."""
  rng = np.random.default_rng(19)
  s, ks = 15, (5, 7, 9, 11, 13, 15)
  videos, padded = [], []
  for length in rng.integers(6, 140, size=120):
    n = protocol.num_windows(int(length))
    scores = rng.normal(size=(n, 2 * s + 1)) + 1.5 * np.exp(-0.5 * (np.arange(-s, s + 1) / 2.0) ** 2)
    videos.append(np.where(np.isnan(_band(n, s)), nan, scores))
    padded.append(rng.normal(1.0, 1.0, size=n))
  per_video = protocol.protocol_results(videos, ks, padded=padded)["per_video"]
  for i, (scores, zero) in enumerate(zip(videos, padded)):
    dist = _script_rows(np.nan_to_num(scores), zero, s)
    for k in ks:
      offsets = s - np.argmax(_script_context(dist, k), axis=1)
      assert per_video[str(k)][i] == np.isin(offsets, (-1, 0, 1)).mean(), (len(scores), k)
  # The short videos are there and change the numbers: quirk 1 in 4 of 5, quirk 2 at K=15 below 10 windows.
  assert sum(len(v) < 30 for v in videos) > 10 and sum(len(v) < 10 for v in videos) > 2
