"""Input-pipeline throughput: training examples/s from prepared shards for several grain worker counts,
against the rate one GPU consumes (clips/s of bench/train_step.py), and the CPU cores that rate needs.

  python bench/loader_throughput.py                      # generates and prepares a small LRS2-layout set
  python bench/loader_throughput.py --data /data/lrs2_prep --dataset lrs2 --split train

An example is one 5-frame video window plus 1 + N audio windows, augmented, exactly as training reads it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from absl import flags

from modeformer_jax.config_loading import load_config
from modeformer_jax.data.pipeline import train_batches

# Measured on one H200, full 59M model, bf16, batch 256, N = 11 (BENCHMARKS.md, bench/train_step.py).
H200_CLIPS_PER_S = 2499.0


def _prepared_stand_in(root: str) -> str:
  from modeformer_jax.data import prep, synth
  synth.write_dataset(os.path.join(root, "src"), "lrs2", speakers=6, clips_per_speaker=4, seconds=4.0, seed=0,
                      progress=False)
  prep.prepare("lrs2", os.path.join(root, "src"), os.path.join(root, "out"), ["train"], progress=False)
  return os.path.join(root, "out")


def measure(config, workers: int, batches: int) -> float:
  config.data.num_workers = workers
  it = train_batches(config, config.stages[0], seed=0)
  next(it)  # worker start-up is a one-off
  t = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * config.stages[0].batch_size / (time.perf_counter() - t)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--data", help="a `modeformer prep --out` folder (default: generate a small one)")
  parser.add_argument("--dataset", default="lrs2", help="dataset name inside --data")
  parser.add_argument("--split", default="train", help="split to read")
  parser.add_argument("--workers", default="0,1,2,4", help="comma-separated grain worker counts to measure")
  parser.add_argument("--batch", type=int, default=32, help="batch size (examples per batch)")
  parser.add_argument("--negatives", type=int, default=11, help="hard negatives N per example")
  parser.add_argument("--batches", type=int, default=20, help="timed batches per setting")
  parser.add_argument("--gpu-clips-per-s", type=float, default=H200_CLIPS_PER_S,
                      help="clips/s one GPU's train step consumes (bench/train_step.py); default: measured H200")
  args = parser.parse_args()
  flags.FLAGS.mark_as_parsed()  # grain workers read absl flags (SPEC section 8)

  with tempfile.TemporaryDirectory() as tmp:
    data = args.data or _prepared_stand_in(tmp)
    config = load_config("tiny", [f"--config.data.data_dir={data}", f"--config.data.dataset={args.dataset}",
                                             f"--config.stages.0.split={args.split}",
                                             f"--config.stages.0.batch_size={args.batch}",
                                             f"--config.stages.0.num_negatives={args.negatives}"])
    rows = [(int(w), measure(config, int(w), args.batches)) for w in args.workers.split(",")]

  cores = os.cpu_count()
  print(f"loader: batch {args.batch}, N = {args.negatives}, {cores} CPU cores on this machine")
  print(f"{'workers':>8} {'examples/s':>11} {'per worker':>11}")
  for w, rate in rows:
    print(f"{w:>8} {rate:>11.1f} {rate / max(w, 1):>11.1f}")
  per_core = max(rate / max(min(w, cores), 1) for w, rate in rows)
  print(f"GPU demand: {args.gpu_clips_per_s:.0f} clips/s per GPU; best per-core loader rate {per_core:.0f}/s")
  print(f"ratio GPU demand / per-core loader rate (cores needed per GPU): {args.gpu_clips_per_s / per_core:.1f}")


if __name__ == "__main__":
  main()
