"""AVST (Chen, Xie, Afouras, Nagrani, Vedaldi, Zisserman, "Audio-Visual Synchronisation in the Wild", BMVC 2021),
reconstructed. The paper's Table 1 row: 42.4M parameters, clips of variable length. What is known for certain:
one transformer over the audio and visual features of a clip of any length predicts synchronisation directly,
the modalities combined inside it (a joint pass per candidate offset, as VocaLiST), trained with little memory
for long inputs. No public code exists and the method's details were not recoverable (SPEC section 5), so every
choice below is a guess and a config field (config_defaults.avst_model_config says which):

  video [B, T, 48, 96, 3] -> a 3D stem conv over `video_stem_frames` frames, then the rest of ModEFormer's
      visual table as 2D convolutions of each frame (SPEC section 2; memory linear in T)  -> T visual tokens
  log-mel [B, 80, M] -> ModEFormer's audio CNN (time kept) -> M tokens, area-pooled to the video rate
      (token t averages the mel frames of video frame t, 3.2 of them)                     -> T audio tokens
  [CLS] + T visual + T audio tokens, each plus its modality's embedding and its frame's position (shared by
      the two modalities, so a video frame and the audio heard with it have the same position)
      -> `depth` transformer layers -> the [CLS] output -> Linear + tanh -> Linear -> one logit (in sync)

Clips of T frames come with M = ceil(3.2 T) mel frames (data.windows.WindowSpec.clip). Training draws T per
clip (config.data.clip_frames) and pads every clip to the longest with a mask (`video_mask`): each CNN block's
output is zeroed on padded frames, BatchNorm's batch statistics leave them out, and attention ignores their
tokens, so a padded clip scores as it would alone. Evaluation scores 5-frame windows like every model here
(SPEC section 5). As for VocaLiST, the front-ends do not see the other modality: evaluation computes each
window's tokens once (`embed_video`, `embed_audio`) and runs the transformer per pair (`classify`); `score_pairs`
is the whole model per pair (the naive mode), with the same logits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from modeformer_jax.models.layers import ConvBlock, EncoderLayer, sinusoidal_positions
from modeformer_jax.models.modeformer import CNN, audio_cnn_table, visual_cnn_table


def per_frame_table(table: list[tuple]) -> list[tuple]:
  """Rows of a (T, H, W) conv table -> the same convolutions over (H, W) of each frame."""
  hw = lambda v: v if isinstance(v, int) else tuple(v[1:])
  return [(cin, cout, k, hw(stride), hw(pad), res) for cin, cout, k, stride, pad, res in table]


def frame_pooling(num_frames: int, num_mel: int, mel_per_frame: float) -> np.ndarray:
  """[T, M] weights averaging mel-rate tokens into video-rate ones: row t covers mel frames
  [r t, r (t+1)), r = mel_per_frame, partly covered frames by the covered fraction; rows sum to 1."""
  edges = np.arange(num_frames + 1) * mel_per_frame
  m = np.arange(num_mel)[None]
  overlap = np.minimum(edges[1:, None], m + 1) - np.maximum(edges[:-1, None], m)
  return (np.clip(overlap, 0, None) / mel_per_frame).astype(np.float32)


class JointTransformer(nnx.Module):
  """[CLS] + visual + audio tokens, with modality embeddings and frame positions -> transformer -> [CLS] output."""

  def __init__(self, cfg: ml_collections.ConfigDict, *, dtype, rngs: nnx.Rngs):
    w = cfg.width
    init = lambda *shape: nnx.Param(jax.random.normal(rngs.params(), shape) * 0.02)
    self.cls = init(w)
    self.modality = init(2, w)
    self.pos = init(cfg.max_frames, w) if cfg.pos_encoding == "learned" else None
    self.dropout = nnx.Dropout(cfg.dropout)
    self.layers = nnx.List([
        EncoderLayer(w, cfg.num_heads, cfg.mlp_dim, cfg.dropout, cfg.norm_first, cfg.activation, dtype=dtype,
                     rngs=rngs) for _ in range(cfg.depth)])
    self.final_ln = nnx.LayerNorm(w, dtype=dtype, rngs=rngs)

  def __call__(self, video: jax.Array, audio: jax.Array, mask: jax.Array | None, *, train: bool,
               rngs: nnx.Rngs | None) -> jax.Array:
    """video, audio [B, T, W] tokens (mask: bool [B, T], False on padded frames) -> [B, W]."""
    b, t, w = video.shape
    pos = (self.pos[...][:t] if self.pos is not None else sinusoidal_positions(t, w)).astype(video.dtype)
    modality = self.modality[...].astype(video.dtype)
    cls = jnp.broadcast_to(self.cls[...].astype(video.dtype), (b, 1, w))
    x = jnp.concatenate([cls, video + modality[0] + pos, audio + modality[1] + pos], axis=1)
    x = self.dropout(x, deterministic=not train, rngs=rngs)
    keys = None
    if mask is not None:
      keys = jnp.concatenate([jnp.ones((b, 1), bool), mask, mask], axis=1)[:, None, None, :]  # [B, 1, 1, 1+2T]
    for layer in self.layers:
      x = layer(x, deterministic=not train, rngs=rngs, mask=keys)
    return self.final_ln(x)[:, 0]


class AVST(nnx.Module):
  """(video clip [B, T, 48, 96, 3], log-mel [B, 80, M]) -> in-sync logit [B], T any length."""

  objective = "multiway_logits"  # loss.offset_cross_entropy
  variable_length = True  # trains on clips of config.data.clip_frames frames

  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    dtype = jnp.dtype(cfg.dtype)
    common = dict(impl=cfg.conv3d_impl, bn_momentum=cfg.bn_momentum, dtype=dtype, rngs=rngs)
    stem, *rest = visual_cnn_table(cfg.video_widths)
    t = cfg.video_stem_frames
    self.video_stem = ConvBlock(stem[0], stem[1], (t, stem[2], stem[2]), 1, (t // 2, stem[4], stem[4]), False,
                                ndim=3, **common)
    self.video_cnn = CNN(per_frame_table(rest), ndim=2, remat=cfg.remat, **common)
    self.audio_cnn = CNN(audio_cnn_table(cfg.audio_widths), ndim=2, remat=cfg.remat, **common)
    self.joint = JointTransformer(cfg, dtype=dtype, rngs=rngs)
    self.fc = nnx.Linear(cfg.width, cfg.width, dtype=dtype, rngs=rngs)
    self.classifier = nnx.Linear(cfg.width, 1, dtype=dtype, rngs=rngs)
    self.mel_rate = (cfg.mel_frames_per_second, cfg.fps)
    self.center_inputs = cfg.center_inputs

  @staticmethod
  def scoring(cfg: ml_collections.ConfigDict) -> str:
    """Cross-modal: a forward pass per (video clip, audio) pair."""
    del cfg
    return "pairwise"

  def _mel_per_frame(self) -> float:
    return self.mel_rate[0] / self.mel_rate[1]

  def embed_video(self, video: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None,
                  mask: jax.Array | None = None) -> jax.Array:
    """Visual tokens: [B, T, 48, 96, 3] uint8 or [0, 1] float (mask: bool [B, T], False on padded frames)
    -> [B, T, width]."""
    del rngs  # no dropout in the CNN
    if video.dtype == jnp.uint8:
      video = video.astype(jnp.float32) / 255.0
    frames = None if mask is None else mask[:, :, None, None, None]
    if self.center_inputs:  # as ModEFormer's: what does not move over the clip cancels
      video = _centred(video, frames, axis=1)
    x = self.video_stem(video, train=train, mask=frames)
    if frames is not None:
      x = jnp.where(frames, x, 0)
    b, t = x.shape[:2]
    x = self.video_cnn(x.reshape(b * t, *x.shape[2:]), train=train,
                       mask=None if mask is None else frames.reshape(b * t, 1, 1, 1))
    return x.reshape(b, t, -1)

  def embed_audio(self, mel: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None,
                  mask: jax.Array | None = None) -> jax.Array:
    """Audio tokens at the video rate: log-mel [B, 80, M] (mask: bool [B, M], False on padded mel frames)
    -> [B, T, width], T = the frames M mel frames cover (M = ceil(3.2 T))."""
    del rngs
    steps = None if mask is None else mask[:, None, :, None]
    if self.center_inputs:
      mel = _centred(mel[..., None], steps, axis=2)[..., 0]
    x = self.audio_cnn(mel[..., None], train=train, mask=steps)  # [B, 1, M, width]
    x = x.reshape(x.shape[0], x.shape[2], -1)
    num_frames = x.shape[1] * self.mel_rate[1] // self.mel_rate[0]
    pooling = jnp.asarray(frame_pooling(num_frames, x.shape[1], self._mel_per_frame()), x.dtype)
    return jnp.einsum("tm,bmw->btw", pooling, x)

  def classify(self, video_tokens: jax.Array, audio_tokens: jax.Array, *, train: bool = False,
               rngs: nnx.Rngs | None = None, mask: jax.Array | None = None) -> jax.Array:
    """Tokens [B, T, W] of both modalities (mask: bool [B, T]) -> float32 logits [B]: one joint pass each."""
    out = self.joint(video_tokens, audio_tokens, mask, train=train, rngs=rngs)
    return self.classifier(jnp.tanh(self.fc(out)))[:, 0].astype(jnp.float32)

  def score_pairs(self, video: jax.Array, mel: jax.Array, *, train: bool = False,
                  rngs: nnx.Rngs | None = None) -> jax.Array:
    """video [B, T, 48, 96, 3], mel [B, 80, M] (pair b = video b with audio b) -> logits [B]."""
    return self.classify(self.embed_video(video, train=train), self.embed_audio(mel, train=train), train=train,
                         rngs=rngs)

  def __call__(self, video: jax.Array, audio: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None,
               video_mask: jax.Array | None = None) -> jax.Array:
    """video [B, T, 48, 96, 3], audio [B, K, 80, M] (K candidates per clip; video_mask bool [B, T], the clip's
    first T_b frames True, its audio the first ceil(3.2 T_b) mel frames) -> logits [B, K]. Each clip's visual
    tokens are computed once."""
    b, k = audio.shape[:2]
    mel_mask = None
    if video_mask is not None:  # mel frame m belongs to a clip of T frames iff it starts before 3.2 T
      mel_fps, fps = self.mel_rate
      mel_mask = jnp.arange(audio.shape[-1])[None] * fps < video_mask.sum(-1, keepdims=True) * mel_fps
      mel_mask = jnp.repeat(mel_mask, k, axis=0)
    v = self.embed_video(video, train=train, mask=video_mask)
    a = self.embed_audio(audio.reshape(b * k, *audio.shape[2:]), train=train, mask=mel_mask)
    frames = None if video_mask is None else jnp.repeat(video_mask, k, axis=0)
    logits = self.classify(jnp.repeat(v, k, axis=0), a, train=train, rngs=rngs, mask=frames)
    return logits.reshape(b, k)


def _centred(x: jax.Array, mask: jax.Array | None, axis: int) -> jax.Array:
  """x minus its mean over `axis` (over the steps where mask is True), zero where mask is False."""
  if mask is None:
    return x - x.mean(axis=axis, keepdims=True)
  count = jnp.maximum(mask.sum(axis=axis, keepdims=True), 1)
  mean = jnp.where(mask, x, 0).sum(axis=axis, keepdims=True) / count
  return jnp.where(mask, x - mean, 0)
