"""Train-step throughput: compile the real train step, time it after warm-up, report FLOP/s and MFU.

  python bench/train_step.py --config tiny --batch 16
  python bench/train_step.py --config modeformer_lrs2 --config.model.dtype=bfloat16 --batch 256 --max-batch

MFU = model FLOP/s / matmul peak: model FLOPs are the analytic count of models/flops.py (3 x forward per
clip), the peak a bf16 (or f32) matmul rate measured in the same run on the same chip, not a datasheet
number. XLA's own cost analysis of the compiled step is printed beside it; on GPU it misses the convolutions
handed to cuDNN, so it is not used for MFU. Inputs are random arrays of the real shapes: this
measures the step, not the input pipeline (bench/loader_throughput.py does that).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from modeformer_jax.config_loading import load_config
from modeformer_jax.train.step_timing import time_step


def matmul_rate(dtype, n: int, reps: int = 10) -> float:
  """Measured FLOP/s of an n x n x n matmul in `dtype` on the default device."""
  a = jnp.ones((n, n), dtype)
  f = jax.jit(lambda a: a @ a)
  f(a).block_until_ready()
  t = time.perf_counter()
  for _ in range(reps):
    out = f(a)
  out.block_until_ready()
  return 2 * n ** 3 * reps / (time.perf_counter() - t)


def _is_oom(e: Exception) -> bool:
  return "RESOURCE_EXHAUSTED" in str(e) or "Out of memory" in str(e) or "out of memory" in str(e)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="config file[:arg]; --config.FIELD=VALUE overrides follow")
  parser.add_argument("--batch", type=int, default=0, help="global batch (default: the first stage's batch_size)")
  parser.add_argument("--max-batch", action="store_true",
                      help="double the batch from --batch until the step no longer fits in memory; report the "
                      "largest that fits")
  parser.add_argument("--steps", type=int, default=5, help="timed steps")
  parser.add_argument("--warmup", type=int, default=2, help="untimed steps after compilation")
  parser.add_argument("--matmul-size", type=int, default=0,
                      help="n of the n^3 matmul that measures the peak rate (default 8192 on GPU/TPU, 2048 on CPU)")
  parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
  args, overrides = parser.parse_known_args()
  config = load_config(args.config, overrides)
  batch = args.batch or config.stages[0].batch_size

  results = []
  while True:
    try:
      results.append(time_step(config, batch, args.steps, args.warmup))
    except Exception as e:  # XlaRuntimeError has no stable import path; match the message.
      if not (args.max_batch and results and _is_oom(e)):
        raise
      break
    if not args.max_batch:
      break
    batch *= 2

  device = jax.devices()[0]
  on_accelerator = device.platform != "cpu"
  dtype = jnp.bfloat16 if config.model.dtype == "bfloat16" else jnp.float32
  peak = matmul_rate(dtype, args.matmul_size or (8192 if on_accelerator else 2048))

  print(f"device: {jax.device_count()} x {device.device_kind} ({device.platform}); model dtype {config.model.dtype}; "
        f"measured {jnp.dtype(dtype).name} matmul peak {peak / 1e12:.2f} TFLOP/s")
  print(f"{'batch':>6} {'N':>3} {'compile s':>10} {'step ms':>9} {'clips/s':>9} {'model GFLOP':>12} "
        f"{'XLA GFLOP':>10} {'TFLOP/s':>8} {'MFU':>6}")
  for r in results:
    r["mfu"] = r["model_flops_per_s"] / peak
    print(f"{r['batch']:>6} {r['negatives']:>3} {r['compile_s']:>10.1f} {1e3 * r['step_s']:>9.1f} "
          f"{r['clips_per_s']:>9.1f} {r['model_step_flops'] / 1e9:>12.1f} {r['xla_step_flops'] / 1e9:>10.1f} "
          f"{r['model_flops_per_s'] / 1e12:>8.3f} {100 * r['mfu']:>5.1f}%")
  best = max(results, key=lambda r: r["clips_per_s"])
  print(f"ratio model FLOP/s / measured peak (MFU) at batch {best['batch']}: {best['mfu']:.3f}; "
        f"model GFLOP per clip per step: {best['model_step_flops'] / best['batch'] / 1e9:.1f}")
  if args.json:
    print(json.dumps({"device": device.device_kind, "peak_flops": peak, "results": results}))


if __name__ == "__main__":
  main()
