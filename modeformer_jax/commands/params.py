"""Print the model's parameter count per module and in total.

Example: modeformer params --config modeformer_lrs2
"""

from __future__ import annotations

import json

from modeformer_jax.commands import options

HELP = "parameter count per module and total for a config"
ACCEPTS_CONFIG_OVERRIDES = True


def add_arguments(parser) -> None:
  options.add_config(parser)
  options.add_json(parser)


def run(args) -> int:
  from modeformer_jax.config_loading import load_config
  from modeformer_jax.models.summary import parameter_counts

  config = load_config(args.config, args.overrides)
  counts = parameter_counts(config.model)
  total = sum(counts.values())
  if args.json:
    print(json.dumps({"model": config.model.name, "total": total, "modules": counts}))
    return 0
  width = max(len(k) for k in counts)
  print(f"{'module':<{width}}  {'parameters':>12}  {'share':>6}")
  for name, n in counts.items():
    print(f"{name:<{width}}  {n:>12,}  {100 * n / total:>5.1f}%")
  print(f"{'total':<{width}}  {total:>12,}  ({total / 1e6:.3f}M)")
  return 0
