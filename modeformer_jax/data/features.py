"""Records with the audio features the model's front-end needs, computed from the raw audio when read.

Prepared shards (and the synthetic source) store log-mel ("mel"), the ModEFormer / VocaLiST front-end, and the
raw 16 kHz audio. A config whose preprocess asks for MFCCs (SyncNet, configs/syncnet.py) gets them computed from
that audio as each record is read, into the record's "mfcc" field: the window code (data.windows) cuts the
windows from the field `features_field` names, MFCC windows exactly as log-mel ones, and one prepared dataset
serves every model of the table. MFCCs of a 3 s utterance take a few milliseconds.
"""

from __future__ import annotations

import ml_collections

from modeformer_jax.errors import UserError
from modeformer_jax.media.mfcc import audio_features


class RecordFeatures:
  """record -> record with "mel" holding the audio features of `pp` (picklable, for grain workers)."""

  def __init__(self, pp: ml_collections.ConfigDict):
    self.pp = pp

  def __call__(self, record: dict) -> dict:
    if "audio" not in record:
      raise UserError(f"record {record.get('id', '?')}: has no raw audio to compute "
                      f"{self.pp.audio_features} features from")
    return {**record, features_field(self.pp): audio_features(record["audio"], self.pp)}


def features_field(pp: ml_collections.ConfigDict) -> str:
  """The record field holding the audio features of `pp`: "mel" (log-mel, as stored) or "mfcc"."""
  kind = pp.get("audio_features", "logmel")
  return "mel" if kind == "logmel" else kind


def record_features(pp: ml_collections.ConfigDict) -> RecordFeatures | None:
  """The transform records need for this preprocess config; None when the stored log-mel is what it wants."""
  return RecordFeatures(pp) if features_field(pp) != "mel" else None
