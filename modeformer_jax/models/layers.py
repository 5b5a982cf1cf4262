"""Building blocks shared by the sync models: conv blocks, transformer encoder, sinusoidal positions, the
learnable InfoNCE temperature.

Kernels are stored channels-last, (*kernel, in, out), so a checkpoint is the same whichever convolution
formulation computes it (see `Conv`).
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

Shape = tuple[int, ...]


def _tuple(v: int | Sequence[int], n: int) -> Shape:
  return (v,) * n if isinstance(v, int) else tuple(v)


class Conv(nnx.Module):
  """N-d convolution (N = 2 or 3), channels-last, explicit symmetric padding.

  impl='taps2d' computes a 3-D convolution whose temporal stride is 1 as one 2-D convolution over frames
  folded into the batch, with the kernel's temporal taps stacked on the input channels. XLA's CPU conv3d
  runs at about half the speed of its conv2d (SPEC section 8), and on GPU both lower to cuDNN; 'xla' keeps
  the plain conv3d for comparison and for temporal strides other than 1.
  """

  def __init__(self, in_features: int, out_features: int, kernel: int | Sequence[int],
               stride: int | Sequence[int], padding: int | Sequence[int], *, ndim: int,
               impl: str = "xla", dtype=jnp.float32, rngs: nnx.Rngs):
    self.kernel_size = _tuple(kernel, ndim)
    self.stride = _tuple(stride, ndim)
    self.padding = _tuple(padding, ndim)
    self.impl = impl
    self.dtype = dtype
    # He-normal for ReLU nets, as PyTorch's kaiming init for conv layers followed by ReLU.
    init = jax.nn.initializers.variance_scaling(2.0, "fan_in", "truncated_normal")
    self.kernel = nnx.Param(init(rngs.params(), (*self.kernel_size, in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))

  def __call__(self, x: jax.Array) -> jax.Array:
    """x: [B, *spatial, C_in] -> [B, *spatial_out, C_out]."""
    x = x.astype(self.dtype)
    k = self.kernel[...].astype(self.dtype)
    if len(self.kernel_size) == 3 and self.impl == "taps2d" and self.stride[0] == 1:
      y = _conv3d_as_taps2d(x, k, self.stride[1:], self.padding)
    elif len(self.kernel_size) == 2:
      y = conv2d(x, k, self.stride, self.padding)
    else:
      y = jax.lax.conv_general_dilated(x, k, self.stride, [(p, p) for p in self.padding],
                                       dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    return y + self.bias[...].astype(self.dtype)


def xla_conv2d(x: jax.Array, k: jax.Array, stride: Shape, padding: Shape) -> jax.Array:
  """XLA's 2-D convolution with XLA's own gradient; shapes as `conv2d`."""
  return jax.lax.conv_general_dilated(x, k, stride, [(p, p) for p in padding],
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


# Strided layers whose input gradient goes through the dense convolution on CPU: those that subsample by this
# factor in all. It does factor times the forward work, which larger factors do not repay (bench/strided_conv.py).
_DENSE_GRAD_STRIDE = 2


def conv2d(x: jax.Array, k: jax.Array, stride: Shape, padding: Shape) -> jax.Array:
  """2-D convolution x [N,H,W,C], k [kh,kw,C,O] -> [N,H',W',O], explicit symmetric padding.

  XLA's CPU backend takes a strided convolution's input gradient as a convolution of a dilated input, which
  is slow: the visual CNN's second layer (stride 1 x 2) runs its forward pass and both gradients 4.9x faster
  when that gradient goes through the stride-1 convolution, subsampled (`dense_grad_conv2d`, same values).
  Layers that subsample by 2 in all take that route on CPU; other platforms keep XLA's gradient
  (bench/strided_conv.py, BENCHMARKS.md).
  """
  stride, padding = tuple(stride), tuple(padding)
  if math.prod(stride) != _DENSE_GRAD_STRIDE:
    return xla_conv2d(x, k, stride, padding)
  return dense_grad_conv2d(x, k, stride, padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def dense_grad_conv2d(x: jax.Array, k: jax.Array, stride: Shape, padding: Shape) -> jax.Array:
  """`xla_conv2d` whose input gradient, on CPU, is that of the stride-1 convolution subsampled."""
  return xla_conv2d(x, k, stride, padding)


def _dense_grad_fwd(x, k, stride, padding):
  return xla_conv2d(x, k, stride, padding), (x, k)


def _dense_grad_bwd(stride, padding, residuals, g):
  x, k = residuals
  dk = jax.vjp(lambda k: xla_conv2d(x, k, stride, padding), k)[1](g)[0]

  def subsampled(x):
    y = xla_conv2d(x, k, (1,) * len(stride), padding)
    return y[:, ::stride[0], ::stride[1]][:, :g.shape[1], :g.shape[2]]

  dx = jax.lax.platform_dependent(
      cpu=lambda: jax.vjp(subsampled, x)[1](g)[0],
      default=lambda: jax.vjp(lambda x: xla_conv2d(x, k, stride, padding), x)[1](g)[0])
  return dx, dk


dense_grad_conv2d.defvjp(_dense_grad_fwd, _dense_grad_bwd)


def _conv3d_as_taps2d(x: jax.Array, k: jax.Array, stride_hw: Shape, padding: Shape) -> jax.Array:
  """conv3d with temporal stride 1: x [B,T,H,W,C], k [kt,kh,kw,C,O] -> [B,T',H',W',O]."""
  kt, kh, kw, c, o = k.shape
  pt, ph, pw = padding
  b, t = x.shape[:2]
  x = jnp.pad(x, ((0, 0), (pt, pt), (0, 0), (0, 0), (0, 0)))
  t_out = t + 2 * pt - kt + 1
  taps = jnp.concatenate([x[:, i:i + t_out] for i in range(kt)], axis=-1)  # [B,T',H,W,kt*C]
  taps = taps.reshape(b * t_out, *taps.shape[2:])
  k2 = jnp.transpose(k, (1, 2, 0, 3, 4)).reshape(kh, kw, kt * c, o)
  y = conv2d(taps, k2, stride_hw, (ph, pw))
  return y.reshape(b, t_out, *y.shape[1:])


class ConvBlock(nnx.Module):
  """conv (with bias) -> BatchNorm -> (+ input if residual) -> ReLU, as every block of SPEC section 2."""

  def __init__(self, in_features: int, out_features: int, kernel, stride, padding, residual: bool, *,
               ndim: int, impl: str, bn_momentum: float, dtype, rngs: nnx.Rngs):
    if residual and in_features != out_features:
      raise ValueError(f"residual block needs in == out channels, got {in_features} -> {out_features}")
    self.conv = Conv(in_features, out_features, kernel, stride, padding, ndim=ndim, impl=impl,
                     dtype=dtype, rngs=rngs)
    self.bn = nnx.BatchNorm(out_features, momentum=bn_momentum, epsilon=1e-5, dtype=dtype, rngs=rngs)
    self.residual = residual

  def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None) -> jax.Array:
    """mask: bool, broadcastable to the output; BatchNorm's batch statistics count only where it is True."""
    y = self.bn(self.conv(x), use_running_average=not train, mask=mask)
    if self.residual:
      y = y + x
    return jax.nn.relu(y)


