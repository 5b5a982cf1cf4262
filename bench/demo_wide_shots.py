"""A trained model on generated wide shots: offsets found within +-1 frame by face size (issue 18) and the
speaking face of dialogues segment by segment (issue 21), through sync's whole path (BlazeFace, tracking,
crops, every face scored, the timeline's speaker choice).

Framings: the crop around a detected face is face_crop_scale x the box, moved down face_crop_shift_y x the box
(media/crops.py). "config" takes the checkpoint's values; "SCALE,SHIFT" others (e.g. 0.81,0.05: the framing of
the demo's training crops, the centre 62.5% of the generated LRS2 frames). Faces are detected once per file
and reused for every framing.

Crop placement (--crop-at, offsets only): "subpixel" is media/crops.py's (a small face's square sampled
where its tracked box puts it); "whole" rounds the squares to whole pixels first, as crops.py did until
2026-12-01, for this run only.

  python bench/demo_wide_shots.py --checkpoint runs/demo/run
  python bench/demo_wide_shots.py --checkpoint runs/demo/run --face-px 32,40,90 --clips 10 --dialogues 4 \\
      --framings config,0.81,0.05 --save scores.npz
  python bench/demo_wide_shots.py --checkpoint runs/demo/run --face-px 24,32,40,90 --clips 20 --dialogues 0 \\
      --crop-at subpixel,whole
  python bench/demo_wide_shots.py --checkpoint runs/demo/run --face-px drawn --clips 30 --dialogues 0
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
import time

import numpy as np

from modeformer_jax.data import synth
from modeformer_jax.data.synth import timing, wide_shot
from modeformer_jax.media import crops, faces
from modeformer_jax.media.encode import write_video
from modeformer_jax.sync import detect, timeline

OFFSETS = (-6, -3, 0, 2, 4, 7)
CROP_AT = ("subpixel", "whole")


def _memo_detection() -> None:
  """detect_faces memoised on the frames, so each file is detected once whatever the framings."""
  found, detect_faces = {}, faces.detect_faces

  def memo(frames, pp):
    sample = np.stack([frames[i][::5, ::5] for i in range(0, len(frames), 7)])  # frames: a decode.FrameChunk
    key = (frames.shape, hashlib.sha1(sample.tobytes()).hexdigest())
    if key not in found:
      found[key] = detect_faces(frames, pp)
    return found[key]

  faces.detect_faces = memo


def _framings(text: str) -> list[tuple[float, float] | None]:
  out, parts = [], text.split(",")
  while parts:
    head = parts.pop(0)
    out.append(None if head == "config" else (float(head), float(parts.pop(0))))
  return out


@contextlib.contextmanager
def _crop_at(where: str):
  """crops.py's squares rounded to whole pixels (side, then corner) for "whole": see the module doc."""
  if where not in CROP_AT:
    raise SystemExit(f"--crop-at: {where!r} is not one of {', '.join(CROP_AT)}")
  if where == "subpixel":
    yield
    return
  cropper = crops._square_cropper

  def whole(frames, squares, size):
    side = np.maximum(1, np.round(squares[:, 2:].max(axis=1)))
    corner = np.round(squares[:, :2] + squares[:, 2:] / 2 - side[:, None] / 2)
    return cropper(frames, np.concatenate([corner, side[:, None], side[:, None]], axis=1), size)

  crops._square_cropper = whole
  try:
    yield
  finally:
    crops._square_cropper = cropper


def _pp(model, framing):
  pp = model.config.preprocess.copy_and_resolve_references()
  if framing is not None:
    pp.face_crop_scale, pp.face_crop_shift_y = framing
  return pp


def _name(framing) -> str:
  return "config" if framing is None else f"{framing[0]:g}/{framing[1]:g}"


def track_faces(tracks: list[tuple[int, np.ndarray]], shot: wide_shot.WideShot) -> list[int]:
  """The generator's face (0 the speaker, 1 the other) each track follows: the nearer by box position."""
  out = []
  for start, boxes in tracks:
    near = [np.nanmean(np.abs(boxes[:, 0] - truth[start:start + len(boxes), 0]))
            for truth in (shot.face_boxes, shot.listener_boxes)]
    out.append(int(near[1] < near[0]))
  return out


