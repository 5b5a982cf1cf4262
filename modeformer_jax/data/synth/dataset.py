"""A generated dataset on disk: the clips to make (plan_dataset), rendered in a process pool and written each
atomically (write_dataset), and manifest.jsonl with the ground truth of every clip, which also lets an
interrupted run resume."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from modeformer_jax import atomic
from modeformer_jax.cpu_cores import usable_cores
from modeformer_jax.data.synth import streams, wide_shot
from modeformer_jax.data.synth.clip import render_clip
from modeformer_jax.data.synth.timing import alternating_turns
from modeformer_jax.data.synth.layout import (FACE_SCALE, FRAME_SIZE, LAYOUTS, clip_path, speaker_id, speaker_splits,
                                              transcript_file)
from modeformer_jax.data.synth.speakers import SpeakerStyle, speaker_style

MANIFEST = "manifest.jsonl"
# A manifest row whose fields match these (and whose files are on disk) is a finished clip on a rerun.
_JOB_FIELDS = ("path", "layout", "split", "speaker", "clip", "fps", "sample_rate", "channels", "seconds",
               "offset_frames", "seed", "shot", "drift_ms_per_min", "step_s", "step_to_frames", "turns", "face_px")
# What rows written before a field existed mean by its absence.
_ABSENT = {"shot": "closeup", "drift_ms_per_min": 0.0}
SHOTS = ("closeup", "wide")  # wide: synth.wide_shot (a small face in a busy 454x256 scene)


def _make_clip(out_dir: str, job: dict, style: SpeakerStyle, threads: int) -> dict:
  """Renders and writes one clip (transcript, then mp4; each atomically) and returns its manifest row."""
  from modeformer_jax.media.encode import write_video  # av loads in the workers only

  layout = job["layout"]
  timing = dict(drift_ms_per_min=job["drift_ms_per_min"],
                step=None if job["step_s"] is None else (job["step_s"], job["step_to_frames"]))
  extra = {}
  if job["shot"] == "wide":
    listener = speaker_style(job["dataset_seed"], 1_000_000 + job["speaker_index"])
    turns = None if job["turns"] is None else [tuple(turn) for turn in job["turns"]]
    clip = wide_shot.render_wide_shot(job["seed"], style, listener, job["seconds"], job["offset_frames"],
                                      face_px=job["face_px"], fps=job["fps"], sample_rate=job["sample_rate"],
                                      turns=turns, **timing)
    size = np.array([wide_shot.WIDTH, wide_shot.HEIGHT] * 2, np.float32)  # box table relative to the frame
    extra["listener_boxes"] = np.round(clip.listener_boxes, 2).tolist()
  else:
    clip = render_clip(job["seed"], style, job["seconds"], job["offset_frames"], FRAME_SIZE[layout], job["fps"],
                       job["sample_rate"], FACE_SCALE[layout], **timing)
    size = FRAME_SIZE[layout]
  path = Path(out_dir) / job["path"]
  path.parent.mkdir(parents=True, exist_ok=True)
  text = transcript_file(layout, clip, streams.generator(job["seed"], 0x7e47), size)
  atomic.write(path.with_suffix(".txt"), text)
  audio = clip.audio if job["channels"] == 1 else np.repeat(clip.audio[:, None], job["channels"], axis=1)
  size = write_video(path, clip.frames, job["fps"], audio, job["sample_rate"], threads=threads)
  return {**job, "num_frames": len(clip.frames), "transcript": clip.transcript,
          "face_boxes": np.round(clip.face_boxes, 2).tolist(), **extra,
          "mouth_centers": np.round(clip.mouth_centers, 2).tolist(),
          "mouth_open": np.round(clip.mouth_open, 4).tolist(), "bytes": size}


def read_manifest(out_dir: str | os.PathLike) -> list[dict]:
  """Rows of DIR/manifest.jsonl ([] if absent); a torn last line (interrupted append) is ignored."""
  path = Path(out_dir) / MANIFEST
  if not path.exists():
    return []
  rows = []
  for line in path.read_text().splitlines():
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return rows


def _finished(out_dir: Path, job: dict, row: dict | None) -> bool:
  if row is None or any(row.get(k, _ABSENT.get(k)) != job[k] for k in _JOB_FIELDS):
    return False
  mp4 = out_dir / job["path"]
  return mp4.is_file() and mp4.stat().st_size == row.get("bytes") and mp4.with_suffix(".txt").is_file()


def plan_dataset(layout: str, speakers: int, clips_per_speaker: int, seconds: float, seed: int,
                 offsets_frames: Sequence[int] = (), offset_fraction: float = 0.5, fps: float = 25.0,
                 sample_rate: int = 16000, channels: int = 1, shot: str = "closeup",
                 drifts_ms_per_min: Sequence[float] = (), steps_frames: Sequence[int] = (),
                 step_at: float | None = None, turn_seconds: float | None = None,
                 face_px: float | None = None) -> list[dict]:
  """The clips write_dataset makes, in manifest order: the manifest fields known before rendering.

  Each clip draws its drift from drifts_ms_per_min (none: 0) and an offset change from steps_frames (none:
  no step), made at step_at seconds or, without it, at a time drawn from the clip's middle third. Wide shots
  with turn_seconds are dialogues whose two faces take turns of about that long (synth.timing); face_px sets
  the wide shots' face height (default drawn from 24..48 px per clip).
  """
  if layout not in LAYOUTS:
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
  if shot not in SHOTS:
    raise ValueError(f"shot must be one of {SHOTS}, got {shot!r}")
  if speakers < 1 or clips_per_speaker < 1:
    raise ValueError(f"speakers and clips_per_speaker must be >= 1, got {speakers}, {clips_per_speaker}")
  if not (seconds > 0 and fps > 0 and sample_rate > 0):
    raise ValueError(f"seconds, fps and sample_rate must be > 0, got {seconds}, {fps}, {sample_rate}")
  if not 1 <= channels <= 7:
    raise ValueError(f"channels must be 1..7, got {channels}")
  if not 0 <= offset_fraction <= 1:
    raise ValueError(f"offset_fraction must be in [0, 1], got {offset_fraction}")
  if step_at is not None and not (steps_frames and 0 < step_at < seconds):
    raise ValueError(f"step_at {step_at}: needs steps_frames and a time inside the clip (0..{seconds} s)")
  if (turn_seconds is not None or face_px is not None) and shot != "wide":
    raise ValueError("turn_seconds and face_px are for wide shots (shot 'wide')")
  if turn_seconds is not None and not turn_seconds > 0:
    raise ValueError(f"turn_seconds must be positive, got {turn_seconds}")
  jobs, ids = [], set()
  for s, split in enumerate(speaker_splits(layout, speakers)):
    speaker = speaker_id(layout, seed, s)
    if speaker in ids:
      raise ValueError(f"speaker id collision for seed {seed}: {speaker}")
    ids.add(speaker)
    for c in range(clips_per_speaker):
      clip = f"{c + 1:05d}"
      rng = streams.generator(seed, s, c, 0x0ff5e7)
      shifted = bool(offsets_frames) and rng.random() < offset_fraction
      offset = int(rng.choice(list(offsets_frames))) if shifted else 0
      # Drifts, steps and turns draw from a stream of their own: the offsets above stay as they were.
      timing = streams.generator(seed, s, c, 0xd21f7)
      drift = float(timing.choice(list(drifts_ms_per_min))) if drifts_ms_per_min else 0.0
      step_s = step_to = None
      if steps_frames:
        step_to = offset + int(timing.choice(list(steps_frames)))
        step_s = round(float(step_at if step_at is not None else timing.uniform(seconds / 3, 2 * seconds / 3)), 3)
      clip_seed = int(np.random.SeedSequence([seed, s, c]).generate_state(1)[0])
      turns = None if turn_seconds is None else [list(t) for t in alternating_turns(clip_seed, seconds, turn_seconds)]
      jobs.append({"path": clip_path(layout, split, speaker, clip), "layout": layout, "split": split,
                   "speaker": speaker, "clip": clip, "fps": float(fps), "sample_rate": int(sample_rate),
                   "channels": int(channels), "seconds": float(seconds), "offset_frames": offset, "shot": shot,
                   "seed": clip_seed, "dataset_seed": int(seed), "speaker_index": s, "drift_ms_per_min": drift,
                   "step_s": step_s, "step_to_frames": step_to, "turns": turns,
                   "face_px": None if face_px is None else float(face_px)})
  return jobs


def write_dataset(out_dir: str | os.PathLike, layout: str, speakers: int, clips_per_speaker: int,
                  seconds: float, seed: int, offsets_frames: Sequence[int] = (), offset_fraction: float = 0.5,
                  workers: int | None = None, fps: float = 25.0, sample_rate: int = 16000, channels: int = 1,
                  progress: bool = True, shot: str = "closeup", **timing) -> list[dict]:
  """Writes a stand-in dataset under out_dir and returns its manifest rows (in manifest order).

  Clips already complete from an earlier run with the same settings (manifest row matches, files present)
  are kept, so an interrupted run resumes. Each finished clip's row is appended to manifest.jsonl at once;
  at the end the manifest is rewritten to hold exactly this dataset's clips in order, and (lrs2) the split
  lists pretrain/train/val/test.txt are written.

  shot "wide" renders synth.wide_shot scenes (454x256, a small face, a silent listener) instead of close-ups.
  timing: plan_dataset's drifts_ms_per_min, steps_frames, step_at, turn_seconds and face_px.

  A row: path (relative to out_dir), layout, split, speaker, clip, fps, sample_rate, channels, seconds,
  offset_frames (> 0: audio leads; before the step, at time 0 with a drift), shot, seed (render_clip's),
  dataset_seed, speaker_index, drift_ms_per_min, step_s and step_to_frames (the offset from step_s on; both
  null without a step), turns ([start, end, face] seconds, face 0 the speaker and 1 the listener; null unless a
  dialogue), face_px (null: drawn), num_frames, transcript, face_boxes [T][x, y, w, h] px (wide shots also
  listener_boxes), mouth_centers [T][cx, cy] px, mouth_open [T] 0..1, bytes (mp4).
  """
  from tqdm import tqdm

  out = Path(out_dir)
  jobs = plan_dataset(layout, speakers, clips_per_speaker, seconds, seed, offsets_frames, offset_fraction,
                      fps, sample_rate, channels, shot, **timing)
  out.mkdir(parents=True, exist_ok=True)
  # Temporary files of a killed run would otherwise look like clips to a folder listing.
  for folder in {(out / job["path"]).parent for job in jobs}:
    for stale in folder.glob(".*.partial*"):
      stale.unlink()
  previous = {row.get("path"): row for row in read_manifest(out)}
  rows = {job["path"]: previous[job["path"]]
          for job in jobs if _finished(out, job, previous.get(job["path"]))}
  todo = [job for job in jobs if job["path"] not in rows]
  workers = max(1, min(workers or len(usable_cores()), len(todo)))
  styles = {s: speaker_style(seed, s) for s in {job["speaker_index"] for job in todo}}
  bar = tqdm(total=len(jobs), initial=len(rows), desc=f"synth {layout}", unit="clip", file=sys.stderr,
             disable=not progress)
  with bar, open(out / MANIFEST, "a") as manifest:
    def done(row: dict) -> None:
      rows[row["path"]] = row
      manifest.write(json.dumps(row) + "\n")
      manifest.flush()
      bar.update()

    if workers == 1:
      for job in todo:
        done(_make_clip(str(out), job, styles[job["speaker_index"]], threads=0))
    else:
      # forkserver: never fork a parent that may hold threads (tqdm's monitor, a jax runtime in tests).
      context = multiprocessing.get_context("forkserver")
      with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_make_clip, str(out), job, styles[job["speaker_index"]], 1) for job in todo]
        try:
          for future in concurrent.futures.as_completed(futures):
            done(future.result())
        finally:
          pool.shutdown(cancel_futures=True)
  ordered = [rows[job["path"]] for job in jobs]
  atomic.write(out / MANIFEST, "".join(json.dumps(row) + "\n" for row in ordered))
  if layout == "lrs2":
    for split in ("pretrain", "train", "val", "test"):
      suffix = " NF" if split == "test" else ""  # the released test list flags each line
      names = [f"{row['speaker']}/{row['clip']}{suffix}\n" for row in ordered if row["split"] == split]
      atomic.write(out / f"{split}.txt", "".join(names))
  return ordered
