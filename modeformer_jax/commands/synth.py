"""Generate a stand-in for LRS2 or LRS3: real mp4 files (H.264 + AAC) of synthetic talking faces, in the
datasets' folder layout, with transcripts, split lists and a ground-truth manifest.

Every clip is driven by one articulation track (syllables, closures, fricatives, nasals, pauses) that moves
the mouth and shapes the voice, so audio-video sync is learnable but takes looking at the mouth and
listening. Whole speakers are assigned to splits. With --offsets-frames a fraction of the clips get their
audio shifted; manifest.jsonl records offset_frames per clip (> 0: the audio leads the video, i.e. the sound
of video frame i is at audio frame i - offset).

Rerunning into the same --out with the same settings skips finished clips, so an interrupted run resumes.

Example:
  modeformer synth --out data/lrs2_synth --layout lrs2 --speakers 10 --clips-per-speaker 10 --seconds 3 \\
      --seed 0 --offsets-frames=-6,-3,3,6
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
                      help="processes rendering clips in parallel (default: os.cpu_count())")
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
  options.add_json(parser)


def _offsets(values: list[str]) -> list[int]:
  try:
    return [int(v) for item in values for v in item.split(",") if v.strip()]
  except ValueError:
    raise UserError(f"--offsets-frames: expected integers like -6,-3,3,6, got {' '.join(values)!r}") from None


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
  if args.offset_fraction is None:
    return 0.5 if offsets else 0.0
  if not offsets:
    raise UserError("--offset-fraction: needs --offsets-frames to draw the shifts from")
  if not 0 <= args.offset_fraction <= 1:
    raise UserError(f"--offset-fraction: must be within 0..1, got {args.offset_fraction}")
  return args.offset_fraction


def run(args: argparse.Namespace) -> int:
  from modeformer_jax.data import synth

  offsets = _offsets(args.offsets_frames)
  fraction = _check(args, offsets)
  try:
    args.out.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UserError(f"{args.out}: cannot create the folder ({e.strerror})") from None
  start = time.perf_counter()
  rows = synth.write_dataset(args.out, args.layout, args.speakers, args.clips_per_speaker, args.seconds,
                             args.seed, offsets_frames=offsets, offset_fraction=fraction,
                             workers=args.workers, fps=args.fps, sample_rate=args.sample_rate,
                             channels=args.channels, shot=args.shot)
  summary = {
      "out": str(args.out), "layout": args.layout, "clips": len(rows),
      "speakers": {split: len({r["speaker"] for r in rows if r["split"] == split})
                   for split in dict.fromkeys(r["split"] for r in rows)},
      "clips_per_split": {split: sum(r["split"] == split for r in rows)
                          for split in dict.fromkeys(r["split"] for r in rows)},
      "shifted_clips": sum(r["offset_frames"] != 0 for r in rows),
      "bytes": sum(r["bytes"] for r in rows), "manifest": str(args.out / synth.MANIFEST),
      "wall_seconds": round(time.perf_counter() - start, 2),
  }
  if args.json:
    print(json.dumps(summary))
  else:
    splits = ", ".join(f"{split} {n}" for split, n in summary["clips_per_split"].items())
    print(f"{len(rows)} clips ({splits}; {summary['shifted_clips']} shifted), "
          f"{summary['bytes'] / 1e6:.1f} MB, manifest {summary['manifest']}")
  return 0
