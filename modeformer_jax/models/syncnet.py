"""SyncNet (Chung and Zisserman 2016), layer for layer the network of syncnet_python's SyncNetModel.py.

Two towers, each a CNN to one 512-d vector and a head Linear 512 -> BatchNorm -> ReLU -> Linear 1024:
  lip:   5 x 224 x 224 x 3 BGR face (0..255, no scaling), 3-D convs (the first spans all 5 frames);
  audio: 13 MFCC x 20 steps (0.2 s at 100 Hz), 2-D convs.
13,631,616 parameters at the published widths (13.63M), plus a learnable temperature (one scalar) with the
"infonce" and "multiway" objectives. Layer tables below follow netcnnlip / netcnnaud; the 1x1 max-pool
after the first audio conv is an identity and is left out. `modeformer import-syncnet` maps the published
state dict onto this module (export/syncnet_weights.py).

embedding="raw" keeps the head's output, compared by Euclidean distance, as syncnet_python and the original
contrastive loss do; "unit" L2-normalises it and scores cosine similarity, as PM and InfoNCE training do.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from modeformer_jax.models.layers import ConvBlock, TemperatureMixin, l2_normalize

SYNCNET_OBJECTIVES = ("contrastive", "infonce", "multiway")  # of loss.OBJECTIVES, those that train embeddings


# (in, out, kernel, stride, padding, max-pool (window, stride, padding) or None); lip rows are (T, H, W).
def lip_cnn_table(w: Sequence[int]) -> list[tuple]:
  w1, w2, w3, w4, w5, w6 = w
  pool = lambda pad: ((1, 3, 3), (1, 2, 2), pad)
  return [
      (3, w1, (5, 7, 7), (1, 2, 2), 0, pool(0)),
      (w1, w2, (1, 5, 5), (1, 2, 2), (0, 1, 1), pool((0, 1, 1))),
      (w2, w3, (1, 3, 3), 1, (0, 1, 1), None),
      (w3, w4, (1, 3, 3), 1, (0, 1, 1), None),
      (w4, w5, (1, 3, 3), 1, (0, 1, 1), pool(0)),
      (w5, w6, (1, 6, 6), 1, 0, None),
  ]


# Audio rows are (cepstra, time).
def audio_cnn_table(w: Sequence[int]) -> list[tuple]:
  w1, w2, w3, w4, w5, w6 = w
  return [
      (1, w1, 3, 1, 1, None),
      (w1, w2, 3, 1, 1, ((3, 3), (1, 2), 0)),
      (w2, w3, 3, 1, 1, None),
      (w3, w4, 3, 1, 1, None),
      (w4, w5, 3, 1, 1, ((3, 3), (2, 2), 0)),
      (w5, w6, (5, 4), 1, 0, None),
  ]


class PooledConvBlock(nnx.Module):
  """conv -> BatchNorm -> ReLU -> optional max-pool (padding counts as -inf, as PyTorch's MaxPool)."""

  def __init__(self, in_features: int, out_features: int, kernel: int | tuple, stride: int | tuple,
               padding: int | tuple, pool: tuple | None, *, ndim: int, impl: str, bn_momentum: float, dtype,
               rngs: nnx.Rngs):
    self.block = ConvBlock(in_features, out_features, kernel, stride, padding, False, ndim=ndim, impl=impl,
                           bn_momentum=bn_momentum, dtype=dtype, rngs=rngs)
    self.pool = pool

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: [B, *spatial, C_in] -> [B, *spatial_out, C_out]."""
    x = self.block(x, train=train)
    if self.pool is None:
      return x
    window, stride, pad = self.pool
    pad = (pad,) * len(window) if isinstance(pad, int) else pad
    return nnx.max_pool(x, window, stride, [(p, p) for p in pad])


class Head(nnx.Module):
  """netfc*: Linear -> BatchNorm1d -> ReLU -> Linear."""

  def __init__(self, in_features: int, hidden: int, out_features: int, *, bn_momentum: float, dtype,
               rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(in_features, hidden, dtype=dtype, rngs=rngs)
    self.bn = nnx.BatchNorm(hidden, momentum=bn_momentum, epsilon=1e-5, dtype=dtype, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, out_features, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: [B, in] -> [B, out]."""
    return self.fc2(jax.nn.relu(self.bn(self.fc1(x), use_running_average=not train)))


class Tower(nnx.Module):
  """One modality: conv blocks to [B, ..., 1, 1, C], flattened, then the head."""

  def __init__(self, table: list[tuple], cfg: ml_collections.ConfigDict, *, ndim: int, dtype, rngs: nnx.Rngs):
    common = dict(ndim=ndim, impl=cfg.conv3d_impl, bn_momentum=cfg.bn_momentum, dtype=dtype, rngs=rngs)
    self.cnn = nnx.List([PooledConvBlock(*row, **common) for row in table])
    self.head = Head(table[-1][1], cfg.fc_width, cfg.width, bn_momentum=cfg.bn_momentum, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """x: [B, 5, 224, 224, 3] (lip) or [B, 13, 20, 1] (audio) -> [B, width] float32."""
    for block in self.cnn:
      x = block(x, train=train)
    return self.head(x.reshape(x.shape[0], -1), train=train).astype(jnp.float32)


class SyncNet(TemperatureMixin, nnx.Module):
  """RGB face clip [B, 5, H, W, 3] and MFCC window [B, 13, 20] to embeddings [B, width] (raw or unit-norm)."""

  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    dtype = jnp.dtype(cfg.dtype)
    self.lip = Tower(lip_cnn_table(cfg.lip_widths), cfg, ndim=3, dtype=dtype, rngs=rngs)
    self.audio = Tower(audio_cnn_table(cfg.audio_widths), cfg, ndim=2, dtype=dtype, rngs=rngs)
    self.image_size = cfg.image_size
    self.unit = cfg.embedding == "unit"
    self.objective = cfg.objective
    self.margin = cfg.margin
    if cfg.objective != "contrastive":  # the softmax objectives learn a temperature; the margin loss has none
      self.log_temperature = nnx.Param(jnp.log(jnp.float32(cfg.init_temperature)))
      self.temperature_range = tuple(cfg.temperature_range)

  @staticmethod
  def scoring(cfg: ml_collections.ConfigDict) -> str:
    return "cosine" if cfg.embedding == "unit" else "euclidean"

  def _out(self, x: jax.Array) -> jax.Array:
    return l2_normalize(x) if self.unit else x

  def embed_video(self, video: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """video: [B, 5, H, W, 3] RGB 0..255 (uint8 or float) -> [B, width] float32.

    The tower sees what syncnet_python feeds it: BGR values 0..255, image_size square. Smaller crops (the
    96x96 of prepared shards) are resized bilinearly here, on the device, so batches stay small on the host.
    """
    del rngs  # no dropout
    x = video.astype(jnp.float32)
    b, t, h, w, c = x.shape
    if (h, w) != (self.image_size, self.image_size):
      x = jax.image.resize(x, (b, t, self.image_size, self.image_size, c), "linear")
    return self._out(self.lip(x[..., ::-1], train=train))

  def embed_audio(self, mfcc: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """mfcc: [B, 13, 20] (cepstra, time) -> [B, width] float32."""
    del rngs
    return self._out(self.audio(mfcc.astype(jnp.float32)[..., None], train=train))

  def __call__(self, video: jax.Array, audio: jax.Array, *, train: bool = False,
               rngs: nnx.Rngs | None = None) -> tuple[jax.Array, jax.Array]:
    """video [B, 5, H, W, 3], audio [B, K, 13, 20] (K candidate windows per clip) -> ([B, D], [B, K, D])."""
    b, k = audio.shape[:2]
    v = self.embed_video(video, train=train)
    a = self.embed_audio(audio.reshape(b * k, *audio.shape[2:]), train=train)
    return v, a.reshape(b, k, -1)
