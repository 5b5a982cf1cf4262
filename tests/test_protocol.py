"""The SPEC section 5 protocol on hand-computed score arrays (evaluation/protocol.py)."""

import numpy as np
import pytest

from modeformer_jax.evaluation import protocol
from modeformer_jax.inference import offset_similarities

pytestmark = pytest.mark.unit

nan, inf = np.nan, np.inf

# Video A: 5 windows, S = 2 (columns d = -2..2); candidates with f + d outside 0..4 are missing (NaN, or
# -inf as in row 4). Column maxima where a missing candidate would otherwise not matter are hand-checked
# below for every K.
VIDEO_A = np.array([
    [nan, nan, 0.1, 0.9, 0.2],   # best d=+1: correct (tolerance)
    [nan, 0.0, 0.1, 0.2, 0.8],   # best d=+2: wrong
    [0.7, 0.1, 0.2, 0.0, 0.0],   # best d=-2: wrong
    [0.0, 0.3, 0.5, 0.1, nan],   # best d=0: correct
    [0.6, 0.2, 0.05, -inf, -inf],  # best d=-2: wrong
])
# Video B: 2 windows, both correct: macro and micro averages differ.
VIDEO_B = np.array([
    [nan, nan, 0.9, 0.1, 0.0],
    [nan, 0.2, 0.3, nan, nan],
])


def test_five_frames_argmax_ignores_missing_candidates():
  np.testing.assert_array_equal(protocol.predicted_offsets(VIDEO_A), [1, 2, -2, 0, -2])
  np.testing.assert_array_equal(protocol.correct_windows(VIDEO_A, 5), [True, False, False, True, False])
  # A missing candidate is worse than any real score, even a very negative one.
  assert protocol.predicted_offsets(np.array([[nan, -5.0, -9.0]]))[0] == 0


def test_context_means_by_hand():
  # K=7 averages windows f-1..f+1 (clipped): window 0 = mean of rows 0,1; a column missing in any is -inf.
  k7 = protocol.context_scores(VIDEO_A, 7)
  np.testing.assert_allclose(k7[0], [-inf, -inf, 0.1, 0.55, 0.5])
  np.testing.assert_allclose(k7[1], [-inf, -inf, 0.4 / 3, 1.1 / 3, 1.0 / 3])
  np.testing.assert_allclose(k7[2], [-inf, 0.4 / 3, 0.8 / 3, 0.1, -inf])
  np.testing.assert_allclose(k7[3], [1.3 / 3, 0.2, 0.75 / 3, -inf, -inf])
  np.testing.assert_allclose(k7[4], [0.3, 0.25, 0.275, -inf, -inf])
  # K=9: window 1 = mean of rows 0..3, window 2 = all five rows (only d=0 is inside for all of them).
  k9 = protocol.context_scores(VIDEO_A, 9)
  np.testing.assert_allclose(k9[1], [-inf, -inf, 0.225, 0.3, -inf])
  np.testing.assert_allclose(k9[2], [-inf, -inf, 0.19, -inf, -inf])
  # K=5 is the raw scores, missing as -inf.
  np.testing.assert_array_equal(protocol.context_scores(VIDEO_A, 5), np.where(np.isnan(VIDEO_A), -inf, VIDEO_A))


@pytest.mark.parametrize("k,correct", [
    (5, [1, 0, 0, 1, 0]),
    (7, [1, 1, 1, 0, 0]),
    (9, [1, 1, 1, 1, 0]),
    (11, [1, 1, 1, 1, 1]),
    (13, [1, 1, 1, 1, 1]),
    (15, [1, 1, 1, 1, 1]),
])
def test_each_clip_length(k, correct):
  np.testing.assert_array_equal(protocol.correct_windows(VIDEO_A, k), np.array(correct, bool))


def test_tolerance_is_plus_minus_one_frame():
  s = 15
  for d in range(-s, s + 1):
    scores = np.zeros((40, 2 * s + 1))
    scores[:, d + s] = 1.0
    assert protocol.correct_windows(scores, 5).all() == (abs(d) <= 1), d


def test_macro_average_over_videos_and_histograms():
  results = protocol.protocol_results([VIDEO_A, VIDEO_B], (5, 7, 15))
  assert results["per_video"]["5"] == [0.4, 1.0]
  assert results["clip_lengths"]["5"] == {"accuracy": pytest.approx(0.7), "windows": 7, "videos": 2}
  assert results["clip_lengths"]["7"]["accuracy"] == pytest.approx((0.6 + 1.0) / 2)
  assert results["clip_lengths"]["15"]["accuracy"] == pytest.approx(1.0)
  # Per-window best d at 5 frames (A: +1 +2 -2 0 -2, B: 0 0), counted as AV offsets -d = -2..2.
  assert results["window_offset_histogram"] == [1, 1, 3, 0, 2]
  # Per video: mean score per d over the windows that have it. A: d=-2 (0.433), AV offset +2; B: 0.
  assert results["video_offsets"] == [2, 0]
  assert results["video_offset_histogram"] == [0, 0, 1, 0, 1]


def test_rejects_even_or_short_clip_lengths():
  for k in (4, 6):
    with pytest.raises(ValueError, match="clip length"):
      protocol.context_scores(VIDEO_A, k)


def test_inference_scores_plug_in():
  # Audio embeddings shifted by 3 windows: video window f matches audio window f + 3 wherever it exists.
  rng = np.random.default_rng(0)
  emb = np.linalg.qr(rng.normal(size=(64, 64)))[0][:50].astype(np.float32)
  video, audio = emb[:46], np.roll(emb[:46], 3, axis=0)
  scores = offset_similarities(video, audio, 15)
  assert np.isnan(scores[0, :15]).all() and np.isnan(scores[-1, 16:]).all()
  predicted = protocol.predicted_offsets(scores)
  assert (predicted[:43] == 3).all()
  assert protocol.correct_windows(scores, 5)[:43].sum() == 0
