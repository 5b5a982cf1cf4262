"""Training examples: window alignment (SPEC section 1) and hard negatives with fallbacks (section 3)."""

import numpy as np
import pytest

from modeformer_jax.data.windows import Augment, ExampleSampler, WindowSpec, negative_offsets

pytestmark = pytest.mark.unit

SPEC = WindowSpec()


def _record(frames, mel_frames):
  crops = np.zeros((frames, 96, 96, 3), np.uint8)
  crops[:] = np.arange(frames, dtype=np.uint8)[:, None, None, None]  # each frame shows its index
  mel = np.repeat(np.arange(mel_frames, dtype=np.float32)[:, None], 80, axis=1)  # each mel frame its index
  return {"id": "x", "index": 0, "crops": crops, "mel": mel.astype(np.float16), "num_frames": frames}


def test_audio_window_starts_at_80f_over_25():
  rng = np.random.default_rng(0)
  sampler = ExampleSampler(SPEC, num_negatives=5, min_offset=2, max_offset=15)
  for _ in range(50):
    ex = sampler(_record(75, 1 + 3 * 16000 // 200), rng)
    start = int(ex["video"][0, 0, 0, 0])
    assert ex["video"].shape == (5, 48, 96, 3)
    np.testing.assert_array_equal(ex["video"][:, 0, 0, 0], start + np.arange(5))
    frames = start + ex["offsets"]
    # audio [K, 80, 16]: time runs along the last axis and starts at mel frame 80 f // 25.
    np.testing.assert_array_equal(ex["audio"][:, 0, 0], 80 * frames // 25)
    np.testing.assert_array_equal(ex["audio"][0, 0], 80 * start // 25 + np.arange(16))


def test_hard_negatives_distinct_within_range_and_never_near_zero():
  rng = np.random.default_rng(1)
  for start in range(0, 71):
    d = negative_offsets(start, 71, 11, 2, 15, rng)
    assert len(d) == 11 and len(set(d.tolist())) == 11
    assert np.all(np.abs(d) >= 2) and np.all(np.abs(d) <= 15)
    assert np.all((start + d >= 0) & (start + d < 71))


def test_negatives_fall_back_to_farther_positions_then_mask():
  rng = np.random.default_rng(2)
  # 40 starts, tight range: not enough near offsets, so farther ones fill in.
  d = negative_offsets(0, 40, 11, 2, 5, rng)
  assert len(d) == 11 and np.sum(np.abs(d) <= 5) == 4 and np.all(np.abs(d) > 1)
  # 6 starts: only 4 candidates at all (|d| >= 2) -> 4 negatives, the rest masked in the example.
  sampler = ExampleSampler(SPEC, num_negatives=11, min_offset=2, max_offset=15)
  frames = 10
  ex = sampler(_record(frames, 1 + frames * 640 // 200), rng)
  num_starts = SPEC.num_windows(frames, 1 + frames * 640 // 200)
  assert ex["audio_mask"][0]
  assert ex["audio_mask"].sum() - 1 == len([o for o in range(-num_starts, num_starts)
                                            if abs(o) >= 2 and 0 <= int(ex["video"][0, 0, 0, 0]) + o < num_starts])
  assert np.all(ex["offsets"][~ex["audio_mask"]] == 0)


def test_num_windows_respects_both_modalities():
  assert SPEC.num_windows(75, 241) == 71
  assert SPEC.num_windows(75, 100) == (100 - 16) * 25 // 80 + 1  # audio shorter than video
  assert SPEC.num_windows(4, 241) == 0
  # With the raw audio: only the frames that have audio count (L = min(frames, samples // 640), SPEC 5).
  assert SPEC.num_windows(75, 241, num_samples=40 * 640 + 639) == 40 - 4
  assert SPEC.num_windows(75, 241, num_samples=75 * 640) == 71


def test_augment_changes_training_examples_only_where_configured():
  rng = np.random.default_rng(3)
  crops = np.random.default_rng(0).integers(0, 255, (5, 96, 96, 3), dtype=np.uint8)
  np.testing.assert_array_equal(Augment().video(crops, 48, rng), crops[:, 48:])
  jittered = Augment(crop_jitter=4, brightness=0.1, contrast=0.1).video(crops, 48, rng)
  assert jittered.shape == (5, 48, 96, 3) and jittered.dtype == np.uint8
  windows = np.zeros((3, 80, 16), np.float32)
  gained = Augment(audio_gain=0.5).audio(windows, rng)
  assert np.ptp(gained) == 0.0  # one gain for all candidates of an example


def test_variable_length_clips_are_padded_with_a_mask():
  """clip_frames = (5, 15) (AVST): T-frame clips with the ceil(3.2 T) mel frames of their audio, zero-padded to
  15 frames and 48 mel frames; the mask marks the first T frames."""
  rng = np.random.default_rng(3)
  sampler = ExampleSampler(SPEC, num_negatives=3, min_offset=2, max_offset=15, clip_frames=(5, 15))
  lengths = set()
  for _ in range(80):
    ex = sampler(_record(75, 241), rng)
    t = int(ex["video_mask"].sum())
    lengths.add(t)
    assert ex["video"].shape == (15, 48, 96, 3) and ex["audio"].shape == (4, 80, 48) and ex["video_mask"][:t].all()
    start = int(ex["video"][0, 0, 0, 0])
    np.testing.assert_array_equal(ex["video"][:t, 0, 0, 0], start + np.arange(t))
    m = -(-t * 80 // 25)
    np.testing.assert_array_equal(ex["audio"][:, 0, :m], 80 * (start + ex["offsets"])[:, None] // 25 + np.arange(m))
    assert not ex["video"][t:].any() and not ex["audio"][:, :, m:].any()
  assert lengths == set(range(5, 16))
  # A record too short for the length drawn gives the longest clip it holds (8 frames, 26 mel frames).
  assert {int(sampler(_record(8, 26), rng)["video_mask"].sum()) for _ in range(20)} <= set(range(5, 9))
