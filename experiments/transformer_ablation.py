"""ModEFormer against 3D-SyncNet: the same CNNs with the transformers replaced by temporal mean pooling
(--config.model.temporal=pool; SPEC section 7). The paper: removing the transformers costs 8.1 points;
3D-SyncNet reaches 80.2% on LRS3.

  python experiments/transformer_ablation.py --out sweeps/ablation --config modeformer_lrs3 \\
      --config.data.data_dir=/data/prep
  python experiments/transformer_ablation.py --out sweeps/ablation --print-commands ...   # for a cluster
  python experiments/transformer_ablation.py --out /tmp/abl --config tiny:synthetic --steps 5 --limit 4

Writes OUT/transformer_ablation.{md,json,png} (accuracy against clip length, one line per model).
"""

from __future__ import annotations

import argparse

import common

RUNS = (
    common.Run("modeformer", ["--config.model.temporal=transformer"], {}),
    common.Run("3d-syncnet", ["--config.model.temporal=pool"], {}),
)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  common.add_sweep_arguments(parser)
  args, overrides = common.parse(parser, argv)
  results = common.run_sweep(args, overrides, RUNS)
  if results is None:
    return 0

  from modeformer_jax.evaluation.report import accuracy_series, results_row
  rows = [results_row(r) for r in results]
  k = min(args.clip_lengths)
  gap = rows[0]["accuracy"][k] - rows[1]["accuracy"][k]
  common.write_table(args.out, "transformer_ablation", rows, ("dataset", "model"),
                     title="ModEFormer vs 3D-SyncNet (transformers replaced by temporal pooling)",
                     series=accuracy_series(rows), xlabel="clip length (frames)",
                     notes=f"Removing the transformers costs {gap:.1f} points at {k} frames (paper: 8.1).")
  return 0


if __name__ == "__main__":
  common.main(main)
