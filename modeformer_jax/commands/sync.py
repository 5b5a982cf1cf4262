"""Detect the audio-video offset of videos with a trained model and report it as syncnet_python does.

Sign convention: AV offset > 0 means the audio LEADS the video (the sound of video frame i is at audio frame
i - offset: you hear it before you see it); AV offset < 0 means the audio LAGS; 1 frame = 40 ms at 25 fps.
Every report says it in words too ("audio leads video by 120 ms").

Any file PyAV reads (mp4, mkv, mov, avi, webm; H.264, HEVC, ...) at any frame rate and audio format is
converted to 25 fps and 16 kHz mono (phone video turned upright). Faces are found by BlazeFace (or the Haar
cascade) and tracked; with several faces each is scored against the audio and the speaking one is reported
(see "Over time" below). Frames without a face are left out (every 5-frame window touching one); coverage and
face height are reported. --face-centered skips detection for videos that are face crops already
(LRS2/LRS3-style).

Numbers per file (syncnet_python's definitions over the 5-frame windows and shifts -S..S):
  AV offset   S - argmin over shifts of mdist (mdist = mean window distance per shift)
  Min dist    min(mdist): lower = better match            (mean over files = LSE-D)
  Confidence  median(mdist) - min(mdist): higher = surer  (mean over files = LSE-C)
The model scores cosine similarity s of unit embeddings; distance = sqrt(2 - 2 s), the Euclidean distance of
the unit embeddings (0..2), so these formulas keep their meaning. The values compare runs and checkpoints of
ModEFormer models; published LSE-D / LSE-C values come from SyncNet's own weights and are on another scale:
convert those with `modeformer import-syncnet` and pass the folder as --checkpoint. SyncNet checkpoints are
scored with --syncnet-compat by default: syncnet_python's Euclidean distances of raw embeddings, with the
audio embeddings zero-padded by S windows at both ends and those padded candidates averaged in, exactly as
that tool computes Min dist and Confidence (and on its inputs: 224x224 crops as its crop_video makes them,
python_speech_features MFCCs).
Also reported: the mean similarity at every offset, the histogram of each window's best offset and its mode
(ModEFormer's per-window analysis), syncnet's framewise confidence (median-filtered over 9), face coverage.

Over time (--timeline SECONDS): the file is cut into segments of SECONDS every --timeline-hop (default half
of it) and each gets its AV offset and Confidence, from the windows embedded once for the whole file (no extra
model time). A segment whose Confidence is below --min-confidence (default: what chance gives on this file,
the 99th percentile of segments scored against audio from elsewhere in the file, or of Gaussian noise fitted to
them where that is higher, as on short files) says it cannot decide. From
the decided segments one line says whether the offset is constant, drifts linearly (ms per minute, with its
error) or steps at a time; --correct then shifts (constant), resamples the audio (drift) or refuses (step).
With several faces each face is scored and every segment names the one whose video matches the audio best,
with each face's Confidence; the file's numbers are the speaking face's, segment by segment (10 s segments
when --timeline is not given). --json adds every face track's boxes per frame.

Output: text per file (lines `AV offset:`, `Min dist:`, `Confidence:` as syncnet_python prints them, then
ours), or with --json one JSON object per file per line (a failed file gives {"path", "error"}); with several
files a summary table follows (with --json: a last line {"summary": {...}}).

Examples:
  modeformer sync talk.mp4 --checkpoint runs/lrs2
  modeformer sync clips/ --checkpoint exported/modeformer --face-centered --workers 2 --summary sync.csv
  modeformer sync talk.mov --checkpoint runs/lrs2 --correct talk_fixed.mov --plot talk.png
  modeformer sync interview.mp4 --checkpoint runs/lrs2 --timeline 10 --timeline-hop 5 --json

With --summary FILE a batch resumes: every file is recorded in FILE.partial as it finishes, a rerun of the
same command scores only the files not recorded (failed ones are tried again), and FILE is written whole at
the end. A rerun with other settings (checkpoint, offsets, faces, decode size) stops instead of mixing them.

Exit status: 0 every file scored, 1 some file failed (each named with its reason; the others still run),
2 bad arguments (including a missing or unreadable checkpoint), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from modeformer_jax.commands import options
from modeformer_jax.cpu_cores import usable_cores
from modeformer_jax.errors import UserError

_MAX_DEFAULT_WORKERS = 8

HELP = "detect audio-video offsets (AV offset > 0: audio leads), syncnet-style scores, batch, correction"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("inputs", nargs="+", metavar="INPUT",
                      help="video files, or folders searched recursively for video files")
  parser.add_argument("--checkpoint", required=True, metavar="PATH",
                      help="a training workdir (modeformer train --workdir) or an exported model folder")
  parser.add_argument("--which", default="last", metavar="last|best|STEP",
                      help="checkpoint of a training workdir (default: %(default)s)")
  parser.add_argument("--max-offset-frames", type=int, default=15, metavar="S",
                      help="search offsets -S..S frames; a video needs at least 5 + 2 S frames "
                      "(default: %(default)s)")
  parser.add_argument("--face-centered", action="store_true",
                      help="the video is a face crop already (LRS2/LRS3-style): use the whole frame, no face "
                      "detection")
  parser.add_argument("--face-detector", choices=("blazeface", "haar"), default=None,
                      help="blazeface: MediaPipe's BlazeFace detectors run in JAX (faces from about 18 px tall, "
                      "turned heads); haar: OpenCV's frontal-face Haar cascade, faces from 15%% of the frame "
                      "(default: the checkpoint's preprocess.face_detector; blazeface for models trained now)")
  parser.add_argument("--min-face-px", type=float, default=None, metavar="PX",
                      help="BlazeFace: smallest face box (height, pixels) to look for; smaller means more tiles "
                      "per frame and slower detection (default: the checkpoint's preprocess.min_face_px, 18)")
  parser.add_argument("--syncnet-compat", action=argparse.BooleanOptionalAction, default=None,
                      help="score as syncnet_python does: candidates past the ends against zero-padded audio "
                      "embeddings, averaged in (default: on for SyncNet checkpoints, off for others)")
  options.add_json(parser)
  parser.add_argument("--plot", metavar="FILE",
                      help="write a PNG (similarity by offset, offset histogram, framewise confidence); with "
                      "several inputs FILE is a folder that gets one <input name>.png each")
  parser.add_argument("--correct", metavar="OUT",
                      help="write a copy with the audio shifted into sync (video packets copied, audio "
                      "re-encoded as AAC) and re-check it; OUT is a file for one input, a folder for several")
  parser.add_argument("--workers", type=int, default=None, metavar="N",
                      help="worker processes decoding and tracking faces while the model runs; 0 = all in "
                      "this process. Each holds up to --decode-mb of decoded frames and keeps its decoding "
                      "and detection threads to its share of the cores (its $NPROC). Default: 0 for one "
                      "input, else the number of CPUs, at most 8 (formerly --jobs)")
  options.add_deprecated(parser, "--jobs", "--workers", type=int)
  parser.add_argument("--decode-mb", type=float, default=1024, metavar="MB",
                      help="decoded frames are cropped and dropped in chunks of at most this many megabytes "
                      "per file, so any length fits in memory; faces are tracked within a chunk (default "
                      "%(default)s: about 7 s of 1080p, 1 min of 640x360)")
  parser.add_argument("--timeline", type=float, metavar="SECONDS",
                      help="also report the offset over time: segments of SECONDS (e.g. 10), each with its AV "
                      "offset, Confidence and speaking face, and whether the offset is constant, drifts or "
                      "steps; in the text, --json and --plot")
  parser.add_argument("--timeline-hop", type=float, metavar="SECONDS",
                      help="a segment every SECONDS (default: half of --timeline, so segments overlap by half)")
  parser.add_argument("--min-confidence", type=float, metavar="C",
                      help="a segment needs this syncnet Confidence to report an offset (default: set per file, "
                      "the 99th percentile of segments scored against audio from elsewhere in the file, or "
                      "of Gaussian noise fitted to them where that is higher)")
  parser.add_argument("--max-faces", type=int, default=4, metavar="N",
                      help="score at most N faces per file, the N whose mouths move most; each face costs a pass "
                      "of the video encoder (default: %(default)s)")
  parser.add_argument("--summary", metavar="FILE",
                      help="write per-file rows and the averages (LSE-D, LSE-C) as .csv or .jsonl. The batch "
                      "is resumable: each finished file is recorded in FILE.partial, and rerunning the same "
                      "command after an interruption scores only the files not recorded there")


def _outputs(flag: str, target: str | None, items, suffix: str | None) -> dict[str, str]:
  """Input path -> output path: target itself for one input (or target/<name> if it is a folder), else
  target/<name relative to its input folder> (with the suffix swapped when given)."""
  if not target:
    return {}
  if len(items) == 1 and not os.path.isdir(target):
    return {items[0].path: target}
  if os.path.exists(target) and not os.path.isdir(target):
    raise UserError(f"{target}: {flag} needs a folder for several inputs, and this is a file")
  out = {}
  for item in items:
    name = os.path.splitext(item.name)[0] + suffix if suffix else item.name
    out[item.path] = os.path.join(target, name)
  if len(set(out.values())) < len(out):
    raise UserError(f"{flag}: several inputs have the same name; give their common parent folder as INPUT")
  return out


def _timeline(args: argparse.Namespace):
  """The --timeline options (None without --timeline)."""
  from modeformer_jax.sync.timeline import TimelineOptions

  if args.timeline is None:
    for flag, value in (("--timeline-hop", args.timeline_hop), ("--min-confidence", args.min_confidence)):
      if value is not None:
        raise UserError(f"{flag}: needs --timeline SECONDS")
    return None
  if not 0.5 <= args.timeline < float("inf"):
    raise UserError(f"--timeline: segments must be at least 0.5 s long, got {args.timeline}")
  if args.timeline_hop is not None and not 0.04 <= args.timeline_hop < float("inf"):
    raise UserError(f"--timeline-hop: must be at least one frame (0.04 s), got {args.timeline_hop}")
  if args.min_confidence is not None and not abs(args.min_confidence) < float("inf"):
    raise UserError(f"--min-confidence: must be a number, got {args.min_confidence}")
  return TimelineOptions(args.timeline, args.timeline_hop, args.min_confidence)


def run(args: argparse.Namespace) -> int:
  from modeformer_jax.inference import load_sync_model
  from modeformer_jax.media.preprocess_config import with_face_defaults
  from modeformer_jax.sync import batch
  from modeformer_jax.sync.correct import correct_scored
  from modeformer_jax.sync.detect import SyncResult
  from modeformer_jax.sync.journal import Journal
  from modeformer_jax.sync.plot import plot_result
  from modeformer_jax.weights import parse_which

  which = options.parsed("--which", args.which, parse_which)
  if args.max_offset_frames < 1:
    raise UserError(f"--max-offset-frames: must be at least 1, got {args.max_offset_frames}")
  if args.workers is not None and args.workers < 0:
    raise UserError(f"--workers: must be 0 or more, got {args.workers}")
  if args.min_face_px is not None and not args.min_face_px >= 4:
    raise UserError(f"--min-face-px: must be at least 4, got {args.min_face_px}")
  if not 0 < args.decode_mb < float("inf"):
    raise UserError(f"--decode-mb: must be a positive number, got {args.decode_mb}")
  if args.max_faces < 1:
    raise UserError(f"--max-faces: must be at least 1, got {args.max_faces}")
  timeline = _timeline(args)
  if args.summary:
    batch.summary_format(args.summary)
  items = batch.find_inputs(args.inputs)
  plots = _outputs("--plot", args.plot, items, ".png")
  copies = _outputs("--correct", args.correct, items, None)
  model = load_sync_model(args.checkpoint, which)
  if args.syncnet_compat is not None:
    model.syncnet_compat = args.syncnet_compat
  if args.face_detector or args.min_face_px:
    pp = with_face_defaults(model.config.preprocess)
    pp.face_detector = args.face_detector or pp.face_detector
    pp.min_face_px = args.min_face_px or pp.min_face_px
    model.config.preprocess = pp
  workers = args.workers if args.workers is not None else (0 if len(items) == 1 else
                                                           min(len(items), len(usable_cores()), _MAX_DEFAULT_WORKERS))
  settings = dict(face_centered=args.face_centered, max_offset=args.max_offset_frames, workers=workers,
                  chunk_mb=args.decode_mb, max_faces=args.max_faces, timeline=timeline)
  # What changes the numbers: a journal written with other values is not resumed.
  journal = Journal(args.summary, {
      "checkpoint": os.path.realpath(args.checkpoint), "which": args.which,
      "face_centered": args.face_centered, "max_offset_frames": args.max_offset_frames,
      "syncnet_compat": model.syncnet_compat, "decode_mb": args.decode_mb,
      "face_detector": args.face_detector, "min_face_px": args.min_face_px, "max_faces": args.max_faces,
      "timeline": args.timeline, "timeline_hop": args.timeline_hop,
      "min_confidence": args.min_confidence}) if args.summary else None
  # Scored files are resumed; failed ones are tried again, and rows of files no longer given are left out.
  done = journal.rows if journal else {}
  rows = {item.path: done[item.path] for item in items if done.get(item.path, {}).get("status") == "ok"}
  todo = [item.path for item in items if item.path not in rows]
  if len(todo) < len(items):
    print(f"resuming {journal.path}: {len(items) - len(todo)} of {len(items)} files were scored before",
          file=sys.stderr)

  # Reports stream out as files finish; with --correct each waits for its copy's re-check.
  results, plotted = [], {}
  for result in batch.detect_many(model, todo, **settings):
    results.append(result)
    rows[result.path] = batch.summary_row(result)
    if journal:
      journal.add(rows[result.path])
    if isinstance(result, SyncResult) and result.path in plots:
      plotted[result.path] = plot_result(result, plots[result.path])
    if not copies:
      _emit(result, plotted.get(result.path), None, args.json, several=len(items) > 1)
  rechecks = correct_scored(model, rows, copies, settings, journal) if copies else {}
  for result in results if copies else ():
    _emit(result, plotted.get(result.path), rechecks.get(result.path), args.json, several=len(items) > 1)

  table = [rows[item.path] for item in items]
  summary = batch.averages(table)
  if len(items) > 1:
    print(json.dumps({"summary": summary}) if args.json else "\n" + batch.format_table(table, summary))
  if journal:
    batch.write_summary(args.summary, table, summary)
    journal.remove()
  failed = summary["failed"] or any(isinstance(r, batch.Failure) for _, r in rechecks.values())
  return 1 if failed else 0


def _emit(result, plot: str | None, recheck: tuple | None, as_json: bool, several: bool) -> None:
  from modeformer_jax.sync import batch
  from modeformer_jax.offsets import describe_offset

  if isinstance(result, batch.Failure):
    print(f"modeformer sync: error: {result.path}: {result.reason}", file=sys.stderr)
    if as_json:
      print(json.dumps({"path": result.path, "error": result.reason}))
    return
  copy = None
  if recheck:
    dst, check = recheck
    copy = ({"path": dst, "error": check.reason} if isinstance(check, batch.Failure) else
            {"path": dst, "av_offset_frames": check.offset, "sign": describe_offset(check.offset, check.fps),
             "min_dist": round(check.min_dist, 4), "confidence": round(check.confidence, 4),
             "in_sync": abs(check.offset) <= 1,
             **({"timeline": check.timeline.to_json()} if check.timeline_shown else {})})
    if "error" in copy:
      print(f"modeformer sync: error: {dst}: corrected copy: {check.reason}", file=sys.stderr)
  if as_json:
    print(json.dumps({**result.to_json(), **({"plot": plot} if plot else {}),
                      **({"corrected": copy} if copy else {})}), flush=True)
    return
  lines = [f"== {result.path}"] if several else []
  lines.append(result.text())
  if plot:
    lines.append(f"Plot: \t{plot}")
  if copy and "error" not in copy:
    lines.append(f"Corrected: \t{copy['path']}: re-check AV offset {copy['av_offset_frames']} ({copy['sign']}), "
                 f"Min dist {copy['min_dist']:.3f}, Confidence {copy['confidence']:.3f}"
                 + ("" if copy["in_sync"] else " -- NOT within +-1 frame"))
    if "timeline" in copy:
      lines.append(f"Corrected trend:\t{copy['timeline']['trend']['text']}")
  print("\n".join(lines) + ("\n" if several else ""), flush=True)
