"""Generate a stand-in for LRS2 or LRS3: real mp4 files (H.264 + AAC) of synthetic talking faces, in the
datasets' folder layout, with transcripts, split lists and a ground-truth manifest.

Every clip is driven by one articulation track (syllables, closures, fricatives, nasals, pauses) that moves
the mouth and shapes the voice, so audio-video sync is learnable but takes looking at the mouth and
listening. Whole speakers are assigned to splits. With --offsets-frames a fraction of the clips get their
audio shifted; manifest.jsonl records offset_frames per clip (> 0: the audio leads the video, i.e. the sound
of video frame i is at audio frame i - offset).

For `modeformer sync --timeline`: --drift-ms-per-min gives clips a clock drift (the offset grows linearly),
--step-frames an offset change mid-clip (an edit), and --turns (wide shots) two faces taking turns to speak;
the manifest records the truth (drift_ms_per_min, step_s, step_to_frames, turns).

Rerunning into the same --out with the same settings skips finished clips, so an interrupted run resumes.

Examples:
  modeformer synth --out data/lrs2_synth --layout lrs2 --speakers 10 --clips-per-speaker 10 --seconds 3 \\
      --seed 0 --offsets-frames=-6,-3,3,6
  modeformer synth --out data/drift --layout lrs3 --speakers 2 --clips-per-speaker 1 --seconds 60 \\
      --drift-ms-per-min 80
  modeformer synth --out data/dialogue --layout lrs3 --shot wide --turns 6 --face-px 90 --seconds 40
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from modeformer_jax.commands import options
from modeformer_jax.errors import UserError

HELP = "generate a synthetic LRS2/LRS3-layout dataset of talking-face mp4s with known sync offsets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--out", required=True, type=Path,
                      help="dataset root to write (created; an existing one is resumed)")
  parser.add_argument("--layout", choices=("lrs2", "lrs3"), default="lrs2",
                      help="lrs2: mvlrs_v1/{main,pretrain}/<show>/<clip>.mp4, 160x160, split lists; "
                      "lrs3: {pretrain,trainval,test}/<speaker>/<clip>.mp4, 224x224, face boxes in the .txt "
                      "(default: %(default)s)")
  parser.add_argument("--speakers", type=int, default=10,
                      help="number of speakers (LRS2 shows); each goes to exactly one split "
                      "(default: %(default)s)")
  parser.add_argument("--clips-per-speaker", type=int, default=10,
                      help="clips per speaker (default: %(default)s)")
  parser.add_argument("--seconds", type=float, default=3.0,
                      help="clip duration in seconds (default: %(default)s)")
  parser.add_argument("--seed", type=int, default=0,
                      help="dataset seed; the same seed gives the same clips (default: %(default)s)")
  parser.add_argument("--offsets-frames", nargs="+", default=[], metavar="OFFSETS",
                      help="audio shifts in video frames to draw from for the shifted clips, comma- or "
                      "space-separated; > 0 means the audio leads. Write a list starting with a minus as "
                      "--offsets-frames=-6,-3,3,6 or --offsets-frames -6 -3 3 6 (default: all in sync)")
  parser.add_argument("--offset-fraction", type=float, default=None,
                      help="fraction of clips that get a shift from --offsets-frames "
                      "(default: 0.5 when a list is given)")
  parser.add_argument("--workers", type=int, default=None,
                      help="processes rendering clips in parallel (default: one per core this process may use)")
  parser.add_argument("--fps", type=float, default=25.0, help="video frame rate (default: %(default)s)")
  parser.add_argument("--sample-rate", type=int, default=16000,
                      help="audio sample rate in Hz, one AAC supports (8000, 16000, 22050, 44100, 48000, "
                      "...) (default: %(default)s)")
  parser.add_argument("--channels", type=int, default=1,
                      help="audio channels, 1..7; extra channels repeat the mono signal "
                      "(default: %(default)s)")
  parser.add_argument("--shot", choices=("closeup", "wide"), default="closeup",
                      help="closeup: the layout's face-centred frames; wide: a 454x256 scene with the speaker's "
                      "face 24-48 px tall moving about, a silent second face, a microphone in front of the jaw "
                      "and a cluttered background (for face detection; LRS2-layout prep would crop it as a "
                      "face-centred frame, so prepare wide shots as lrs3 or folder) (default: %(default)s)")
  parser.add_argument("--drift-ms-per-min", nargs="+", default=[], metavar="RATES",
                      help="clock drift: the offset grows by RATE ms per minute (> 0: the audio comes earlier and "
                      "earlier; a 30 fps camera against 29.97 fps audio drifts 80 ms/min); comma- or "
                      "space-separated, each clip draws one (default: no drift)")
  parser.add_argument("--step-frames", nargs="+", default=[], metavar="CHANGES",
                      help="an edit mid-clip: from --step-at on the offset changes by CHANGE frames; each clip "
                      "draws one (default: no step)")
  parser.add_argument("--step-at", type=float, default=None, metavar="SECONDS",
                      help="when the offset changes (default: drawn from the middle third of each clip)")
  parser.add_argument("--turns", type=float, default=None, metavar="SECONDS",
                      help="wide shots: a dialogue; the second face speaks too, the two taking turns of about "
                      "SECONDS (0.6-1.4x), each silent with lips at rest while the other speaks")
  parser.add_argument("--face-px", type=float, default=None, metavar="PX",
                      help="wide shots: the speaker's face height in pixels (default: drawn from 24..48)")
  options.add_json(parser)


def _numbers(flag: str, values: list[str], kind: type = int) -> list:
  """A comma- or space-separated list of numbers of `kind`."""
  try:
    return [kind(v) for item in values for v in item.split(",") if v.strip()]
  except ValueError:
    example = "-6,-3,3,6" if kind is int else "-40,40.5"
    raise UserError(f"{flag}: expected {kind.__name__}s like {example}, got {' '.join(values)!r}") from None


def _check(args: argparse.Namespace, offsets: list[int]) -> float:
  """Validates the flags; returns the offset fraction to use."""
  from modeformer_jax.media.encode import AAC_SAMPLE_RATES  # av loads only when the command runs

  if args.out.exists() and not args.out.is_dir():
    raise UserError(f"{args.out}: exists and is not a directory")
  for flag, value in (("--speakers", args.speakers), ("--clips-per-speaker", args.clips_per_speaker),
                      ("--workers", args.workers), ("--channels", args.channels)):
    if value is not None and value < 1:
      raise UserError(f"{flag}: must be at least 1, got {value}")
  if args.channels > 7:
    raise UserError(f"--channels: AAC layouts here go up to 7 channels, got {args.channels}")
  if not args.seconds > 0 or not args.fps > 0:
    raise UserError(f"--seconds/--fps: must be positive, got {args.seconds}, {args.fps}")
  if args.sample_rate not in AAC_SAMPLE_RATES:
    rates = ", ".join(map(str, AAC_SAMPLE_RATES))
    raise UserError(f"--sample-rate: AAC takes {rates} Hz, got {args.sample_rate}")
  if round(args.seconds * args.fps) < 1:
    raise UserError(f"--seconds: {args.seconds} s at {args.fps} fps is less than one frame")
  if args.step_at is not None and not args.step_frames:
    raise UserError("--step-at: needs --step-frames")
  if args.step_at is not None and not 0 < args.step_at < args.seconds:
    raise UserError(f"--step-at: must be inside the clip (0..{args.seconds} s), got {args.step_at}")
  for flag, value in (("--turns", args.turns), ("--face-px", args.face_px)):
    if value is not None and args.shot != "wide":
      raise UserError(f"{flag}: needs --shot wide")
    if value is not None and not 0 < value < float("inf"):
      raise UserError(f"{flag}: must be positive, got {value}")
  if args.offset_fraction is None:
    return 0.5 if offsets else 0.0
  if not offsets:
    raise UserError("--offset-fraction: needs --offsets-frames to draw the shifts from")
  if not 0 <= args.offset_fraction <= 1:
    raise UserError(f"--offset-fraction: must be within 0..1, got {args.offset_fraction}")
  return args.offset_fraction


def run(args: argparse.Namespace) -> int:
  from modeformer_jax.data import synth

  offsets = _numbers("--offsets-frames", args.offsets_frames)
  drifts = _numbers("--drift-ms-per-min", args.drift_ms_per_min, float)
  steps = _numbers("--step-frames", args.step_frames)
  if any(not abs(d) < float("inf") for d in drifts):
    raise UserError(f"--drift-ms-per-min: must be finite, got {drifts}")
  fraction = _check(args, offsets)
  try:
    args.out.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UserError(f"{args.out}: cannot create the folder ({e.strerror})") from None
  start = time.perf_counter()
  rows = synth.write_dataset(args.out, args.layout, args.speakers, args.clips_per_speaker, args.seconds,
                             args.seed, offsets_frames=offsets, offset_fraction=fraction,
                             workers=args.workers, fps=args.fps, sample_rate=args.sample_rate,
                             channels=args.channels, shot=args.shot, drifts_ms_per_min=drifts, steps_frames=steps,
                             step_at=args.step_at, turn_seconds=args.turns, face_px=args.face_px)
  summary = {
      "out": str(args.out), "layout": args.layout, "clips": len(rows),
      "speakers": {split: len({r["speaker"] for r in rows if r["split"] == split})
                   for split in dict.fromkeys(r["split"] for r in rows)},
      "clips_per_split": {split: sum(r["split"] == split for r in rows)
                          for split in dict.fromkeys(r["split"] for r in rows)},
      "shifted_clips": sum(r["offset_frames"] != 0 for r in rows),
      "drifting_clips": sum(r["drift_ms_per_min"] != 0 for r in rows),
      "stepped_clips": sum(r["step_s"] is not None for r in rows),
      "dialogues": sum(r["turns"] is not None for r in rows),
      "bytes": sum(r["bytes"] for r in rows), "manifest": str(args.out / synth.MANIFEST),
      "wall_seconds": round(time.perf_counter() - start, 2),
  }
  if args.json:
    print(json.dumps(summary))
  else:
    splits = ", ".join(f"{split} {n}" for split, n in summary["clips_per_split"].items())
    timed = "".join(f", {summary[k]} {word}" for k, word in (("drifting_clips", "drifting"), ("stepped_clips", "stepped"),
                                                           ("dialogues", "dialogues")) if summary[k])
    print(f"{len(rows)} clips ({splits}; {summary['shifted_clips']} shifted{timed}), "
          f"{summary['bytes'] / 1e6:.1f} MB, manifest {summary['manifest']}")
  return 0
