"""Many files: decode, face tracking and log-mel in worker processes while the main process runs the model.

The model is compiled once (fixed batch size) and stays in the main process; workers run only the face
detector (BlazeFace, in jax on their CPU: media/blazeface.py) or none (--face-centered, the Haar cascade). A
worker returns a file's crops and mel (about 40 MB per minute of video), the main process embeds and scores
them. At most 2 x workers files are in flight, so memory stays bounded however many files there are. Results
come back in input order. A file that fails becomes a Failure with a one-line reason; the others go on.
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

import ml_collections
import numpy as np

from modeformer_jax import atomic
from modeformer_jax.cpu_cores import keep_to_threads, share_threads
from modeformer_jax.errors import UserError
from modeformer_jax.media.decode import MediaError
from modeformer_jax.sync.detect import ModelInputs, SyncResult, model_inputs, score
from modeformer_jax.sync.timeline import TimelineOptions

if TYPE_CHECKING:
  from modeformer_jax.inference import SyncModel

# Extensions picked up when walking a folder (files named on the command line are taken whatever they are).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".flv",
                    ".wmv", ".3gp")


@dataclasses.dataclass(frozen=True)
class Item:
  """One input file and the name its outputs (plot, corrected copy) get under an output folder."""
  path: str
  name: str  # relative to the folder it was found in, or the file name for files named directly


@dataclasses.dataclass
class Failure:
  path: str
  reason: str  # one line

  @classmethod
  def of(cls, path: str, error: UserError) -> Failure:
    return cls(path, error.reason if isinstance(error, MediaError) else str(error))


def find_inputs(inputs: Sequence[str]) -> list[Item]:
  """Files as given, folders walked recursively for VIDEO_EXTENSIONS (sorted).

  Raises:
    UserError: a folder holds no video file.
  """
  items = []
  for given in inputs:
    if not os.path.isdir(given):
      items.append(Item(given, os.path.basename(given)))
      continue
    found = sorted(os.path.join(root, f) for root, _, files in os.walk(given) for f in files
                   if f.lower().endswith(VIDEO_EXTENSIONS) and not f.startswith("."))
    if not found:
      raise UserError(f"{given}: no video files ({', '.join(VIDEO_EXTENSIONS)}) in this folder")
    items.extend(Item(f, os.path.relpath(f, given)) for f in found)
  return items


def _inputs_or_failure(path: str, pp: ml_collections.ConfigDict, face_centered: bool, max_offset: int,
                       chunk_mb: float, max_faces: int) -> ModelInputs | Failure:
  """model_inputs() that reports instead of raising (exceptions with custom __init__ do not survive pickling)."""
  try:
    return model_inputs(path, pp, face_centered=face_centered, max_offset=max_offset, chunk_mb=chunk_mb,
                        max_faces=max_faces)
  except UserError as e:
    return Failure.of(path, e)
  except Exception as e:  # a decoder or detector bug on one file must not end a batch of thousands
    return Failure(path, f"internal error: {type(e).__name__}: {e}")


def _in_workers(work: Callable[[str], ModelInputs | Failure], paths: Sequence[str],
                workers: int, threads: int | None = None) -> Iterator[ModelInputs | Failure]:
  """work(path) for every path, in order: in this process (workers 0) or `workers` worker processes, each
  keeping to `threads` threads (decoder and XLA together; default its share of this process's budget).

  A worker that dies (a decoder crash, the out-of-memory killer) takes the pool with it. The file being
  waited for is then tried once more alone in a fresh pool, so the blame lands on the file that causes it;
  the other files go on in that fresh pool.
  """
  if workers == 0:
    yield from map(work, paths)
    return
  # forkserver: the main process holds jax's threads, which a fork would copy in an unknown state.
  context = multiprocessing.get_context("forkserver")
  pool, pending = None, {}
  try:
    for i, path in enumerate(paths):
      for attempt in range(2):
        try:
          if pool is None:
            pool, pending = concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=context, initializer=keep_to_threads,
                initargs=(threads or share_threads(workers),)), {}
          for k in range(i, min(i + (2 * workers if attempt == 0 else 1), len(paths))):
            if k not in pending:
              pending[k] = pool.submit(work, paths[k])
          result = pending.pop(i).result()
          break
        except BrokenProcessPool:  # raised by submit() too, once the pool knows
          pool.shutdown(wait=True, cancel_futures=True)
          pool = None
          result = Failure(path, "the worker process reading it died (decoder crash or out of memory)")
      yield result
  finally:
    if pool is not None:
      pool.shutdown(wait=True, cancel_futures=True)


def detect_many(model: SyncModel, paths: Sequence[str], *, face_centered: bool = False, max_offset: int = 15,
                workers: int = 0, chunk_mb: float = 1024.0, max_faces: int = 4,
                timeline: TimelineOptions | None = None, desc: str = "sync",
                worker_threads: int | None = None) -> Iterator[SyncResult | Failure]:
  """One SyncResult or Failure per path, in order, with a tqdm bar on stderr (when it is a terminal).

  chunk_mb bounds the decoded frames each file holds at once, max_faces the faces scored (see
  detect.model_inputs); timeline: each file's offsets over time (see detect.score); worker_threads: each
  worker's thread budget (default: the cores shared among the workers, cpu_cores.share_threads).
  """
  from functools import partial

  from tqdm import tqdm

  work = partial(_inputs_or_failure, pp=model.config.preprocess, face_centered=face_centered, max_offset=max_offset,
                 chunk_mb=chunk_mb, max_faces=max_faces)
  with tqdm(total=len(paths), desc=desc, unit="file", file=sys.stderr, disable=None) as bar:
    for result in _in_workers(work, list(paths), workers, worker_threads):
      if isinstance(result, ModelInputs):
        try:
          result = score(model, result, max_offset, timeline)
        except UserError as e:
          result = Failure.of(result.path, e)
      bar.update()
      yield result


# ---------------------------------------------------------------------------------------------------------
# Summary.

_COLUMNS = ("path", "status", "av_offset_frames", "av_offset_ms", "sign", "min_dist", "confidence",
            "histogram_mode_frames", "face_coverage", "face_px", "windows_scored", "duration_s", "trend_kind",
            "trend_offset_ms", "drift_ms_per_min", "drift_error_ms_per_min", "step_s", "trend", "trend_refusal",
            "corrected_path", "corrected_av_offset_frames", "corrected_trend", "error")


def summary_row(result: SyncResult | Failure) -> dict:
  """One file's flat row (the _COLUMNS); the trend_* columns are filled with a timeline (sync --timeline)."""
  if isinstance(result, Failure):
    row = {"path": result.path, "status": "failed", "error": result.reason}
  else:
    full = result.to_json()
    row = {k: full[k] for k in _COLUMNS if k in full}
    row["status"] = "ok"
    if result.timeline_shown:
      trend = result.timeline.trend
      row.update(trend_kind=trend.kind, trend_offset_ms=full["timeline"]["trend"]["offset_ms"],
                 drift_ms_per_min=full["timeline"]["trend"]["drift_ms_per_min"],
                 drift_error_ms_per_min=full["timeline"]["trend"]["drift_error_ms_per_min"],
                 step_s=full["timeline"]["trend"]["step_s"], trend=trend.text(), trend_refusal=trend.refusal())
  return {k: row.get(k) for k in _COLUMNS}


def with_correction(row: dict, copy_path: str, recheck: SyncResult | Failure) -> dict:
  """The row with its corrected copy and that copy's re-check (or the reason it failed)."""
  row = {**row, "corrected_path": copy_path}
  if isinstance(recheck, Failure):
    row.update(corrected_av_offset_frames=None, corrected_trend=None, error=f"corrected copy: {recheck.reason}")
  else:
    row.update(corrected_av_offset_frames=recheck.offset, error=None,
               corrected_trend=recheck.timeline.trend.text() if recheck.timeline_shown else None)
  return row


def averages(rows: Sequence[dict]) -> dict:
  """LSE-D = mean Min dist, LSE-C = mean Confidence over the files that were scored (syncnet's dataset
  numbers, here on our distance scale), and the share of files in sync (|AV offset| <= 1 frame)."""
  ok = [r for r in rows if r["status"] == "ok"]
  mean = (lambda xs: round(float(np.mean(xs)), 4)) if ok else (lambda xs: None)
  return {"files": len(rows), "scored": len(ok), "failed": len(rows) - len(ok),
          "lse_d": mean([r["min_dist"] for r in ok]), "lse_c": mean([r["confidence"] for r in ok]),
          "mean_abs_offset_frames": mean([abs(r["av_offset_frames"]) for r in ok]),
          "in_sync_fraction": mean([abs(r["av_offset_frames"]) <= 1 for r in ok])}


def format_table(rows: Sequence[dict], summary: dict) -> str:
  """The end-of-batch table: one line per file, then the averages and the failures with their reasons."""
  width = max([len("file")] + [len(r["path"]) for r in rows])
  show_corrected = any(r["corrected_path"] for r in rows)
  head = (f"{'file':<{width}}  {'offset':>6}  {'ms':>6}  {'min dist':>8}  {'conf':>6}  {'mode':>4}  {'face':>5}"
          f"  {'px':>4}")
  lines = [head + ("  fixed" if show_corrected else ""), "-" * (len(head) + 7 * show_corrected)]
  for r in rows:
    if r["status"] != "ok":
      lines.append(f"{r['path']:<{width}}  FAILED: {r['error']}")
      continue
    line = (f"{r['path']:<{width}}  {r['av_offset_frames']:>6d}  {r['av_offset_ms']:>6.0f}  {r['min_dist']:>8.3f}"
            f"  {r['confidence']:>6.3f}  {r['histogram_mode_frames']:>4d}  {r['face_coverage']:>5.0%}"
            f"  {r['face_px'] or 0:>4.0f}")
    if show_corrected:
      fixed = r["corrected_av_offset_frames"]
      line += f"  {fixed:>5d}" if fixed is not None else "      -"
    lines.append(line)
  lines.append("-" * len(lines[1]))
  if summary["scored"]:
    lines.append(f"{summary['scored']} scored: LSE-D (mean Min dist) {summary['lse_d']:.3f}, LSE-C (mean "
                 f"Confidence) {summary['lse_c']:.3f}; in sync (|offset| <= 1) {summary['in_sync_fraction']:.0%}; "
                 f"offset > 0: audio leads video")
  if summary["failed"]:
    lines.append(f"{summary['failed']} failed:")
    lines.extend(f"  {r['path']}: {r['error']}" for r in rows if r["status"] != "ok")
  return "\n".join(lines)


def summary_format(path: str) -> str:
  """".csv" or ".jsonl", from the file name.

  Raises:
    UserError: any other extension.
  """
  kind = os.path.splitext(path)[1].lower()
  if kind not in (".csv", ".jsonl"):
    raise UserError(f"{path}: a summary must end in .csv or .jsonl")
  return kind


def write_summary(path: str, rows: Sequence[dict], summary: dict) -> None:
  """CSV (per-file rows, then a MEAN row holding LSE-D / LSE-C in min_dist / confidence) or JSONL
  (per-file rows, then {"summary": {...}}), by extension; written to a temporary file renamed over `path`, so
  `path` is never half-written."""
  kind = summary_format(path)
  with atomic.replacing(path) as tmp, open(tmp, "w", newline="") as f:
    if kind == ".jsonl":
      f.writelines(json.dumps(row) + "\n" for row in rows)
      f.write(json.dumps({"summary": summary}) + "\n")
      return
    writer = csv.DictWriter(f, _COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    writer.writerow({"path": "MEAN", "status": f"{summary['scored']} scored, {summary['failed']} failed",
                     "min_dist": summary["lse_d"], "confidence": summary["lse_c"]})