def _listener_share(result: detect.SyncResult, shot: wide_shot.WideShot) -> float:
  """The share of the scored windows that sync took from a track of the silent second face (0 without one)."""
  if result.timeline is None or not result.tracks:
    return 0.0
  face_of = np.array(track_faces(result.tracks, shot))
  chosen = result.timeline.window_face[result.timeline.window_face >= 0]
  return float((face_of[chosen] == 1).mean()) if len(chosen) else 0.0


def offsets(model, framings, face_px: list[float | None], clips: int, seconds: float, folder: str,
            crop_at: list[str], first_seed: int = 300) -> None:
  """face_px None: the generator's own wide shots (`synth --shot wide`): the face's height drawn from 24..48 px
  by the seed, and a silent second face."""
  print(f"\noffsets within +-1 frame, {clips} wide shots of {seconds:g} s per face size (offsets "
        f"{', '.join(map(str, OFFSETS))} in turn; no second face but in the 'drawn' row)")
  columns = [(f, c) for f in framings for c in crop_at]
  names = [_name(f) + ("" if crop_at == ["subpixel"] else f" {c}") for f, c in columns]
  print(f"| face px | {' | '.join(names)} |")
  print("|---|" + "---|" * len(columns))
  for px in face_px:
    hits, heights = [[] for _ in columns], []
    for k in range(clips):
      seed, offset = first_seed + 10 * k + int(px or 1), OFFSETS[k % len(OFFSETS)]
      listener = None if px else synth.speaker_style(97, seed)
      shot = wide_shot.render_wide_shot(seed, synth.speaker_style(98, seed), listener, seconds, offset,
                                        face_px=px)
      heights.append(np.median(shot.face_boxes[:, 3]))
      path = os.path.join(folder, f"wide{px or 0:g}_{k}.mp4")
      write_video(path, shot.frames, shot.fps, shot.audio, shot.sample_rate, preset="ultrafast")
      for j, (framing, where) in enumerate(columns):
        with _crop_at(where):
          result = detect.score(model, detect.model_inputs(path, _pp(model, framing)), 15)
        hits[j].append((offset, result.offset, result.confidence, _listener_share(result, shot)))
    cells = [f"{sum(abs(d - t) <= 1 for t, d, *_ in h)} of {len(h)}" for h in hits]
    label = f"{px:g}" if px else f"drawn ({min(heights):.0f}-{max(heights):.0f})"
    print(f"| {label} | {' | '.join(cells)} |", flush=True)
    if not px:
      print("    drawn face heights: " + ", ".join(f"{h:.0f}" for h in heights), file=sys.stderr)
    for name, h in zip(names, hits):
      print(f"    {name}: true -> found (conf" + (", share of windows scored on the silent face) " if not px else ") ")
            + ", ".join(f"{t}->{d} ({c:.2f}" + (f", {share:.0%})" if not px else ")") for t, d, c, share in h),
            file=sys.stderr)


def dialogue_segments(result: detect.SyncResult, shot: wide_shot.WideShot) -> list[tuple[bool, bool, bool]]:
  """Per segment lying inside one turn: (names the face that talks, decided, decided offset within +-1 frame)."""
  face_of = track_faces(result.tracks, shot)
  out = []
  for s in result.timeline.segments:
    talking = set(timing.speaking_face(shot.turns, np.linspace(s.start_s, s.end_s, 9)))
    if len(talking) == 1:
      out.append((s.track is not None and face_of[s.track] == talking.pop(), s.decided,
                  s.decided and abs(s.offset - shot.offset_frames) <= 1))
  return out


