"""The `synthetic` data source (config.data.source): records rendered in memory by the generator, a dataset
without files.

The records have the fields of prepared shards that training reads (crops, mel, num_frames, id), so the
same window sampler and grain graph serve both. Speakers and seeds differ per split, so validation on the
synthetic source is on unseen speakers as it is on real data.
"""

from __future__ import annotations

import functools
import json
import zlib

import ml_collections
import numpy as np

from modeformer_jax.data.synth.clip import render_clip
from modeformer_jax.data.synth.speakers import speaker_style
from modeformer_jax.media.logmel import log_mel

CLIPS_PER_SPEAKER = 4


def synthetic_records(config: ml_collections.ConfigDict, split: str) -> list[dict]:
  """config.data.synthetic_clips clips of config.data.synthetic_seconds for `split`, rendered at crop size."""
  return list(_render_cached(config.seed, split, config.data.synthetic_clips,
                             float(config.data.synthetic_seconds), float(config.data.synthetic_face_scale),
                             config.preprocess.to_json()))


@functools.lru_cache(maxsize=8)
def _render_cached(seed: int, split: str, clips: int, seconds: float, face_scale: float,
                   pp_json: str) -> tuple[dict, ...]:
  pp = ml_collections.ConfigDict(json.loads(pp_json))
  split_seed = (seed * 1_000_003 + zlib.crc32(split.encode())) % 2 ** 31
  records = []
  for i in range(clips):
    style = speaker_style(split_seed, i // CLIPS_PER_SPEAKER)
    clip = render_clip(split_seed * 1000 + i, style, seconds, size=pp.crop_size, fps=pp.fps,
                       sample_rate=pp.sample_rate, face_scale=face_scale)
    records.append({"id": f"synthetic-{split}/{i // CLIPS_PER_SPEAKER:03d}/{i:05d}",
                    "crops": clip.frames, "mel": log_mel(clip.audio, pp).astype(np.float16),
                    "audio": clip.audio,  # raw audio, as shards hold it: SyncNet's MFCCs come from it
                    "num_frames": np.int32(len(clip.frames))})
  return tuple(records)

