"""Sync accuracy of a trained model with the protocol of Perfect Match and VocaLiST (SPEC section 5).

For every video of the split: the 5-frame windows starting at frames 0 .. L-6, each scored against the audio
at offsets -S..+S frames (S = --max-offset-frames); a window is correct when the best offset is within +-1 frame;
K-frame clips average the scores of K-4 consecutive windows; accuracy per video, then the mean over videos.
This is the arithmetic of VocaLiST's test script (test_lrs2.py) exactly, its treatment of short videos
included (evaluation/protocol.py); every video with a window counts, shorter ones are listed as skipped.

Examples:
  modeformer eval --checkpoint runs/lrs2 --which best --data /data/prep --dataset lrs2
  modeformer eval --checkpoint runs/tiny --limit 8 --naive     # the run's own data (synthetic runs: synthetic)

Writes into --out (default RUN/eval/<split>-<step>): results.json (accuracy per clip length, per-video
accuracies, offset histograms, skipped videos), table.md (the paper's Table 1 layout, its rows alongside),
accuracy_vs_clip_length.png and offset_histogram.png. Exit status: 0 done, 2 bad input.

eval runs as one process on all of this host's devices (start it once; under `modeformer launch`, srun or
mpirun it stops with that message). Compiled encoders are kept in the compilation cache
(~/.cache/modeformer/xla, or $JAX_COMPILATION_CACHE_DIR), so a second eval of the same model starts faster.
The flags are spelled as in `sync` and `export` (--checkpoint PATH, --which, --max-offset-frames); the old
spellings (--workdir PATH with --checkpoint STEP, --max-offset) still work for a release, with a warning.
"""

from __future__ import annotations

import json
import os
import sys

from modeformer_jax.commands import options
from modeformer_jax.errors import UserError

HELP = "sync accuracy on a split (SPEC section 5 protocol), Table 1 layout"


def add_arguments(parser) -> None:
  parser.add_argument("--checkpoint", metavar="PATH",
                      help="training run folder (config.json + checkpoints/) or an exported model folder "
                      "(formerly --workdir)")
  parser.add_argument("--which", default="last", metavar="last|best|STEP",
                      help="checkpoint of a training run: the last, the best by validation accuracy, or a step "
                      "(default: %(default)s)")
  # Until 0.2: --workdir PATH, and --checkpoint STEP beside it for what --which says now.
  options.add_deprecated(parser, "--workdir", "--checkpoint", dest="workdir")
  parser.add_argument("--data", metavar="DIR",
                      help="`modeformer prep --out` folder (default: the data source in the run's config)")
  parser.add_argument("--dataset", choices=("lrs2", "lrs3"), help="dataset under --data (default: the run's)")
  parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
  parser.add_argument("--clip-lengths", default="5,7,9,11,13,15", help="K frames of context, odd, >= 5")
  parser.add_argument("--max-offset-frames", type=int, default=15, metavar="S",
                      help="candidates at -S..+S frames (default %(default)s)")
  options.add_deprecated(parser, "--max-offset", "--max-offset-frames", type=int)
  parser.add_argument("--out", help="output folder (default: CHECKPOINT/eval/<split>-<step>[-naive])")
  parser.add_argument("--naive", action="store_true",
                      help="score each (video, audio) window pair with its own encoder passes (~31x slower; "
                      "same numbers)")
  parser.add_argument("--limit", type=int, help="only the first N videos of the split")
  parser.add_argument("--batch-size", type=int, default=64, help="encoder batch (split over local devices)")
  parser.add_argument("--no-progress", action="store_true", help="no progress bar")
  options.add_json(parser)


def run(args) -> int:
  from modeformer_jax import runtime
  from modeformer_jax.evaluation.evaluate import evaluate_run
  from modeformer_jax.evaluation.protocol import parse_clip_lengths
  from modeformer_jax.evaluation.report import summary_text, write_report
  from modeformer_jax.weights import is_export, parse_which

  runtime.require_one_process("modeformer eval")
  runtime.enable_compilation_cache()

  if getattr(args, "workdir", None) is not None:  # the old spelling: --workdir PATH [--checkpoint STEP]
    if args.checkpoint is not None:
      print("modeformer eval: warning: --checkpoint STEP beside --workdir is deprecated; use --which STEP",
            file=sys.stderr)
      args.which = args.checkpoint
    args.checkpoint = args.workdir
  if args.checkpoint is None:
    raise UserError("--checkpoint: required (a training run folder or an exported model folder)")
  clip_lengths = options.parsed("--clip-lengths", args.clip_lengths, parse_clip_lengths)
  which = options.parsed("--which", args.which, parse_which)
  if args.max_offset_frames < 1:
    raise UserError(f"--max-offset-frames {args.max_offset_frames}: must be >= 1")
  if args.limit is not None and args.limit < 1:
    raise UserError(f"--limit {args.limit}: must be >= 1")
  if args.data is None and is_export(args.checkpoint):
    raise UserError("an exported model carries no data source: pass --data DIR (a `modeformer prep --out` folder)")
  results = evaluate_run(args.checkpoint, which=which, split=args.split,
                         data_dir=args.data, dataset=args.dataset, clip_lengths=clip_lengths,
                         max_offset=args.max_offset_frames, naive=args.naive, limit=args.limit,
                         batch_size=args.batch_size, progress=not args.no_progress)
  step = results["model"]["step"]
  out = args.out or os.path.join(args.checkpoint, "eval", f"{args.split}-{'export' if step is None else step}"
                                 + ("-naive" if args.naive else ""))
  write_report(results, out)
  if args.json:
    print(json.dumps(results))
  else:
    print(summary_text(results) + f"written to {out}")
  return 0
