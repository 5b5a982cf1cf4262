"""Input-pipeline throughput: training examples per CPU-second (per core) from prepared data, for each way of
reading it, against the rate one GPU consumes (clips/s of bench/train_step.py): the CPU cores one GPU needs.

  python bench/loader_throughput.py                      # generates and prepares a small LRS2-layout set, twice
                                                         # (JPEG and raw frames)
  python bench/loader_throughput.py --data /data/lrs2_prep --dataset lrs2 --split train

An example is one 5-frame video window plus 1 + N audio windows and their masks, offsets and ids, exactly as
training reads it (augmentation runs in the train step on the device: data/augment.py). Ways of reading, each a
row: "store", the training-window store prep writes (data/window_store.py: per frame the mouth rows, and the
mel, read through memory maps), and "records", windows cut from whole records (the TFDS shards: what the
loader read before the store, and still reads for SyncNet's whole crops and MFCCs). Beside each: megabytes
per hour of video of what that way reads. Per-core rates are examples per CPU-second of this process (its grain
threads included) with workers 0; wall rates for grain worker processes follow.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import psutil
from absl import flags

from modeformer_jax.config_loading import load_config
from modeformer_jax.data.pipeline import open_source, train_batches
from modeformer_jax.data.records import dataset_dir
from modeformer_jax.data.window_store import read_meta, store_dir

# Measured on one H200, full 59M model, bf16, batch 256, N = 11 (BENCHMARKS.md, bench/train_step.py).
H200_CLIPS_PER_S = 2499.0


def _prepared_stand_in(root: str, storage: str) -> str:
  from modeformer_jax.data import prep, synth
  src = os.path.join(root, "src")
  if not os.path.isdir(src):
    synth.write_dataset(src, "lrs2", speakers=6, clips_per_speaker=4, seconds=4.0, seed=0, progress=False)
  out = os.path.join(root, storage)
  prep.prepare("lrs2", src, out, ["train"], options=prep.PrepOptions("lrs2", frame_storage=storage),
               progress=False)
  return out


def _dir_bytes(path: str, skip: str | None = None) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, dirs, files in os.walk(path)
             for f in files if not (skip and os.path.commonpath([skip, d]) == skip))


def _cpu_seconds() -> float:
  """CPU seconds of this process (all threads) and its live children (grain workers)."""
  me = psutil.Process()
  times = [me.cpu_times()] + [c.cpu_times() for c in me.children(recursive=True)]
  return sum(t.user + t.system for t in times)


def measure(config, stage, workers: int, batches: int, records: bool) -> tuple[float, float]:
  """(examples per wall second, examples per CPU-second) of `batches` batches after a warm-up one."""
  config.data.num_workers = workers
  source = open_source(config, stage.split, lazy_frames=True) if records else None
  it = train_batches(config, stage, seed=0, source=source)
  next(it)  # worker start-up, opening files: one-off
  wall, cpu = time.perf_counter(), _cpu_seconds()
  for _ in range(batches):
    next(it)
  examples = batches * stage.batch_size
  return examples / (time.perf_counter() - wall), examples / (_cpu_seconds() - cpu)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--data", help="a `modeformer prep --out` folder (default: generate and prepare a small set "
                      "with JPEG and with raw frames)")
  parser.add_argument("--dataset", default="lrs2", help="dataset name inside --data")
  parser.add_argument("--split", default="train", help="split to read")
  parser.add_argument("--workers", default="1,2,4", help="comma-separated grain worker counts for the wall rates "
                      "(empty: none)")
  parser.add_argument("--batch", type=int, default=256, help="batch size (examples per batch)")
  parser.add_argument("--negatives", type=int, default=11, help="hard negatives N per example")
  parser.add_argument("--batches", type=int, default=8, help="timed batches per setting")
  parser.add_argument("--gpu-clips-per-s", type=float, default=H200_CLIPS_PER_S,
                      help="clips/s one GPU's train step consumes (bench/train_step.py); default: measured H200")
  args = parser.parse_args()
  flags.FLAGS.mark_as_parsed()  # grain workers read absl flags (SPEC section 8)

  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    datasets = [args.data] if args.data else [_prepared_stand_in(tmp, s) for s in ("jpeg", "raw")]
    for data in datasets:
      config = load_config("tiny", [f"--config.data.data_dir={data}", f"--config.data.dataset={args.dataset}",
                                    f"--config.stages.0.split={args.split}",
                                    f"--config.stages.0.batch_size={args.batch}",
                                    f"--config.stages.0.num_negatives={args.negatives}"])
      stage = config.stages[0]
      path = dataset_dir(data, args.dataset)
      meta = read_meta(path, args.split)
      if meta is None:
        raise SystemExit(f"{path}: no training-window store for split {args.split} (prepare it again)")
      hours = meta["frames"] / config.preprocess.fps / 3600
      store = store_dir(path, args.split)
      sizes = {"store": _dir_bytes(store), "records": _dir_bytes(path, skip=os.path.join(path, "windows"))}
      for way in ("records", "store"):
        _, per_core = measure(config, stage, 0, args.batches, records=way == "records")
        walls = [(w, measure(config, stage, w, args.batches, records=way == "records")[0])
                 for w in map(int, filter(None, args.workers.split(",")))]
        rows.append((f"{way} ({meta['storage']})", sizes[way] / 2 ** 20 / hours, per_core, walls))

  print(f"loader: batch {args.batch}, N = {args.negatives}, {os.cpu_count()} CPU cores on this machine")
  print(f"{'reads':>16} {'MB/hour':>9} {'examples/s per core':>20}  wall examples/s with grain workers")
  for name, mb, per_core, walls in rows:
    print(f"{name:>16} {mb:>9.0f} {per_core:>20.0f}  " + ", ".join(f"{w}: {r:.0f}" for w, r in walls))
  by_name = {r[0]: r[2] for r in rows}
  for storage in ("jpeg", "raw"):
    if f"store ({storage})" in by_name and f"records ({storage})" in by_name:
      print(f"ratio store / records per core ({storage}): "
            f"{by_name[f'store ({storage})'] / by_name[f'records ({storage})']:.1f}")
  best = max(by_name.values())
  print(f"GPU demand: {args.gpu_clips_per_s:.0f} clips/s per GPU; best per-core loader rate {best:.0f}/s")
  for name, _, per_core, _ in rows:
    print(f"ratio GPU demand / per-core rate, {name} (cores needed per GPU): {args.gpu_clips_per_s / per_core:.2f}")


if __name__ == "__main__":
  main()
