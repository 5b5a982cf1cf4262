"""The whole system on generated data, one step after another, each through its own subcommand:

  1. synth   an LRS2-layout dataset (real mp4 files) and a few clips with known audio offsets
  2. prep    the dataset into ArrayRecord shards
  3. train   a narrow ModEFormer (the shipped `tiny` config) on the shards, half the crops seen as through the
             small faces of wide shots (data.augment.low_res)
  4. eval    the paper's protocol on the test split (clip lengths 5..15), table and plot
  5. sync    offset detection on the shifted clips: detected vs true
  6. export  to PyTorch (and ONNX when onnxruntime is installed), checked for parity

Re-running reuses finished steps (synth and prep resume, train resumes from its checkpoint).

The training length fits a time budget (--minutes): after prep, the real train step is compiled and timed
on this machine, and training gets the steps that the budget leaves after what is already spent and a reserve
for start-up, the trainer's own compile, eval, sync and export. The chosen steps are written to
WORKDIR/plan.json, so a rerun resumes the same run rather than re-timing it. --steps fixes the length instead
(the same run on every machine).

Example: modeformer demo --workdir runs/demo
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import sys
import time

from modeformer_jax.commands import options

TINY_CONFIG = "tiny"  # shipped in the package (modeformer_jax/configs), so an installed demo finds it

# The centre 62.5% of the generated 160x160 LRS2 frames: the face framed as a face detector crops it (the
# framing configs/tiny.py's in-memory synthetic source renders, data.synthetic_face_scale = 1.6).
FACE_BOX = (0.1875, 0.1875, 0.8125, 0.8125)

# Share of training examples seen through a small face (data.augment.low_res), so that `sync` reads the faces of
# wide shots, down to about 24 px, which it upsamples to 96x96. 0.5: the share a fine-tune of the demo measured
# first; trained with it from the start, close-ups lose nothing measurable (BENCHMARKS.md "Face detectors").
LOW_RES_SHARE = 0.5

HELP = "the whole pipeline on generated data: synth, prep, train, eval, sync, export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--workdir", default="runs/demo", help="where everything is written (default runs/demo)")
  parser.add_argument("--speakers", type=int, default=40,
                      help="generated speakers, assigned to splits whole (default 40: 4 test speakers and 32 "
                      "training speakers; speakers vary more than clips do, so the test split needs several)")
  parser.add_argument("--clips-per-speaker", type=int, default=2, help="generated clips per speaker (default 2)")
  parser.add_argument("--seconds", type=float, default=4.0,
                      help="length of each generated clip in seconds (default 4)")
  parser.add_argument("--minutes", type=float, default=9.5,
                      help="time budget of the whole demo in minutes (default 9.5): training gets the steps that "
                      "fit in what synth and prep leave, minus a reserve for start-up, compiles, eval, sync and "
                      "export, at this machine's measured step time")
  parser.add_argument("--steps", type=int, default=0,
                      help="training steps of the demo model (default 0: as many as --minutes allows)")
  parser.add_argument("--batch-size", type=int, default=32, help="training batch: unique clips per step (default 32)")
  parser.add_argument("--num-negatives", type=int, default=1,
                      help="hard negatives per clip (default 1: at this size more unique clips per step beat "
                      "more hard negatives, BENCHMARKS.md; formerly --negatives)")
  options.add_deprecated(parser, "--negatives", "--num-negatives", type=int)
  parser.add_argument("--seed", type=int, default=0, help="seed of the generated data and the model (default 0)")


def _step(title: str, started: float) -> None:
  print(f"\n=== {title} (at {time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)


def _call(argv: list[str]) -> None:
  from modeformer_jax import cli
  status = cli.main(argv)
  if status not in (0, 1) or (status == 1 and argv[0] != "sync"):
    raise SystemExit(f"modeformer demo: `modeformer {' '.join(argv)}` failed with status {status}")


def _train_overrides(args: argparse.Namespace, prepared: str) -> list[str]:
  return [f"--config.data.data_dir={prepared}", "--config.stages.0.split=pretrain+train",
          f"--config.preprocess.lrs2_box={FACE_BOX}", f"--config.seed={args.seed}",
          f"--config.stages.0.batch_size={args.batch_size}", f"--config.stages.0.num_negatives={args.num_negatives}",
          f"--config.data.augment.low_res={LOW_RES_SHARE}"]


def _planned_steps(args: argparse.Namespace, overrides: list[str], plan_path: str, elapsed_s: float) -> int:
  """Training steps for the run: --steps, the plan of an earlier run with the same budget, or timed now."""
  if args.steps:
    return args.steps
  from modeformer_jax.config_loading import load_config
  from modeformer_jax.train.budget import MIN_STEPS, plan_steps

  plan = plan_steps(load_config(TINY_CONFIG, overrides), args.batch_size, minutes=args.minutes, elapsed_s=elapsed_s,
                    plan_path=plan_path,
                    settings={"minutes": args.minutes, "batch_size": args.batch_size, "negatives": args.num_negatives})
  if plan.reused:
    print(f"training steps: {plan.steps} (planned by an earlier run, {plan_path})")
    return plan.steps
  print(f"training steps: {plan.steps} ({plan.step_s:.2f} s per step of {args.batch_size} clips measured here; "
        f"{plan.budget_s:.0f} s of the {args.minutes:g}-minute budget left for training)")
  if plan.fitting < MIN_STEPS:
    print(f"warning: --minutes {args.minutes:g} leaves less than {MIN_STEPS} steps; training {MIN_STEPS} anyway")
  return plan.steps


def run(args) -> int:
  w = args.workdir
  data, shifted, prepared = (os.path.join(w, d) for d in ("data/lrs2", "data/shifted", "prepared"))
  run_dir, eval_dir, export_dir = (os.path.join(w, d) for d in ("run", "eval", "export"))
  started = time.perf_counter()

  _step("1/6 synth: generated LRS2-layout dataset", started)
  _call(["synth", "--out", data, "--layout", "lrs2", "--speakers", str(args.speakers), "--clips-per-speaker",
         str(args.clips_per_speaker), "--seconds", str(args.seconds), "--seed", str(args.seed)])
  _call(["synth", "--out", shifted, "--layout", "lrs2", "--speakers", "2", "--clips-per-speaker", "2",
         "--seconds", str(max(args.seconds, 4.0)), "--seed", str(args.seed + 1), "--offsets-frames=-6,-3,3,6",
         "--offset-fraction", "1"])

  _step("2/6 prep: ArrayRecord shards", started)
  _call(["prep", "--dataset", "lrs2", "--src", data, "--out", prepared, "--splits", "pretrain,train,val,test",
         "--lrs2-box", ",".join(map(str, FACE_BOX))])

  _step("3/6 train: the tiny config on the shards", started)
  overrides = _train_overrides(args, prepared)
  steps = _planned_steps(args, overrides, os.path.join(w, "plan.json"), time.perf_counter() - started)
  _call(["train", "--config", TINY_CONFIG, "--workdir", run_dir, *overrides, f"--config.stages.0.steps={steps}",
         f"--config.checkpoint_every={max(steps // 4, 1)}"])

  _step("4/6 eval: sync accuracy by clip length on the test split", started)
  _call(["eval", "--checkpoint", run_dir, "--split", "test", "--out", eval_dir])

  _step("5/6 sync: offsets of clips shifted by a known amount", started)
  summary = os.path.join(w, "sync_summary.csv")
  _call(["sync", shifted, "--checkpoint", run_dir, "--face-centered", "--summary", summary,
         "--plot", os.path.join(w, "sync_plots"), "--workers", "1"])
  truth = {}
  with open(os.path.join(shifted, "manifest.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      truth[os.path.normpath(os.path.join(shifted, row["path"]))] = row["offset_frames"]
  print(f"{'clip':<60} {'true':>5} {'detected':>9}")
  with open(summary) as f:
    for row in csv.DictReader(f):
      path = os.path.normpath(row["path"])
      if path in truth:
        print(f"{os.path.relpath(path, shifted):<60} {truth[path]:>5} {row['av_offset_frames']:>9}")

  _step("6/6 export: PyTorch" + (" and ONNX" if importlib.util.find_spec("onnxruntime") else ""), started)
  formats = "torch,onnx" if importlib.util.find_spec("onnxruntime") else "torch"
  _call(["export", "--checkpoint", run_dir, "--out", export_dir, "--format", formats, "--overwrite"])

  print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; everything is under {w}:")
  for what, where in [("generated videos", data), ("prepared shards", prepared),
                      ("checkpoints", os.path.join(run_dir, "checkpoints")),
                      ("TensorBoard logs", os.path.join(run_dir, "tensorboard")),
                      ("accuracy table and plot", eval_dir), ("sync summary and plots", summary),
                      ("PyTorch/ONNX export", export_dir)]:
    print(f"  {what:<26} {where}")
  return 0
