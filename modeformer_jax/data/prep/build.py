"""`prepare`: a prep run from the clip list to the written dataset (fingerprints, resume, the per-clip stage
local or on Beam, report, shards)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm

from modeformer_jax.cpu_cores import usable_cores
from modeformer_jax.data import lrs_layout
from modeformer_jax.data.lrs_layout import Clip
from modeformer_jax.data.prep import beam_runner
from modeformer_jax.data.prep.fingerprints import clip_key, split_fingerprint
from modeformer_jax.data.prep.local_runner import run_local
from modeformer_jax.data.prep.options import PrepOptions
from modeformer_jax.data.prep.shards import read_state, write_dataset
from modeformer_jax.data.prep.summary import face_heights, summarise, write_report
from modeformer_jax.data.prep.work_files import read_marker
from modeformer_jax.data.records import dataset_dir
from modeformer_jax.errors import UserError
from modeformer_jax.media.preprocess_config import with_face_defaults


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
    workers: local processes (default: one per core this process may use); 1 runs in this process.
    runner: "local" or "beam" (beam_runner.py; `beam_options` go to its PipelineOptions).
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
    raise UserError(f"runner {runner!r}: expected local or beam")
  if limit is not None and limit < 1:
    raise UserError(f"limit {limit}: must be at least 1")
  workers = workers or len(usable_cores())
  clips = lrs_layout.find_clips(dataset, src, tuple(splits), val_fraction=val_fraction)
  if limit:
    clips = {s: cs[:limit] for s, cs in clips.items()}
  settings = options.fingerprint()
  keys = {s: [clip_key(c) for c in cs] for s, cs in clips.items()}
  fingerprints = {s: split_fingerprint(clips[s], keys[s], settings) for s in clips}
  final = dataset_dir(out, dataset)
  old = _previous_state(final, fingerprints, replace)
  if old is not None and old["fingerprints"] == fingerprints:
    return {**old["summary"], "status": "unchanged", "dataset_dir": final, "computed": 0,
            "resumed": old["summary"]["clips"], "wall_seconds": round(time.perf_counter() - start, 3)}

  work_dir = os.path.join(out, "_work", dataset)
  reports, jobs = _resume(work_dir, clips, keys, settings)
  compute_start = time.perf_counter()
  for report in _compute(jobs, options, work_dir, settings, runner, workers, beam_options, progress):
    reports[report["split"], report["id"]] = {**report, "resumed": False}
    if on_result is not None:
      on_result(report)
  compute_seconds = time.perf_counter() - compute_start

  ordered = [reports[s, c.id] for s, cs in clips.items() for c in cs]
  summary = summarise(clips, ordered, computed=len(jobs))
  if heights := face_heights(ordered, with_face_defaults(options.preprocess).small_face_px):
    summary["face_px"] = heights
  summary.update(dataset=dataset, src=src, out=out, runner=runner, workers=workers if runner == "local" else None,
                 frame_storage=options.frame_storage, compute_seconds=round(compute_seconds, 3),
                 report=write_report(out, dataset, ordered))
  if summary["ok"] == 0:
    summary.update(status="nothing", dataset_dir=None, write_seconds=0.0,
                   wall_seconds=round(time.perf_counter() - start, 3))
    return summary
  write_start = time.perf_counter()
  state = {"fingerprints": fingerprints, "settings": settings, "summary": summary}
  path, written = write_dataset(out, options, clips, reports, work_dir, state, progress)
  summary.update(status="written", dataset_dir=path, tfds_splits=written,
                 write_seconds=round(time.perf_counter() - write_start, 3),
                 wall_seconds=round(time.perf_counter() - start, 3))
  return summary


def _previous_state(final: str, fingerprints: dict[str, str], replace: bool) -> dict | None:
  """The existing dataset's prep_state.json (None when there is none); UserError when this run would drop
  splits it holds and `replace` is off."""
  old = read_state(final) if os.path.isdir(final) else None
  if old is not None and not replace:
    dropped = sorted(set(old["fingerprints"]) - set(fingerprints))
    if dropped:
      raise UserError(f"{final}: holds the splits {', '.join(sorted(old['fingerprints']))}; this run would "
                      f"drop {', '.join(dropped)}. Ask for every split the dataset should hold, or replace it "
                      "(replace=True, `modeformer prep --replace`)")
  return old


def _resume(work_dir: str, clips: dict[str, list[Clip]], keys: dict[str, list[dict]],
            settings: str) -> tuple[dict[tuple[str, str], dict], list[tuple[Clip, dict]]]:
  """(report lines of the clips an earlier run finished, keyed by (split, id); the (clip, key) still to do)."""
  reports, jobs = {}, []
  for split, cs in clips.items():
    for clip, key in zip(cs, keys[split]):
      done = read_marker(work_dir, clip, key, settings)
      if done is None:
        jobs.append((clip, key))
      else:
        reports[split, clip.id] = {**done, "resumed": True}
  return reports, jobs


def _compute(jobs: list[tuple[Clip, dict]], options: PrepOptions, work_dir: str, settings: str, runner: str,
             workers: int, beam_options: Iterable[str], progress: bool) -> Iterator[dict]:
  """Runs the per-clip stage on `jobs` (locally or on Beam) and yields each clip's report line."""
  if not jobs:
    return
  if runner == "beam":
    beam_runner.run(jobs, options, work_dir, settings, list(beam_options))
    results = (read_marker(work_dir, clip, key, settings) for clip, key in jobs)
  else:
    results = run_local(jobs, options, work_dir, settings, workers)
  for report in tqdm(results, total=len(jobs), desc=f"prep {options.dataset}", unit="clip", disable=not progress,
                     file=sys.stderr, smoothing=0.05):
    if report is None:
      raise RuntimeError(f"{work_dir}: the Beam pipeline finished without a result for some clips")
    yield report
