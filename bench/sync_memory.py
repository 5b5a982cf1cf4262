"""Peak memory of `modeformer sync`'s decoding on a high-resolution video: the whole video in one chunk
(as sync held it before it decoded in chunks, then twice over while stacking) against chunks of --decode-mb.

The video is generated: a talking face (the Haar cascade finds it) in a 1920x1080 frame, H.264 + AAC, 25 fps.
Each setting runs detect.model_inputs (decode, face detection and tracking, crops, log-mel; no model) in a fresh
process, which reports its peak resident memory (Linux).

  python bench/sync_memory.py                    # 20 s of 1080p; whole video, 1024 MB and 256 MB chunks
  python bench/sync_memory.py --seconds 60 --settings 1024,256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from modeformer_jax.data import synth
from modeformer_jax.media.encode import write_video

_SPEAKER = (5, 2)  # bench/sync_speed.py's speaker: the cascade finds this face throughout
WHOLE = "whole"


class _Framed:
  """Frames uint8 [T, H, W, 3] made on the fly: `face` frames pasted into a plain background (and repeated
  up to T), so writing a long high-resolution video never holds it in memory."""

  def __init__(self, face: np.ndarray, count: int, height: int, width: int):
    self.face, self.height, self.width = face, height, width
    self.shape = (count, height, width, 3)
    self.ndim, self.dtype = 4, np.uint8

  def __len__(self) -> int:
    return self.shape[0]

  def __iter__(self):
    canvas = np.full((self.height, self.width, 3), 96, np.uint8)
    size = self.face.shape[1]
    top, left = (self.height - size) // 2, (self.width - size) // 2
    for i in range(len(self)):
      canvas[top:top + size, left:left + size] = self.face[i % len(self.face)]
      yield canvas


def make_video(path: str, seconds: float, width: int, height: int) -> str:
  """A talking face at half the frame height, 25 fps; 20 s of it repeated for longer videos (rendering a
  face this size holds several GB per minute)."""
  clip = synth.render_clip(17, synth.speaker_style(*_SPEAKER), min(seconds, 20.0), 0, size=min(height, width) // 2)
  count = round(25 * seconds)
  audio = np.tile(clip.audio, -(-count // len(clip.frames)))[:count * 640]
  write_video(path, _Framed(clip.frames, count, height, width), 25.0, audio, 16000, preset="ultrafast")
  return path


def child(video: str, setting: str, chunk_mb: float) -> None:
  """Runs in its own process: model_inputs() once, then prints its peak memory as JSON."""
  from modeformer_jax.media.preprocess_config import preprocess_config
  from modeformer_jax.sync.detect import model_inputs

  started = time.perf_counter()
  prepared = model_inputs(video, preprocess_config(), chunk_mb=chunk_mb)
  seconds = time.perf_counter() - started
  # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
  with open("/proc/self/status") as status:
    peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
  print(json.dumps({"setting": setting, "peak_mb": peak_mb, "seconds": seconds,
                    "coverage": float(prepared.valid.mean()), "frames": prepared.num_frames}))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--seconds", type=float, default=20.0, help="length of the generated video (default 20)")
  parser.add_argument("--width", type=int, default=1920, help="frame width (default 1920)")
  parser.add_argument("--height", type=int, default=1080, help="frame height (default 1080)")
  parser.add_argument("--settings", default=f"{WHOLE},1024,256",
                      help=f"comma-separated --decode-mb values to compare; '{WHOLE}' decodes the video at once "
                      f"(default {WHOLE},1024,256)")
  parser.add_argument("--child", nargs=3, metavar=("VIDEO", "SETTING", "MB"), help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    child(args.child[0], args.child[1], float(args.child[2]))
    return 0

  settings = args.settings.split(",")
  with tempfile.TemporaryDirectory() as tmp:
    video = make_video(os.path.join(tmp, "talk.mp4"), args.seconds, args.width, args.height)
    frame_mb = args.width * args.height * 3 / 2 ** 20
    print(f"{args.seconds:g} s of {args.width}x{args.height} at 25 fps: {frame_mb * 25 * args.seconds:.0f} MB of "
          f"RGB frames; {os.cpu_count()} CPUs")
    rows = []
    whole_mb = (round(25 * args.seconds) + 1) * frame_mb  # one chunk holds the whole video
    for setting in settings:
      chunk_mb = whole_mb if setting == WHOLE else float(setting)
      out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", video, setting, str(chunk_mb)],
                           check=True, capture_output=True, text=True).stdout
      rows.append(json.loads(out.strip().splitlines()[-1]))
  print("| --decode-mb | peak memory MB | prepare s | face coverage | frames |")
  print("|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['setting']} | {r['peak_mb']:.0f} | {r['seconds']:.1f} | {r['coverage']:.2f} | {r['frames']} |")
  base = rows[0]
  for r in rows[1:]:
    print(f"ratio {base['setting']} / {r['setting']}: peak memory {base['peak_mb'] / r['peak_mb']:.2f}x, "
          f"time {base['seconds'] / r['seconds']:.2f}x")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
