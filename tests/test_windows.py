"""Training examples: window alignment (SPEC section 1) and hard negatives with fallbacks (section 3), drawn a batch
at a time (data.windows.BatchSampler), with the distributions of the per-example numpy sampler they replaced."""

import numpy as np
import pytest
from scipy import stats

from modeformer_jax.data.pipeline import RecordOrder
from modeformer_jax.data.windows import BatchSampler, JoinedWindows, RecordWindows, WindowSpec, draw_negatives, uniform

pytestmark = pytest.mark.unit

SPEC = WindowSpec()


def _record(frames, mel_frames):
  crops = np.zeros((frames, 96, 96, 3), np.uint8)
  crops[:] = np.arange(frames, dtype=np.uint8)[:, None, None, None]  # each frame shows its index
  mel = np.repeat(np.arange(mel_frames, dtype=np.float32)[:, None], 80, axis=1)  # each mel frame its index
  return {"id": "x", "crops": crops, "mel": mel.astype(np.float16), "num_frames": frames}


def _sampler(records, negatives=5, min_offset=2, max_offset=15, windows=1, seed=0):
  return BatchSampler(RecordWindows(records, SPEC, margin=4), SPEC, negatives, min_offset, max_offset, seed, windows)


def _old_negative_offsets(start, num_starts, n, min_offset, max_offset, rng):
  """The per-example sampler before the batch sampler (commit db39841), as the reference distribution."""
  d = np.arange(-start, num_starts - start)
  near = d[(np.abs(d) >= min_offset) & (np.abs(d) <= max_offset)]
  if len(near) >= n:
    return rng.choice(near, n, replace=False)
  far = d[np.abs(d) > max_offset]
  extra = rng.choice(far, min(n - len(near), len(far)), replace=False)
  return np.concatenate([near, extra]).astype(np.int64)


