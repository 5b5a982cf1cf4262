"""Table 1 with every system trained and evaluated by this code: SyncNet, PM, AVST (reconstructed), VocaLiST and
ModEFormer (SPEC sections 5 and 7), plus SyncNet trained with our InfoNCE, on one recipe.

Every run keeps the data, stages, steps, batch of clips, hard negatives per clip and schedule of --config
(the ModEFormer config; the baselines take it as base=, see configs/syncnet.py, avst.py and vocalist.py) and
is evaluated on the same split with the same protocol. What differs is the model and its objective:
  modeformer          --config itself                       InfoNCE, hard + in-batch negatives (58.8M)
  syncnet             syncnet:contrastive                    margin loss on Euclidean distances (13.6M)
  syncnet-infonce     syncnet:infonce                        our InfoNCE on SyncNet (13.6M)
  pm                  syncnet:pm                             cross-entropy over the clip's offsets (13.6M)
  avst                avst                                   cross-entropy over the clip's offsets, clips of
                                                             5-15 frames (41.9M; a reconstruction, no public code)
  vocalist            vocalist                               BCE on in-sync / off-sync pairs (80.1M)
SyncNet reads the same shards as the others: whole 96x96 crops (upsampled to 224) and MFCCs from the raw
audio. --published-syncnet DIR adds a row for syncnet_python's weights (`modeformer import-syncnet`),
evaluated without training. The paper's rows are printed below ours.

  python experiments/baselines.py --out sweeps/baselines --config modeformer_lrs2 \\
      --config.data.data_dir=/data/prep [--published-syncnet models/syncnet]   # one run after another
  python experiments/baselines.py --out sweeps/baselines --print-commands ...   # commands for a cluster
  python experiments/baselines.py --out /tmp/bl --config tiny:synthetic --tiny --steps 2 --limit 2

--config.FIELD=VALUE overrides apply to every run; model fields differ between the models, so set those in
the config files instead. Writes OUT/baselines.{md,json,png} (accuracy against clip length, one line per
system).
"""

from __future__ import annotations

import argparse
import os
import sys

import common

# name, config (with {base} and {tiny} filled in), objective in words
SYSTEMS = (
    ("modeformer", None, "InfoNCE"),
    ("syncnet", "syncnet:contrastive{tiny},base={base}", "contrastive (margin)"),
    ("syncnet-infonce", "syncnet:infonce{tiny},base={base}", "InfoNCE"),
    ("pm", "syncnet:pm{tiny},base={base}", "multi-way cross-entropy"),
    ("avst", "avst:{tiny_first}base={base}", "cross-entropy over offsets"),
    ("vocalist", "vocalist:{tiny_first}base={base}", "binary cross-entropy"),
)


def runs(args) -> list[common.Run]:
  out = []
  for name, config, objective in SYSTEMS:
    if name not in args.systems:
      continue
    if config:
      config = config.format(base=args.config, tiny=",tiny" if args.tiny else "",
                             tiny_first="tiny," if args.tiny else "")
    out.append(common.Run(name, [], {"objective": objective}, config))
  return out


def published_syncnet(args, overrides) -> dict:
  """Protocol results of an import-syncnet folder on the sweep's data (cached like a run's)."""
  import json

  from modeformer_jax.config_loading import load_config
  from modeformer_jax.data.pipeline import open_source
  from modeformer_jax.evaluation.evaluate import evaluate
  from modeformer_jax.evaluation.report import write_report
  from modeformer_jax.inference import load_sync_model

  run = common.Run("syncnet-published", [], {})
  folder = common.eval_dir(args, run)
  results_path = os.path.join(folder, "results.json")
  if os.path.isfile(results_path):
    print(f"{run.name}: using {results_path}", file=sys.stderr)
    with open(results_path) as f:
      return json.load(f)
  config = load_config(args.config, overrides)
  model = load_sync_model(args.published_syncnet)
  records = open_source(config, args.split)
  results = evaluate(model, records, clip_lengths=args.clip_lengths, max_offset=args.max_offset_frames,
                     limit=args.limit, progress=not args.no_progress,
                     data={"dataset": config.data.dataset, "split": args.split, "source": config.data.source})
  write_report(results, folder)
  return results


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--tiny", action="store_true", help="narrow widths of the baselines (CI; pair with "
                      "--config tiny[:synthetic], ModEFormer's own tiny config)")
  parser.add_argument("--published-syncnet", metavar="DIR",
                      help="also evaluate syncnet_python's weights converted by `modeformer import-syncnet`")
  parser.add_argument("--systems", default=",".join(s[0] for s in SYSTEMS),
                      help="comma-separated subset of the systems to train (default: all: %(default)s)")
  common.add_sweep_arguments(parser)
  args, overrides = common.parse(parser, argv)
  args.systems = args.systems.split(",")
  unknown = set(args.systems) - {s[0] for s in SYSTEMS}
  if unknown:
    parser.error(f"--systems: unknown {', '.join(sorted(unknown))} (known: {', '.join(s[0] for s in SYSTEMS)})")
  systems = runs(args)
  results = common.run_sweep(args, overrides, systems)
  if results is None:
    return 0

  from modeformer_jax.evaluation.report import accuracy_series, paper_rows, results_row
  rows = [results_row(r, **run.columns) for run, r in zip(systems, results)]
  if args.published_syncnet:
    rows.append(results_row(published_syncnet(args, overrides), model="SyncNet (published weights)",
                            objective="contrastive (margin)"))
  paper = [dict(row, objective="") for row in paper_rows([r["dataset"] for r in rows])]
  common.write_table(args.out, "baselines", rows + paper, ("dataset", "model", "objective"),
                     title="Table 1: baselines and ModEFormer on one recipe", series=accuracy_series(rows),
                     xlabel="clip length (frames)",
                     notes="Same data, stages, steps, batch and hard negatives for every trained row; "
                     "(paper) rows are the published numbers.")
  return 0


if __name__ == "__main__":
  common.main(main)
