"""Accuracy against the number of hard negatives N at a fixed audio budget per step (SPEC section 3).

The paper trades N against the number of unique clips per step: unique clips x (1 + N) = --audio-budget, so
every run encodes the same number of audio windows per step and takes the same number of steps; the batch of
each run is budget // (1 + N), rounded down to a multiple of --batch-multiple (the data-parallel device
count must divide the batch). The paper found N = 11 best. --symmetric both trains every N twice, with the
loss's video -> audio rows only (the default) and with the audio -> video rows added (stages.N.symmetric).

  python experiments/negatives_sweep.py --out sweeps/negatives --config modeformer_lrs2 \\
      --config.data.data_dir=/data/prep                        # runs one after another on this host
  python experiments/negatives_sweep.py --out sweeps/negatives --print-commands ...   # commands for a cluster
  python experiments/negatives_sweep.py --out /tmp/neg --config tiny:synthetic --num-negatives 1,3 \\
      --audio-budget 32 --steps 5 --limit 4                    # CI size

Writes OUT/negatives_sweep.{md,json,png} (accuracy at each clip length against N).
"""

from __future__ import annotations

import argparse

import common

from modeformer_jax.config_loading import load_config


def _ints(text: str) -> list[int]:
  return [int(x) for x in text.split(",")]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--num-negatives", type=_ints, default=[1, 3, 5, 7, 9, 11, 15],
                      help="values of N, hard negatives per clip (1,3,...)")
  parser.add_argument("--negatives", dest="num_negatives", type=_ints, help=argparse.SUPPRESS)  # old spelling
  parser.add_argument("--audio-budget", type=int, default=3072,
                      help="unique clips x (1 + N) per step (default 3072: batch 256 at N = 11)")
  parser.add_argument("--batch-multiple", type=int, default=8, help="round each batch down to a multiple of this")
  parser.add_argument("--symmetric", choices=("off", "on", "both"), default="off",
                      help="InfoNCE directions: off = video -> audio rows (default), on = plus audio -> video rows "
                      "(stages.N.symmetric), both = each N with and without them")
  common.add_sweep_arguments(parser)
  args, overrides = common.parse(parser, argv)
  config = load_config(args.config, overrides)
  runs = []
  for n in args.num_negatives:
    batch = args.audio_budget // (1 + n) // args.batch_multiple * args.batch_multiple
    if batch < args.batch_multiple:
      parser.error(f"--audio-budget {args.audio_budget} leaves no batch for N = {n} "
                   f"(needs >= {args.batch_multiple * (1 + n)})")
    for symmetric in {"off": [False], "on": [True], "both": [False, True]}[args.symmetric]:
      runs.append(common.Run(f"N{n}" + ("-symmetric" if symmetric else ""),
                             common.stage_overrides(config, num_negatives=n, batch_size=batch, symmetric=symmetric),
                             {"N": n, "loss": "v->a + a->v" if symmetric else "v->a", "batch": batch,
                              "audio/step": batch * (1 + n)}))
  results = common.run_sweep(args, overrides, runs)
  if results is None:
    return 0

  from modeformer_jax.evaluation.report import results_row
  rows = [results_row(r, **run.columns) for run, r in zip(runs, results)]
  series = {f"{k} frames" + (f", {loss}" if args.symmetric == "both" else ""):
            ([r["N"] for r in rows if r["loss"] == loss], [r["accuracy"][k] for r in rows if r["loss"] == loss])
            for loss in dict.fromkeys(r["loss"] for r in rows) for k in args.clip_lengths}
  k = min(args.clip_lengths)
  best = max(rows, key=lambda r: r["accuracy"][k])
  notes = f"Best at {k} frames: N = {best['N']}, loss {best['loss']} (paper: N = 11, v->a)."
  if args.symmetric == "both":  # rows alternate: each N without, then with the audio -> video rows
    gains = ", ".join(f"{b['accuracy'][k] - a['accuracy'][k]:+.1f} points at N = {a['N']}"
                      for a, b in zip(rows[::2], rows[1::2]))
    notes += f" Adding the audio -> video rows changes {k}-frame accuracy by {gains}."
  common.write_table(args.out, "negatives_sweep", rows, ("dataset", "N", "loss", "batch", "audio/step"),
                     title="Hard negatives N at a fixed audio budget per step", series=series,
                     xlabel="hard negatives N", notes=notes)
  return 0


if __name__ == "__main__":
  common.main(main)