def test_audio_window_starts_at_80f_over_25():
  batch = _sampler([_record(75, 1 + 3 * 16000 // 200)] * 3)(0, np.arange(3).repeat(17))
  assert batch["video"].shape == (51, 5, 52, 96, 3) and batch["audio"].shape == (51, 6, 16, 80)
  for video, audio, offsets in zip(batch["video"], batch["audio"], batch["offsets"]):
    start = int(video[0, 0, 0, 0])
    np.testing.assert_array_equal(video[:, 0, 0, 0], start + np.arange(5))
    frames = start + offsets
    # audio [K, 16, 80], time-major as stored: window of frame f starts at mel frame 80 f // 25.
    np.testing.assert_array_equal(audio[:, 0, 0], 80 * frames // 25)
    np.testing.assert_array_equal(audio[0, :, 0], 80 * start // 25 + np.arange(16))
  ids = batch["audio_ids"]
  np.testing.assert_array_equal(ids[:, :, 0], np.arange(3).repeat(17)[:, None].repeat(6, 1))
  np.testing.assert_array_equal(ids[:, :, 1], batch["video"][:, 0, 0, 0, 0][:, None] + batch["offsets"])


def test_hard_negatives_distinct_within_range_and_never_near_zero():
  starts = np.arange(71)
  d, count = draw_negatives(starts, np.full(71, 71), 11, 2, 15, seed=1, example=np.stack([starts, starts], 1))
  assert (count == 11).all()
  assert all(len(set(row.tolist())) == 11 for row in d)
  assert np.all(np.abs(d) >= 2) and np.all(np.abs(d) <= 15)
  assert np.all((starts[:, None] + d >= 0) & (starts[:, None] + d < 71))


def test_negatives_fall_back_to_farther_positions_then_mask():
  # 40 starts, tight range: not enough near offsets, so farther ones fill in.
  d, count = draw_negatives(np.array([0]), np.array([40]), 11, 2, 5, seed=2, example=np.array([[0, 0]]))
  assert count[0] == 11 and np.sum(np.abs(d) <= 5) == 4 and np.all(np.abs(d) > 1) and len(set(d[0])) == 11
  # 6 starts: only a few candidates at all (|d| >= 2) -> that many negatives, the rest masked.
  frames = 10
  batch = _sampler([_record(frames, 1 + frames * 640 // 200)], negatives=11)(0, np.zeros(20, np.int64))
  num_starts = SPEC.num_windows(frames, 1 + frames * 640 // 200)
  for video, mask, offsets in zip(batch["video"], batch["audio_mask"], batch["offsets"]):
    start = int(video[0, 0, 0, 0])
    assert mask[0] and mask.sum() - 1 == sum(1 for o in range(-num_starts, num_starts)
                                             if abs(o) >= 2 and 0 <= start + o < num_starts)
    assert np.all(offsets[~mask] == 0)
  assert (batch["audio_ids"][~batch["audio_mask"]] == -1).all()


def test_num_windows_respects_both_modalities():
  assert SPEC.num_windows(75, 241) == 71
  assert SPEC.num_windows(75, 100) == (100 - 16) * 25 // 80 + 1  # audio shorter than video
  assert SPEC.num_windows(4, 241) == 0
  np.testing.assert_array_equal(SPEC.num_windows(np.array([75, 75, 4]), np.array([241, 100, 241])), [71, 27, 0])
  # With the raw audio: only the frames that have audio count (L = min(frames, samples // 640), SPEC 5).
  assert SPEC.num_windows(75, 241, num_samples=40 * 640 + 639) == 40 - 4
  assert SPEC.num_windows(75, 241, num_samples=75 * 640) == 71


def test_too_short_record_is_named():
  with pytest.raises(ValueError, match="record 1: too short for one window"):
    _sampler([_record(30, 97), _record(3, 97)])(0, np.array([0, 1]))


@pytest.mark.parametrize("frames", [75, 24])  # a usual utterance, and one too short for 11 near negatives
def test_starts_and_negatives_are_distributed_as_the_per_example_sampler_drew_them(frames):
  """Statistically the same as the numpy sampler this replaced: uniform starts, and per start the same offsets
  with the same frequencies (near ones first, farther ones only to fill, then masks)."""
  n, mel = 11, 1 + frames * 640 // 200
  num_starts = SPEC.num_windows(frames, mel)
  draws = 6000
  batch = _sampler([_record(frames, mel)], negatives=n, seed=5)(3, np.zeros(draws, np.int64))
  new_starts = batch["video"][:, 0, 0, 0, 0].astype(int)
  rng = np.random.default_rng(5)
  old_starts = rng.integers(num_starts, size=draws)
  old = [_old_negative_offsets(s, num_starts, n, 2, 15, rng) for s in old_starts]

  def table(a, b, values):
    return np.array([[np.sum(a == v) for v in values], [np.sum(b == v) for v in values]])

  assert stats.chi2_contingency(table(new_starts, old_starts, range(num_starts))).pvalue > 1e-3
  new_offsets = batch["offsets"][:, 1:][batch["audio_mask"][:, 1:]]
  old_offsets = np.concatenate(old)
  values = [v for v in range(-num_starts, num_starts) if np.sum(new_offsets == v) + np.sum(old_offsets == v) >= 20]
  assert stats.chi2_contingency(table(new_offsets, old_offsets, values)).pvalue > 1e-3
  # Same number of negatives for each start, and no masked one where the old sampler had them all.
  old_count = {s: len(o) for s, o in zip(old_starts, old)}
  new_count = batch["audio_mask"].sum(1) - 1
  assert all(new_count[i] == old_count[s] for i, s in enumerate(new_starts) if s in old_count)


def test_uniform_is_a_function_of_the_ids_alone():
  a = uniform(7, np.arange(1000), 3)
  np.testing.assert_array_equal(a[10:20], uniform(7, np.arange(10, 20), 3))  # any batch layout
  assert not np.array_equal(a, uniform(8, np.arange(1000), 3)) and not np.array_equal(a, uniform(7, np.arange(1000), 4))
  assert stats.kstest(uniform(0, np.arange(20000)), "uniform").pvalue > 1e-3
  assert abs(np.corrcoef(uniform(0, np.arange(5000), 0), uniform(0, np.arange(5000), 1))[0, 1]) < 0.05


def test_examples_depend_on_their_position_not_on_the_slice_they_come_in():
  records = [_record(60, 193), _record(40, 129), _record(75, 241)]
  one = _sampler(records, windows=2)(0, np.array([0, 1, 2, 0]))
  halves = [_sampler(records, windows=2)(s, np.array(r)) for s, r in ((0, [0, 1]), (1, [2, 0]))]
  for key in one:
    np.testing.assert_array_equal(one[key], np.concatenate([h[key] for h in halves]))


def test_record_order_shuffles_each_epoch():
  order = RecordOrder(10, seed=3)
  first, second = order(np.arange(10)), order(np.arange(10, 20))
  assert sorted(first) == sorted(second) == list(range(10)) and not np.array_equal(first, second)
  np.testing.assert_array_equal(order(np.arange(5, 15)), np.concatenate([first[5:], second[:5]]))


def test_joined_readers_read_from_their_part():
  a, b = [_record(30, 97)], [_record(60, 193), _record(40, 129)]
  joined = JoinedWindows([RecordWindows(a, SPEC, 4), RecordWindows(b, SPEC, 4)])
  assert len(joined) == 3
  opened = joined.open(np.array([2, 0, 1]))
  np.testing.assert_array_equal(opened.num_frames, [40, 30, 60])
  video = opened.video(np.array([0, 1, 2]), np.array([35, 25, 50]), SPEC)
  np.testing.assert_array_equal(video[:, 0, 0, 0, 0], [35, 25, 50])


def test_variable_length_clips_are_padded_with_a_mask():
  """clip_frames = (5, 15) (AVST): T-frame clips with the ceil(3.2 T) mel frames of their audio (time-major),
  zero-padded to 15 frames and 48 mel frames; the mask marks the first T frames; T uniform over 5..15."""
  sampler = BatchSampler(RecordWindows([_record(75, 241)], SPEC, margin=4), SPEC, 3, 2, 15, seed=3,
                         clip_frames=(5, 15))
  batch = sampler(0, np.zeros(300, np.int64))
  assert batch["video"].shape == (300, 15, 52, 96, 3) and batch["audio"].shape == (300, 4, 48, 80)
  lengths = batch["video_mask"].sum(1)
  assert set(lengths.tolist()) == set(range(5, 16))
  for video, audio, offsets, mask, t in zip(batch["video"], batch["audio"], batch["offsets"], batch["video_mask"],
                                            lengths):
    assert mask[:t].all() and not mask[t:].any()
    start = int(video[0, 0, 0, 0])
    np.testing.assert_array_equal(video[:t, 0, 0, 0], start + np.arange(t))
    m = -(-t * 80 // 25)
    np.testing.assert_array_equal(audio[:, :m, 0], 80 * (start + offsets)[:, None] // 25 + np.arange(m))
    assert not video[t:].any() and not audio[:, m:].any()
  # A record too short for the length drawn gives the longest clip it holds (8 frames, 26 mel frames).
  short = BatchSampler(RecordWindows([_record(8, 26)], SPEC, margin=4), SPEC, 3, 2, 15, seed=3, clip_frames=(5, 15))
  assert set(short(0, np.zeros(40, np.int64))["video_mask"].sum(1).tolist()) <= set(range(5, 9))