def dialogues(model, framings, count: int, seconds: float, face_px: float, folder: str, save: str | None) -> None:
  print(f"\nspeaking face, {count} dialogues of {seconds:g} s (faces {face_px:g} px, turns of about 6 s, 4 s "
        "segments every 2 s), segments inside one turn: naming the face that talks; decided; decided offsets "
        "within +-1 frame")
  print("| framing | speaker, all | decided | speaker, decided | offsets, decided |")
  print("|---|---|---|---|---|")
  options = timeline.TimelineOptions(4.0, 2.0)
  captured, build = {}, timeline.build
  rows = {_name(f): [] for f in framings}
  for k in range(count):
    seed, offset = 3 + k, (2, -3, 5, 0, -1, 4)[k % 6]
    turns = timing.alternating_turns(seed, seconds, 6.0)
    shot = wide_shot.render_wide_shot(seed, synth.speaker_style(6, 2 * k), synth.speaker_style(6, 2 * k + 1),
                                      seconds, offset, face_px=face_px, turns=turns)
    path = os.path.join(folder, f"dialogue{k}.mp4")
    write_video(path, shot.frames, shot.fps, shot.audio, shot.sample_rate, preset="ultrafast")
    for framing in framings:
      key = f"{_name(framing)}/{k}"

      def capture(faces_, audio, *args):
        captured[key] = (faces_, audio)
        return build(faces_, audio, *args)

      timeline.build = capture
      result = detect.score(model, detect.model_inputs(path, _pp(model, framing)), 15, options)
      timeline.build = build
      segments = dialogue_segments(result, shot)
      rows[_name(framing)].extend(segments)
      faces_, audio = captured.pop(key)
      if save:
        captured[key] = {"audio": audio, "turns": np.array(turns), "offset": offset,
                         "face_of": np.array(track_faces(result.tracks, shot)),
                         **{f"distances{t}": f.distances for t, f in enumerate(faces_)},
                         **{f"video{t}": f.video for t, f in enumerate(faces_)},
                         **{f"first{t}": f.first for t, f in enumerate(faces_)},
                         **{f"ok{t}": f.ok for t, f in enumerate(faces_)}}
      print(f"    {_name(framing)} dialogue {k}: " + "".join("+" if r[0] else "-" for r in segments)
            + f"  decided: " + "".join("d" if r[1] else "." for r in segments), file=sys.stderr, flush=True)
  for name, found in rows.items():
    right, decided = sum(r[0] for r in found), [r for r in found if r[1]]
    print(f"| {name} | {right} of {len(found)} ({right / len(found):.0%}) | {len(decided)} of {len(found)} "
          f"| {sum(r[0] for r in decided)} of {len(decided)} | {sum(r[2] for r in decided)} of {len(decided)} |",
          flush=True)
  if save:
    np.savez(save, **{f"{key}/{name}": value for key, item in captured.items() for name, value in item.items()})


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--checkpoint", required=True, help="a training workdir or an exported model folder")
  parser.add_argument("--which", default="last", help="checkpoint of a workdir: last, best or a step")
  parser.add_argument("--framings", default="config", help="config, or SCALE,SHIFT pairs, comma-separated")
  parser.add_argument("--face-px", default="32,40,90",
                      help="face heights of the offset clips, comma-separated; 'drawn': the generator's own "
                      "(24..48 px by the seed, with a silent second face)")
  parser.add_argument("--crop-at", default="subpixel",
                      help=f"where small faces' squares are cropped, comma-separated: {', '.join(CROP_AT)} "
                      "(module doc)")
  parser.add_argument("--clips", type=int, default=10, help="offset clips per face height")
  parser.add_argument("--seconds", type=float, default=4.0, help="length of an offset clip")
  parser.add_argument("--first-seed", type=int, default=300,
                      help="offset clip k of face height px is drawn with seed FIRST_SEED + 10 k + px (default "
                      "%(default)s); another value gives other clips")
  parser.add_argument("--dialogues", type=int, default=4, help="40 s dialogues (0: none)")
  parser.add_argument("--dialogue-px", type=float, default=90.0, help="face height in the dialogues")
  parser.add_argument("--save", help="write the dialogues' per-face distances and embeddings to this .npz")
  parser.add_argument("--scan-every", type=int, help="BlazeFace's full scan every N-th detection frame "
                      "(preprocess.blazeface_scan_every; default: the checkpoint's)")
  args = parser.parse_args()
  from modeformer_jax.inference import load_sync_model

  _memo_detection()
  model = load_sync_model(args.checkpoint, args.which)
  if args.scan_every:
    model.config.preprocess.blazeface_scan_every = args.scan_every
  framings = _framings(args.framings)
  tick = time.perf_counter()
  with tempfile.TemporaryDirectory() as folder:
    if args.clips:
      face_px = [None if p == "drawn" else float(p) for p in args.face_px.split(",")]
      offsets(model, framings, face_px, args.clips, args.seconds, folder, args.crop_at.split(","), args.first_seed)
    if args.dialogues:
      dialogues(model, framings, args.dialogues, 40.0, args.dialogue_px, folder, args.save)
  print(f"\n{time.perf_counter() - tick:.0f} s; checkpoint {args.checkpoint} step {model.step}; BlazeFace's full "
        f"scan every {model.config.preprocess.blazeface_scan_every}th detection frame")


if __name__ == "__main__":
  main()
