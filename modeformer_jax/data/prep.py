"""LRS2 / LRS3 / plain video folders -> a TFDS ArrayRecord dataset of face crops, audio and log-mel.

Three stages:
  1. find clips (modeformer_jax.data.lrs_layout) and stat them;
  2. per clip, `process_clip` (pure, picklable; the same function in the local process pool and in the Beam
     pipeline): decode at 25 fps / 16 kHz mono, cut audio and video to a common length, face boxes, 96x96
     crops, log-mel. `work_one` persists its outcome in OUT/_work/<dataset>/<split>/: the record as a pickle,
     then a small JSON marker (the report line plus what the result depends on), each written to a temporary
     name and os.replace'd. The marker is the commit point, so an interrupted run leaves only whole results
     and a rerun recomputes only clips without a valid marker (source file, its .txt or the settings changed);
  3. write the shards: a TFDS GeneratorBasedBuilder reads the work files into a staging folder (TFDS itself
     writes to an `incomplete.*` folder and renames it when done), then the staged version folder replaces
     OUT/<dataset>/<version> by two renames. No partial shard ever carries the final name.

A rerun whose clip list, source files and settings are unchanged (the fingerprints in
OUT/<dataset>/<version>/prep_state.json) does nothing. The dataset holds exactly the splits of the run that
wrote it; a run that would drop splits of an existing dataset stops unless `replace=True`. OUT/_work can be
deleted once the dataset is final, at the price of recomputing everything if it is ever rebuilt.

Skip reasons (the report's `reason`; a skipped clip never stops the run):
  missing       the video named by a split list is not there
  unreadable    no read permission on the video or its .txt
  corrupt       not a media file, or nothing decodable in it
  no_video      no video stream / no decodable video frame
  no_audio      no audio stream / no decodable audio
  too_short     fewer than min_frames video frames or min_mel_frames mel frames after cutting to a common length
  av_mismatch   |audio - video duration| > max_av_diff seconds
  bad_txt       LRS3 .txt with a malformed FRAME table (a damaged side file: neither its boxes nor its
                transcript are trusted). A missing .txt, or one without a table, falls back to the detector with
                a warning instead.
  no_face       the detector found a face in fewer than min_face_coverage of the frames
  error         anything else (the detail holds the exception); reported, never raised
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import pickle
import shutil
import sys
import time
import traceback
import uuid
from typing import Any, Callable, Iterable, Iterator

import cv2
import ml_collections
import numpy as np
from tqdm import tqdm

from modeformer_jax import atomic
from modeformer_jax.data import lrs_layout
from modeformer_jax.data.lrs_layout import Clip
from modeformer_jax.data.records import dataset_dir, encode_jpeg_frames
from modeformer_jax.errors import UserError
from modeformer_jax.media import faces
from modeformer_jax.media.decode import MediaError, read_media
from modeformer_jax.media.logmel import log_mel
from modeformer_jax.media.preprocess_config import preprocess_config, with_face_defaults

# Part of every work file's settings fingerprint: bump when process_clip's output changes meaning.
WORK_FORMAT = 1
STATE_FILE = "prep_state.json"
REPORT_FILE = "prep_report.jsonl"
REASONS = ("missing", "unreadable", "corrupt", "no_video", "no_audio", "too_short", "av_mismatch", "bad_txt",
           "no_face", "error")
# MediaError reasons (modeformer_jax.media.decode) -> skip reason; the first matching prefix wins.
_MEDIA_REASONS = (("file not found", "missing"), ("permission denied", "unreadable"),
                  ("no video stream", "no_video"), ("no decodable video", "no_video"),
                  ("no audio stream", "no_audio"), ("no decodable audio", "no_audio"))
TIMING_KEYS = ("decode", "faces", "crop", "mel", "encode", "save")
SKIPPED_LISTED = 20  # skipped clips the summary names one per line; the per-clip report holds them all


@dataclasses.dataclass(frozen=True)
class PrepOptions:
  """Everything a clip's record depends on besides its files (all part of the settings fingerprint)."""
  dataset: str
  frame_storage: str = "jpeg"  # "raw" (uint8 crops) or "jpeg" (one JPEG per frame); see bench/prep_throughput.py
  jpeg_quality: int = 90
  min_frames: int = 5  # a 5-frame training window (SPEC 1); hard-negative needs are the trainer's business
  min_mel_frames: int = 16  # one 16-frame audio window
  max_av_diff: float = 0.3  # seconds; AAC priming and a last partial frame give up to ~0.1 s on good files
  min_face_coverage: float = 0.5  # fraction of frames with a detected face (detector-boxed clips only)
  preprocess: ml_collections.ConfigDict = dataclasses.field(default=None)  # None: preprocess_config()

  def __post_init__(self):
    if self.preprocess is None:
      object.__setattr__(self, "preprocess", preprocess_config())
    if self.frame_storage not in ("raw", "jpeg"):
      raise UserError(f"--frame-storage {self.frame_storage}: expected raw or jpeg")
    if not 1 <= self.jpeg_quality <= 100:
      raise UserError(f"--jpeg-quality {self.jpeg_quality}: expected 1..100")
    if self.min_frames < 1 or self.min_mel_frames < 1:
      raise UserError(f"--min-frames {self.min_frames} / --min-mel-frames {self.min_mel_frames}: must be >= 1")
    if self.max_av_diff < 0 or not 0 <= self.min_face_coverage <= 1:
      raise UserError(f"--max-av-diff {self.max_av_diff} must be >= 0 and --min-face-coverage "
                      f"{self.min_face_coverage} in [0, 1]")
    cfg = self.preprocess
    if cfg.sample_rate % cfg.fps:
      raise UserError(f"sample_rate {cfg.sample_rate} is not a whole number of samples per frame at {cfg.fps} fps")

  def fingerprint(self) -> str:
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "preprocess"}
    fields.update(preprocess=self.preprocess.to_dict(), work_format=WORK_FORMAT)
    return _sha(json.dumps(fields, sort_keys=True, default=str))


