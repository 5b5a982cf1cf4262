"""The dataset folder OUT/<dataset>/<version>: a TFDS builder writes the work files' records as ArrayRecord
shards into a staging folder, the training-window store (data/window_store.py) is written beside them in the
same pass, and the folder then replaces the old version by two renames (no partial shard ever carries the final
name); prep_state.json beside the shards records what the dataset was made from."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import uuid
from typing import Iterable

from tqdm import tqdm

from modeformer_jax.data.lrs_layout import Clip
from modeformer_jax.data.prep.clip import WINDOW_FRAMES
from modeformer_jax.data.prep.options import PrepOptions
from modeformer_jax.data.prep.work_files import load_example
from modeformer_jax.data.records import dataset_dir
from modeformer_jax.data.window_store import STORE_DIR, StoreWriter

STATE_FILE = "prep_state.json"


def read_state(dataset_path: str) -> dict | None:
  try:
    with open(os.path.join(dataset_path, STATE_FILE), encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def write_dataset(out: str, options: PrepOptions, clips: dict[str, list[Clip]], reports: dict[tuple, dict],
                   work_dir: str, state: dict, progress: bool) -> tuple[str, list[str]]:
  """Builds the TFDS dataset from the work files and swaps it into place; returns (path, splits written)."""
  import tensorflow_datasets as tfds

  from modeformer_jax.data.tfds_builder import BUILDERS

  stage = os.path.join(work_dir, f"_build-{uuid.uuid4().hex[:8]}")

  def examples(split):
    def generate() -> Iterable[tuple[str, dict]]:
      ok = [c for c in clips[split] if reports[split, c.id]["status"] == "ok"]
      # Records keep the order they are yielded in (PrepBuilder), so store clip i is record i.
      store = StoreWriter(os.path.join(stage, STORE_DIR, split), options.frame_storage, options.preprocess)
      for clip in tqdm(ok, desc=f"write {split}", unit="clip", disable=not progress, file=sys.stderr):
        example = load_example(work_dir, clip)
        store.add(example.pop(WINDOW_FRAMES), example["mel"])
        yield clip.id, example
      store.close()
    return generate

  splits = [s for s, cs in clips.items() if any(reports[s, c.id]["status"] == "ok" for c in cs)]
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
    os.rename(os.path.join(stage, STORE_DIR), os.path.join(staged, STORE_DIR))
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
