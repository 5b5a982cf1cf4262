"""JAX vs the exported PyTorch module on CPU: forward and forward+backward time for the same model and batch.

For the default config (59M parameters; the visual CNN alone is about 34 GFLOP per clip forward) and
configs/tiny.py, times the JAX model with each formulation of the 3-D convolution (model.conv3d_impl =
taps2d, the default, and xla) and the PyTorch module loaded with the same weights through export's
conversion. forward = both encoders in inference mode (running BatchNorm statistics, no dropout);
fwd+bwd = the training-mode forward of B clips and B audio windows, a sync-score loss and the gradient of
every parameter. Times are the best of --repeats after one warm-up call (JAX's compile is not timed), the
contenders taking turns so that load from other processes falls on all of them. The table ends with the
ratios JAX / PyTorch (target <= 1.0). --layers adds the visual CNN block by block, which shows where the
time goes.

PyTorch runs with torch.set_num_threads(2), the core count of this project's machines ("torch"), and with
one thread ("torch 1t"): on a machine shared with other work, every parallel PyTorch op waits at an OpenMP
barrier for a descheduled thread (about 10 ms each on a 2-core machine at load 8), which one thread avoids.
XLA's CPU client uses every core of the machine by itself.

  python bench/torch_vs_jax.py [--batch 2] [--tiny-batch 16] [--repeats 3] [--configs default,tiny] [--layers]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import torch
from flax import nnx

from modeformer_jax import config_defaults as cd
from modeformer_jax.config_loading import load_config
from modeformer_jax.export import torch_model
from modeformer_jax.models import build_model
from modeformer_jax.models.functional import Model
from modeformer_jax.models.layers import ConvBlock
from modeformer_jax.models.modeformer import visual_cnn_table
from modeformer_jax.train.train_step import init_model
from modeformer_jax.weights import state_dict

TORCH_THREADS = 2
PAUSE_S = 0.3
IMPLS = ("taps2d", "xla")


def _best_times(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
  """Best of `repeats` seconds per function after one warm-up call each (compile, oneDNN primitive cache).

  The functions take turns, so a load change on a shared machine hits every contender alike, with a pause
  before each: XLA's worker threads keep spinning for a while after a call returns, and a PyTorch call
  started in that window waits on its OpenMP barriers (tens of ms per op on 2 cores).
  """
  best = {k: float("inf") for k in fns}
  for r in range(repeats + 1):
    for k, fn in fns.items():
      time.sleep(PAUSE_S)
      start = time.perf_counter()
      fn()
      if r:
        best[k] = min(best[k], time.perf_counter() - start)
  return best


def _inputs(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """video uint8 [B, 5, 48, 96, 3], log-mel float32 [B, 80, 16]."""
  rng = np.random.default_rng(seed)
  return (rng.integers(0, 256, (batch, 5, 48, 96, 3), dtype=np.uint8),
          rng.uniform(-4, 4, (batch, 80, 16)).astype(np.float32))


def jax_passes(model_cfg: ml_collections.ConfigDict, weights: tuple[dict, dict], batch: int) -> dict[str, Callable]:
  """{"forward", "fwd+bwd"} -> a call of the jitted JAX model on a fixed batch (blocks until done)."""
  graphdef = nnx.split(nnx.eval_shape(lambda: build_model(model_cfg)), nnx.Param, nnx.BatchStat)[0]
  model = Model(graphdef, *weights)
  video, audio = map(jnp.asarray, _inputs(batch))
  key = jax.random.key(0)

  @jax.jit
  def forward(params, batch_stats, video, audio):
    m = model.merge(params, batch_stats)
    return m.embed_video(video), m.embed_audio(audio)

  @jax.jit
  def grads(params, batch_stats, video, audio, key):
    def loss(params):
      m = model.merge(params, batch_stats)
      v, a = m(video, audio[:, None], train=True, rngs=nnx.Rngs(dropout=key))
      return -jnp.mean(m.sync_score(v, a[:, 0]))
    return jax.grad(loss)(params)

  return {"forward": lambda: jax.block_until_ready(forward(*weights, video, audio)),
          "fwd+bwd": lambda: jax.block_until_ready(grads(*weights, video, audio, key))}


def torch_passes(model_cfg: ml_collections.ConfigDict, weights: tuple[dict, dict], batch: int,
                 threads: int) -> dict[str, Callable]:
  """The same for the exported PyTorch module loaded with the same weights, on `threads` intra-op threads."""
  model = torch_model.ModEFormer(model_cfg.to_dict())
  model.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.to_torch(*jax.device_get(weights)).items()})
  video, audio = map(torch.from_numpy, _inputs(batch))

  def forward():
    torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
      model.embed_video(video), model.embed_audio(audio)

  def fwd_bwd():
    torch.set_num_threads(threads)
    model.train()
    model.zero_grad(set_to_none=True)
    v, a = model(video, audio[:, None])
    (-model.sync_score(v, a[:, 0]).mean()).backward()

  return {"forward": forward, "fwd+bwd": fwd_bwd}


def model_times(model_cfg: ml_collections.ConfigDict, batch: int, repeats: int) -> dict[str, dict[str, float]]:
  """{pass: {"taps2d", "xla", "torch", "torch 1t": seconds}} for one config, all from the same weights."""
  config = cd.base_config()
  config.model = model_cfg
  model = init_model(config)
  weights = (model.params, model.batch_stats)
  contenders = {impl: jax_passes(ml_collections.ConfigDict({**model_cfg.to_dict(), "conv3d_impl": impl}),
                                 weights, batch) for impl in IMPLS}
  for threads, name in ((TORCH_THREADS, "torch"), (1, "torch 1t")):
    contenders[name] = torch_passes(model_cfg, weights, batch, threads)
  return {p: _best_times({k: fns[p] for k, fns in contenders.items()}, repeats) for p in ("forward", "fwd+bwd")}


def layer_times(widths: Sequence[int], batch: int, repeats: int) -> list[dict]:
  """Each distinct visual CNN block on its own: forward (eval) for JAX per conv3d formulation and PyTorch, and
  fwd+bwd (train mode; gradients of the parameters and, past the first block, of the input) for taps2d and
  PyTorch. XLA's conv3d is left out of fwd+bwd: its strided input gradients take tens of seconds per block."""
  rows, seen, shape = [], set(), (batch, 5, 48, 96, 3)
  for i, row in enumerate(visual_cnn_table(widths)):
    cin, cout, kernel, stride, padding, residual = row
    x = np.random.default_rng(i).standard_normal(shape, np.float32)
    blocks = {impl: ConvBlock(*row, ndim=3, impl=impl, bn_momentum=0.9, dtype=jnp.float32, rngs=nnx.Rngs(i))
              for impl in IMPLS}
    out_shape = jax.eval_shape(lambda x: blocks["xla"](x, train=False), x).shape
    if row not in seen:
      seen.add(row)
      fns = {}
      for impl, block in blocks.items():
        graphdef, params, rest = nnx.split(block, nnx.Param, ...)
        params, rest = nnx.to_pure_dict(params), nnx.to_pure_dict(rest)
        run = lambda p, x, train, graphdef=graphdef, rest=rest: nnx.merge(
            graphdef, nnx.State(p), nnx.State(rest))(x, train=train)
        forward = jax.jit(lambda p, x, run=run: run(p, x, False))
        fns[f"{impl} fwd"] = lambda f=forward, p=params: jax.block_until_ready(f(p, x))
        if impl == "taps2d":
          grad = jax.jit(jax.grad(lambda p, x, run=run: run(p, x, True).sum(), argnums=(0, 1) if i else 0))
          fns["taps2d fwd+bwd"] = lambda p=params: jax.block_until_ready(grad(p, x))
      ref = torch_model.ConvBlock(*row, ndim=3, bn_momentum=0.9)
      xt = torch.from_numpy(x).permute(0, 4, 1, 2, 3)  # our NDHWC data, as embed_video passes it
      xt_grad = xt.clone().requires_grad_(i > 0)

      def torch_forward():
        with torch.no_grad():
          ref.eval()(xt)

      fns["torch fwd"] = torch_forward
      fns["torch fwd+bwd"] = lambda: ref.train()(xt_grad).sum().backward()
      rows.append({"block": i, "conv": f"{cin}->{cout} k{kernel} s{stride}", "in": shape[1:4],
                   "gflop": 2 * np.prod(out_shape) * cin * kernel ** 3 / 1e9, **_best_times(fns, repeats)})
    shape = out_shape
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=2, help="clips (and audio windows) for the default config")
  parser.add_argument("--tiny-batch", type=int, default=16, help="clips for configs/tiny.py")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--configs", default="default,tiny", help="comma-separated subset of default,tiny")
  parser.add_argument("--layers", action="store_true", help="also time each config's visual CNN block by block")
  args = parser.parse_args()
  torch.set_num_threads(TORCH_THREADS)
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, oneDNN {torch.backends.mkldnn.is_available()}")

  tiny = load_config(os.path.join(os.path.dirname(__file__), "..", "configs", "tiny.py")).model
  configs = {"default": (cd.model_config(), args.batch), "tiny": (tiny, args.tiny_batch)}
  results = []
  for name in args.configs.split(","):
    model_cfg, batch = configs[name]
    timing = model_times(model_cfg, batch, args.repeats)
    for kind, t in timing.items():
      results.append((name, batch, kind, *(t[k] for k in (*IMPLS, "torch", "torch 1t"))))
      print(f"  measured {name} {kind}: " + ", ".join(f"{k} {v:.3f}s" for k, v in t.items()), flush=True)

  if args.layers:
    columns = ("taps2d fwd", "xla fwd", "torch fwd", "taps2d fwd+bwd", "torch fwd+bwd")
    for name in args.configs.split(","):
      model_cfg, batch = configs[name]
      print(f"\nvisual CNN blocks, {name} config, batch {batch}: ms (forward: GFLOP/s of the conv)")
      print(f"{'block':>5}  {'conv':<24} {'in T,H,W':<12} {'GFLOP':>6}  " + "  ".join(f"{c:>16}" for c in columns))
      for r in layer_times(model_cfg.video_widths, batch, args.repeats):
        cells = "  ".join(f"{1e3 * r[c]:8.1f} ({r['gflop'] / r[c]:5.0f})" if c.endswith("fwd")
                          else f"{1e3 * r[c]:16.1f}" for c in columns)
        print(f"{r['block']:>5}  {r['conv']:<24} {str(r['in']):<12} {r['gflop']:6.2f}  {cells}", flush=True)

  print(f"\n{'config':<8} {'batch':>5} {'pass':<8} {'jax taps2d':>11} {'jax xla':>9} {'torch':>9} {'torch 1t':>9} "
        f"{'taps2d/torch':>13} {'xla/torch':>10} {'taps2d/torch 1t':>16}")
  for name, batch, kind, taps, xla, ref, ref1 in results:
    print(f"{name:<8} {batch:>5} {kind:<8} {taps:>10.3f}s {xla:>8.3f}s {ref:>8.3f}s {ref1:>8.3f}s "
          f"{taps / ref:>13.2f} {xla / ref:>10.2f} {taps / ref1:>16.2f}")
  print(f"ratios jax/torch ({TORCH_THREADS} threads) with the default conv3d_impl (taps2d), target <= 1.0: "
        + ", ".join(f"{name} {kind} {taps / ref:.2f}" for name, _, kind, taps, _, ref, _ in results))
  faster = {f"{name} {kind}": "taps2d" if taps <= xla else "xla" for name, _, kind, taps, xla, _, _ in results}
  print("faster JAX formulation on this CPU: " + ", ".join(f"{k} {v}" for k, v in faster.items()))


if __name__ == "__main__":
  main()
