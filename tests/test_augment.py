"""Augmentation on the device (data/augment.py) against the numpy sampler it replaced: the same crop jitter with
edge pixels, the same brightness / contrast and audio gain / noise distributions, and keys that make it exact on
resume."""

import jax
import numpy as np
import pytest
from scipy import stats

from modeformer_jax.data.augment import Augment

pytestmark = pytest.mark.unit

DEFAULT = Augment(crop_jitter=4, brightness=0.1, contrast=0.1, audio_gain=0.25, audio_noise=0.05)


def _old_video(aug, crops, row_start, rng):
  """Augment.video of the per-example numpy sampler (commit db39841), as the reference."""
  j = aug.crop_jitter
  if j:
    dy, dx = rng.integers(-j, j + 1, size=2)
    crops = np.pad(crops, ((0, 0), (j, j), (j, j), (0, 0)), mode="edge")
    crops = crops[:, j + dy:j + dy + crops.shape[1] - 2 * j, j + dx:j + dx + crops.shape[2] - 2 * j]
  mouth = crops[:, row_start:]
  if aug.brightness or aug.contrast:
    gain = 1.0 + rng.uniform(-aug.contrast, aug.contrast)
    bias = 255.0 * rng.uniform(-aug.brightness, aug.brightness)
    mean = mouth.mean()
    mouth = np.clip((mouth - mean) * gain + mean + bias, 0, 255).astype(np.uint8)
  return np.ascontiguousarray(mouth)


def _old_audio(aug, windows, rng):
  windows = windows + rng.uniform(-aug.audio_gain, aug.audio_gain)
  return (windows + rng.normal(0.0, aug.audio_noise, windows.shape).astype(np.float32)).astype(np.float32)


def _coded_crops(batch):
  """Crops [B, 5, 96, 96, 3] whose red channel is the row and green the column: a jitter can be read back."""
  crops = np.zeros((batch, 5, 96, 96, 3), np.uint8)
  crops[..., 0] = np.arange(96)[:, None]
  crops[..., 1] = np.arange(96)[None, :]
  return crops


def test_no_augmentation_crops_the_margin_away_only():
  crops = np.random.default_rng(0).integers(0, 255, (3, 5, 96, 96, 3), np.uint8)
  audio = np.random.default_rng(1).normal(size=(3, 4, 16, 80)).astype(np.float16)
  video, mel = Augment()(crops[:, :, 48:], audio, jax.random.key(0), 48)
  np.testing.assert_array_equal(video, crops[:, :, 48:])
  np.testing.assert_array_equal(mel, np.swapaxes(audio.astype(np.float32), -1, -2))  # [B, K, 80, 16]


def test_crop_jitter_moves_the_crop_as_edge_padding_did():
  """Each example is the old sampler's crop for some (dy, dx) in -4..4 (edge rows and columns repeated), and the
  shifts are uniform as the old sampler's."""
  aug = Augment(crop_jitter=4)
  crops = _coded_crops(1500)[:, :1]
  video, _ = aug(crops[:, :, 44:], np.zeros((1500, 1, 2, 2), np.float32), jax.random.key(3), 48)
  video = np.asarray(video)
  dy = video[:, 0, 0, 50, 0].astype(int) - 48  # row 0 of the mouth shows crop row 48 + dy
  dx = video[:, 0, 0, 50, 1].astype(int) - 50
  for i in range(0, 1500, 37):  # the old sampler's output for the same shift, exactly
    rng = _FixedShift(dy[i], dx[i])
    np.testing.assert_array_equal(video[i], _old_video(aug, crops[i], 48, rng))
  assert set(dy) == set(dx) == set(range(-4, 5))
  old = np.random.default_rng(4).integers(-4, 5, size=(1500, 2))
  for new_shift, old_shift in ((dy, old[:, 0]), (dx, old[:, 1])):
    table = [[np.sum(s == v) for v in range(-4, 5)] for s in (new_shift, old_shift)]
    assert stats.chi2_contingency(table).pvalue > 1e-3


class _FixedShift:
  """A numpy Generator stand-in whose integers() returns one shift (for _old_video)."""

  def __init__(self, dy, dx):
    self.shift = np.array([dy, dx])

  def integers(self, *args, **kwargs):
    return self.shift


