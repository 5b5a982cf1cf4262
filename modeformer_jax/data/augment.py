"""Training-time augmentation (config.data.augment), applied to the global batch inside the compiled train step.

On the device it costs nothing next to the model, where on the host it was most of the loader's time (edge
padding, clipping and 15k gaussian draws per example). The draws come from a key the train step derives from
its step, so a resumed run augments as an uninterrupted one, and they are drawn for the global batch, so the
number of processes does not change them. Per example, as the numpy sampler before it did:
  crop jitter   the 96x96 crop moved by (dy, dx), each uniform in -j..j, its edge pixels repeated, before the
                model's rows are taken (the loader keeps `margin` rows above them for this)
  brightness    + 255 b', b' uniform in [-brightness, brightness]
  contrast      about the window's mean, x (1 + c'), c' uniform in [-contrast, contrast]; then clipped to 0..255
                and truncated to uint8
  audio gain    + g' on every audio window of the example (one value, so it cannot tell candidates apart)
  audio noise   + gaussian noise of std audio_noise on every log-mel value
  low res       with probability low_res, the video seen through a smaller face: each frame resized down as if
                the 96x96 crop had been cut from a square of LOW_RES_SIDES[i] source pixels (i uniform), then
                back up, as `sync` upsamples the crops of a wide shot's small faces (media/crops.py: linear);
                applied first, so the crop jitter moves the blurred crop
tests/test_augment.py checks these distributions against the numpy sampler's.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

# Source squares (pixels) the low-res augmentation imitates: the crops of faces about 20, 24, 32 and 48 px tall
# (a detected face's crop square is about 0.81 of its box in the demo's framing, configs/tiny.py; BlazeFace's
# box for a 24 px face is often a few pixels short, so its square is 16-20 px). 16 joined 2026-12-02: over two
# demo runs the generator's wide shots gave 56 of 60 offsets against 50 (BENCHMARKS.md, "Face detectors").
LOW_RES_SIDES = (16, 20, 26, 39)


@dataclasses.dataclass(frozen=True)
class Augment:
  """Augmentation strengths; all zero (the default) changes nothing but cropping the margin rows away."""
  crop_jitter: int = 0
  brightness: float = 0.0
  contrast: float = 0.0
  audio_gain: float = 0.0
  audio_noise: float = 0.0
  low_res: float = 0.0

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict) -> "Augment":
    return cls(cfg.crop_jitter, cfg.brightness, cfg.contrast, cfg.audio_gain, cfg.audio_noise,
               cfg.get("low_res", 0.0))  # configs saved before low_res

  def margin(self, row_start: int) -> int:
    """Rows above the model's first row (row_start) that the loader keeps for the crop jitter."""
    return min(self.crop_jitter, row_start)

  def __call__(self, video: jax.Array, audio: jax.Array, key: jax.Array, row_start: int,
               video_mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """video uint8 [B, T, S - row_start + margin, S, 3], audio [B, K, T', F] time-major (the loader's) -> (video
    uint8 [B, T, S - row_start, S, 3], audio float32 [B, K, F, T']: the model's inputs), augmented. video_mask
    bool [B, T] (variable-length clips): the contrast's mean is over the clip's frames and padded frames stay
    zero; padded audio frames get gain and noise, which the model masks (models/avst.py)."""
    margin = self.margin(row_start)
    batch, _, height, width = video.shape[:4]
    rows = height - margin
    keys = jax.random.split(key, 5)
    if self.low_res:
      video = _low_res(video, jax.random.fold_in(key, 5), self.low_res)
    if self.crop_jitter:
      j = self.crop_jitter
      dy = jax.random.randint(keys[0], (batch, 1), -j, j + 1)
      dx = jax.random.randint(keys[1], (batch, 1), -j, j + 1)
      # Crop row r of the moved crop is stored row margin + r + dy; past the stored rows (or the crop's bottom
      # and sides) the edge row / column repeats, as edge padding does.
      row_index = jnp.clip(margin + jnp.arange(rows) + dy, 0, height - 1)
      col_index = jnp.clip(jnp.arange(width) + dx, 0, width - 1)
      video = jax.vmap(lambda v, r, c: v[:, r][:, :, c])(video, row_index, col_index)
    if self.brightness or self.contrast:
      gain = 1.0 + jax.random.uniform(keys[2], (batch, 1, 1, 1, 1), minval=-self.contrast, maxval=self.contrast)
      bias = 255.0 * jax.random.uniform(keys[3], (batch, 1, 1, 1, 1), minval=-self.brightness,
                                        maxval=self.brightness)
      x = video.astype(jnp.float32)
      frames = jnp.ones(video.shape[:2], bool) if video_mask is None else video_mask
      frames = frames[:, :, None, None, None]
      mean = (x * frames).sum(axis=(1, 2, 3, 4), keepdims=True) / (frames.sum(axis=1, keepdims=True) * x[0, 0].size)
      video = jnp.where(frames, jnp.floor(jnp.clip((x - mean) * gain + mean + bias, 0, 255)), 0).astype(jnp.uint8)
    audio = jnp.swapaxes(audio.astype(jnp.float32), -1, -2)
    gain_key, noise_key = jax.random.split(keys[4])
    if self.audio_gain:
      audio = audio + jax.random.uniform(gain_key, (audio.shape[0], 1, 1, 1), minval=-self.audio_gain,
                                         maxval=self.audio_gain)
    if self.audio_noise:
      audio = audio + self.audio_noise * jax.random.normal(noise_key, audio.shape)
    return video, audio


def _low_res(video: jax.Array, key: jax.Array, share: float) -> jax.Array:
  """video uint8 [B, T, H, W, 3] with a share of the examples resampled through LOW_RES_SIDES (module doc)."""
  batch, _, height, width = video.shape[:4]
  x = video.astype(jnp.float32)
  versions = [x]
  for side in LOW_RES_SIDES:
    small = jax.image.resize(x, (*x.shape[:2], max(1, round(height * side / width)), side, 3), "linear",
                             antialias=True)
    versions.append(jax.image.resize(small, x.shape, "linear"))
  pick_key, side_key = jax.random.split(key)
  chosen = jax.random.randint(side_key, (batch,), 1, len(versions))
  chosen = jnp.where(jax.random.uniform(pick_key, (batch,)) < share, chosen, 0)
  out = jnp.stack(versions)[chosen, jnp.arange(batch)]
  return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)
