"""VocaLiST (Kadandale et al. 2022): a cross-modal classifier of (5-frame clip, audio window) pairs.

Front-ends as ModEFormer's (SPEC section 2 tables: 5 video tokens, 16 audio tokens of width 512), then three
cross-modal transformers in the Multimodal-Transformer style VocaLiST uses (4 layers, 8 heads, FFN 2048):
  av  = T_av(query audio, keys video)        16 tokens
  va  = T_va(query video, keys audio)         5 tokens
  out = T_mem(query av, keys va)             16 tokens
then max-pool over time, Linear + tanh (512) and a Linear to one logit (in sync vs off sync). 80.1M parameters
at the default widths. Each layer is pre-LN, one LayerNorm shared by queries and keys/values, with a final
LayerNorm; inputs are scaled by sqrt(width) and get sinusoidal positions; dropout 0.25 on the embedded inputs,
0.1 on residual and FFN paths, none on attention. With attn_mask, query i sees key j only where
j - i <= |keys - queries| (MulT's buffered_future_mask), as VocaLiST trains it.

The model has no per-modality embedding to compare, so every (video window, audio window) pair needs its own
pass through the transformers and the classifier. The CNN front-ends do not see the other modality, so their
tokens are computed once per window (`embed_video`, `embed_audio`) and `classify` runs per pair on them: the
same logits as a whole forward pass per pair (`score_pairs`, evaluation's naive mode) at about 1/31 of the
front-end cost, which is most of the model's FLOPs. Training scores each clip against its K candidate
windows, computing the clip's video tokens once.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from modeformer_jax.models.layers import sinusoidal_positions
from modeformer_jax.models.modeformer import CNN, audio_cnn_table, visual_cnn_table


class CrossModalLayer(nnx.Module):
  """Pre-LN cross-attention (one LayerNorm for queries and keys/values) and pre-LN ReLU FFN, both residual."""

  def __init__(self, cfg: ml_collections.ConfigDict, *, dtype, rngs: nnx.Rngs):
    w = cfg.width
    self.ln1 = nnx.LayerNorm(w, dtype=dtype, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(cfg.num_heads, w, w, w, dropout_rate=cfg.attn_dropout, dtype=dtype,
                                       decode=False, keep_rngs=False, rngs=rngs)
    self.ln2 = nnx.LayerNorm(w, dtype=dtype, rngs=rngs)
    self.mlp_in = nnx.Linear(w, cfg.mlp_dim, dtype=dtype, rngs=rngs)
    self.mlp_out = nnx.Linear(cfg.mlp_dim, w, dtype=dtype, rngs=rngs)
    self.dropout = nnx.Dropout(cfg.dropout)

  def __call__(self, x: jax.Array, kv: jax.Array, mask: jax.Array | None, *, deterministic: bool,
               rngs: nnx.Rngs | None) -> jax.Array:
    """x [B, Lq, W] attends to kv [B, Lk, W] -> [B, Lq, W]."""
    kv = self.ln1(kv)
    y = self.attn(self.ln1(x), kv, kv, mask=mask, deterministic=deterministic, rngs=rngs)
    x = x + self.dropout(y, deterministic=deterministic, rngs=rngs)
    y = self.dropout(jax.nn.relu(self.mlp_in(self.ln2(x))), deterministic=deterministic, rngs=rngs)
    return x + self.dropout(self.mlp_out(y), deterministic=deterministic, rngs=rngs)


class CrossModalEncoder(nnx.Module):
  """Scaled, positioned inputs -> depth x CrossModalLayer -> final LayerNorm."""

  def __init__(self, cfg: ml_collections.ConfigDict, *, dtype, rngs: nnx.Rngs):
    self.layers = nnx.List([CrossModalLayer(cfg, dtype=dtype, rngs=rngs) for _ in range(cfg.depth)])
    self.final_ln = nnx.LayerNorm(cfg.width, dtype=dtype, rngs=rngs)
    self.embed_dropout = nnx.Dropout(cfg.embed_dropout)
    self.attn_mask = cfg.attn_mask

  def _embed(self, x, deterministic, rngs):
    pos = sinusoidal_positions(x.shape[1], x.shape[2]).astype(x.dtype)
    return self.embed_dropout(math.sqrt(x.shape[2]) * x + pos, deterministic=deterministic, rngs=rngs)

  def __call__(self, x: jax.Array, kv: jax.Array, *, deterministic: bool, rngs: nnx.Rngs | None) -> jax.Array:
    """x [B, Lq, W], kv [B, Lk, W] -> [B, Lq, W]."""
    lq, lk = x.shape[1], kv.shape[1]
    mask = None
    if self.attn_mask:
      i, j = jnp.arange(lq)[:, None], jnp.arange(lk)[None]
      mask = (j - i <= abs(lk - lq))[None, None]  # [1, 1, Lq, Lk], broadcast over batch and heads
    x, kv = self._embed(x, deterministic, rngs), self._embed(kv, deterministic, rngs)
    for layer in self.layers:
      x = layer(x, kv, mask, deterministic=deterministic, rngs=rngs)
    return self.final_ln(x)


class VocaLiST(nnx.Module):
  """(video clip [B, 5, 48, 96, 3], log-mel window [B, 80, 16]) -> in-sync logit [B]."""

  objective = "bce"  # loss.pair_bce_loss

  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    dtype = jnp.dtype(cfg.dtype)
    common = dict(impl=cfg.conv3d_impl, bn_momentum=cfg.bn_momentum, dtype=dtype, rngs=rngs)
    self.video_cnn = CNN(visual_cnn_table(cfg.video_widths), ndim=3, **common)
    self.audio_cnn = CNN(audio_cnn_table(cfg.audio_widths), ndim=2, **common)
    self.av = CrossModalEncoder(cfg, dtype=dtype, rngs=rngs)
    self.va = CrossModalEncoder(cfg, dtype=dtype, rngs=rngs)
    self.mem = CrossModalEncoder(cfg, dtype=dtype, rngs=rngs)
    self.fc = nnx.Linear(cfg.width, cfg.width, dtype=dtype, rngs=rngs)
    self.classifier = nnx.Linear(cfg.width, 1, dtype=dtype, rngs=rngs)

  @staticmethod
  def scoring(cfg: ml_collections.ConfigDict) -> str:
    """Cross-modal: a forward pass per (video window, audio window) pair."""
    del cfg
    return "pairwise"

  def embed_video(self, video: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """Front-end tokens: [B, 5, 48, 96, 3] uint8 or [0, 1] float -> [B, 5, width]."""
    del rngs  # no dropout in the CNN
    if video.dtype == jnp.uint8:
      video = video.astype(jnp.float32) / 255.0
    x = self.video_cnn(video, train=train)
    return x.reshape(x.shape[0], x.shape[1], -1)

  def embed_audio(self, mel: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
    """Front-end tokens: [B, 80, 16] log-mel -> [B, 16, width]."""
    del rngs
    x = self.audio_cnn(mel[..., None], train=train)
    return x.reshape(x.shape[0], x.shape[2], -1)

  def classify(self, video_tokens: jax.Array, audio_tokens: jax.Array, *, train: bool = False,
               rngs: nnx.Rngs | None = None) -> jax.Array:
    """Tokens [B, 5, W] and [B, 16, W] of pairs -> float32 logits [B]."""
    det = not train
    av = self.av(audio_tokens, video_tokens, deterministic=det, rngs=rngs)
    va = self.va(video_tokens, audio_tokens, deterministic=det, rngs=rngs)
    out = self.mem(av, va, deterministic=det, rngs=rngs).max(axis=1)
    return self.classifier(jnp.tanh(self.fc(out)))[:, 0].astype(jnp.float32)

  def score_pairs(self, video: jax.Array, mel: jax.Array, *, train: bool = False,
                  rngs: nnx.Rngs | None = None) -> jax.Array:
    """video [B, 5, 48, 96, 3], mel [B, 80, 16] (pair b = video b with audio b) -> logits [B]."""
    return self.classify(self.embed_video(video, train=train), self.embed_audio(mel, train=train), train=train,
                         rngs=rngs)

  def __call__(self, video: jax.Array, audio: jax.Array, *, train: bool = False,
               rngs: nnx.Rngs | None = None) -> jax.Array:
    """video [B, 5, 48, 96, 3], audio [B, K, 80, 16] -> logits [B, K]; each clip's video CNN runs once."""
    b, k = audio.shape[:2]
    v = self.embed_video(video, train=train)
    a = self.embed_audio(audio.reshape(b * k, *audio.shape[2:]), train=train)
    v = jnp.repeat(v, k, axis=0)
    return self.classify(v, a, train=train, rngs=rngs).reshape(b, k)
