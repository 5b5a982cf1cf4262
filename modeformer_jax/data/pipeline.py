"""The grain input pipeline: records -> shuffled training examples -> this process's slice of each global batch.

The sample order is a property of the global batch, not of the processes that read it: example k of the
run is a function of (seed, k) alone (grain shuffles and seeds `random_map` by position), global batch g is
examples g*B .. g*B+B-1, and process p of P takes rows p*B/P .. (p+1)*B/P - 1 of it. So a run sees the same
batches on one process or on many, each process reads only its own records, and an input position is just
the number of global batches consumed: a resumed run (on any number of processes) starts the iterator there.
Both sources (prepared shards and the in-memory synthetic clips) go through the same sampler and grain graph.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import grain
import jax
import ml_collections
import numpy as np

from modeformer_jax.errors import UserError
from modeformer_jax.data.features import record_features
from modeformer_jax.data.windows import Augment, ExampleSampler, WindowSpec


def open_source(config: ml_collections.ConfigDict, split: str, lazy_frames: bool = False) -> Sequence[dict]:
  """Random-access records of `split` from the source the config names (lazy_frames: see records.open_split).

  "pretrain+train" joins splits, in that order (LRS2 models are commonly trained on both).
  """
  if "+" in split:
    from modeformer_jax.data.records import JoinedSplits
    return JoinedSplits([open_source(config, part, lazy_frames) for part in split.split("+")])
  if config.data.source == "synthetic":
    from modeformer_jax.data.synth.in_memory import synthetic_records
    return synthetic_records(config, split)
  from modeformer_jax.data.records import open_split
  if not config.data.data_dir:
    raise UserError("config.data.data_dir: is empty: point it at a `modeformer prep --out` folder "
                    "(or set --config.data.source=synthetic)")
  return open_split(config.data.data_dir, config.data.dataset, split, lazy_frames=lazy_frames)


class _WithRecordIndex:
  """(position, record) -> record + "index": its index in the source, which names its audio windows' identity
  (ExampleSampler's audio_ids). Picklable, for grain workers."""

  def __init__(self, num_records: int):
    self.num_records = num_records

  def __call__(self, position: int, record: dict) -> dict:
    return {**record, "index": position % self.num_records}


def _merge_windows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """[records, windows, ...] -> [records * windows, ...]."""
  return {k: v.reshape(-1, *v.shape[2:]) for k, v in batch.items()}


def records_per_process_batch(batch_size: int, windows_per_record: int, process_count: int) -> int:
  """Records each process reads per step; the global batch must split into whole records on every process."""
  records, rest = divmod(batch_size, windows_per_record * process_count)
  if rest or not records:
    raise UserError(f"batch_size {batch_size}: must be a positive multiple of data.windows_per_record "
                    f"({windows_per_record}) x the {process_count} processes")
  return records


def train_batches(config: ml_collections.ConfigDict, stage: ml_collections.ConfigDict, *, seed: int,
                  start: int = 0, source: Sequence[dict] | None = None, process_index: int | None = None,
                  process_count: int | None = None) -> Iterator[dict[str, np.ndarray]]:
  """Endless, reshuffled-each-epoch batches of one training stage: this process's rows of each global batch.

  Yields dicts of host arrays, b = stage.batch_size / process_count rows: video uint8 [b, 5, 48, 96, 3],
  audio float32 [b, 1+N, 80, 16], audio_mask bool [b, 1+N], offsets int32 [b, 1+N] and audio_ids int32
  [b, 1+N, 2] (record index, window start frame; equal ids are the same audio, see loss.py). With
  config.data.clip_frames = (lo, hi): video [b, hi, 48, 96, 3], audio [b, 1+N, 80, ceil(3.2 hi)] and video_mask
  bool [b, hi] (windows.ExampleSampler).
  start: global batches already consumed (a resumed stage's step). process_index / process_count default to
  jax's.
  """
  source = open_source(config, stage.split, lazy_frames=True) if source is None else source
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  windows = config.data.windows_per_record
  records = records_per_process_batch(stage.batch_size, windows, process_count)
  sampler = ExampleSampler(WindowSpec.from_config(config.preprocess), stage.num_negatives, stage.min_offset,
                           stage.max_offset, Augment.from_config(config.data.augment), windows,
                           tuple(config.data.get("clip_frames", ())) or None)
  ds = grain.MapDataset.source(source).map_with_index(_WithRecordIndex(len(source)))
  ds = ds.shuffle(seed=seed).repeat()
  if features := record_features(config.preprocess):  # SyncNet: MFCCs from the raw audio
    ds = ds.map(features)
  ds = ds.random_map(sampler, seed=seed)
  # Consecutive slices of `records` examples: global batch g is slices g*P .. g*P+P-1, process p takes slice
  # g*P + p. Batching is lazy, so a process decodes its own records only.
  ds = ds.batch(records, drop_remainder=True)[process_index::process_count][start:]
  if windows > 1:
    ds = ds.map(_merge_windows)
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=config.data.prefetch_buffer))
  if config.data.num_workers:
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.data.num_workers))
  return iter(it_ds)
