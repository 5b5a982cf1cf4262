"""Each clip's outcome persisted in OUT/_work/<dataset>/<split>/: the record as a pickle, then a small JSON marker
(the report line plus what the result depends on), each written whole. The marker is the commit point, so an
interrupted run leaves only whole results and a rerun recomputes only clips without a current marker."""

from __future__ import annotations

import json
import os
import pickle
import time
from typing import Any

from modeformer_jax import atomic
from modeformer_jax.data.lrs_layout import Clip
from modeformer_jax.data.prep.clip import process_clip
from modeformer_jax.data.prep.fingerprints import sha
from modeformer_jax.data.prep.options import PrepOptions


def work_paths(work_dir: str, clip: Clip) -> tuple[str, str]:
  """(marker .json, record .pkl) of a clip; names hash the id so any speaker/clip name is a safe file name."""
  digest = sha(clip.id)[:32]
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
