"""Cost of evaluation: naive per-pair scoring against the default (every window encoded once per modality),
on the same videos, measured in one run.

The default mode encodes the L - 4 windows of a video once per modality and scores the 2S+1 candidates as
dot products; the naive mode runs both encoders on every (video window, audio window) pair inside the band,
as a cross-modal model must. For videos of n windows that is 31 n - 240 pairs against n windows (S = 15),
so the ratio approaches 31 for long videos (~26 for the 2 s clips used here). Videos are rendered in memory;
the model is configs/tiny.py narrowed further (NARROW, so both modes finish in about a minute on 2 CPU
cores) at its initial weights: cost does not depend on them. Any --config.FIELD=VALUE after the options
changes the model (e.g. --config.model.video_widths=(8,16,16,32,64) --config.model.width=64 ... for
configs/tiny.py as it is). Prints wall-clock and CPU seconds per mode (CPU time is steadier on a shared
machine) and ends with the naive/default ratio of this run. Both modes must give identical accuracies; the
bench checks that too (exit status 1 otherwise).

  python bench/eval_cost.py [--videos 4] [--seconds 2] [--max-offset 15] [--batch-size 64] [--config.X=V ...]
"""

from __future__ import annotations

import argparse
import sys
import time

from modeformer_jax.config_loading import load_config
from modeformer_jax.data.synth.in_memory import synthetic_records
from modeformer_jax.evaluation.evaluate import evaluate
from modeformer_jax.evaluation.protocol import CLIP_LENGTHS
from modeformer_jax.inference import SyncModel
from modeformer_jax.train.train_step import init_model

NARROW = ["--config.model.width=32", "--config.model.video_widths=(4,8,8,16,32)",
          "--config.model.audio_widths=(4,8,8,16,32)", "--config.model.depth=1", "--config.model.mlp_dim=64"]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="tiny:synthetic", help="model and preprocessing config")
  parser.add_argument("--videos", type=int, default=4, help="videos rendered in memory")
  parser.add_argument("--seconds", type=float, default=2.0, help="length of each video")
  parser.add_argument("--max-offset", type=int, default=15)
  parser.add_argument("--batch-size", type=int, default=64, help="encoder batch")
  args, overrides = parser.parse_known_args(argv)

  config = load_config(args.config, [*NARROW, f"--config.data.synthetic_clips={args.videos}",
                                     f"--config.data.synthetic_seconds={args.seconds}", *overrides])
  init = init_model(config)
  model = SyncModel(config, init.params, init.batch_stats, source="initial weights", batch_size=args.batch_size)
  records = synthetic_records(config, "test")
  # Both modes run the same two compiled encoders: one untimed pass compiles them and warms the allocator.
  evaluate(model, records, max_offset=args.max_offset)

  runs, cpu = {}, {}
  for mode in ("default", "naive"):
    start = time.process_time()  # all threads: less sensitive than wall-clock to other jobs on the machine
    runs[mode] = evaluate(model, records, max_offset=args.max_offset, naive=mode == "naive")
    cpu[mode] = time.process_time() - start
  print(f"{'mode':<8} {'videos':>6} {'windows':>8} {'passes per encoder':>19} {'wall s':>8} {'cpu s':>8} "
        f"{'ms/window':>10}")
  for mode, r in runs.items():
    counts = r["clip_lengths"][str(CLIP_LENGTHS[0])]
    print(f"{mode:<8} {counts['videos']:>6} {counts['windows']:>8} {r['encoder_windows']['video']:>19} "
          f"{r['seconds']:>8.2f} {cpu[mode]:>8.2f} {1e3 * r['seconds'] / counts['windows']:>10.2f}")
  same = all(runs["default"]["clip_lengths"][k]["accuracy"] == runs["naive"]["clip_lengths"][k]["accuracy"]
             for k in runs["default"]["clip_lengths"])
  print(f"identical accuracies: {'yes' if same else 'NO'}")
  print(f"encoder passes naive/default: "
        f"{runs['naive']['encoder_windows']['video'] / runs['default']['encoder_windows']['video']:.1f}x")
  print(f"ratio naive/default (cpu time): {cpu['naive'] / cpu['default']:.1f}x")
  print(f"ratio naive/default (wall-clock): {runs['naive']['seconds'] / runs['default']['seconds']:.1f}x")
  return 0 if same else 1


if __name__ == "__main__":
  sys.exit(main())
