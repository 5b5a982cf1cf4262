"""What the sweep scripts in experiments/ share: one training run per setting, each evaluated with the SPEC
section 5 protocol, run here one after another or printed as commands for a cluster, and the results
collected into one table (markdown + json) and one plot.

Layout of --out: runs/<name>/ is each run's workdir (modeformer train --workdir), runs/<name>/eval/<split>/
its evaluation (modeformer eval --out). A run whose results.json exists is not trained or evaluated again,
so an interrupted sweep continues where it stopped, and after the printed commands have run on a cluster,
running the same sweep command here (without --print-commands) only collects the table. Delete a run's
folder to redo it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from typing import Any, Callable, Sequence

import ml_collections

from modeformer_jax import atomic
from modeformer_jax.config_loading import load_config
from modeformer_jax.errors import UserError
from modeformer_jax.evaluation.protocol import parse_clip_lengths
from modeformer_jax.weights import parse_which


@dataclasses.dataclass
class Run:
  name: str              # folder under OUT/runs
  overrides: list[str]   # --config.FIELD=VALUE of this run, on top of the sweep's own
  columns: dict          # the run's key columns in the table (e.g. {"N": 11})
  config: str | None = None  # this run's config (PATH[:ARG]) instead of the sweep's --config


def _argument(parse: Callable[[str], Any]) -> Callable[[str], Any]:
  """An argparse type from a parser that raises ValueError: its message becomes the usage error."""
  def convert(text: str) -> Any:
    try:
      return parse(text)
    except ValueError as e:
      raise argparse.ArgumentTypeError(f"{text}: {e}") from None
  return convert


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
  """Evaluation options (as `modeformer eval`): used by every script here."""
  parser.add_argument("--out", required=True, help="output folder: runs/, table (.md, .json) and plot (.png)")
  parser.add_argument("--which", default="last", type=_argument(parse_which),
                      help="checkpoint of each run to evaluate: last, best or a step")
  parser.add_argument("--checkpoint", dest="which", type=_argument(parse_which), help=argparse.SUPPRESS)  # old
  parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
  parser.add_argument("--clip-lengths", default="5,7,9,11,13,15", type=_argument(parse_clip_lengths),
                      help="K frames of context, odd, >= 5")
  parser.add_argument("--max-offset-frames", type=int, default=15, metavar="S", help="candidates at -S..+S frames")
  parser.add_argument("--max-offset", dest="max_offset_frames", type=int, help=argparse.SUPPRESS)  # old spelling
  parser.add_argument("--limit", type=int, help="evaluate only the first N videos (CI)")
  parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
  """Training sweep options; any --config.FIELD=VALUE after them applies to every run."""
  parser.add_argument("--config", default="modeformer_lrs2", metavar="PATH[:ARG]",
                      help="base config of every run (default: modeformer_lrs2)")
  parser.add_argument("--steps", type=int, help="steps of every stage (default: the config's)")
  parser.add_argument("--print-commands", action="store_true",
                      help="print a `modeformer train` + `modeformer eval` pair per run instead of running "
                      "them; afterwards run the same command without this flag to collect the table")
  add_eval_arguments(parser)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
  """(args, --config.* overrides for every run)."""
  args, overrides = parser.parse_known_args(argv)
  bad = [o for o in overrides if not o.startswith("--config.")]
  if bad:
    parser.error(f"unrecognized arguments: {' '.join(bad)}")
  return args, overrides


def stage_overrides(config: ml_collections.ConfigDict, **fields) -> list[str]:
  """--config.stages.I.FIELD=VALUE for every stage of the config."""
  return [f"--config.stages.{i}.{k}={v}" for i in range(len(config.stages)) for k, v in fields.items()]


def run_config(args, run: Run) -> str:
  return run.config or args.config


def _run_overrides(args, overrides: Sequence[str], run: Run) -> list[str]:
  steps = stage_overrides(load_config(run_config(args, run), overrides), steps=args.steps) if args.steps else []
  return [*overrides, *steps, *run.overrides]


def run_dir(args, run: Run) -> str:
  return os.path.join(args.out, "runs", run.name)


def eval_dir(args, run: Run) -> str:
  return os.path.join(run_dir(args, run), "eval", args.split)


def eval_options(args) -> list[str]:
  opts = ["--which", str(args.which), "--split", args.split, "--max-offset-frames", str(args.max_offset_frames),
          "--clip-lengths", ",".join(map(str, args.clip_lengths))]
  return opts + (["--limit", str(args.limit)] if args.limit else [])


def commands(args, overrides: Sequence[str], run: Run) -> tuple[list[str], list[str]]:
  """(modeformer train ..., modeformer eval ...) argv of one run."""
  train = ["modeformer", "train", "--config", run_config(args, run), "--workdir", run_dir(args, run),
           *_run_overrides(args, overrides, run)]
  evaluate = ["modeformer", "eval", "--checkpoint", run_dir(args, run), *eval_options(args),
              "--out", eval_dir(args, run)]
  return train, evaluate


def execute(args, overrides: Sequence[str], run: Run) -> dict:
  """Trains (resuming) and evaluates one run in this process, unless its results.json exists."""
  from modeformer_jax.evaluation.evaluate import evaluate_run
  from modeformer_jax.evaluation.report import write_report
  from modeformer_jax.train import trainer

  results_path = os.path.join(eval_dir(args, run), "results.json")
  if os.path.isfile(results_path):
    print(f"{run.name}: using {results_path}", file=sys.stderr)
    with open(results_path) as f:
      return json.load(f)
  config = load_config(run_config(args, run), _run_overrides(args, overrides, run))
  print(f"{run.name}: training in {run_dir(args, run)}", file=sys.stderr)
  trainer.train(config, run_dir(args, run), progress=not args.no_progress)
  results = evaluate_run(run_dir(args, run), which=args.which, split=args.split,
                         clip_lengths=args.clip_lengths, max_offset=args.max_offset_frames, limit=args.limit,
                         progress=not args.no_progress)
  write_report(results, eval_dir(args, run))
  return results


def run_sweep(args, overrides: Sequence[str], runs: Sequence[Run]) -> list[dict] | None:
  """Results per run (None with --print-commands, which prints the commands instead)."""
  if args.print_commands:
    for run in runs:
      for argv in commands(args, overrides, run):
        print(shlex.join(argv))
    return None
  # grain worker processes read absl flags (SPEC section 8), as under the `modeformer` command.
  from absl import flags
  flags.FLAGS.mark_as_parsed()
  return [execute(args, overrides, run) for run in runs]


def write_table(out: str, name: str, rows: Sequence[dict], columns: Sequence[str], *, title: str,
                series: dict, xlabel: str, notes: str = "", dashed: Sequence[str] = ()) -> dict[str, str]:
  """OUT/NAME.md (Table 1 layout), OUT/NAME.json (the rows) and OUT/NAME.png (the series)."""
  from modeformer_jax.evaluation.report import markdown_table, plot_lines

  paths = {ext: os.path.join(out, f"{name}.{ext}") for ext in ("md", "json", "png")}
  text = f"# {title}\n\nSync accuracy (%), SPEC section 5 protocol.\n\n{markdown_table(rows, columns)}"
  atomic.write(paths["md"], text + (f"\n{notes}\n" if notes else ""))
  atomic.write(paths["json"], json.dumps(list(rows), indent=1))
  plot_lines(paths["png"], series, xlabel=xlabel, title=title, dashed=dashed)
  print(text + (f"\n{notes}" if notes else "") + f"\nwritten to {paths['md']}, {paths['json']}, {paths['png']}")
  return paths


def main(fn: Callable[[Sequence[str] | None], int]) -> None:
  """Runs a script's main(argv): bad input is one line on stderr and exit status 2, as in `modeformer`."""
  try:
    code = fn(None)
  except UserError as e:
    print(f"{os.path.basename(sys.argv[0])}: error: {e}", file=sys.stderr)
    code = 2
  sys.exit(code)
