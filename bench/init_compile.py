"""What the model's init program costs to compile and to run, with and without LLVM's optimisations (the
default compiles it at level 0 on the CPU: models/functional.py's init_weights), measured in one run.

Every training run and every test that builds a model pays the compile once per model shape; the program itself
runs once. Prints compile and run seconds per optimisation level, the largest difference between the two
levels' weights, and ends with the ratios of this run.

  python bench/init_compile.py [--config tiny] [--config.X=V ...]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from modeformer_jax.config_loading import load_config
from modeformer_jax.models.functional import init_program


def measure(lowered, level: int | None) -> tuple[float, float, list]:
  """(compile s, run s, weights) of `lowered` at backend optimisation `level` (None: XLA's default)."""
  options = None if level is None else {"xla_backend_optimization_level": level}
  start = time.perf_counter()
  compiled = lowered.compile(options)
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  weights = jax.block_until_ready(compiled())
  return compile_s, time.perf_counter() - start, jax.tree.leaves(weights)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="tiny", help="config file or shipped name[:arg] (default tiny); "
                      "--config.FIELD=VALUE overrides follow")
  args, overrides = parser.parse_known_args()
  config = load_config(args.config, overrides)
  lowered = init_program(config.model, config.seed)
  fast_s, fast_run_s, fast = measure(lowered, 0)
  slow_s, slow_run_s, slow = measure(lowered, None)
  difference = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(fast, slow))
  params = sum(int(np.prod(a.shape)) for a in fast)
  print(f"{args.config}: {params:,} weights, {jax.default_backend()} backend")
  print(f"{'optimisation':<22} {'compile s':>10} {'run s':>8}")
  print(f"{'XLA default':<22} {slow_s:>10.2f} {slow_run_s:>8.3f}")
  print(f"{'level 0 (init_weights)':<22} {fast_s:>10.2f} {fast_run_s:>8.3f}")
  print(f"largest weight difference: {difference:.2e}")
  print(f"ratios: compile default / level 0 = {slow_s / fast_s:.1f}x; "
        f"run level 0 / default = {fast_run_s / slow_run_s:.1f}x")


if __name__ == "__main__":
  main()
