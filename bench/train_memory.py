"""Memory of the train step per clip, and the largest batch that fits, with and without model.remat.

  python bench/train_memory.py --config configs/modeformer_lrs2.py --config.model.dtype=bfloat16
  python bench/train_memory.py --config configs/tiny.py --batches 16,32 --compiled

Two measures, each at two per-device batches (bytes per clip = the slope between them):
- residuals: the activations JAX keeps from the forward pass for the backward pass (traced, nothing compiled or
  run, so the 59M model is measured on any machine in seconds). This is what rematerialisation changes.
- compiled (--compiled): XLA's memory analysis of the compiled step (arguments + temporaries + outputs -
  aliased), the backend's own plan. CPU's plan differs from a GPU's (other fusions, cuDNN workspaces; it even
  shows no saving from remat, see BENCHMARKS.md), so run it on the accelerator (bench/gpu_session.sh).
The largest batch per device that fits: (device memory x (1 - headroom) - fixed) / bytes per clip, with fixed =
the compiled intercept, or else 4 copies of the float32 parameters (weights, gradients, Adam's two moments).
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
# JAX's own list of what a function saves for its backward pass (jax.ad_checkpoint.print_saved_residuals prints it).
from jax._src.ad_checkpoint import saved_residuals

from modeformer_jax.config_loading import load_config
from modeformer_jax.data.augment import Augment
from modeformer_jax.train.mesh import global_batch, make_mesh
from modeformer_jax.train.step_timing import random_batch
from modeformer_jax.train.train_step import hyperparameters, init_model, init_state, make_step, optimizer

DEVICE_GB = {"H200": 141, "H100": 80, "A100-40G": 40, "TPU v5e": 16, "TPU v4": 32}


def residual_bytes(config, model, batch: int) -> int:
  """Bytes of the activations the forward pass of `batch` clips keeps for the backward pass."""
  data = random_batch(config, batch, config.stages[0].num_negatives)
  # The model's inputs: the train step's augmentation crops the loader's margin rows and transposes the audio.
  video, audio = Augment.from_config(config.data.augment)(data["video"], data["audio"], jax.random.key(0),
                                                          config.preprocess.mouth_row_start)

  def forward(params, video, audio):
    net = model.merge(params, model.batch_stats)
    v, a = net(video, audio, train=True, rngs=nnx.Rngs(dropout=jax.random.key(0)))
    return jnp.sum(v[:, None] * a)

  saved = saved_residuals(forward, model.params, video, audio)
  # Parameters are saved too but exist anyway; count only what depends on the batch.
  return sum(int(np.prod(a.shape)) * a.dtype.itemsize for a, why in saved
             if hasattr(a, "shape") and "from the argument params" not in str(why))


def compiled_bytes(config, model, batch: int) -> int:
  """XLA's compiled memory of the first stage's train step on one device at `batch` clips."""
  stage = config.stages[0]
  mesh = make_mesh(config.mesh, jax.devices()[:1])
  state = jax.eval_shape(lambda: init_state(model, optimizer(stage), mesh))
  state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
  step = make_step(config, stage, model, mesh, state)
  data = global_batch(random_batch(config, batch, stage.num_negatives), mesh)
  m = step.lower(state, data, hyperparameters(stage, mesh)).compile().memory_analysis()
  return m.argument_size_in_bytes + m.temp_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="config file[:arg]; --config.FIELD=VALUE overrides follow")
  parser.add_argument("--batches", default="4,8", help="two per-device batches to measure at (default 4,8)")
  parser.add_argument("--compiled", action="store_true", help="also compile the step for XLA's memory analysis")
  parser.add_argument("--headroom", type=float, default=0.1, help="fraction of device memory kept free (0.1)")
  parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
  args, overrides = parser.parse_known_args()
  small, large = (int(b) for b in args.batches.split(","))
  rows = []
  for remat in (False, True):
    config = load_config(args.config, [*overrides, f"--config.model.remat={remat}", "--config.mesh.data=1",
                                       "--config.mesh.fsdp=1"])
    model = init_model(config)
    param_bytes = sum(x.size * 4 for x in jax.tree.leaves(model.params))
    row = {"remat": remat, "residual_per_clip": (residual_bytes(config, model, large)
                                                 - residual_bytes(config, model, small)) / (large - small)}
    per_clip, fixed = row["residual_per_clip"], 4 * param_bytes
    if args.compiled:
      a, b = compiled_bytes(config, model, small), compiled_bytes(config, model, large)
      per_clip = row["compiled_per_clip"] = (b - a) / (large - small)
      fixed = row["compiled_fixed"] = a - per_clip * small
    row["fits"] = {name: int(((1 - args.headroom) * gb * 2 ** 30 - fixed) // per_clip) for name, gb in DEVICE_GB.items()}
    rows.append(row)

  device = jax.devices()[0]
  print(f"train step memory, {config.model.name} {config.model.dtype}, N = {config.stages[0].num_negatives}, "
        f"{param_bytes / 4e6:.2f}M parameters, on {device.device_kind} ({device.platform}); largest batch per "
        f"device from {'the compiled analysis' if args.compiled else 'the residuals + 4 x the parameters'}")
  compiled = lambda r, k: f"{r[k] / 2 ** 20:>11.1f}" if k in r else f"{'-':>11}"
  print(f"{'remat':>6} {'resid MB/clip':>14} {'XLA MB/clip':>11} {'XLA fixed':>11} "
        + " ".join(f"{k:>9}" for k in DEVICE_GB))
  for r in rows:
    print(f"{str(r['remat']):>6} {r['residual_per_clip'] / 2 ** 20:>14.2f} {compiled(r, 'compiled_per_clip')} "
          f"{compiled(r, 'compiled_fixed')} " + " ".join(f"{r['fits'][k]:>9}" for k in DEVICE_GB))
  print(f"ratio residual bytes per clip without / with remat: "
        f"{rows[0]['residual_per_clip'] / rows[1]['residual_per_clip']:.2f}")
  if args.json:
    print(json.dumps(rows))


if __name__ == "__main__":
  main()
