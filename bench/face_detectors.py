"""Face detectors side by side: BlazeFace in JAX (the default) against OpenCV's Haar cascade (the fallback).

Quality, on generated clips of several speakers: "found", the share of frames where a face track of
media.faces.detect_faces is valid and on the speaker (box centre within 0.3 face heights of the generator's
face box); "chosen", the share of frames where the face sync.tracks ranks first (the mouth that moves most:
the video-only guess at the speaker; `sync` scores every face against the audio) is.
Two kinds of clip: close-ups (LRS3 framing, 224x224, the face ~140 px tall) and wide shots
(data/synth/wide_shot.py: 454x256, the face 24-48 px tall, moving, a silent second face, a microphone, clutter).

Speed: seconds of detection and tracking per minute of video at sync's settings (a detection every 5th
frame), after BlazeFace is compiled for every batch size it uses (XLA's compilation excluded), on this process's
jax backend.

  python bench/face_detectors.py                 # 6 clips of 4 s per kind
  python bench/face_detectors.py --clips 12 --seconds 6
  python bench/face_detectors.py --scan-every 5,10 --detectors blazeface   # BlazeFace's full scan every 5th
                                                 # detection frame (the default) against every 10th
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from modeformer_jax.data import synth
from modeformer_jax.data.synth import wide_shot
from modeformer_jax.media import faces
from modeformer_jax.media.preprocess_config import preprocess_config
from modeformer_jax.sync.tracks import Stitcher

DETECTORS = ("blazeface", "haar")


def clips(kind: str, count: int, seconds: float) -> list[tuple[np.ndarray, np.ndarray]]:
  """(frames uint8 [T, H, W, 3], the speaker's face boxes [T, 4]) of `count` generated clips."""
  out = []
  for k in range(count):
    speaker = synth.speaker_style(31, k)
    if kind == "closeup":
      clip = synth.render_clip(200 + k, speaker, seconds, size=synth.FRAME_SIZE["lrs3"],
                               face_scale=synth.FACE_SCALE["lrs3"])
    else:
      clip = wide_shot.render_wide_shot(200 + k, speaker, synth.speaker_style(31, 100 + k), seconds,
                                        face_px=24 + 24 * k / max(1, count - 1))
    out.append((clip.frames, clip.face_boxes))
  return out


def measure(detector: str, data: list[tuple[np.ndarray, np.ndarray]],
            scan_every: int | None = None) -> tuple[float, float, float]:
  """(share of frames with the speaker's face found, ... in the track sync crops, detection + tracking
  seconds per minute of video); scan_every: BlazeFace's preprocess.blazeface_scan_every (None: the config's)."""
  pp = preprocess_config()
  pp.face_detector = detector
  if scan_every:
    pp.blazeface_scan_every = scan_every
  if detector == "blazeface":
    from modeformer_jax.media import face_search

    face_search.compile_batches(pp)
  found, chosen_found, seconds, frames_total = 0, 0, 0.0, 0
  for frames, truth in data:
    start = time.perf_counter()
    track = faces.detect_faces(frames, pp)
    seconds += time.perf_counter() - start
    centre = truth[:, :2] + truth[:, 2:] / 2

    def on_speaker(t: faces.FaceTrack) -> np.ndarray:
      return t.valid & (np.abs(t.boxes[:, :2] + t.boxes[:, 2:] / 2 - centre).max(axis=1) < 0.3 * truth[:, 3])

    found += int(np.any([on_speaker(t) for t in track.tracks] or [np.zeros(len(frames), bool)], axis=0).sum())
    stitcher = Stitcher(pp)
    stitcher.add(frames, track)
    ranked = stitcher.faces(len(frames))
    chosen_found += int(on_speaker(ranked[0]).sum()) if ranked else 0
    frames_total += len(frames)
  return found / frames_total, chosen_found / frames_total, seconds / (frames_total / 25 / 60)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--clips", type=int, default=6, help="clips per kind")
  parser.add_argument("--seconds", type=float, default=4.0, help="length of each clip")
  parser.add_argument("--detectors", default=",".join(DETECTORS), help=f"comma-separated: {', '.join(DETECTORS)}")
  parser.add_argument("--scan-every", help="comma-separated preprocess.blazeface_scan_every values, each a BlazeFace "
                      "row of its own (default: the config's)")
  args = parser.parse_args(argv)
  detectors = [d for d in args.detectors.split(",") if d]
  if not detectors or not set(detectors) <= set(DETECTORS):
    parser.error(f"--detectors: choose from {', '.join(DETECTORS)}")
  scans = [int(v) for v in args.scan_every.split(",")] if args.scan_every else [None]
  if any(v is not None and v < 1 for v in scans):
    parser.error("--scan-every: values of at least 1")
  # Rows: (label, detector, scan_every).
  rows = [(f"blazeface scan {v}" if v else d, d, v) for d in detectors for v in (scans if d == "blazeface" else [None])]
  results = {}
  for kind in ("closeup", "wide"):
    data = clips(kind, args.clips, args.seconds)
    for label, detector, scan_every in rows:
      results[kind, label] = measure(detector, data, scan_every)
      print(f"{kind} {label}: {results[kind, label]}", file=sys.stderr)

  import jax
  print(f"\nface detection, {args.clips} generated clips of {args.seconds:g} s per kind; jax {jax.default_backend()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
  width = max(11, max(len(label) for label, _, _ in rows) + 2)
  print(f"{'clips':<28}{'detector':<{width}}{'found':>8}{'chosen':>8}{'s / min video':>15}")
  for (kind, label), (share, chosen, seconds) in results.items():
    clips_label = "close-up 224x224" if kind == "closeup" else "wide 454x256, face 24-48 px"
    print(f"{clips_label:<28}{label:<{width}}{share:>8.1%}{chosen:>8.1%}{seconds:>15.2f}")
  print("\nratios:")
  first = rows[0][0]
  for kind in ("closeup", "wide"):
    for label, _, _ in rows[1:]:
      (a_share, _, a_time), (b_share, _, b_time) = results[kind, label], results[kind, first]
      print(f"  {kind}, {label} / {first}: time {a_time / b_time:.2f}x, faces found {a_share:.1%} vs {b_share:.1%}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
