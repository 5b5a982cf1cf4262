"""ModEFormer in plain PyTorch, numerically equivalent to modeformer_jax.models.modeformer (float32).

This file depends on torch (and safetensors for `from_pretrained`) only: `modeformer export` copies it next to
the weights as modeformer_torch.py, so an exported model runs where JAX is not installed. That is also why
the layer tables and the sinusoidal table below repeat models/modeformer.py and models/layers.py instead of
importing them; tests/test_export.py checks that both give the same numbers for every config option.

Inputs keep the JAX model's layout (video [B, T, 48, 96, 3] channels-last, log-mel [B, 80, 16]) and are
permuted inside. Parameter names follow PyTorch conventions (conv weight [out, in, *k], linear [out, in],
BatchNorm running_mean / running_var, nn.TransformerEncoderLayer's self_attn.in_proj_weight / linear1 /
norm1 ...); weights/state_dict.py maps the JAX tree onto them.

Training this module is possible but not what it is for: PyTorch's BatchNorm updates running_var with the
unbiased batch variance where flax uses the biased one, so the two drift apart slightly when trained.
"""

from __future__ import annotations

import functools
import json
import math
import os
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# The JAX model's LayerNorm epsilon (flax's default) and BatchNorm epsilon.
LN_EPS = 1e-6
BN_EPS = 1e-5

# jax.nn.gelu defaults to the tanh approximation; PyTorch's default is the exact erf form.
_ACTIVATIONS = {"relu": F.relu, "gelu": functools.partial(F.gelu, approximate="tanh")}


def visual_cnn_table(w: Sequence[int]) -> list[tuple]:
  """(in, out, kernel, stride (T,H,W), padding (T,H,W), residual) per block: SPEC section 2, visual CNN."""
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


def audio_cnn_table(w: Sequence[int]) -> list[tuple]:
  """(in, out, kernel, stride (F,T), padding (F,T), residual) per block: SPEC section 2, audio CNN."""
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


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
  """[length, dim] sin/cos table (sin on even, cos on odd channels), computed in float64 like the JAX one."""
  pos = torch.arange(length, dtype=torch.float64)[:, None]
  freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)[None, :]
  table = torch.zeros(length, dim, dtype=torch.float64)
  table[:, 0::2] = torch.sin(pos * freq)
  table[:, 1::2] = torch.cos(pos * freq)
  return table.float()


class ConvBlock(nn.Module):
  """conv (with bias) -> BatchNorm -> (+ input if residual) -> ReLU, on NC(D)HW tensors."""

  def __init__(self, in_features: int, out_features: int, kernel, stride, padding, residual: bool, *,
               ndim: int, bn_momentum: float):
    super().__init__()
    conv, norm = (nn.Conv3d, nn.BatchNorm3d) if ndim == 3 else (nn.Conv2d, nn.BatchNorm2d)
    self.conv = conv(in_features, out_features, kernel, stride, padding)
    # flax's momentum is the weight of the old statistic, PyTorch's the weight of the new one.
    self.bn = norm(out_features, eps=BN_EPS, momentum=1.0 - bn_momentum)
    self.residual = residual

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    y = self.bn(self.conv(x))
    return F.relu(y + x if self.residual else y)


class CNN(nn.Module):

  def __init__(self, table: list[tuple], *, ndim: int, bn_momentum: float):
    super().__init__()
    self.blocks = nn.ModuleList([ConvBlock(*row, ndim=ndim, bn_momentum=bn_momentum) for row in table])

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    for block in self.blocks:
      x = block(x)
    return x


class TemporalEncoder(nn.Module):
  """Learnable token + positions + transformer layers + final LayerNorm; returns the token output."""

  def __init__(self, cfg: dict[str, Any]):
    super().__init__()
    width = cfg["width"]
    self.token = nn.Parameter(torch.zeros(width))
    # nn.MultiheadAttention splits heads and scales by 1/sqrt(head_dim) as flax's MultiHeadAttention does;
    # dropout sits where the JAX layer has it (attention weights, attention output, FFN hidden and output).
    self.layers = nn.ModuleList([
        nn.TransformerEncoderLayer(width, cfg["num_heads"], cfg["mlp_dim"], cfg["dropout"],
                                   activation=_ACTIVATIONS[cfg["activation"]], layer_norm_eps=LN_EPS,
                                   batch_first=True, norm_first=cfg["norm_first"])
        for _ in range(cfg["depth"])])
    self.final_ln = nn.LayerNorm(width, eps=LN_EPS)
    self.dropout = nn.Dropout(cfg["dropout"])
    if cfg["pos_encoding"] == "learned":
      self.pos = nn.Parameter(torch.zeros(cfg["max_len"], width))
    else:
      self.register_buffer("pos", sinusoidal_positions(cfg["max_len"], width), persistent=False)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """x: [B, L, width] -> [B, width]."""
    b, length, width = x.shape
    x = torch.cat([self.token.expand(b, 1, width), x], dim=1) + self.pos[:length + 1]
    x = self.dropout(x)
    for layer in self.layers:
      x = layer(x)
    return self.final_ln(x)[:, 0]


