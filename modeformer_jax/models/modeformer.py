"""ModEFormer (Gupta et al., ICASSP 2023): modality-preserving audio and video encoders.

Each modality has its own CNN that keeps time, a learnable token prepended to the CNN's time sequence, and its
own transformer; the token's output, L2-normalised, is the embedding. The two encoders never see each other's
input, so evaluation and offset detection encode each window once per modality and score every candidate
offset with a dot product. Layer tables: SPEC section 2 (reconstructed from VocaLiST's front-ends; 58.84M).

`temporal="pool"` replaces both transformers by a mean over time: the paper's 3D-SyncNet ablation.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from modeformer_jax.models.layers import ConvBlock, EncoderLayer, TemperatureMixin, l2_normalize, sinusoidal_positions

# (in, out, kernel, stride (T,H,W), padding (T,H,W), residual): SPEC section 2, visual CNN.
def visual_cnn_table(w: Sequence[int]) -> list[tuple]:
  w1, w2, w3, w4, w5 = w
  res = lambda c, n: [(c, c, 3, 1, 1, True)] * n
  return [
      (3, w1, 7, 1, 3, False),
      (w1, w2, 5, (1, 1, 2), (2, 1, 1), False), *res(w2, 2),
      (w2, w3, 3, (1, 2, 2), 1, False), *res(w3, 3),
      (w3, w4, 3, (1, 2, 2), 1, False), *res(w4, 2),
      (w4, w5, 3, (1, 2, 2), 1, False), *res(w5, 2),
      (w5, w5, 3, (1, 2, 2), 1, False),
      (w5, w5, 3, 1, (1, 0, 0), False),
      (w5, w5, 1, 1, 0, False),
  ]


# (in, out, kernel, stride (F,T), padding (F,T), residual): SPEC section 2, audio CNN.
def audio_cnn_table(w: Sequence[int]) -> list[tuple]:
  w1, w2, w3, w4, w5 = w
  res = lambda c: [(c, c, 3, 1, 1, True)] * 2
  return [
      (1, w1, 3, 1, 1, False), *res(w1),
      (w1, w2, 3, (3, 1), 1, False), *res(w2),
      (w2, w3, 3, (3, 1), 1, False), *res(w3),
      (w3, w4, 3, (3, 1), 1, False), *res(w4),
      (w4, w5, 3, 1, (0, 1), False),
      (w5, w5, 1, 1, 0, False),
  ]


# A block's forward pass recomputed in the backward pass instead of stored (model.remat).
_rematerialised = nnx.remat(lambda layer, x, mask, train: layer(x, train=train, mask=mask), static_argnums=(3,))


class CNN(nnx.Module):
  """A stack of ConvBlocks built from a layer table."""

  def __init__(self, table: list[tuple], *, ndim: int, impl: str, bn_momentum: float, dtype,
               rngs: nnx.Rngs, remat: bool = False):
    self.blocks = nnx.List([
        ConvBlock(*row, ndim=ndim, impl=impl, bn_momentum=bn_momentum, dtype=dtype, rngs=rngs)
        for row in table])
    self.remat = remat

  def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None) -> jax.Array:
    """mask: bool, broadcastable to every block's output (padded time steps False; AVST's variable-length
    clips): each block's output is zeroed there, so the next block sees what its zero padding would give, and
    BatchNorm's batch statistics leave those steps out."""
    for block in self.blocks:
      x = _rematerialised(block, x, mask, train) if self.remat and train else block(x, train=train, mask=mask)
      if mask is not None:
        x = jnp.where(mask, x, 0)
    return x


class TemporalEncoder(nnx.Module):
  """Learnable token + sinusoidal positions + transformer layers + final LayerNorm; returns the token output."""

  def __init__(self, cfg: ml_collections.ConfigDict, *, dtype, rngs: nnx.Rngs):
    self.token = nnx.Param(jax.random.normal(rngs.params(), (cfg.width,)) * 0.02)
    self.layers = nnx.List([
        EncoderLayer(cfg.width, cfg.num_heads, cfg.mlp_dim, cfg.dropout, cfg.norm_first, cfg.activation,
                     dtype=dtype, rngs=rngs) for _ in range(cfg.depth)])
    self.final_ln = nnx.LayerNorm(cfg.width, dtype=dtype, rngs=rngs)
    self.dropout = nnx.Dropout(cfg.dropout)
    self.pos = (nnx.Param(jax.random.normal(rngs.params(), (cfg.max_len, cfg.width)) * 0.02)
                if cfg.pos_encoding == "learned" else None)

  def __call__(self, x: jax.Array, *, train: bool, rngs: nnx.Rngs | None) -> jax.Array:
    """x: [B, L, width] -> [B, width]."""
    b, length, _ = x.shape
    token = jnp.broadcast_to(self.token[...].astype(x.dtype), (b, 1, x.shape[-1]))
    pos = self.pos[...][:length + 1] if self.pos is not None else sinusoidal_positions(length + 1, x.shape[-1])
    x = jnp.concatenate([token, x], axis=1) + pos.astype(x.dtype)
    x = self.dropout(x, deterministic=not train, rngs=rngs)
    for layer in self.layers:
      x = layer(x, deterministic=not train, rngs=rngs)
    return self.final_ln(x)[:, 0]


