"""Speed of `modeformer sync` per stage: seconds per minute of video for decode, face detection + crops, log-mel,
the model (both encoders) and scoring, for the default (59M) model and the demo-sized one (configs/tiny.py).

The video is generated: a talking face both face detectors find (BlazeFace, the default, and the Haar cascade),
256x256 at 25 fps with 16 kHz audio, so face detection runs as it would on real footage; with --size WxH a wide
shot of that size instead (synth's wide shot: busy background, a second, silent face; the speaker's face a
fifth of the frame's height), e.g. --size 1920x1080 for the issue's 1080p target. Random initial weights
(timing does not depend on training).
Everything runs in this process on the CPU (or whatever jax's default backend is); XLA compiles each
encoder once before timing.

  python bench/sync_speed.py                       # 60 s video, both models
  python bench/sync_speed.py --seconds 10          # shorter video (the default model needs ~34 GFLOP per
                                                   # window: minutes per minute of video on 2 CPU cores)
  python bench/sync_speed.py --models tiny --video talk.mp4
  python bench/sync_speed.py --models tiny --size 1920x1080 --seconds 10   # 1080p wide shot
  python bench/sync_speed.py --models tiny --timeline 10   # also: a timeline's windows embedded and cost
  python bench/sync_speed.py --models tiny --size 1920x1080 --scan-every 1,10  # BlazeFace's full scan on every
                                                   # detection frame (as before issue #17) against every 10th
  python bench/sync_speed.py --models tiny --video w1080.mp4 --repeat 3   # each stage's least of 3 passes
  python bench/sync_speed.py --models tiny --size 1920x1080 --decode-threads 8,16   # FFmpeg's decoding threads
                                                   # (default: half the cores, the other half detecting and
                                                   # cropping the last chunk), each a column

stage_seconds() is the per-stage measurement on any model with SyncModel's interface (spec, config.preprocess,
embed_video, embed_audio), so another backend (e.g. the exported PyTorch model) can be timed the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time

from modeformer_jax.config_loading import load_config
from modeformer_jax.cpu_cores import THREADS_VAR
from modeformer_jax.data import synth
from modeformer_jax.data.synth.wide_shot import render_wide_shot
from modeformer_jax.inference import SyncModel
from modeformer_jax.media.encode import write_video
from modeformer_jax.sync.detect import model_inputs, score
from modeformer_jax.sync.timeline import TimelineOptions
from modeformer_jax.train.train_step import init_model

# faces: detection and tracking; crop: the crops (of each candidate face where there are several).
STAGES = ("decode", "faces", "crop", "mel", "model", "scoring")
MODELS = {"default": "modeformer_lrs2", "tiny": "tiny"}
# A generated speaker (speaker_style(5, 2)) whose drawn face OpenCV's frontal-face cascade detects throughout.
_SPEAKER = (5, 2)


def make_video(path: str, seconds: float, size: int = 256, wide: tuple[int, int] | None = None) -> str:
  """A generated talking-face mp4 (H.264 + AAC, 25 fps, 16 kHz) with a face the detector finds: size x size, or
  a wide shot of wide = (width, height) pixels."""
  if wide:
    width, height = wide
    clip = render_wide_shot(17, synth.speaker_style(*_SPEAKER), synth.speaker_style(3, 1), seconds,
                            face_px=height / 5, width=width, height=height)
  else:
    clip = synth.render_clip(17, synth.speaker_style(*_SPEAKER), seconds, 0, size=size)
  write_video(path, clip.frames, 25.0, clip.audio, 16000)
  return path


def random_model(config_path: str) -> SyncModel:
  """A SyncModel with the config's initial (random) weights."""
  config = load_config(config_path, [])
  model = init_model(config)
  return SyncModel(config, model.params, model.batch_stats, source=f"{config_path} (random init)")


