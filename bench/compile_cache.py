"""First start against second start of the real trainer: what the persistent compilation cache saves a resumed or
re-launched run (config.compilation_cache_dir, on by default).

  python bench/compile_cache.py                                  # tiny config, CPU
  python bench/compile_cache.py --config configs/modeformer_lrs2.py --override=--config.model.dtype=bfloat16 \\
      --override=--config.data.source=synthetic --override=--config.stages.0.batch_size=64   # 59M, on a GPU

Each start is a fresh `modeformer train` process that runs 2 steps from an empty workdir: once with an empty
cache folder (compiles and writes the cache), once more with the same folder (loads), and once with the cache
off. The table gives wall time per start and the trainer's own "first step" time (compile + one step).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time


def start(config: str, overrides: list[str], workdir: str, cache: str) -> tuple[float, float]:
  """(wall seconds of one `modeformer train` process, seconds to its first finished step)."""
  cmd = [sys.executable, "-m", "modeformer_jax.cli", "train", "--config", config, "--workdir", workdir,
         "--no-progress", "--config.stages.0.steps=2", "--config.eval_every=0", "--config.checkpoint_every=100",
         f"--config.compilation_cache_dir={cache}", *overrides]
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  t = time.perf_counter()
  done = subprocess.run(cmd, capture_output=True, text=True, env=env)
  wall = time.perf_counter() - t
  if done.returncode:
    sys.exit(done.stderr[-3000:])
  first = re.search(r"first step in ([\d.]+) s", done.stderr)
  return wall, float(first.group(1)) if first else float("nan")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="configs/tiny.py:synthetic", help="config file[:arg] (default tiny)")
  parser.add_argument("--override", action="append", default=[], help="a --config.FIELD=VALUE for the trainer")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    cache = os.path.join(tmp, "cache")
    rows = [("first start, empty cache", *start(args.config, args.override, os.path.join(tmp, "a"), cache)),
            ("second start, warm cache", *start(args.config, args.override, os.path.join(tmp, "b"), cache)),
            ("start without a cache", *start(args.config, args.override, os.path.join(tmp, "c"), "none"))]
  print(f"trainer start-up, {args.config} {' '.join(args.override)}")
  print(f"{'start':<28} {'wall s':>8} {'first step s':>13}")
  for name, wall, first in rows:
    print(f"{name:<28} {wall:>8.1f} {first:>13.1f}")
  print(f"ratio first / second start: wall {rows[0][1] / rows[1][1]:.2f}, first step {rows[0][2] / rows[1][2]:.2f}")


if __name__ == "__main__":
  main()
