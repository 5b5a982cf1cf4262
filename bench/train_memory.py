"""Memory of the train step per clip, and the largest batch that fits: XLA's compiled memory analysis of the real
train step (nothing runs, so the 59M model is measured on any machine), with and without model.remat.

  python bench/train_memory.py --config configs/modeformer_lrs2.py --config.model.dtype=bfloat16
  python bench/train_memory.py --config configs/tiny.py --batches 8,16

For each setting the step is compiled for one device at two per-device batches; bytes per clip is the slope of
(arguments + temporaries + outputs - aliased) between them, the fixed part (weights, optimiser state, gradients)
the intercept. The largest batch per device that fits in a device's memory follows from the two, keeping
--headroom free. The analysis is the backend's own plan: CPU's differs from GPU's (other fusions, cuDNN
workspaces), so run it on the accelerator (bench/gpu_session.sh does) for numbers to size a pod run by.
"""

from __future__ import annotations

import argparse
import json

import jax

from modeformer_jax.config_loading import load_config
from modeformer_jax.train.mesh import global_batch, make_mesh
from modeformer_jax.train.step_timing import random_batch
from modeformer_jax.train.train_step import init_model, init_state, make_train_step, optimizer

DEVICE_GB = {"H200": 141, "H100": 80, "A100-40G": 40, "TPU v5e": 16, "TPU v4": 32}


def step_bytes(config, batch: int) -> dict[str, int]:
  """Compiled memory of the first stage's train step on one device at `batch` clips."""
  stage = config.stages[0]
  mesh = make_mesh(config.mesh, jax.devices()[:1])
  model = init_model(config)
  tx = optimizer(stage)
  state = jax.eval_shape(lambda: init_state(model, tx, mesh))
  state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
  step = make_train_step(model, tx, mesh, state, negatives=stage.negatives, chunk_size=config.loss_chunk_size,
                         seed=config.seed)
  data = global_batch(random_batch(batch, stage.num_negatives), mesh)
  m = step.lower(state, data).compile().memory_analysis()
  total = m.argument_size_in_bytes + m.temp_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
  return {"batch": batch, "temp": m.temp_size_in_bytes, "arguments": m.argument_size_in_bytes,
          "outputs": m.output_size_in_bytes, "aliased": m.alias_size_in_bytes, "total": total}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="config file[:arg]; --config.FIELD=VALUE overrides follow")
  parser.add_argument("--batches", default="4,8", help="two per-device batches to compile at (default 4,8)")
  parser.add_argument("--headroom", type=float, default=0.1, help="fraction of device memory kept free (0.1)")
  parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
  args, overrides = parser.parse_known_args()
  small, large = (int(b) for b in args.batches.split(","))
  rows = []
  for remat in (False, True):
    config = load_config(args.config, [*overrides, f"--config.model.remat={remat}", "--config.mesh.data=1",
                                       "--config.mesh.fsdp=1"])
    a, b = step_bytes(config, small), step_bytes(config, large)
    per_clip = (b["total"] - a["total"]) / (large - small)
    fixed = a["total"] - per_clip * small
    rows.append({"remat": remat, "per_clip": per_clip, "fixed": fixed, "at": [a, b],
                 "fits": {name: int(((1 - args.headroom) * gb * 2 ** 30 - fixed) // per_clip)
                          for name, gb in DEVICE_GB.items()}})

  device = jax.devices()[0]
  print(f"train step memory, {config.model.name} {config.model.dtype}, N = {config.stages[0].num_negatives}, "
        f"analysed on {device.device_kind} ({device.platform}); batch per device")
  print(f"{'remat':>6} {'MB/clip':>9} {'fixed MB':>9} " + " ".join(f"{k:>9}" for k in DEVICE_GB))
  for r in rows:
    print(f"{str(r['remat']):>6} {r['per_clip'] / 2 ** 20:>9.1f} {r['fixed'] / 2 ** 20:>9.1f} "
          + " ".join(f"{r['fits'][k]:>9}" for k in DEVICE_GB))
  print(f"ratio bytes per clip without / with remat: {rows[0]['per_clip'] / rows[1]['per_clip']:.2f}")
  if args.json:
    print(json.dumps(rows))


if __name__ == "__main__":
  main()