@contextlib.contextmanager
def decoding_threads(count: int | None):
  """read_media decodes on `count` threads within (None: its default); it decodes on half this process's
  thread budget, so the budget is set to twice that (jax's own thread pool has started already)."""
  before = os.environ.get(THREADS_VAR)
  if count:
    os.environ[THREADS_VAR] = str(2 * count)
  try:
    yield
  finally:
    if before is None:
      os.environ.pop(THREADS_VAR, None)
    else:
      os.environ[THREADS_VAR] = before


def stage_seconds(model, video: str, *, face_centered: bool = False, max_offset: int = 15,
                  repeat: int = 1) -> dict[str, float]:
  """Wall seconds of each STAGE for one pass over `video` (compilation excluded: the model and the face detector
  run once on zeros first); with repeat > 1, each stage's least over that many passes (on a shared machine the
  least disturbed)."""
  import numpy as np

  spec = model.spec
  model.embed_video(np.zeros((1, spec.video_frames, 96 - spec.mouth_row_start, 96, 3), np.uint8))
  model.embed_audio(np.zeros((1, 80, spec.mel_frames), np.float32))
  pp = model.config.preprocess
  if not face_centered and pp.face_detector == "blazeface":  # the detector compiles once per process too
    from modeformer_jax.media import face_search
    face_search.compile_batches(pp)
  passes = []
  for _ in range(repeat):
    inputs = model_inputs(video, model.config.preprocess, face_centered=face_centered, max_offset=max_offset)
    passes.append(score(model, inputs, max_offset).timings)
  return {stage: min(timings[stage] for timings in passes) for stage in passes[0]}


