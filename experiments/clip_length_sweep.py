"""Accuracy against clip length (5..15 frames) for any set of trained runs: one row per run, the paper's
Table 1 layout with its rows alongside.

  python experiments/clip_length_sweep.py runs/lrs2 runs/lrs2_n5 --out sweeps/clip_length \\
      --data /data/prep --dataset lrs2 --which best

Each run's own evaluation goes to OUT/<i>-<run folder name>/ (as `modeformer eval --out` writes it);
the table and plot to OUT/clip_length_sweep.{md,json,png}.
"""

from __future__ import annotations

import argparse
import os

import common

KEYS = ("dataset", "run", "model")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("runs", nargs="+", metavar="RUN", help="training run folders (or exported model folders)")
  parser.add_argument("--data", metavar="DIR", help="`modeformer prep --out` folder (default: each run's own data)")
  parser.add_argument("--dataset", choices=("lrs2", "lrs3"), help="dataset under --data (default: each run's)")
  parser.add_argument("--batch-size", type=int, default=64, help="encoder batch")
  common.add_eval_arguments(parser)
  args = parser.parse_args(argv)

  from modeformer_jax.evaluation.evaluate import evaluate_run
  from modeformer_jax.evaluation.report import accuracy_series, paper_rows, results_row, write_report
  rows = []
  for i, path in enumerate(args.runs):
    results = evaluate_run(path, which=args.which, split=args.split, data_dir=args.data, dataset=args.dataset,
                           clip_lengths=args.clip_lengths, max_offset=args.max_offset_frames, limit=args.limit,
                           batch_size=args.batch_size, progress=not args.no_progress)
    write_report(results, os.path.join(args.out, f"{i}-{os.path.basename(os.path.normpath(path))}"))
    rows.append(results_row(results, run=path))
  paper = paper_rows([r["dataset"] for r in rows])
  common.write_table(args.out, "clip_length_sweep", [*rows, *paper], KEYS,
                     title="Accuracy against clip length", series=accuracy_series(rows + paper, KEYS),
                     xlabel="clip length (frames)", dashed=list(accuracy_series(paper, KEYS)))
  return 0


if __name__ == "__main__":
  common.main(main)
