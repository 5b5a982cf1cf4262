"""Train a sync model: the config's stages one after another, resuming from WORKDIR's latest checkpoint.

Examples:
  modeformer train --config tiny:synthetic --workdir runs/tiny
  modeformer train --config modeformer_lrs2 --workdir runs/lrs2 --config.data.data_dir=/data/lrs2_prep

Re-running the same command after an interruption (crash, kill, SIGTERM preemption) continues from the last
checkpoint with the same step, optimiser state, RNG and input order. Exit status: 0 done, 2 bad input,
3 non-finite loss, 143 preempted by SIGTERM (checkpoint saved).
"""

from __future__ import annotations

import sys

from modeformer_jax.commands import options

HELP = "train (resumes automatically from --workdir)"
ACCEPTS_CONFIG_OVERRIDES = True


def add_arguments(parser) -> None:
  options.add_config(parser)
  parser.add_argument("--workdir", required=True,
                      help="run folder: checkpoints/, best/, tensorboard/ and config.json go here; a folder "
                      "that already holds checkpoints is resumed")
  parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
  options.add_json(parser)


def run(args) -> int:
  import json

  from modeformer_jax.config_loading import load_config
  from modeformer_jax.train import trainer

  config = load_config(args.config, args.overrides)
  try:
    result = trainer.train(config, args.workdir, progress=not args.no_progress)
  except trainer.NonFiniteError as e:
    print(f"modeformer train: error: {e}", file=sys.stderr)
    return 3
  except trainer.Preempted as e:
    print(f"modeformer train: {e}", file=sys.stderr)
    return 143
  summary = {"workdir": args.workdir, "step": result.step, **result.last_metrics}
  if args.json:
    print(json.dumps(summary))
  else:
    metrics = result.last_metrics
    trained = (f"loss {metrics['loss']:.4f}, accuracy {metrics['accuracy']:.3f}" if metrics
               else "already trained, nothing to do")
    print(f"done: step {result.step}, {trained}; run in {args.workdir}")
  return 0