class _Skip(Exception):

  def __init__(self, reason: str, detail: str):
    super().__init__(f"{reason}: {detail}")
    self.reason, self.detail = reason, detail


def _sha(text: str) -> str:
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _media_skip(error) -> _Skip:
  for prefix, reason in _MEDIA_REASONS:
    if error.reason.startswith(prefix):
      return _Skip(reason, error.reason)
  return _Skip("corrupt", error.reason)


def process_clip(clip: Clip, options: PrepOptions) -> tuple[dict[str, Any] | None, dict[str, Any]]:
  """Prepares one clip: (TFDS example or None when skipped, report line). Never raises for a bad clip.

  The example holds num_frames = T, crops uint8 [T, 96, 96, 3] (or crops_jpeg object [T]), audio int16
  [T * 640], mel float16 [1 + 3.2 T, 80], boxes float32 [T, 4] and the text fields of tfds_builder.features.
  """
  report = {"id": clip.id, "split": clip.split, "source": clip.source, "status": "skipped", "reason": None,
            "detail": None, "warnings": [], "num_frames": 0, "seconds": 0.0, "av_diff_seconds": None,
            "timings": {}}
  try:
    example = _process(clip, options, report)
  except _Skip as e:
    report.update(reason=e.reason, detail=e.detail)
    return None, report
  except Exception as e:  # A bad clip must not end a run over 100k clips; the report keeps the evidence.
    report.update(reason="error", detail="".join(traceback.format_exception_only(e)).strip())
    return None, report
  report.update(status="ok")
  return example, report


