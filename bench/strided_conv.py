"""Gradient of the strided convolutions, per layer, in one run: XLA's own, the dense one, and `conv2d`'s choice.

On CPU, XLA computes a strided convolution's input gradient as a convolution of a dilated input;
`models.layers.dense_grad_conv2d` takes it through the stride-1 convolution subsampled instead (same values),
and `conv2d` uses that where this script measured it to pay off. It times the forward pass plus both gradients
of every strided layer of the visual CNN (as the train step runs it: temporal taps folded into channels,
conv3d_impl=taps2d) and of the audio CNN, for a model config, all three ways.

  python bench/strided_conv.py                                   # configs/tiny.py, batch 32
  python bench/strided_conv.py --config modeformer_lrs2 --batch 4
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from modeformer_jax.config_loading import load_config
from modeformer_jax.models.layers import conv2d, dense_grad_conv2d, xla_conv2d
from modeformer_jax.models.modeformer import audio_cnn_table, visual_cnn_table


def strided_layers(model_cfg, batch: int) -> list[tuple[str, tuple, tuple, tuple, tuple]]:
  """(name, input shape NHWC, kernel shape HWIO, stride, padding) of each strided layer, as conv2d sees it."""
  layers = []
  t, h, w = 5, 48, 96
  for i, (cin, cout, k, stride, pad, _) in enumerate(visual_cnn_table(model_cfg.video_widths)):
    k3, s3, p3 = ((v,) * 3 if isinstance(v, int) else tuple(v) for v in (k, stride, pad))
    if s3[1:] != (1, 1):
      # taps2d: temporal taps stacked on the channels, frames folded into the batch.
      layers.append((f"video {i + 1}", (batch * t, h, w, k3[0] * cin), (*k3[1:], k3[0] * cin, cout), s3[1:],
                     p3[1:]))
    h, w = (h + 2 * p3[1] - k3[1]) // s3[1] + 1, (w + 2 * p3[2] - k3[2]) // s3[2] + 1
  f, t = 80, 16
  for i, (cin, cout, k, stride, pad, _) in enumerate(audio_cnn_table(model_cfg.audio_widths)):
    s2, p2 = ((v,) * 2 if isinstance(v, int) else tuple(v) for v in (stride, pad))
    if s2 != (1, 1):
      layers.append((f"audio {i + 1}", (2 * batch, f, t, cin), (k, k, cin, cout), s2, p2))
    f, t = (f + 2 * p2[0] - k) // s2[0] + 1, (t + 2 * p2[1] - k) // s2[1] + 1
  return layers


def seconds(fn, *args, repeats: int) -> float:
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(repeats):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / repeats


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="tiny", help="model config file (default tiny)")
  parser.add_argument("--batch", type=int, default=32, help="clips per step; audio layers see 2 windows per clip "
                      "(N = 1) (default 32)")
  parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (default 5)")
  args = parser.parse_args(argv)
  model_cfg = load_config(args.config).model
  rng = np.random.default_rng(0)
  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}); forward + input and weight gradients")
  print(f"{'layer':<9} {'input NHWC':<20} {'kernel':<17} {'stride':<7} {'XLA ms':>8} {'dense ms':>9} "
        f"{'conv2d ms':>10} {'XLA/conv2d':>11}")
  totals = np.zeros(3)
  for name, x_shape, k_shape, stride, pad in strided_layers(model_cfg, args.batch):
    x = jnp.asarray(rng.standard_normal(x_shape, np.float32))
    k = jnp.asarray(rng.standard_normal(k_shape, np.float32))
    times = []
    for conv in (xla_conv2d, dense_grad_conv2d, conv2d):
      loss = lambda x, k, conv=conv: jnp.sum(conv(x, k, stride, pad) ** 2)
      times.append(seconds(jax.jit(jax.grad(loss, (0, 1))), x, k, repeats=args.repeats))
    totals += times
    print(f"{name:<9} {str(x_shape):<20} {str(k_shape):<17} {str(stride):<7} {1e3 * times[0]:>8.1f} "
          f"{1e3 * times[1]:>9.1f} {1e3 * times[2]:>10.1f} {times[0] / times[2]:>11.2f}")
  print(f"{'all':<9} {'':<20} {'':<17} {'':<7} {1e3 * totals[0]:>8.1f} {1e3 * totals[1]:>9.1f} "
        f"{1e3 * totals[2]:>10.1f} {totals[0] / totals[2]:>11.2f}")
  print(f"ratios over all strided layers: XLA / dense {totals[0] / totals[1]:.2f}, XLA / conv2d "
        f"{totals[0] / totals[2]:.2f}")


if __name__ == "__main__":
  main()