class Encoder(nn.Module):
  """One modality: CNN -> time sequence -> transformer token (or temporal mean) -> projection -> L2 norm."""

  def __init__(self, cnn: CNN, cfg: dict[str, Any]):
    super().__init__()
    self.cnn = cnn
    self.temporal = TemporalEncoder(cfg) if cfg["temporal"] == "transformer" else None
    self.projection = nn.Linear(cfg["width"], cfg["projection_dim"]) if cfg["projection_dim"] else None

  def forward(self, seq: torch.Tensor) -> torch.Tensor:
    """seq: [B, L, width] -> [B, D] unit norm."""
    x = self.temporal(seq) if self.temporal is not None else seq.mean(dim=1)
    if self.projection is not None:
      x = self.projection(x)
    # The JAX model's normalisation exactly (F.normalize clamps the norm, not its square).
    return x * torch.rsqrt(torch.clamp((x * x).sum(dim=-1, keepdim=True), min=1e-12))


class ModEFormer(nn.Module):
  """Video clip [B, T, 48, 96, 3] and log-mel window [B, 80, 16] to unit embeddings; cosine sync score.

  cfg: the `model` section of an export's config.json (the JAX run's config.model).
  """

  def __init__(self, cfg: dict[str, Any]):
    super().__init__()
    if cfg.get("name", "modeformer") != "modeformer":
      raise ValueError(f"model.name={cfg['name']!r}: this module implements 'modeformer' only")
    if cfg["activation"] not in _ACTIVATIONS:
      raise ValueError(f"model.activation={cfg['activation']!r}: expected one of {', '.join(_ACTIVATIONS)}")
    self.cfg = dict(cfg)
    common = dict(bn_momentum=cfg["bn_momentum"])
    self.video = Encoder(CNN(visual_cnn_table(cfg["video_widths"]), ndim=3, **common), cfg)
    self.audio = Encoder(CNN(audio_cnn_table(cfg["audio_widths"]), ndim=2, **common), cfg)
    self.log_temperature = nn.Parameter(torch.tensor(math.log(cfg["init_temperature"])))
    self.temperature_range = tuple(cfg["temperature_range"])
    self.center_inputs = bool(cfg.get("center_inputs", False))

  @classmethod
  def from_pretrained(cls, path: str | os.PathLike, map_location: str = "cpu") -> "ModEFormer":
    """An export folder (config.json + model.safetensors) -> the model in eval mode."""
    from safetensors.torch import load_file

    with open(os.path.join(path, "config.json")) as f:
      model = cls(json.load(f)["model"])
    model.load_state_dict(load_file(os.path.join(path, "model.safetensors"), device=map_location))
    return model.eval()

  def embed_video(self, video: torch.Tensor) -> torch.Tensor:
    """video: [B, T, 48, 96, 3] uint8 (0..255) or float in [0, 1] -> [B, D] unit-norm float32."""
    if video.dtype == torch.uint8:
      video = video.float() / 255.0
    if self.center_inputs:
      video = video - video.mean(dim=1, keepdim=True)
    x = self.video.cnn(video.permute(0, 4, 1, 2, 3))  # [B, width, T, 1, 1]
    x = x.permute(0, 2, 3, 4, 1)
    return self.video(x.reshape(x.shape[0], x.shape[1], -1))

  def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
    """mel: [B, 80, 16] log-mel window (frequency, time) -> [B, D] unit-norm float32."""
    if self.center_inputs:
      mel = mel - mel.mean(dim=-1, keepdim=True)
    x = self.audio.cnn(mel[:, None])  # [B, width, 1, 16]
    x = x.permute(0, 2, 3, 1)
    return self.audio(x.reshape(x.shape[0], x.shape[2], -1))

  def forward(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """video [B, T, 48, 96, 3], audio [B, K, 80, 16] (K candidate windows per clip) -> ([B, D], [B, K, D])."""
    b, k = audio.shape[:2]
    a = self.embed_audio(audio.reshape(b * k, *audio.shape[2:]))
    return self.embed_video(video), a.reshape(b, k, -1)

  def temperature(self) -> torch.Tensor:
    lo, hi = self.temperature_range
    return torch.clamp(torch.exp(self.log_temperature), lo, hi)

  def logit_scale(self) -> torch.Tensor:
    """1 / temperature: cosine scores times this are the InfoNCE logits."""
    return 1.0 / self.temperature()

  @staticmethod
  def sync_score(video_emb: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of unit embeddings [..., D] x [..., D] -> [...]."""
    return (video_emb * audio_emb).sum(dim=-1)