def _process(clip: Clip, options: PrepOptions, report: dict) -> dict[str, Any]:
  cfg = options.preprocess
  timings = report["timings"]
  tick = time.perf_counter()

  def lap(name):
    nonlocal tick
    now = time.perf_counter()
    timings[name] = timings.get(name, 0.0) + now - tick
    tick = now

  for path in (clip.video, clip.txt):
    if path is not None and os.path.exists(path) and not os.access(path, os.R_OK):
      raise _Skip("unreadable", f"{path}: permission denied")
  try:
    media = read_media(clip.video, fps=cfg.fps, sample_rate=cfg.sample_rate)
  except MediaError as e:
    raise _media_skip(e) from None
  lap("decode")
  report.update(av_diff_seconds=round(float(media.av_diff_seconds), 4), source_fps=round(media.source_fps, 3),
                source_sample_rate=media.source_sample_rate, source_channels=media.source_channels)
  if abs(media.av_diff_seconds) > options.max_av_diff:
    raise _Skip("av_mismatch", f"audio {media.audio_seconds:.3f} s vs video {media.video_seconds:.3f} s")

  # Cut both streams to the frames that have audio, so mel window int(80 f / 25) exists for every frame.
  hop = int(cfg.sample_rate // cfg.fps)
  num_frames = min(len(media.frames), len(media.audio) // hop)
  num_mel = 1 + num_frames * hop // cfg.hop_length
  if num_frames < options.min_frames or num_mel < options.min_mel_frames:
    raise _Skip("too_short", f"{num_frames} frames / {num_mel} mel frames after cutting audio and video "
                f"to a common length (need {options.min_frames} / {options.min_mel_frames})")
  frames = media.frames[:num_frames]
  audio = media.audio[:num_frames * hop]
  height, width = frames.shape[1:3]

  transcript = lrs_layout.read_transcript(clip.txt)
  if clip.boxes == lrs_layout.BOXES_FIXED:
    # LRS2 frames are face-centred already: the fixed box is the crop itself.
    squares = _crop_squares(faces.fixed_boxes(num_frames, height, width, cfg.lrs2_box), 1.0, 0.0)
  else:
    boxes = None
    if clip.boxes == lrs_layout.BOXES_TXT and clip.txt is None:
      report["warnings"].append("no .txt beside the video: transcript empty, boxes from the face detector")
    elif clip.boxes == lrs_layout.BOXES_TXT:
      try:
        boxes = faces.read_lrs3_boxes(clip.txt, num_frames, width, height)
      except MediaError as e:
        raise _Skip("bad_txt", e.reason) from None
      if boxes is None:
        report["warnings"].append("no FRAME table in the .txt: boxes from the face detector")
    if boxes is None:
      track = faces.detect_faces(frames, cfg)
      report["face_coverage"] = round(float(track.coverage), 3)
      if track.coverage < options.min_face_coverage:
        raise _Skip("no_face", f"face found in {track.coverage:.0%} of the frames "
                    f"(need {options.min_face_coverage:.0%})")
      boxes = track.boxes
      face_px = faces.face_height(track)
    else:
      face_px = float(np.median(boxes[:, 3]))
    squares = _crop_squares(boxes, cfg.face_crop_scale, cfg.face_crop_shift_y)
    report["face_px"] = round(face_px, 1)
    small = with_face_defaults(cfg).small_face_px
    if face_px < small:
      report["warnings"].append(f"small face: {face_px:.0f} px tall (under {small} px), its crops mostly upsampled")
  lap("faces")
  crops = faces.crop_faces(frames, squares, cfg.crop_size)
  lap("crop")
  mel = log_mel(audio, cfg).astype(np.float16)
  lap("mel")
  if options.frame_storage == "jpeg":
    stored = {"crops_jpeg": encode_jpeg_frames(crops, options.jpeg_quality)}
  else:
    stored = {"crops": crops}
  pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
  lap("encode")
  report.update(num_frames=num_frames, seconds=round(num_frames / cfg.fps, 3))
  return {
      "id": clip.id, "speaker": clip.speaker, "clip": clip.clip, "split": clip.split, "source": clip.source,
      "transcript": transcript, "num_frames": np.int32(num_frames), **stored, "audio": pcm, "mel": mel,
      "boxes": squares, "av_diff_seconds": np.float32(media.av_diff_seconds),
  }


def _crop_squares(boxes: np.ndarray, scale: float, shift_y: float) -> np.ndarray:
  """Face boxes [T, 4] (x, y, w, h) -> the squares that are cropped, float32 [T, 4] (x, y, side, side).

  Side max(w, h) * scale, centred on the box centre moved down by shift_y * max(w, h) (the framing of
  preprocess_config's face_crop_scale / face_crop_shift_y). Records store these squares, so a crop pixel maps
  back to the source frame without knowing how the box was found.
  """
  boxes = np.asarray(boxes, np.float32)
  extent = boxes[:, 2:].max(axis=1)
  side = extent * scale
  cx = boxes[:, 0] + boxes[:, 2] / 2
  cy = boxes[:, 1] + boxes[:, 3] / 2 + shift_y * extent
  return np.stack([cx - side / 2, cy - side / 2, side, side], axis=1).astype(np.float32)


# --- work files ------------------------------------------------------------------------------------------


def clip_key(clip: Clip) -> dict[str, Any]:
  """What a clip's result depends on besides the settings: its files' size and modification time."""
  key = {"source": clip.source}
  for name, path in (("video", clip.video), ("txt", clip.txt)):
    try:
      st = os.stat(path) if path else None
    except OSError:
      st = None
    key[name] = [st.st_size, st.st_mtime_ns] if st else None
  return key


def work_paths(work_dir: str, clip: Clip) -> tuple[str, str]:
  """(marker .json, record .pkl) of a clip; names hash the id so any speaker/clip name is a safe file name."""
  digest = _sha(clip.id)[:32]
  folder = os.path.join(work_dir, clip.split, digest[:2])
  return os.path.join(folder, digest + ".json"), os.path.join(folder, digest + ".pkl")


def read_marker(work_dir: str, clip: Clip, key: dict, settings: str) -> dict | None:
  """The clip's stored report line when its result is current (same files, same settings), else None."""
  marker, _ = work_paths(work_dir, clip)
  try:
    with open(marker, encoding="utf-8") as f:
      stored = json.load(f)
  except (OSError, ValueError):
    return None
  if stored.get("key") != key or stored.get("settings") != settings:
    return None
  return stored["report"]


def work_one(clip: Clip, key: dict, options: PrepOptions, work_dir: str, settings: str) -> dict[str, Any]:
  """process_clip + persist (record first, then the marker that commits it); returns the report line.

  The line's cpu_seconds is this process's CPU time for the clip (decoder threads included): one clip runs
  at a time per process, so seconds / cpu_seconds is the speed per core.
  """
  cpu = time.process_time()
  example, report = process_clip(clip, options)
  start = time.perf_counter()
  marker, payload = work_paths(work_dir, clip)
  if example is not None:
    atomic.write(payload, pickle.dumps(example, protocol=pickle.HIGHEST_PROTOCOL), durable=True)
  elif os.path.exists(payload):  # An earlier run's record of a clip that is now skipped.
    os.remove(payload)
  report["timings"]["save"] = time.perf_counter() - start
  report["cpu_seconds"] = time.process_time() - cpu
  atomic.write(marker, json.dumps({"key": key, "settings": settings, "report": report}), durable=True)
  return report


def load_example(work_dir: str, clip: Clip) -> dict[str, Any]:
  with open(work_paths(work_dir, clip)[1], "rb") as f:
    return pickle.load(f)


# --- runners ---------------------------------------------------------------------------------------------


def _init_worker() -> None:
  # One process per core already fills the machine; library thread pools would only oversubscribe it.
  cv2.setNumThreads(1)


def _run_local(jobs: list[tuple[Clip, dict]], options: PrepOptions, work_dir: str, settings: str,
               workers: int) -> Iterator[dict]:
  if workers <= 1:
    for clip, key in jobs:
      yield work_one(clip, key, options, work_dir, settings)
    return
  # spawn, not fork: the parent may hold threads (TFDS, tqdm) whose locks a forked child would inherit.
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                              initializer=_init_worker) as pool:
    futures = [pool.submit(work_one, clip, key, options, work_dir, settings) for clip, key in jobs]
    try:
      for future in concurrent.futures.as_completed(futures):
        yield future.result()
    finally:
      for future in futures:
        future.cancel()


# --- orchestration ---------------------------------------------------------------------------------------


def _split_fingerprint(clips: list[Clip], keys: list[dict], settings: str) -> str:
  return _sha(json.dumps([settings, [[c.id, k] for c, k in zip(clips, keys)]]))


def _read_state(dataset_path: str) -> dict | None:
  try:
    with open(os.path.join(dataset_path, STATE_FILE), encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _summarise(splits: Iterable[str], reports: list[dict], computed: int) -> dict[str, Any]:
  by_split = {s: {"clips": 0, "ok": 0, "skipped": 0, "seconds": 0.0} for s in splits}
  reasons, warnings = collections.Counter(), collections.Counter()
  skipped = []
  timings = dict.fromkeys(TIMING_KEYS, 0.0)
  for r in reports:
    s = by_split[r["split"]]
    s["clips"] += 1
    s[r["status"]] += 1
    s["seconds"] = round(s["seconds"] + r["seconds"], 3)
    if r["status"] == "skipped":
      reasons[r["reason"]] += 1
      skipped.append({"source": r["source"], "reason": r["reason"], "detail": r["detail"]})
    warnings.update(w.split(":")[0] for w in r["warnings"])
    for k, v in r["timings"].items():
      timings[k] += v
  ok = sum(s["ok"] for s in by_split.values())
  cpu = sum(r["cpu_seconds"] for r in reports)
  seconds = sum(r["seconds"] for r in reports)
  return {
      "clips": len(reports), "ok": ok, "skipped": len(reports) - ok, "computed": computed,
      "resumed": len(reports) - computed, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
      "real_time_per_core": round(seconds / cpu, 2) if cpu else None,
      "splits": by_split, "skipped_by_reason": dict(reasons.most_common()),
      "skipped_items": skipped[:SKIPPED_LISTED], "skipped_unlisted": max(0, len(skipped) - SKIPPED_LISTED),
      "warnings": dict(warnings.most_common()), "clip_timings": {k: round(v, 3) for k, v in timings.items()},
  }


def _write_report(out: str, dataset: str, reports: list[dict]) -> str:
  path = os.path.join(out, REPORT_FILE)
  lines = [json.dumps({"dataset": dataset, **r}, ensure_ascii=False) for r in reports]
  atomic.write(path, "\n".join(lines) + "\n", durable=True)
  return path


def _write_dataset(out: str, options: PrepOptions, clips: dict[str, list[Clip]], reports: dict[tuple, dict],
                   work_dir: str, state: dict, progress: bool) -> tuple[str, list[str]]:
  """Builds the TFDS dataset from the work files and swaps it into place; returns (path, splits written)."""
  import tensorflow_datasets as tfds

  from modeformer_jax.data.tfds_builder import BUILDERS

  def examples(split):
    def generate() -> Iterable[tuple[str, dict]]:
      ok = [c for c in clips[split] if reports[split, c.id]["status"] == "ok"]
      for clip in tqdm(ok, desc=f"write {split}", unit="clip", disable=not progress, file=sys.stderr):
        yield clip.id, load_example(work_dir, clip)
    return generate

  splits = [s for s, cs in clips.items() if any(reports[s, c.id]["status"] == "ok" for c in cs)]
  stage = os.path.join(work_dir, f"_build-{uuid.uuid4().hex[:8]}")
  final = dataset_dir(out, options.dataset)
  trash = None
  try:
    cfg = options.preprocess
    builder = BUILDERS[options.dataset](data_dir=stage, frame_storage=options.frame_storage,
                                        examples={s: examples(s) for s in splits}, crop_size=cfg.crop_size,
                                        mel_bins=cfg.n_mels)
    # One bar per split (above) instead of TFDS's own, and TFDS's chatter off stdout (--json prints there).
    tfds.display_progress_bar(False)
    with contextlib.redirect_stdout(sys.stderr):
      builder.download_and_prepare(download_dir=os.path.join(stage, "downloads"))
    staged = os.path.join(stage, options.dataset, os.path.basename(final))
    with open(os.path.join(staged, STATE_FILE), "w", encoding="utf-8") as f:
      json.dump(state, f, indent=1)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    if os.path.exists(final):
      trash = os.path.join(work_dir, f"_old-{uuid.uuid4().hex[:8]}")
      os.rename(final, trash)
    os.rename(staged, final)
  finally:
    shutil.rmtree(stage, ignore_errors=True)
    if trash:
      shutil.rmtree(trash, ignore_errors=True)
  return final, splits


def prepare(dataset: str, src: str, out: str, splits: Iterable[str] = (), *, options: PrepOptions | None = None,
            workers: int | None = None, runner: str = "local", beam_options: Iterable[str] = (),
            limit: int | None = None, val_fraction: float = 0.05, replace: bool = False, progress: bool = True,
            on_result: Callable[[dict], None] | None = None) -> dict[str, Any]:
  """Prepares the clips of `splits` under `src` into OUT/<dataset>/<version>; returns the run summary.

  Args:
    dataset: "lrs2", "lrs3" or "folder" (see modeformer_jax.data.lrs_layout).
    src, out: source root and output data_dir (OUT/_work holds the resumable per-clip results).
    splits: split names; empty = the layout's default splits.
    options: per-clip settings (PrepOptions(dataset) when None).
    workers: local processes (default os.cpu_count()); 1 runs in this process.
    runner: "local" or "beam" (modeformer_jax.data.beam_runner; `beam_options` go to PipelineOptions).
    limit: keep only the first `limit` clips (by id) of each split, for a quick trial.
    val_fraction: LRS3 only, share of trainval speakers in the derived "val" split.
    replace: allow the new dataset to drop splits an existing one has.
    progress: tqdm bar on stderr.
    on_result: called with each newly computed clip's report line (tests use it to interrupt a run).

  Returns:
    The summary: counts per split and per skip reason, timings, `status` ("written", "unchanged" or
    "nothing": no clip could be prepared, no dataset written), `dataset_dir` and `report`.
  """
  start = time.perf_counter()
  options = options or PrepOptions(dataset)
  if options.dataset != dataset:
    raise ValueError(f"options are for {options.dataset}, not {dataset}")
  if runner not in ("local", "beam"):
    raise UserError(f"--runner {runner}: expected local or beam")
  if limit is not None and limit < 1:
    raise UserError(f"--limit {limit}: must be at least 1")
  workers = workers or os.cpu_count() or 1
  clips = lrs_layout.find_clips(dataset, src, tuple(splits), val_fraction=val_fraction)
  if limit:
    clips = {s: cs[:limit] for s, cs in clips.items()}
  settings = options.fingerprint()
  keys = {s: [clip_key(c) for c in cs] for s, cs in clips.items()}
  fingerprints = {s: _split_fingerprint(clips[s], keys[s], settings) for s in clips}

  final = dataset_dir(out, dataset)
  old = _read_state(final) if os.path.isdir(final) else None
  if old is not None:
    dropped = sorted(set(old["fingerprints"]) - set(clips))
    if dropped and not replace:
      raise UserError(f"{final}: holds the splits {', '.join(sorted(old['fingerprints']))}; this run would "
                      f"drop {', '.join(dropped)}. Ask for every split the dataset should hold (--splits), or "
                      "pass --replace")
    if old["fingerprints"] == fingerprints:
      return {**old["summary"], "status": "unchanged", "dataset_dir": final, "computed": 0,
              "resumed": old["summary"]["clips"], "wall_seconds": round(time.perf_counter() - start, 3)}

  work_dir = os.path.join(out, "_work", dataset)
  reports: dict[tuple[str, str], dict] = {}
  jobs = []
  for split, cs in clips.items():
    for clip, key in zip(cs, keys[split]):
      done = read_marker(work_dir, clip, key, settings)
      if done is None:
        jobs.append((clip, key))
      else:
        reports[split, clip.id] = {**done, "resumed": True}
  compute_start = time.perf_counter()
  if jobs:
    if runner == "beam":
      from modeformer_jax.data import beam_runner
      beam_runner.run(jobs, options, work_dir, settings, list(beam_options))
      results = (read_marker(work_dir, clip, key, settings) for clip, key in jobs)
    else:
      results = _run_local(jobs, options, work_dir, settings, workers)
    for report in tqdm(results, total=len(jobs), desc=f"prep {dataset}", unit="clip", disable=not progress,
                       file=sys.stderr, smoothing=0.05):
      if report is None:
        raise RuntimeError(f"{work_dir}: the Beam pipeline finished without a result for some clips")
      reports[report["split"], report["id"]] = {**report, "resumed": False}
      if on_result is not None:
        on_result(report)
  compute_seconds = time.perf_counter() - compute_start

  ordered = [reports[s, c.id] for s, cs in clips.items() for c in cs]
  summary = _summarise(clips, ordered, computed=len(jobs))
  heights = [r["face_px"] for r in ordered if r["status"] == "ok" and r.get("face_px")]
  if heights:  # how small the faces were: a detector's or table's boxes (LRS2's fixed crops: the frame)
    small_face_px = with_face_defaults(options.preprocess).small_face_px
    summary["face_px"] = {"median": float(np.median(heights)), "min": float(np.min(heights)),
                          "small": sum(h < small_face_px for h in heights), "small_face_px": small_face_px}
  summary.update(dataset=dataset, src=src, out=out, runner=runner, workers=workers if runner == "local" else None,
                 frame_storage=options.frame_storage, compute_seconds=round(compute_seconds, 3),
                 report=_write_report(out, dataset, ordered))
  if summary["ok"] == 0:
    summary.update(status="nothing", dataset_dir=None, write_seconds=0.0,
                   wall_seconds=round(time.perf_counter() - start, 3))
    return summary
  write_start = time.perf_counter()
  state = {"fingerprints": fingerprints, "settings": settings, "summary": summary}
  path, written = _write_dataset(out, options, clips, reports, work_dir, state, progress)
  summary.update(status="written", dataset_dir=path, tfds_splits=written,
                 write_seconds=round(time.perf_counter() - write_start, 3),
                 wall_seconds=round(time.perf_counter() - start, 3))
  return summary


def _duration(seconds: float) -> str:
  return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"


def format_summary(summary: dict[str, Any]) -> str:
  """Human-readable summary: one line per split, then skip reasons and warnings."""
  status = {"written": f"wrote {summary.get('dataset_dir')}",
            "unchanged": f"{summary.get('dataset_dir')} is up to date: nothing to do",
            "nothing": "no clip could be prepared: no dataset written"}[summary["status"]]
  lines = [f"{summary['dataset']}: {status}",
           f"  {summary['clips']} clips: {summary['ok']} prepared, {summary['skipped']} skipped "
           f"({summary['computed']} computed, {summary['resumed']} from earlier runs), "
           f"{_duration(summary['seconds'])} of video"]
  if summary.get("real_time_per_core"):
    lines.append(f"  {summary['real_time_per_core']:.1f}x real time per core")
  for split, s in summary["splits"].items():
    lines.append(f"  {split:>10}: {s['ok']:>7} ok {s['skipped']:>7} skipped {_duration(s['seconds']):>10}")
  if summary.get("face_px"):
    px = summary["face_px"]
    lines.append(f"  face height: median {px['median']:.0f} px, smallest {px['min']:.0f} px "
                 f"({px['small']} clips under {px['small_face_px']} px: crops mostly upsampled)")
  for reason, n in summary["skipped_by_reason"].items():
    lines.append(f"  skipped {reason}: {n}")
  for item in summary["skipped_items"]:
    lines.append(f"  skipped {item['source']}: {item['reason']}" + (f": {item['detail']}" if item["detail"] else ""))
  if summary["skipped_unlisted"]:
    lines.append(f"  ... and {summary['skipped_unlisted']} more skipped clips in the per-clip report")
  for warning, n in summary["warnings"].items():
    lines.append(f"  warning ({n}x): {warning}")
  if summary.get("report"):
    lines.append(f"  per-clip report: {summary['report']}")
  return "\n".join(lines)
