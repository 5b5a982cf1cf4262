"""What the generated data allows: sync accuracy of a linear read-out of the mouth from the audio.

A ridge regression maps each audio window (the log-mel of SPEC section 1, 16 frames, bands averaged in pairs)
to the generator's ground-truth mouth opening over the window's 5 video frames; each video window is then
scored against the 31 candidate audio windows by minus the Euclidean distance between its true opening and
the opening the audio predicts, and accuracy follows the SPEC section 5 protocol. The video side is read
perfectly, so this is not a baseline a model could run; it shows how much sync information the generated audio
carries about the mouth, which bounds what the demo's targets ask of a network trained on it.

  python experiments/data_ceiling.py                      # 160 training clips, 24 test clips of other speakers
  python experiments/data_ceiling.py --no-center --json   # without subtracting each window's mean over time

It also splits the 5-frame windows into fifths by how much the mouth moves within them: where it barely moves,
the audio at many offsets fits it equally well.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import tqdm

from modeformer_jax.config_defaults import base_config
from modeformer_jax.data import synth
from modeformer_jax.data.windows import WindowSpec
from modeformer_jax.evaluation import protocol
from modeformer_jax.evaluation.protocol import CLIP_LENGTHS
from modeformer_jax.inference import offset_similarities
from modeformer_jax.media.logmel import log_mel

CLIPS_PER_SPEAKER = 4


def render(seed: int, clips: int, seconds: float, pp) -> list[tuple[np.ndarray, np.ndarray]]:
  """[(mouth opening [T], log-mel [M, 80])] of `clips` clips, 4 per speaker."""
  out = []
  for i in tqdm.trange(clips, desc=f"render (seed {seed})", unit="clip", leave=False):
    style = synth.speaker_style(seed, i // CLIPS_PER_SPEAKER)
    clip = synth.render_clip(seed * 1000 + i, style, seconds, size=32, fps=pp.fps, sample_rate=pp.sample_rate)
    out.append((clip.mouth_open.astype(np.float64), log_mel(clip.audio, pp).astype(np.float64)))
  return out


def windows(opening: np.ndarray, mel: np.ndarray, spec: WindowSpec, center: bool) -> tuple[np.ndarray, np.ndarray]:
  """Audio features [L, 16 * 40] and mouth trajectories [L, 5] of the clip's L window starts."""
  count = spec.num_windows(len(opening), len(mel))
  starts = np.arange(count)
  audio = spec.audio_windows(mel, starts)  # [L, 80, 16]
  audio = audio.reshape(count, 40, 2, -1).mean(2)
  mouth = opening[starts[:, None] + np.arange(spec.video_frames)]
  if center:
    audio = audio - audio.mean(-1, keepdims=True)
    mouth = mouth - mouth.mean(-1, keepdims=True)
  return audio.reshape(count, -1), mouth


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--train-clips", type=int, default=160, help="clips the regression is fitted on")
  parser.add_argument("--test-clips", type=int, default=24, help="clips of other speakers it is scored on")
  parser.add_argument("--seconds", type=float, default=4.0, help="length of each clip (default 4, as the demo)")
  parser.add_argument("--ridge", type=float, default=10.0, help="L2 penalty of the regression")
  parser.add_argument("--no-center", action="store_true",
                      help="keep each window's mean over time (model.center_inputs removes it)")
  parser.add_argument("--seed", type=int, default=1, help="data seed; test speakers use seed + 1")
  parser.add_argument("--json", action="store_true", help="print the results as JSON")
  args = parser.parse_args(argv)
  pp = base_config().preprocess
  spec = WindowSpec.from_config(pp)
  center = not args.no_center

  x, y = zip(*(windows(o, m, spec, center) for o, m in render(args.seed, args.train_clips, args.seconds, pp)))
  x, y = np.concatenate(x), np.concatenate(y)
  mean = x.mean(0)
  design = np.c_[x - mean, np.ones(len(x))]
  weights = np.linalg.solve(design.T @ design + args.ridge * np.eye(design.shape[1]), design.T @ y)
  r2 = 1 - np.sum((design @ weights - y) ** 2) / np.sum((y - y.mean(0)) ** 2)

  max_offset = 15
  correct = {k: [] for k in CLIP_LENGTHS}
  motion, correct_5 = [], []  # per 5-frame window, pooled over videos
  for opening, mel in render(args.seed + 1, args.test_clips, args.seconds, pp):
    audio, mouth = windows(opening, mel, spec, center)
    n = protocol.num_windows(len(opening))  # the protocol's windows and audio windows: L - 5 of each
    predicted = np.c_[audio[:n] - mean, np.ones(n)] @ weights  # [n, 5]
    scores = offset_similarities(mouth[:n], predicted, max_offset, "euclidean")
    windows_correct = {k: protocol.correct_windows(scores, k) for k in correct}
    for k in correct:
      correct[k].append(windows_correct[k].mean())
    motion.append(mouth[:n].std(-1))
    correct_5.append(windows_correct[5])
  accuracy = {str(k): 100 * float(np.mean(v)) for k, v in correct.items()}
  by_motion = accuracy_by_motion(np.concatenate(motion), np.concatenate(correct_5))

  if args.json:
    print(json.dumps({"r2": float(r2), "center": center, "accuracy": accuracy, "by_motion": by_motion,
                      "train_clips": args.train_clips, "test_clips": args.test_clips}))
    return 0
  print(f"linear read-out of the mouth opening from the audio ({'centred' if center else 'not centred'}): "
        f"R^2 {r2:.3f} on {len(x)} training windows")
  print("| " + " | ".join(["clip length", *accuracy]) + " |")
  print("|" + "---|" * (len(accuracy) + 1))
  print("| accuracy % | " + " | ".join(f"{v:.1f}" for v in accuracy.values()) + " |")
  print("\n5-frame windows by how much the mouth moves in them (std of the opening over the 5 frames), "
        "fifths of all windows:")
  print("| mouth motion | 5-frame accuracy % |")
  print("|---|---|")
  for row in by_motion:
    print(f"| {row['motion'][0]:.3f}-{row['motion'][1]:.3f} | {row['accuracy']:.1f} |")
  return 0


def accuracy_by_motion(motion: np.ndarray, correct: np.ndarray, bins: int = 5) -> list[dict]:
  """Accuracy of windows grouped into `bins` equal-count bins of mouth motion [W] (correct: bool [W])."""
  edges = np.quantile(motion, np.linspace(0, 1, bins + 1))
  which = np.clip(np.searchsorted(edges, motion, side="right") - 1, 0, bins - 1)
  return [{"motion": [float(edges[b]), float(edges[b + 1])], "accuracy": 100 * float(correct[which == b].mean())}
          for b in range(bins)]


if __name__ == "__main__":
  raise SystemExit(main())
