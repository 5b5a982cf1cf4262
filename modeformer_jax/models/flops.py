"""Analytic model FLOPs (multiply-add = 2 FLOPs), the numerator of model FLOP utilisation (MFU).

XLA's cost analysis of a compiled step does not count convolutions that GPU backends hand to cuDNN, so MFU
uses this count: SPEC section 2 gives 33.8 GFLOP (visual CNN) and 0.42 GFLOP (audio CNN) per window.
"""

from __future__ import annotations

import math

import ml_collections

from modeformer_jax.models.modeformer import audio_cnn_table, visual_cnn_table


def _tuple(v, n):
  return (v,) * n if isinstance(v, int) else tuple(v)


def cnn_flops(table: list[tuple], input_size: tuple[int, ...]) -> tuple[float, tuple[int, ...]]:
  """Forward FLOPs of one example through a conv table, and the output's spatial size."""
  size, total = tuple(input_size), 0.0
  for cin, cout, kernel, stride, padding, _ in table:
    n = len(size)
    k, s, p = _tuple(kernel, n), _tuple(stride, n), _tuple(padding, n)
    size = tuple((d + 2 * pi - ki) // si + 1 for d, ki, si, pi in zip(size, k, s, p))
    total += 2.0 * math.prod(size) * math.prod(k) * cin * cout
  return total, size


def transformer_flops(cfg: ml_collections.ConfigDict, length: int) -> float:
  """Forward FLOPs of one sequence of `length` tokens (the learnable token included)."""
  if cfg.temporal != "transformer":
    return 0.0
  d, layer = cfg.width, 0.0
  layer += 2.0 * length * 4 * d * d          # q, k, v and output projections
  layer += 2.0 * 2 * length * length * d     # scores and weighted sum
  layer += 2.0 * 2 * length * d * cfg.mlp_dim
  return cfg.depth * layer


def clip_flops(cfg: ml_collections.ConfigDict, num_negatives: int) -> dict[str, float]:
  """Forward FLOPs per training clip (one video window, 1 + N audio windows) and per train step and clip."""
  video, vsize = cnn_flops(visual_cnn_table(cfg.video_widths), (5, 48, 96))
  audio, asize = cnn_flops(audio_cnn_table(cfg.audio_widths), (80, 16))
  video_tf = transformer_flops(cfg, vsize[0] + 1)
  audio_tf = transformer_flops(cfg, asize[1] + 1)
  forward = video + video_tf + (1 + num_negatives) * (audio + audio_tf)
  return {"video_cnn": video, "audio_cnn": audio, "video_transformer": video_tf, "audio_transformer": audio_tf,
          "forward_per_clip": forward, "train_per_clip": 3.0 * forward}  # backward ~ 2x forward
