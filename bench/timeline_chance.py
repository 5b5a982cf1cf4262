"""How often `sync --timeline` decides a segment by chance: generated close-ups scored once with their own
audio and once with another clip's (no sync evidence anywhere), segments decided by the automatic threshold
(sync.timeline: the 99th percentile of the file's segments against its own audio rotated away). The design
says about 1 in 100 chance segments is decided; a trained model should decide most of the real ones.

  python bench/timeline_chance.py --checkpoint runs/demo/run
  python bench/timeline_chance.py --checkpoint runs/demo/run --clips 8 --seconds 20 --window 4 --hop 2

The faces fill the frame (`--face-centered`), so only the model and the threshold are measured.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from modeformer_jax.data import synth
from modeformer_jax.media.encode import write_video
from modeformer_jax.sync import detect, timeline


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--checkpoint", required=True, help="a training workdir or an exported model folder")
  parser.add_argument("--clips", type=int, default=4, help="generated close-ups (each also gets the next one's "
                      "audio)")
  parser.add_argument("--seconds", type=float, default=40.0, help="length of each clip")
  parser.add_argument("--window", type=float, default=4.0, help="segment length in seconds (--timeline)")
  parser.add_argument("--hop", type=float, default=2.0, help="a segment every HOP seconds (--timeline-hop)")
  args = parser.parse_args()
  from modeformer_jax.inference import load_sync_model

  model = load_sync_model(args.checkpoint)
  options = timeline.TimelineOptions(args.window, args.hop)
  clips = [synth.render_clip(500 + k, synth.speaker_style(5, k), args.seconds, 0, size=160) for k in range(args.clips)]
  counts = {"own audio": [0, 0], "another clip's audio": [0, 0]}
  print(f"{args.clips} close-ups of {args.seconds:g} s, {args.window:g} s segments every {args.hop:g} s")
  print("| clip | audio | decided | threshold |\n|---|---|---|---|")
  with tempfile.TemporaryDirectory() as folder:
    for k, clip in enumerate(clips):
      for label, audio in (("own audio", clip.audio), ("another clip's audio", clips[(k + 1) % len(clips)].audio)):
        path = os.path.join(folder, f"{k}.mp4")
        write_video(path, clip.frames, clip.fps, audio, clip.sample_rate, preset="ultrafast")
        inputs = detect.model_inputs(path, model.config.preprocess, face_centered=True)
        found = detect.score(model, inputs, 15, options).timeline
        decided = sum(s.decided for s in found.segments)
        counts[label][0] += decided
        counts[label][1] += len(found.segments)
        threshold = "none" if found.threshold is None else f"{found.threshold:.3f}"
        print(f"| {k} | {label} | {decided} of {len(found.segments)} | {threshold} |", flush=True)
  print("\nratios (segments decided):")
  for label, (decided, total) in counts.items():
    print(f"  {label}: {decided} of {total} = {decided / max(1, total):.1%}")


if __name__ == "__main__":
  main()