class Encoder(nnx.Module):
  """One modality's embedding: CNN -> time sequence -> transformer token (or temporal mean) -> L2 norm."""

  def __init__(self, cnn: CNN, cfg: ml_collections.ConfigDict, *, dtype, rngs: nnx.Rngs):
    self.cnn = cnn
    self.temporal = TemporalEncoder(cfg, dtype=dtype, rngs=rngs) if cfg.temporal == "transformer" else None
    self.projection = (nnx.Linear(cfg.width, cfg.projection_dim, dtype=dtype, rngs=rngs)
                       if cfg.projection_dim else None)

  def __call__(self, seq: jax.Array, *, train: bool, rngs: nnx.Rngs | None) -> jax.Array:
    """seq: [B, L, width] CNN output as a time sequence -> [B, D] unit-norm float32."""
    x = self.temporal(seq, train=train, rngs=rngs) if self.temporal is not None else seq.mean(axis=1)
    if self.projection is not None:
      x = self.projection(x)
    return l2_normalize(x)


class ModEFormer(TemperatureMixin, nnx.Module):
  """Video clip [B, T, 48, 96, 3] and log-mel window [B, 80, 16] to unit embeddings; cosine sync score."""

  objective = "infonce"  # the training loss (loss.OBJECTIVES)

  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    if cfg.video_widths[-1] != cfg.width or cfg.audio_widths[-1] != cfg.width:
      raise ValueError("model.video_widths[-1] and model.audio_widths[-1] must equal model.width "
                       f"({cfg.video_widths[-1]}, {cfg.audio_widths[-1]} vs {cfg.width})")
    dtype = jnp.dtype(cfg.dtype)
    common = dict(impl=cfg.conv3d_impl, bn_momentum=cfg.bn_momentum, dtype=dtype, rngs=rngs,
                  remat=bool(cfg.get("remat", False)))
    self.video = Encoder(CNN(visual_cnn_table(cfg.video_widths), ndim=3, **common), cfg, dtype=dtype, rngs=rngs)
    self.audio = Encoder(CNN(audio_cnn_table(cfg.audio_widths), ndim=2, **common), cfg, dtype=dtype, rngs=rngs)
    self.log_temperature = nnx.Param(jnp.log(jnp.float32(cfg.init_temperature)))
    self.temperature_range = tuple(cfg.temperature_range)
    self.center_inputs = bool(cfg.get("center_inputs", False))

  @staticmethod
  def scoring(cfg: ml_collections.ConfigDict) -> str:
    """How window pairs are scored: cosine similarity of the unit embeddings."""
    del cfg
    return "cosine"

  def embed_video(self, video: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """video: [B, T, 48, 96, 3] uint8 (0..255) or float in [0, 1] -> [B, D] unit-norm float32."""
    if video.dtype == jnp.uint8:
      video = video.astype(jnp.float32) / 255.0
    if self.center_inputs:  # what does not move over the window (face, background, lighting) cancels
      video = video - video.mean(axis=1, keepdims=True)
    x = self.video.cnn(video, train=train)  # [B, T, 1, 1, width]
    return self.video(x.reshape(x.shape[0], x.shape[1], -1), train=train, rngs=rngs)

  def embed_audio(self, mel: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """mel: [B, 80, 16] log-mel window (frequency, time) -> [B, D] unit-norm float32."""
    if self.center_inputs:  # the voice's steady spectrum cancels, its changes over the window stay
      mel = mel - mel.mean(axis=-1, keepdims=True)
    x = self.audio.cnn(mel[..., None], train=train)  # [B, 1, 16, width]
    return self.audio(x.reshape(x.shape[0], x.shape[2], -1), train=train, rngs=rngs)

  def __call__(self, video: jax.Array, audio: jax.Array, *, train: bool = False,
               rngs: nnx.Rngs | None = None) -> tuple[jax.Array, jax.Array]:
    """video [B, T, 48, 96, 3], audio [B, K, 80, 16] (K candidate windows per clip) -> ([B, D], [B, K, D])."""
    b, k = audio.shape[:2]
    v = self.embed_video(video, train=train, rngs=rngs)
    a = self.embed_audio(audio.reshape(b * k, *audio.shape[2:]), train=train, rngs=rngs)
    return v, a.reshape(b, k, -1)

  @staticmethod
  def sync_score(video_emb: jax.Array, audio_emb: jax.Array) -> jax.Array:
    """Cosine similarity of unit embeddings [..., D] x [..., D] -> [...]."""
    return jnp.sum(video_emb * audio_emb, axis=-1)