def timeline_cost(model, video: str, seconds: float, *, face_centered: bool = False,
                  max_offset: int = 15) -> dict[str, dict[str, float]]:
  """One pass over `video` without and with a timeline of `seconds` segments (every seconds / 2): the windows
  each embeds and its seconds per stage, on the same model inputs."""
  inputs = model_inputs(video, model.config.preprocess, face_centered=face_centered, max_offset=max_offset)
  counts = {"windows": 0}

  def counting(embed):
    def wrapped(batch):
      counts["windows"] += len(batch)
      return embed(batch)
    return wrapped

  model.embed_video, model.embed_audio = counting(model.embed_video), counting(model.embed_audio)
  out = {}
  for name, options in (("one pass", None), (f"timeline {seconds:g} s", TimelineOptions(seconds))):
    counts["windows"] = 0
    timings = score(model, inputs, max_offset, options).timings
    out[name] = {"windows": counts["windows"], "model": timings["model"], "scoring": timings["scoring"]}
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--seconds", type=float, default=60.0, help="length of the generated video")
  parser.add_argument("--video", help="time this file instead of a generated one")
  parser.add_argument("--models", default="default,tiny", help="comma-separated: default, tiny")
  parser.add_argument("--face-centered", action="store_true", help="skip face detection (whole frame)")
  parser.add_argument("--size", help="WxH: generate a wide shot of this size (e.g. 1920x1080) instead of 256x256")
  parser.add_argument("--timeline", type=float, metavar="SECONDS",
                      help="also time a `sync --timeline SECONDS` pass against a plain one (windows embedded, "
                      "model and scoring seconds)")
  parser.add_argument("--repeat", type=int, default=1, help="passes per column; each stage's least time is shown "
                      "(a shared machine's load disturbs single passes)")
  parser.add_argument("--scan-every", help="comma-separated preprocess.blazeface_scan_every values, each timed as "
                      "a column of its own in this run (e.g. 1,5; default: the config's)")
  parser.add_argument("--decode-threads", help="comma-separated FFmpeg decoding thread counts, each a column of its "
                      "own (default: half this process's thread budget, cpu_cores.thread_budget)")
  args = parser.parse_args(argv)
  models = [m for m in args.models.split(",") if m]
  if not set(models) <= set(MODELS):
    parser.error(f"--models: choose from {', '.join(MODELS)}")
  scans = [int(v) for v in args.scan_every.split(",") if v] if args.scan_every else [None]
  if any(v is not None and v < 1 for v in scans):
    parser.error("--scan-every: values of at least 1")
  decoders = [int(v) for v in args.decode_threads.split(",") if v] if args.decode_threads else [None]
  if any(v is not None and v < 1 for v in decoders):
    parser.error("--decode-threads: values of at least 1")
  if args.repeat < 1:
    parser.error("--repeat: at least 1")
  # Columns: (label, model, scan_every or None for the config's, decoding threads or None for the default).
  columns = [(" ".join([m] + ([f"scan {v}"] if v else []) + ([f"dec {d}"] if d else [])), m, v, d)
             for m in models for v in scans for d in decoders]
  names = [label for label, *_ in columns]

  with tempfile.TemporaryDirectory() as work:
    video = args.video
    if video is None:
      start = time.perf_counter()
      wide = tuple(int(v) for v in args.size.split("x")) if args.size else None
      video = make_video(os.path.join(work, "talk.mp4"), args.seconds, wide=wide)
      print(f"generated {args.seconds:g} s of {args.size or '256x256'} video in {time.perf_counter() - start:.1f} s",
            file=sys.stderr)
    timings, costs, minutes = {}, {}, None
    loaded = {}
    for name, model_name, scan_every, decode_threads in columns:
      model = loaded[model_name] = loaded.get(model_name) or random_model(MODELS[model_name])
      if scan_every:
        model.config.preprocess.blazeface_scan_every = scan_every
      with decoding_threads(decode_threads):
        timings[name] = stage_seconds(model, video, face_centered=args.face_centered, repeat=args.repeat)
      if args.timeline:
        costs[name] = timeline_cost(model, video, args.timeline, face_centered=args.face_centered)
      if minutes is None:
        from modeformer_jax.media.decode import probe
        minutes = (probe(video)["duration"] or args.seconds) / 60
      print(f"{name}: {sum(timings[name].values()):.1f} s", file=sys.stderr)

  import jax
  print(f"\nmodeformer sync, seconds per minute of video ({minutes * 60:.1f} s video measured, scaled to 1 min; "
        f"{'--face-centered' if args.face_centered else 'face detection on'}; "
        f"{f'least of {args.repeat} passes per stage; ' if args.repeat > 1 else ''}jax {jax.default_backend()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end: wall times grow with it)")
  width = max(12, max(len(n) for n in names) + 2)
  print(f"{'stage':<10}" + "".join(f"{n:>{width}}" for n in names))
  for stage in STAGES:
    print(f"{stage:<10}" + "".join(f"{timings[n][stage] / minutes:>{width}.3f}" for n in names))
  totals = {n: sum(timings[n].values()) / minutes for n in names}
  print(f"{'total':<10}" + "".join(f"{totals[n]:>{width}.3f}" for n in names))
  print("\nratios:")
  other = {n: totals[n] - timings[n]["model"] / minutes for n in names}
  for n in names:
    print(f"  {n}: non-model share of total {other[n] / totals[n]:.1%}, x real time {60 / totals[n]:.2f}")
  for label, model_name, *_ in columns:
    first = next(n for n, m, *_ in columns if m == model_name)
    if label != first:
      print(f"  {label} / {first}: decode x{timings[label]['decode'] / timings[first]['decode']:.2f}, "
            f"faces x{timings[label]['faces'] / timings[first]['faces']:.2f}, "
            f"non-model x{other[label] / other[first]:.2f}")
  for n, cost in costs.items():
    plain, timed = cost.values()
    extra = timed["scoring"] - plain["scoring"]
    print(f"  {n}: {list(cost)[1]} / one pass: windows embedded {timed['windows']} / {plain['windows']} = "
          f"{timed['windows'] / plain['windows']:.2f}, model {timed['model'] / plain['model']:.2f}x, scoring "
          f"+{extra:.2f} s ({extra / (totals[n] * minutes):.1%} of the pass)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
