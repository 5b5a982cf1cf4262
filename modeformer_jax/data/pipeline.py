"""The grain input pipeline: the run's shuffled records, sampled a batch slice at a time -> this process's slice
of each global batch.

The sample order is a property of the global batch, not of the processes that read it: example k of the run
is a function of (seed, k) alone (its record is RecordOrder's, a per-epoch shuffle, and
data.windows.BatchSampler draws its window from a hash of (seed, k)), global batch g is examples g*B ..
g*B+B-1, and process p of P takes rows p*B/P .. (p+1)*B/P - 1 of it. So a run sees the same batches on one
process or on many, each process reads only its own records, and an input position is just the number of global
batches consumed: a resumed run (on any number of processes) starts the iterator there. Every source (the
prepared dataset's window store, whole records, the in-memory synthetic clips) goes through the same sampler and
grain graph, one call per batch slice; augmentation happens in the train step (data/augment.py).
"""

from __future__ import annotations

import functools
from typing import Iterator, Sequence

import grain
import jax
import ml_collections
import numpy as np

from modeformer_jax.data import window_store
from modeformer_jax.data.augment import Augment
from modeformer_jax.data.features import record_features
from modeformer_jax.data.records import dataset_dir
from modeformer_jax.data.windows import BatchSampler, JoinedWindows, RecordWindows, WindowReader, WindowSpec
from modeformer_jax.errors import UserError


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


# Slices of an endless run (grain datasets have a length).
_ENDLESS = 2 ** 62


class RecordOrder:
  """Example position k -> its record: record k mod n of epoch k // n's permutation of the n records, drawn from
  (seed, epoch); every epoch is a new shuffle. Picklable. (grain's index_shuffle costs 10 us a record at 100k
  records and 1 ms at 24; this costs one numpy permutation per epoch.)"""

  def __init__(self, num_records: int, seed: int):
    self.num_records, self.seed = num_records, seed

  def __call__(self, positions: np.ndarray) -> np.ndarray:
    epochs = positions // self.num_records
    out = np.empty(len(positions), np.int64)
    for epoch in np.unique(epochs):
      at = epochs == epoch
      out[at] = _permutation(self.num_records, self.seed, int(epoch))[positions[at] % self.num_records]
    return out


@functools.lru_cache(maxsize=2)
def _permutation(num_records: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(num_records)


class _Slice:
  """(slice index s, _) -> the examples s * records .. of the run (their records in RecordOrder); picklable."""

  def __init__(self, sampler: BatchSampler, order: RecordOrder, records: int):
    self.sampler, self.order, self.records = sampler, order, records

  def __call__(self, s: int, _) -> dict[str, np.ndarray]:
    return self.sampler(s, self.order(s * self.records + np.arange(self.records)))


def records_per_process_batch(batch_size: int, windows_per_record: int, process_count: int) -> int:
  """Records each process reads per step; the global batch must split into whole records on every process."""
  records, rest = divmod(batch_size, windows_per_record * process_count)
  if rest or not records:
    raise UserError(f"batch_size {batch_size}: must be a positive multiple of data.windows_per_record "
                    f"({windows_per_record}) x the {process_count} processes")
  return records


def open_windows(config: ml_collections.ConfigDict, split: str, margin: int) -> WindowReader:
  """The training windows of `split` (with `margin` rows above the model's): read from the prepared dataset's
  window store where it holds what the config reads (data/window_store.py: the fast path), else cut from whole
  records (the in-memory generator; SyncNet's whole crops and MFCCs). "a+b" joins splits, in that order."""
  if "+" in split:
    return JoinedWindows([open_windows(config, part, margin) for part in split.split("+")])
  spec = WindowSpec.from_config(config.preprocess)
  if config.data.source != "synthetic" and config.data.data_dir:
    path = dataset_dir(config.data.data_dir, config.data.dataset)
    meta = window_store.read_meta(path, split)
    if meta is not None and window_store.serves(meta, config.preprocess, margin):
      return window_store.StoreWindows(path, split, spec, margin)
  return RecordWindows(open_source(config, split, lazy_frames=True), spec, margin, record_features(config.preprocess))


def train_batches(config: ml_collections.ConfigDict, stage: ml_collections.ConfigDict, *, seed: int,
                  start: int = 0, source: Sequence[dict] | None = None, process_index: int | None = None,
                  process_count: int | None = None) -> Iterator[dict[str, np.ndarray]]:
  """Endless, reshuffled-each-epoch batches of one training stage: this process's rows of each global batch.

  Yields dicts of host arrays, b = stage.batch_size / process_count rows (data.windows.BatchSampler): video
  uint8 [b, 5, 48 + margin, 96, 3] (not augmented; margin = data.augment.Augment's, the rows its crop jitter
  reads; the train step augments), audio [b, 1+N, 16, 80] time-major (float16 log-mel as stored; the train step
  transposes it), audio_mask bool [b, 1+N], offsets int32 [b, 1+N] and audio_ids int32 [b, 1+N, 2] (record
  index, window start frame; equal ids are the same audio, see loss.py). With config.data.clip_frames = (lo, hi):
  video [b, hi, 48 + margin, 96, 3], audio [b, 1+N, ceil(3.2 hi), 80] and video_mask bool [b, hi]. source:
  records to read instead of the config's (cut from whole records).
  start: global batches already consumed (a resumed stage's step). process_index / process_count default to
  jax's.
  """
  pp = config.preprocess
  spec = WindowSpec.from_config(pp)
  margin = Augment.from_config(config.data.augment).margin(pp.mouth_row_start)
  reader = (open_windows(config, stage.split, margin) if source is None else
            RecordWindows(source, spec, margin, record_features(pp)))
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  windows = config.data.windows_per_record
  records = records_per_process_batch(stage.batch_size, windows, process_count)
  sampler = BatchSampler(reader, spec, stage.num_negatives, stage.min_offset, stage.max_offset, seed, windows,
                         tuple(config.data.get("clip_frames", ())) or None)
  # Consecutive slices of `records` examples: global batch g is slices g*P .. g*P+P-1, process p takes slice
  # g*P + p. Everything is lazy, so a process reads its own records only.
  ds = grain.MapDataset.range(_ENDLESS).map_with_index(_Slice(sampler, RecordOrder(len(reader), seed), records))
  ds = ds[process_index::process_count][start:]
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=config.data.prefetch_buffer))
  if config.data.num_workers:
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.data.num_workers))
  return iter(it_ds)
