"""The grain input pipeline: records -> shuffled, per-host-sharded, batched training examples.

The trainer sees one small interface, `BatchIterator`: iterate for host-local batch dicts (numpy), and
get_state()/set_state() for checkpoints, so a resumed run continues the exact sample order. Both sources
(prepared shards and the in-memory synthetic clips) go through the same sampler and the same grain graph.
"""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence

import grain
import jax
import ml_collections
import numpy as np

from modeformer_jax.errors import UserError
from modeformer_jax.data.features import record_features
from modeformer_jax.data.windows import Augment, ExampleSampler, WindowSpec


class BatchIterator(Protocol):
  """Host-local batches: video uint8 [b, 5, 48, 96, 3], audio float32 [b, 1+N, 80, 16], audio_mask bool
  [b, 1+N], offsets int32 [b, 1+N]; b = global batch / process count. With config.data.clip_frames = (lo, hi):
  video [b, hi, 48, 96, 3], audio [b, 1+N, 80, ceil(3.2 hi)] and video_mask bool [b, hi] (windows.ExampleSampler)."""

  def __next__(self) -> dict[str, np.ndarray]: ...
  def __iter__(self) -> Iterator[dict[str, np.ndarray]]: ...
  def get_state(self) -> dict: ...
  def set_state(self, state: dict) -> None: ...


def open_source(config: ml_collections.ConfigDict, split: str, lazy_frames: bool = False) -> Sequence[dict]:
  """Random-access records of `split` from the source the config names (lazy_frames: see records.open_split).

  "pretrain+train" joins splits, in that order (LRS2 models are commonly trained on both).
  """
  if "+" in split:
    from modeformer_jax.data.records import JoinedSplits
    return JoinedSplits([open_source(config, part, lazy_frames) for part in split.split("+")])
  if config.data.source == "synthetic":
    from modeformer_jax.data.synthetic import synthetic_records
    return synthetic_records(config, split)
  from modeformer_jax.data.records import open_split
  if not config.data.data_dir:
    raise UserError("config.data.data_dir: is empty: point it at a `modeformer prep --out` folder "
                    "(or set --config.data.source=synthetic)")
  return open_split(config.data.data_dir, config.data.dataset, split, lazy_frames=lazy_frames)


def _merge_windows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """[records, windows, ...] -> [records * windows, ...]."""
  return {k: v.reshape(-1, *v.shape[2:]) for k, v in batch.items()}


def train_batches(config: ml_collections.ConfigDict, stage: ml_collections.ConfigDict, *, seed: int,
                  source: Sequence[dict] | None = None, host: int | None = None,
                  num_hosts: int | None = None) -> BatchIterator:
  """Endless, reshuffled-each-epoch batches for one training stage; this host's share of the global batch.

  Each host reads every num_hosts-th record (host defaults to jax.process_index()), so hosts never share a
  record and together cover the split.
  """
  source = open_source(config, stage.split, lazy_frames=True) if source is None else source
  host = jax.process_index() if host is None else host
  num_hosts = jax.process_count() if num_hosts is None else num_hosts
  if stage.batch_size % num_hosts:
    raise ValueError(f"batch_size {stage.batch_size} is not divisible by the {num_hosts} hosts")
  windows = config.data.windows_per_record
  sampler = ExampleSampler(WindowSpec.from_config(config.preprocess), stage.num_negatives, stage.min_offset,
                           stage.max_offset, Augment.from_config(config.data.augment), windows,
                           tuple(config.data.get("clip_frames", ())) or None)
  ds = grain.MapDataset.source(source)
  ds = ds[host::num_hosts]
  ds = ds.shuffle(seed=seed).repeat()
  if features := record_features(config.preprocess):  # SyncNet: MFCCs from the raw audio
    ds = ds.map(features)
  ds = ds.random_map(sampler, seed=seed)
  ds = ds.batch(stage.batch_size // num_hosts // windows, drop_remainder=True)
  if windows > 1:
    ds = ds.map(_merge_windows)
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=config.data.prefetch_buffer))
  if config.data.num_workers:
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.data.num_workers))
  return iter(it_ds)
