"""What data.augment.low_res costs per train step of the demo (configs/tiny.py, the demo's batch and negatives).

The augmentation runs inside the compiled train step, outside the gradient, on the batch's video windows; it
resizes every example's frames through each of data/augment.py's LOW_RES_SIDES and keeps the chosen version
(one compiled shape whatever the share), so its cost does not depend on the share. On a shared machine two
train steps timed one after the other differ by more than that cost, so this times the augmentation with and
without low_res, compiled alone, alternating in rounds (the median of each), and the whole train step without
it once, in the same run; the ratio is (step + extra) / step. Random inputs of the real shapes.

  python bench/low_res_cost.py --batch 32 --num-negatives 1
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from modeformer_jax.config_loading import load_config
from modeformer_jax.data.augment import Augment
from modeformer_jax.train.step_timing import random_batch, time_step


def _time(fn, args, reps: int) -> float:
  jax.block_until_ready(fn(*args))
  t = time.perf_counter()
  for _ in range(reps):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / reps


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batch", type=int, default=32, help="unique clips per step (default 32: the demo's)")
  parser.add_argument("--num-negatives", type=int, default=1, help="hard negatives per clip (default 1: the demo's)")
  parser.add_argument("--share", type=float, default=0.5, help="data.augment.low_res timed (default 0.5)")
  parser.add_argument("--rounds", type=int, default=20, help="alternating rounds of the augmentation timings")
  parser.add_argument("--steps", type=int, default=5, help="timed train steps")
  args = parser.parse_args()
  config = load_config("tiny", [f"--config.stages.0.batch_size={args.batch}",
                                f"--config.stages.0.num_negatives={args.num_negatives}"])
  batch = random_batch(config, args.batch, args.num_negatives)
  row_start = config.preprocess.mouth_row_start
  plain = Augment.from_config(config.data.augment)
  cfg = config.data.augment.copy_and_resolve_references()
  cfg.low_res = args.share
  low_res = Augment.from_config(cfg)
  inputs = (batch["video"], batch["audio"], jax.random.key(0))
  augment = {name: jax.jit(lambda v, a, k, aug=aug: aug(v, a, k, row_start))
             for name, aug in (("without", plain), ("with", low_res))}
  times = {name: [] for name in augment}
  for _ in range(args.rounds):
    for name, fn in augment.items():
      times[name].append(_time(fn, inputs, 3))
  step_s = time_step(config, args.batch, args.steps, warmup=2)["step_s"]
  extra = np.median(times["with"]) - np.median(times["without"])
  print(f"{'':<36} {'ms':>8}")
  print(f"{'augmentation without low_res':<36} {1e3 * np.median(times['without']):>8.1f}")
  print(f"{f'augmentation with low_res {args.share:g}':<36} {1e3 * np.median(times['with']):>8.1f}")
  print(f"{'train step without low_res':<36} {1e3 * step_s:>8.1f}")
  print(f"ratio train step with / without low_res: {(step_s + extra) / step_s:.3f} ({1e3 * extra:+.1f} ms per step "
        f"of {args.batch} clips)")


if __name__ == "__main__":
  main()
