"""`modeformer sync --workers N` on a folder of many short clips (a lip-sync generator's evaluation set): files
per minute for each N, the speed-up over one worker, and the peak memory of each worker process and of the
main process (which runs the model).

  python bench/sync_workers.py                                  # 24 generated clips of 5 s, workers 1,2,4,8
  python bench/sync_workers.py --clips 1000 --workers 1,2,4,8,16  # the issue's shape, on a many-core machine
  python bench/sync_workers.py --clips 1000 --workers 1,2,4,8,16 --files-per-worker 60   # each row the first
                                                   # 60 x N files: every row about as long, to fit a time limit
  python bench/sync_workers.py --folder my_eval_set/ --config modeformer_lrs2
  python bench/sync_workers.py --workers 2,4 --threads share,all   # each worker's thread budget: its share
                                                   # of the cores (the default) against all of them (as before
                                                   # 2026-12-02: every worker's XLA pool and decoder sized to
                                                   # the whole machine)

The clips are generated talking faces (256x256, 25 fps, 16 kHz; a few distinct renders copied to --clips
files, since only the work per file matters here) with face detection on (the default detector). The model
has its config's random initial weights (timing does not depend on training); it is compiled before timing.
Peak memory is each process's largest resident set size, sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

import psutil

from modeformer_jax.config_loading import load_config
from modeformer_jax.cpu_cores import share_threads, thread_budget
from modeformer_jax.data import synth
from modeformer_jax.media.encode import write_video
from modeformer_jax.sync.batch import Failure, detect_many, find_inputs

# jax loads in main() only: the workers' forkserver imports this module, and a worker that finds jax loaded
# leaves it on its default backend (on a GPU machine, each worker would claim the GPU's memory).

# Speakers whose generated faces the detectors find throughout (as bench/sync_speed.py's).
_SPEAKERS = ((5, 2), (3, 1), (7, 0), (2, 3))


def make_clips(folder: str, clips: int, seconds: float) -> list[str]:
  """`clips` mp4 files in folder: len(_SPEAKERS) renders, copied round-robin."""
  os.makedirs(folder, exist_ok=True)
  renders = []
  for k, speaker in enumerate(_SPEAKERS[:clips]):
    clip = synth.render_clip(100 + k, synth.speaker_style(*speaker), seconds, 0, size=256)
    renders.append(os.path.join(folder, f"clip_{k:05d}.mp4"))
    write_video(renders[-1], clip.frames, 25.0, clip.audio, 16000)
  for k in range(len(renders), clips):
    shutil.copyfile(renders[k % len(renders)], os.path.join(folder, f"clip_{k:05d}.mp4"))
  return sorted(os.path.join(folder, f) for f in os.listdir(folder))


class PeakMemory:
  """Largest resident set size of this process and of each child process, sampled in a thread."""

  def __init__(self, interval: float = 0.05):
    self.interval, self.main, self.children = interval, 0, {}
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def __enter__(self) -> "PeakMemory":
    self._thread.start()
    return self

  def __exit__(self, *exc) -> None:
    self._stop.set()
    self._thread.join()

  def _run(self) -> None:
    me = psutil.Process()
    while not self._stop.is_set():
      try:
        self.main = max(self.main, me.memory_info().rss)
        for child in me.children(recursive=True):
          try:
            self.children[child.pid] = max(self.children.get(child.pid, 0), child.memory_info().rss)
          except psutil.NoSuchProcess:
            pass
      except psutil.NoSuchProcess:
        pass
      self._stop.wait(self.interval)


def run(model, paths: list[str], workers: int, threads: str) -> dict:
  """One pass of detect_many over paths with `workers` worker processes, each with a thread budget of its
  share of the cores (threads "share") or of all of them ("all")."""
  start = time.perf_counter()
  with PeakMemory() as memory:
    results = list(detect_many(model, paths, workers=workers, desc=f"{workers} workers",
                               worker_threads=share_threads(workers) if threads == "share" else thread_budget()))
  seconds = time.perf_counter() - start
  failed = [r for r in results if isinstance(r, Failure)]
  if failed:
    raise SystemExit(f"{len(failed)} files failed, e.g. {failed[0].path}: {failed[0].reason}")
  # The forkserver process and the pool's workers are children; the workers are the ones that grew.
  worker_peaks = sorted(memory.children.values())[-workers:] if workers else []
  return {"workers": workers, "threads": threads, "files": len(paths), "seconds": seconds,
          "files_per_minute": 60 * len(paths) / seconds,
          "worker_peak_mb": max(worker_peaks, default=0) / 2 ** 20, "main_peak_mb": memory.main / 2 ** 20}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--clips", type=int, default=24, help="generated clips (default 24)")
  parser.add_argument("--seconds", type=float, default=5.0, help="length of each generated clip (default 5)")
  parser.add_argument("--folder", help="time the videos of this folder instead of generated ones")
  parser.add_argument("--workers", default="1,2,4,8", help="comma-separated worker counts (default 1,2,4,8)")
  parser.add_argument("--config", default="tiny", help="model config, random weights (default tiny)")
  parser.add_argument("--files-per-worker", type=int,
                      help="time N workers on the first N x this many files only (default: every row all files)")
  parser.add_argument("--threads", default="share",
                      help="comma-separated thread budgets per worker, each a row per worker count: share (its "
                           "share of the cores, as sync does) or all (every core, as before 2026-12-02)")
  args = parser.parse_args(argv)
  counts = [int(w) for w in args.workers.split(",") if w]
  if not counts or min(counts) < 1:
    parser.error("--workers: one or more counts of at least 1")
  budgets = [t for t in args.threads.split(",") if t]
  if not budgets or set(budgets) - {"share", "all"}:
    parser.error("--threads: share, all or both")

  from modeformer_jax.inference import SyncModel
  from modeformer_jax.train.train_step import init_model

  config = load_config(args.config, [])
  weights = init_model(config)
  model = SyncModel(config, weights.params, weights.batch_stats, source=f"{args.config} (random init)")
  with tempfile.TemporaryDirectory() as work:
    if args.folder:
      paths = [item.path for item in find_inputs([args.folder])]
    else:
      start = time.perf_counter()
      paths = make_clips(os.path.join(work, "clips"), args.clips, args.seconds)
      print(f"generated {len(paths)} clips of {args.seconds:g} s in {time.perf_counter() - start:.1f} s",
            file=sys.stderr)
    list(detect_many(model, paths[:1], workers=0, desc="warm-up"))  # compiles the model (and the detector)
    # A worker's first file fills JAX's persistent cache with the detector's programs, which every later
    # worker reads (13 s against 4 s): without this, the first row alone would pay it.
    list(detect_many(model, paths[:1], workers=1, desc="warm-up worker"))
    rows = [run(model, paths[:args.files_per_worker * w] if args.files_per_worker else paths, w, t)
            for w in counts for t in budgets]

  print(f"\nmodeformer sync --workers N: {len(paths)} files, config {args.config}, face detection on; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
  print(f"{'workers':>8} {'threads':>8} {'files':>6} {'seconds':>9} {'files/min':>10} {'peak MB per worker':>19} "
        f"{'main peak MB':>13}")
  for r in rows:
    print(f"{r['workers']:>8} {r['threads']:>8} {r['files']:>6} {r['seconds']:>9.1f} {r['files_per_minute']:>10.1f} "
          f"{r['worker_peak_mb']:>19.0f} {r['main_peak_mb']:>13.0f}")
  print("\nratios (files per minute against the first row of the same thread budget, and its ideal):")
  for t in budgets:
    base, *rest = [r for r in rows if r["threads"] == t]
    for r in rest:
      print(f"  {t}: {r['workers']} / {base['workers']} workers: "
            f"x{r['files_per_minute'] / base['files_per_minute']:.2f} (ideal x{r['workers'] / base['workers']:.0f})")
  if len(budgets) == 2:
    print("share / all at each worker count:")
    for w in counts:
      share, every = (next(r for r in rows if r["workers"] == w and r["threads"] == t) for t in ("share", "all"))
      print(f"  {w} workers: x{share['files_per_minute'] / every['files_per_minute']:.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
