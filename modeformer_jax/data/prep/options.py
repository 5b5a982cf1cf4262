"""The per-clip settings of a prep run (PrepOptions): everything a clip's record depends on besides its files."""

from __future__ import annotations

import dataclasses
import json

import ml_collections

from modeformer_jax.data.prep.fingerprints import sha
from modeformer_jax.errors import UserError
from modeformer_jax.media.preprocess_config import preprocess_config

# Part of every work file's settings fingerprint: bump when process_clip's output changes meaning.
# 2: the training-window store's frames (data/window_store.py) in each record.
WORK_FORMAT = 2


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
      raise UserError(f"frame_storage {self.frame_storage!r}: expected raw or jpeg")
    if not 1 <= self.jpeg_quality <= 100:
      raise UserError(f"jpeg_quality {self.jpeg_quality}: expected 1..100")
    if self.min_frames < 1 or self.min_mel_frames < 1:
      raise UserError(f"min_frames {self.min_frames} / min_mel_frames {self.min_mel_frames}: must be >= 1")
    if self.max_av_diff < 0 or not 0 <= self.min_face_coverage <= 1:
      raise UserError(f"max_av_diff {self.max_av_diff} must be >= 0 and min_face_coverage "
                      f"{self.min_face_coverage} in [0, 1]")
    cfg = self.preprocess
    if cfg.sample_rate % cfg.fps:
      raise UserError(f"sample_rate {cfg.sample_rate} is not a whole number of samples per frame at {cfg.fps} fps")

  def fingerprint(self) -> str:
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "preprocess"}
    fields.update(preprocess=self.preprocess.to_dict(), work_format=WORK_FORMAT)
    return sha(json.dumps(fields, sort_keys=True, default=str))