@pytest.mark.parametrize("field", ["mean", "std"])
def test_brightness_and_contrast_are_distributed_as_before(field):
  aug = Augment(brightness=0.1, contrast=0.1)
  rng = np.random.default_rng(5)
  mouth = rng.integers(60, 200, (1, 2, 8, 16, 3), np.uint8).repeat(1000, 0)  # any window size will do
  new, _ = aug(mouth, np.zeros((1000, 1, 2, 2), np.float32), jax.random.key(6), 48)
  old = np.stack([_old_video(aug, np.pad(m, ((0, 0), (48, 0), (0, 0), (0, 0))), 48, rng) for m in mouth])
  measure = {"mean": lambda v: v.reshape(len(v), -1).mean(1), "std": lambda v: v.reshape(len(v), -1).std(1)}[field]
  assert stats.ks_2samp(measure(np.asarray(new, np.float64)), measure(old.astype(np.float64))).pvalue > 1e-3


def test_audio_gain_and_noise_are_distributed_as_before():
  rng = np.random.default_rng(7)
  windows = rng.normal(size=(1, 6, 8, 20)).astype(np.float32).repeat(1000, 0)
  _, new = DEFAULT(np.zeros((1000, 1, 6, 8, 3), np.uint8), windows, jax.random.key(8), 48)
  delta_new = np.asarray(new) - np.swapaxes(windows, -1, -2)
  delta_old = np.stack([_old_audio(DEFAULT, np.swapaxes(w, -1, -2), rng) for w in windows]) - np.swapaxes(windows,
                                                                                                        -1, -2)
  for delta in (delta_new, delta_old):  # one gain per example: its candidates' mean shifts agree within noise
    per_candidate = delta.mean(axis=(2, 3))
    assert np.abs(per_candidate - per_candidate.mean(1, keepdims=True)).max() < 0.04
  gains = [d.mean(axis=(1, 2, 3)) for d in (delta_new, delta_old)]
  assert stats.ks_2samp(*gains).pvalue > 1e-3
  noise = [(d - d.mean(axis=(1, 2, 3), keepdims=True)).std() for d in (delta_new, delta_old)]
  assert noise[0] == pytest.approx(noise[1], rel=0.03) and noise[0] == pytest.approx(0.05, rel=0.03)


def test_same_key_same_augmentation():
  crops = _coded_crops(8)[:, :1, 44:]
  audio = np.zeros((8, 3, 4, 4), np.float32)
  a = DEFAULT(crops, audio, jax.random.fold_in(jax.random.key(0), 5), 48)
  b = DEFAULT(crops, audio, jax.random.fold_in(jax.random.key(0), 5), 48)
  c = DEFAULT(crops, audio, jax.random.fold_in(jax.random.key(0), 6), 48)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(a[0], c[0])


def test_padded_frames_stay_zero_and_leave_the_contrast_mean_alone():
  """Variable-length clips (video_mask): the frames of the clip are augmented as the clip alone would be."""
  aug = Augment(brightness=0.1, contrast=0.1)
  clip = np.random.default_rng(9).integers(60, 200, (4, 3, 8, 16, 3), np.uint8)
  padded = np.concatenate([clip, np.zeros((4, 2, 8, 16, 3), np.uint8)], axis=1)
  mask = np.arange(5) < 3
  audio = np.zeros((4, 1, 2, 2), np.float32)
  alone, _ = aug(clip, audio, jax.random.key(10), 48)
  video, _ = aug(padded, audio, jax.random.key(10), 48, np.broadcast_to(mask, (4, 5)))
  np.testing.assert_array_equal(video[:, :3], alone)
  assert not np.asarray(video[:, 3:]).any()


def test_low_res_resamples_a_share_of_the_examples_through_a_small_face():
  """low_res: the chosen examples lose the fine detail a 96-px crop of a face under 40 px lacks (a pixel-wide
  checkerboard is averaged away) while keeping the coarse content (a row gradient); the others are untouched;
  the share chosen is low_res."""
  crops = np.zeros((400, 5, 96, 96, 3), np.uint8)
  crops[..., 0] = np.arange(96)[:, None] * 2  # coarse: a gradient
  crops[..., 1] = 200 * ((np.arange(96)[:, None] + np.arange(96)[None, :]) % 2)  # fine: a checkerboard
  video, _ = Augment(low_res=0.5)(crops[:, :, 48:], np.zeros((400, 1, 2, 2), np.float32), jax.random.key(5), 48)
  video = np.asarray(video).astype(np.int16)
  changed = (video != crops[:, :, 48:]).any(axis=(1, 2, 3, 4))
  assert 0.42 < changed.mean() < 0.58, changed.mean()
  blurred = video[changed]
  assert np.abs(blurred[..., 1] - 100).mean() < 25  # the checkerboard averaged to about its mean
  assert np.abs(blurred[:, :, 8:-8, :, 0] - crops[:1, :, 56:-8, :, 0]).mean() < 4  # the gradient kept
