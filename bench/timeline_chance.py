"""How often `sync --timeline` decides a segment by chance, by file length: generated close-ups embedded once,
cut into files of each length, each file scored with its own audio and with another clip's (no sync evidence
anywhere), its segments decided by the automatic threshold (sync.timeline.chance_threshold) and, for
comparison, by the rotations' own 99th percentile alone (the threshold before Gaussian noise backed it). The
design says about 1 in 100 chance segments is decided; a trained model should decide most of the real ones.

  python bench/timeline_chance.py --checkpoint runs/demo/run
  python bench/timeline_chance.py --checkpoint runs/demo/run --clips 12 --seconds 60 --lengths 4,8,12,20,60

The faces fill the frame (`--face-centered`), so only the model and the threshold are measured. Files are cut
from the windows of the long clips (a file of T s is T * fps - 4 consecutive windows of video and audio), so
the clips are decoded and embedded once; a file cut this way differs from one encoded alone only in its last
audio window's spectrogram padding.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from modeformer_jax.data import synth
from modeformer_jax.media.encode import write_video
from modeformer_jax.sync import detect, timeline

MAX_OFFSET = 15


def _embedded(model, clips: int, seconds: float) -> list[tuple[np.ndarray, np.ndarray]]:
  """(video [L, D], audio [L, D]) embeddings of each generated close-up."""
  from modeformer_jax.inference import audio_windows

  out = []
  with tempfile.TemporaryDirectory() as folder:
    for k in range(clips):
      clip = synth.render_clip(500 + k, synth.speaker_style(5, k), seconds, 0, size=160)
      path = os.path.join(folder, f"{k}.mp4")
      write_video(path, clip.frames, clip.fps, clip.audio, clip.sample_rate, preset="ultrafast")
      inputs = detect.model_inputs(path, model.config.preprocess, face_centered=True)
      count = model.spec.num_windows(inputs.num_frames, len(inputs.features))
      audio = model.embed_audio(audio_windows(inputs.features, count, model.spec))
      out.append((detect._embed_face(model, inputs.faces[0], count, audio.shape[1]), audio))
      print(f"  embedded clip {k + 1} of {clips}", flush=True)
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--checkpoint", required=True, help="a training workdir or an exported model folder")
  parser.add_argument("--clips", type=int, default=6, help="generated close-ups (each file also gets the same "
                      "stretch of the next clip's audio)")
  parser.add_argument("--seconds", type=float, default=60.0, help="length of each generated clip")
  parser.add_argument("--lengths", default="4,8,12,20,60", help="file lengths in seconds, comma-separated: "
                      "each clip is cut into as many files of each length as fit")
  parser.add_argument("--window", type=float, default=4.0, help="segment length in seconds (--timeline)")
  parser.add_argument("--hop", type=float, default=2.0, help="a segment every HOP seconds (--timeline-hop)")
  args = parser.parse_args()
  from modeformer_jax.inference import load_sync_model

  model = load_sync_model(args.checkpoint)
  spec = model.spec
  fps = float(spec.fps)
  distances_of = lambda video, audio, first: detect._distances(model, video, audio, first,
                                                               max_offset=MAX_OFFSET)[1]
  options = timeline.TimelineOptions(args.window, args.hop)
  print(f"{args.clips} close-ups of {args.seconds:g} s, {args.window:g} s segments every {args.hop:g} s")
  clips = _embedded(model, args.clips, args.seconds)
  print("\n| file length | files | segments | own audio: decided | another clip's audio: decided | "
        "same, by the rotations' percentile alone |\n|---|---|---|---|---|---|")
  ratios = []
  for seconds in [float(x) for x in args.lengths.split(",")]:
    count = int(round(seconds * fps)) - spec.video_frames + 1
    files = segments = 0
    decided = {"own": 0, "other": 0, "other, rotations alone": 0}
    for k, (video, audio) in enumerate(clips):
      for start in range(0, len(audio) - count + 1, count):
        part = slice(start, start + count)
        files += 1
        for label, sound in (("own", audio[part]), ("other", clips[(k + 1) % len(clips)][1][part])):
          sims, distances = detect._distances(model, video[part], sound, 0, max_offset=MAX_OFFSET)
          face = timeline.FaceScores(first=0, video=video[part], ok=np.ones(count, bool), sims=sims,
                                     distances=distances)
          found = timeline.build([face], sound, options, fps, MAX_OFFSET, spec.video_frames, distances_of)
          decided[label] += sum(s.decided for s in found.segments)
          if label == "other":
            segments += len(found.segments)
            bounds = [(round(s.start_s * fps), min(count, round(s.end_s * fps) - spec.video_frames + 1))
                      for s in found.segments]
            null = timeline.null_mdists([face], sound, bounds, distances_of, MAX_OFFSET, spec.video_frames)
            alone = np.quantile([np.median(m) - m.min() for m in null], timeline.NULL_QUANTILE)
            decided["other, rotations alone"] += sum(s.confidence is not None and s.confidence >= alone
                                                     for s in found.segments)
    share = lambda n: f"{n} ({n / max(1, segments):.1%})"
    print(f"| {seconds:g} s | {files} | {segments} | {share(decided['own'])} | {share(decided['other'])} | "
          f"{share(decided['other, rotations alone'])} |", flush=True)
    ratios.append((seconds, decided["other"] / max(1, segments), decided["other, rotations alone"] / max(1, segments)))
  print("\nratios (chance segments decided, the threshold used / the rotations' percentile alone):")
  for seconds, used, alone in ratios:
    print(f"  {seconds:g} s files: {used:.1%} / {alone:.1%}")


if __name__ == "__main__":
  main()