def biases_before_batchnorm(params: dict) -> dict:
  """bool tree over a model's parameters: True for the conv bias of each ConvBlock. BatchNorm subtracts the batch
  mean right after it, so its gradient is zero in exact arithmetic; an optimiser that normalises updates (Adam)
  would turn that gradient's float noise into learning-rate-sized steps, different on every device layout."""
  def mark(node, in_block=False):
    if not isinstance(node, dict):
      return False
    block = "conv" in node and "bn" in node
    return {k: (k == "bias" and in_block) if not isinstance(v, dict) else mark(v, block and k == "conv")
            for k, v in node.items()}
  return mark(params)


def sinusoidal_positions(length: int, dim: int) -> np.ndarray:
  """[length, dim] fixed sin/cos table of "Attention is all you need" (sin on even, cos on odd channels)."""
  pos = np.arange(length)[:, None]
  freq = np.exp(-math.log(10000.0) * np.arange(0, dim, 2) / dim)[None, :]
  table = np.zeros((length, dim), np.float32)
  table[:, 0::2] = np.sin(pos * freq)
  table[:, 1::2] = np.cos(pos * freq)
  return table


_ACTIVATIONS = {"relu": jax.nn.relu, "gelu": jax.nn.gelu}


class EncoderLayer(nnx.Module):
  """Transformer encoder layer; norm_first picks pre-LN (default) or post-LN (PyTorch's default)."""

  def __init__(self, width: int, num_heads: int, mlp_dim: int, dropout: float, norm_first: bool,
               activation: str, *, dtype, rngs: nnx.Rngs):
    self.attn = nnx.MultiHeadAttention(num_heads, width, width, width, dropout_rate=dropout,
                                       broadcast_dropout=False, dtype=dtype, decode=False, keep_rngs=False,
                                       rngs=rngs)
    self.ln1 = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
    self.ln2 = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
    self.mlp_in = nnx.Linear(width, mlp_dim, dtype=dtype, rngs=rngs)
    self.mlp_out = nnx.Linear(mlp_dim, width, dtype=dtype, rngs=rngs)
    self.dropout = nnx.Dropout(dropout)
    self.activation = _ACTIVATIONS[activation]
    self.norm_first = norm_first

  def _attend(self, x, mask, deterministic, rngs):
    y = self.attn(x, mask=mask, deterministic=deterministic, rngs=rngs)
    return self.dropout(y, deterministic=deterministic, rngs=rngs)

  def _mlp(self, x, deterministic, rngs):
    y = self.dropout(self.activation(self.mlp_in(x)), deterministic=deterministic, rngs=rngs)
    return self.dropout(self.mlp_out(y), deterministic=deterministic, rngs=rngs)

  def __call__(self, x: jax.Array, *, deterministic: bool, rngs: nnx.Rngs | None,
               mask: jax.Array | None = None) -> jax.Array:
    """x: [B, L, width] -> [B, L, width]; mask: bool [B, 1, L, L] (or broadcastable), query i sees key j where True."""
    if self.norm_first:
      x = x + self._attend(self.ln1(x), mask, deterministic, rngs)
      return x + self._mlp(self.ln2(x), deterministic, rngs)
    x = self.ln1(x + self._attend(x, mask, deterministic, rngs))
    return self.ln2(x + self._mlp(x, deterministic, rngs))


def l2_normalize(x: jax.Array) -> jax.Array:
  """[..., D] -> float32 unit vectors along the last axis (zero vectors stay zero)."""
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


class TemperatureMixin:
  """temperature() / logit_scale() for a module with a `log_temperature` Param and a `temperature_range`."""

  def temperature(self) -> jax.Array:
    lo, hi = self.temperature_range
    return jnp.clip(jnp.exp(self.log_temperature[...]), lo, hi)

  def logit_scale(self) -> jax.Array:
    """1 / temperature: cosine scores times this are the InfoNCE logits."""
    return 1.0 / self.temperature()
