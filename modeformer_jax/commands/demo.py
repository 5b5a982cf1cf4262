"""The whole system on generated data, one step after another, each through its own subcommand:

  1. synth   an LRS2-layout dataset (real mp4 files) and a few clips with known audio offsets
  2. prep    the dataset into ArrayRecord shards
  3. train   a narrow ModEFormer (configs/tiny.py) on the shards
  4. eval    the paper's protocol on the test split (clip lengths 5..15), table and plot
  5. sync    offset detection on the shifted clips: detected vs true
  6. export  to PyTorch (and ONNX when onnxruntime is installed), checked for parity

Re-running reuses finished steps (synth and prep resume, train resumes from its checkpoint).

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

# configs/ sits beside the package in a checkout (the README installs it editable from there).
TINY_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "configs", "tiny.py")

# The centre 62.5% of the generated 160x160 LRS2 frames: the face framed as a face detector crops it (the
# framing configs/tiny.py's in-memory synthetic source renders, data.synthetic_face_scale = 1.6).
FACE_BOX = (0.1875, 0.1875, 0.8125, 0.8125)

HELP = "the whole pipeline on generated data: synth, prep, train, eval, sync, export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--workdir", default="runs/demo", help="where everything is written (default runs/demo)")
  parser.add_argument("--speakers", type=int, default=12, help="generated speakers (split by speaker)")
  parser.add_argument("--clips-per-speaker", type=int, default=6, help="generated clips per speaker")
  parser.add_argument("--seconds", type=float, default=4.0, help="length of each generated clip")
  parser.add_argument("--steps", type=int, default=300, help="training steps of the demo model")
  parser.add_argument("--batch-size", type=int, default=16, help="training batch (clips)")
  parser.add_argument("--seed", type=int, default=0, help="seed of the generated data and the model")


def _step(title: str) -> None:
  print(f"\n=== {title}", file=sys.stderr, flush=True)


def _call(argv: list[str]) -> None:
  from modeformer_jax import cli
  status = cli.main(argv)
  if status not in (0, 1) or (status == 1 and argv[0] != "sync"):
    raise SystemExit(f"modeformer demo: `modeformer {' '.join(argv)}` failed with status {status}")


def run(args) -> int:
  w = args.workdir
  data, shifted, prepared = (os.path.join(w, d) for d in ("data/lrs2", "data/shifted", "prepared"))
  run_dir, eval_dir, export_dir = (os.path.join(w, d) for d in ("run", "eval", "export"))
  started = time.perf_counter()

  _step("1/6 synth: generated LRS2-layout dataset")
  _call(["synth", "--out", data, "--layout", "lrs2", "--speakers", str(args.speakers), "--clips-per-speaker",
         str(args.clips_per_speaker), "--seconds", str(args.seconds), "--seed", str(args.seed)])
  _call(["synth", "--out", shifted, "--layout", "lrs2", "--speakers", "2", "--clips-per-speaker", "2",
         "--seconds", str(max(args.seconds, 4.0)), "--seed", str(args.seed + 1), "--offsets-frames=-6,-3,3,6",
         "--offset-fraction", "1"])

  _step("2/6 prep: ArrayRecord shards")
  _call(["prep", "--dataset", "lrs2", "--src", data, "--out", prepared, "--splits", "pretrain,train,val,test",
         "--lrs2-box", ",".join(map(str, FACE_BOX))])

  _step("3/6 train: configs/tiny.py on the shards")
  _call(["train", "--config", TINY_CONFIG, "--workdir", run_dir, f"--config.data.data_dir={prepared}",
         "--config.stages.0.split=pretrain+train", f"--config.preprocess.lrs2_box={FACE_BOX}",
         f"--config.seed={args.seed}", f"--config.stages.0.steps={args.steps}",
         f"--config.stages.0.batch_size={args.batch_size}", f"--config.checkpoint_every={max(args.steps // 4, 1)}"])

  _step("4/6 eval: sync accuracy by clip length on the test split")
  _call(["eval", "--workdir", run_dir, "--split", "test", "--out", eval_dir])

  _step("5/6 sync: offsets of clips shifted by a known amount")
  summary = os.path.join(w, "sync_summary.csv")
  _call(["sync", shifted, "--checkpoint", run_dir, "--face-centered", "--summary", summary,
         "--plot", os.path.join(w, "sync_plots"), "--jobs", "1"])
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

  _step("6/6 export: PyTorch" + (" and ONNX" if importlib.util.find_spec("onnxruntime") else ""))
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
