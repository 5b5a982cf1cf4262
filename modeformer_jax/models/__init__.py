"""Model registry: config.model.name -> model class. Every model takes (cfg.model, rngs=...)."""

from __future__ import annotations

import ml_collections
from flax import nnx

from modeformer_jax.models.avst import AVST
from modeformer_jax.models.modeformer import ModEFormer
from modeformer_jax.models.syncnet import SyncNet
from modeformer_jax.models.vocalist import VocaLiST

MODELS = {"modeformer": ModEFormer, "syncnet": SyncNet, "vocalist": VocaLiST, "avst": AVST}


def build_model(cfg: ml_collections.ConfigDict, seed: int = 0) -> nnx.Module:
  if cfg.name not in MODELS:
    raise ValueError(f"model.name={cfg.name!r}: unknown model (known: {', '.join(MODELS)})")
  return MODELS[cfg.name](cfg, rngs=nnx.Rngs(params=seed))


def scoring(cfg: ml_collections.ConfigDict) -> str:
  """How the model scores a (video window, audio window) pair: "cosine" (unit embeddings, dot product),
  "euclidean" (raw embeddings, minus the distance) or "pairwise" (a cross-modal forward pass per pair)."""
  return MODELS[cfg.name].scoring(cfg)
