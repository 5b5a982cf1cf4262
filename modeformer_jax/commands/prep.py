"""Prepare LRS2 / LRS3 (or a folder of videos) as a TFDS ArrayRecord dataset for training.

Per clip: decode at 25 fps and 16 kHz mono, cut audio and video to a common length, face boxes (LRS2: fixed
centred box; LRS3: the .txt box table, else the face detector; folder: the detector), 96x96 RGB crops and the
80-bin log-mel. Clips that cannot be used are skipped with a reason, never fatal. Each clip's result is kept in
OUT/_work as soon as it is done, so an interrupted run resumes where it stopped; the shards are written last,
to a temporary folder that is renamed into place (OUT/<dataset>/<version>). A rerun with unchanged inputs does
nothing.

Outputs: OUT/<dataset>/1.0.0 (read it with modeformer_jax.data.records.open_split or tfds.data_source),
OUT/prep_report.jsonl (one line per clip: status, reason, timings) and a summary (--json: as JSON on stdout).
Exit status 0 when every clip was prepared; 1 when clips were skipped (the dataset holds the others; the
summary names the skipped ones) or none could be prepared; 2 for bad arguments.

Examples:
  modeformer prep --dataset lrs2 --src /data/lrs2 --out /data/prepared
  modeformer prep --dataset lrs3 --src /data/lrs3 --out /data/prepared --splits pretrain,train,val,test
  modeformer prep --dataset lrs2 --src /mnt/lrs2 --out /mnt/prepared --runner beam \\
      --beam-options="--runner=FlinkRunner --flink_master=HOST:8081 --environment_type=EXTERNAL ..."

Beam workers need --src and --out mounted at the same paths (data_prep/README.md, data_prep/launch_beam.sh).
"""

from __future__ import annotations

import argparse
import json
import shlex

from modeformer_jax.commands import options
from modeformer_jax.cpu_cores import usable_cores
from modeformer_jax.data import lrs_layout
from modeformer_jax.errors import UserError

HELP = "prepare LRS2/LRS3 folders as a TFDS ArrayRecord dataset (resumable, local or Apache Beam)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--dataset", required=True, choices=lrs_layout.DATASETS,
                      help="source layout: lrs2, lrs3, or folder (SRC/<split>/<speaker>/<clip>.mp4, "
                      "detector boxes)")
  parser.add_argument("--src", required=True, help="dataset root as distributed (see SPEC section 4)")
  parser.add_argument("--out", required=True, help="output data_dir; the dataset goes to OUT/<dataset>/<version>")
  parser.add_argument("--splits", default="",
                      help="comma-separated splits (default lrs2: pretrain,train,val,test; lrs3: "
                      "pretrain,trainval,test, where train and val split trainval by speaker; folder: every "
                      "split folder)")
  parser.add_argument("--workers", type=int, default=None,
                      help="local worker processes, each keeping its decoding and detection to its share "
                      "of the cores' threads (default: one per core this process may use, %d here)" %
                      len(usable_cores()))
  parser.add_argument("--runner", default="local", choices=("local", "beam"),
                      help="local process pool, or an Apache Beam pipeline (optional extra apache-beam)")
  parser.add_argument("--beam-options", default="",
                      help="Beam PipelineOptions flags as one string, given with '=': "
                      "--beam-options=\"--runner=FlinkRunner --flink_master=H:8081\" (default: DirectRunner)")
  parser.add_argument("--frame-storage", default="jpeg", choices=("raw", "jpeg"),
                      help="face crops as raw uint8 or one JPEG per frame (default jpeg: 4x smaller on disk, "
                      "6x faster to load a training window; see data_prep/README.md)")
  parser.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality 1..100 (default 90)")
  parser.add_argument("--min-frames", type=int, default=5,
                      help="skip clips with fewer video frames (default 5, one training window)")
  parser.add_argument("--min-mel-frames", type=int, default=16,
                      help="skip clips with fewer log-mel frames (default 16, one audio window)")
  parser.add_argument("--max-av-diff", type=float, default=0.3,
                      help="skip clips whose audio and video durations differ by more seconds (default 0.3)")
  parser.add_argument("--lrs2-box", metavar="X0,Y0,X1,Y1", default=None,
                      help="LRS2's fixed face box as fractions of the frame (default 0,0,1,1: the whole frame, "
                           "as LRS2 frames are face-centred). A tighter box such as 0.1875,0.1875,0.8125,0.8125 "
                           "frames the face as a face detector would (train with the same "
                           "--config.preprocess.lrs2_box so `sync --face-centered` crops alike)")
  parser.add_argument("--min-face-coverage", type=float, default=0.5,
                      help="skip detector-boxed clips with a face in fewer of the frames (default 0.5)")
  parser.add_argument("--lrs3-val-fraction", type=float, default=0.05,
                      help="lrs3: share of trainval speakers in the derived val split (default 0.05)")
  parser.add_argument("--limit", type=int, default=None, help="only the first K clips of each split (a trial run)")
  parser.add_argument("--replace", action="store_true",
                      help="allow the new dataset to drop splits that the existing one holds")
  options.add_json(parser)
  parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
  from modeformer_jax.data import prep

  if args.workers is not None and args.workers < 1:
    raise UserError(f"--workers {args.workers}: must be at least 1")
  if args.beam_options and args.runner != "beam":
    raise UserError(f"--beam-options {args.beam_options}: only used with --runner beam")
  options = prep.PrepOptions(
      dataset=args.dataset, preprocess=_preprocess(args.lrs2_box), frame_storage=args.frame_storage,
      jpeg_quality=args.jpeg_quality,
      min_frames=args.min_frames, min_mel_frames=args.min_mel_frames, max_av_diff=args.max_av_diff,
      min_face_coverage=args.min_face_coverage)
  splits = [s.strip() for s in args.splits.split(",") if s.strip()]
  summary = prep.prepare(args.dataset, args.src, args.out, splits, options=options, workers=args.workers,
                         runner=args.runner, beam_options=shlex.split(args.beam_options), limit=args.limit,
                         val_fraction=args.lrs3_val_fraction, replace=args.replace,
                         progress=not args.no_progress)
  if args.json:
    print(json.dumps(summary, indent=1, ensure_ascii=False))
  else:
    print(prep.format_summary(summary))
  # Like `sync` over many files: skipped input is an error the caller should see, though the rest was written.
  return 1 if summary["skipped"] or summary["status"] == "nothing" else 0


def _preprocess(lrs2_box: str | None):
  """preprocess_config() with --lrs2-box applied."""
  from modeformer_jax.media.preprocess_config import preprocess_config

  cfg = preprocess_config()
  if lrs2_box is None:
    return cfg
  try:
    box = tuple(float(v) for v in lrs2_box.split(","))
  except ValueError:
    box = ()
  if len(box) != 4 or not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
    raise UserError(f"--lrs2-box {lrs2_box}: expected X0,Y0,X1,Y1 with 0 <= X0 < X1 <= 1 and 0 <= Y0 < Y1 <= 1")
  cfg.lrs2_box = box
  return cfg
