"""Inference with a trained model: every window of an utterance encoded once per modality, scored by offset.

Modality preservation makes offset search cheap: the L video windows and L audio windows of an utterance
are each encoded once, and the similarity of window f to the audio at offset d is one dot product, so all
31 candidates of SPEC section 5 cost O(L) encoder passes instead of O(31 L). Evaluation (`modeformer eval`)
and offset detection (`modeformer sync`) both use this module. SyncNet's raw embeddings are scored by minus
their Euclidean distance; a cross-modal model (VocaLiST) encodes each window's front-end once and runs its
classifier per pair (`SyncModel.scoring` says which).
"""

from __future__ import annotations

import copy
import dataclasses
import functools

import jax
import ml_collections
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from modeformer_jax.data.windows import WindowSpec
from modeformer_jax.media.crops import mouth_rows
from modeformer_jax.models import scoring
from modeformer_jax.models.functional import Model, abstract_model
from modeformer_jax.weights import is_export, load_weights


@dataclasses.dataclass
class SyncModel:
  """A model ready for inference: eval mode (running BatchNorm statistics, no dropout), batches padded to a
  fixed size so each encoder compiles once, and split over all local devices."""
  config: ml_collections.ConfigDict
  params: dict
  batch_stats: dict
  source: str = ""
  step: int | None = None
  batch_size: int = 64
  graphdef: nnx.GraphDef | None = None  # the model's structure, when the caller has it already
  # `modeformer sync` scores as syncnet_python does (zero-padded audio, see sync.detect.score); None: on for
  # SyncNet checkpoints, off for the others.
  syncnet_compat: bool | None = None

  def __post_init__(self):
    if self.syncnet_compat is None:
      self.syncnet_compat = self.config.model.name == "syncnet"
    self.scoring = scoring(self.config.model)  # "cosine", "euclidean" or "pairwise"
    if self.graphdef is None:
      self.graphdef = abstract_model(self.config.model).graphdef
    self._model = Model(self.graphdef, self.params, self.batch_stats)
    devices = jax.local_devices()
    self.batch_size = -(-self.batch_size // len(devices)) * len(devices)
    self._mesh = jax.sharding.Mesh(np.array(devices), ("data",))
    self._weights = jax.device_put((self.params, self.batch_stats), NamedSharding(self._mesh, P()))
    self.spec = WindowSpec.from_config(self.config.preprocess)

  @functools.cached_property
  def _encoders(self):
    def video(weights, x):
      return self._model.merge(*weights).embed_video(x)

    def audio(weights, x):
      return self._model.merge(*weights).embed_audio(x)

    def pairs(weights, v, a):
      return self._model.merge(*weights).score_pairs(v, a)

    def classify(weights, v, a):
      return self._model.merge(*weights).classify(v, a)

    return jax.jit(video), jax.jit(audio), jax.jit(pairs), jax.jit(classify)

  def with_weights(self, params: dict, batch_stats: dict, step: int | None = None) -> "SyncModel":
    """The same model with other weights, keeping the compiled encoders (no recompilation)."""
    other = copy.copy(self)
    other.params, other.batch_stats, other.step = params, batch_stats, step
    other._weights = jax.device_put((params, batch_stats), NamedSharding(self._mesh, P()))
    return other

  def _run(self, fn, *inputs: np.ndarray, empty_shape: tuple[int, ...]) -> np.ndarray:
    """fn(weights, *batches) over fixed-size batches of the inputs (rows aligned across them)."""
    out = []
    sharding = NamedSharding(self._mesh, P("data"))

    def pad(chunk):
      padded = np.zeros((self.batch_size, *chunk.shape[1:]), chunk.dtype)
      padded[:len(chunk)] = chunk
      return jax.device_put(padded, sharding)

    for i in range(0, len(inputs[0]), self.batch_size):
      n = min(self.batch_size, len(inputs[0]) - i)
      out.append(np.asarray(fn(self._weights, *(pad(x[i:i + self.batch_size]) for x in inputs)))[:n])
    return np.concatenate(out) if out else np.zeros(empty_shape, np.float32)

  def embed_video(self, clips: np.ndarray) -> np.ndarray:
    """clips uint8 [N, 5, H, W, 3] (ModEFormer: [N, 5, 48, 96, 3] mouth halves) -> [N, D] float32 (unit-norm
    unless the model scores Euclidean distances; cross-modal models: front-end tokens [N, 5, D])."""
    return self._run(self._encoders[0], clips, empty_shape=(0, self.config.model.width))

  def embed_audio(self, mels: np.ndarray) -> np.ndarray:
    """mels float [N, F, T] audio windows (ModEFormer: [N, 80, 16] log-mel; SyncNet: [N, 13, 20] MFCC)
    -> [N, D] float32."""
    return self._run(self._encoders[1], np.asarray(mels, np.float32), empty_shape=(0, self.config.model.width))

  def score_pairs(self, clips: np.ndarray, mels: np.ndarray) -> np.ndarray:
    """Cross-modal models ("pairwise" scoring): clips [N, 5, H, W, 3] with mels [N, F, T], pair i = row i of
    each -> float32 [N] scores (logits), one whole forward pass per pair."""
    return self._run(self._encoders[2], clips, np.asarray(mels, np.float32), empty_shape=(0,))

  def classify(self, video_tokens: np.ndarray, audio_tokens: np.ndarray) -> np.ndarray:
    """Cross-modal models: scores [N] of pairs of front-end tokens (embed_video / embed_audio outputs); equal to
    score_pairs on the windows the tokens came from."""
    return self._run(self._encoders[3], video_tokens, audio_tokens, empty_shape=(0,))

  def logit_scale(self) -> float:
    return float(self._model.merge(self.params, self.batch_stats).logit_scale())


def video_windows(crops: np.ndarray, count: int, spec: WindowSpec) -> np.ndarray:
  """crops uint8 [T, 96, 96, 3] -> mouth windows [count, 5, 48, 96, 3] starting at frames 0..count-1."""
  mouth = mouth_rows(crops, spec.mouth_row_start)
  idx = np.arange(count)[:, None] + np.arange(spec.video_frames)[None]
  return mouth[idx]


def audio_windows(mel: np.ndarray, count: int, spec: WindowSpec) -> np.ndarray:
  """mel [M, 80] -> [count, 80, 16], the windows aligned with video frames 0..count-1."""
  return spec.audio_windows(mel, np.arange(count))


def embed_utterance(model: SyncModel, crops: np.ndarray, mel: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
  """(video [count, D], audio [count, D]) embeddings of every window of one utterance."""
  return (model.embed_video(video_windows(crops, count, model.spec)),
          model.embed_audio(audio_windows(mel, count, model.spec)))


def pair_scores(video: np.ndarray, audio: np.ndarray, scoring: str = "cosine") -> np.ndarray:
  """Scores of embedding pairs [..., D] x [..., D] -> [...], higher = better match: the dot product of unit
  embeddings ("cosine") or minus the Euclidean distance of raw ones ("euclidean", SyncNet's)."""
  if scoring == "cosine":
    return np.einsum("...d,...d->...", video, audio)
  if scoring == "euclidean":
    return -np.linalg.norm(video - audio, axis=-1)
  raise ValueError(f"pair_scores: embeddings cannot be scored by {scoring!r}")


def offset_similarities(video: np.ndarray, audio: np.ndarray, max_offset: int, scoring: str = "cosine",
                        start: int = 0) -> np.ndarray:
  """Score (pair_scores) of video window f with audio window f + d, d = -S..S.

  video [L, D] (windows start .. start + L - 1), audio [L', D] (windows 0 .. L' - 1) -> [L, 2S+1], column j
  is offset d = j - S; NaN where f + d falls outside the audio (callers decide what a missing candidate
  scores: the protocol scores it as the worst). One offset at a time, so memory stays at [L, D].
  """
  sims = np.full((len(video), 2 * max_offset + 1), np.nan, np.float32)
  for j, d in enumerate(range(-max_offset, max_offset + 1)):
    # Video windows a..b-1 have audio windows start + d + (a..b-1): slices, not gathered copies.
    a, b = max(0, -start - d), min(len(video), len(audio) - start - d)
    if a < b:
      sims[a:b, j] = pair_scores(video[a:b], audio[start + d + a:start + d + b], scoring)
  return sims


def load_sync_model(path: str, which: str | int = "last", batch_size: int = 64) -> SyncModel:
  """A training run's workdir (checkpoint `which`: "last", "best" or a step) or an exported model folder."""
  config, step, params, batch_stats = load_weights(path, which)
  # An export is reported as one (eval writes <split>-export), not by the step it was exported from.
  return SyncModel(config, params, batch_stats, source=path, step=None if is_export(path) else step,
                   batch_size=batch_size)
