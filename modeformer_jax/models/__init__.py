"""Model registry: config.model.name -> model class. Every model takes (cfg.model, rngs=...)."""

from __future__ import annotations

import ml_collections
from flax import nnx

from modeformer_jax.models.modeformer import ModEFormer

MODELS = {"modeformer": ModEFormer}


def build_model(cfg: ml_collections.ConfigDict, seed: int = 0) -> nnx.Module:
  if cfg.name not in MODELS:
    raise ValueError(f"model.name={cfg.name!r}: unknown model (known: {', '.join(MODELS)})")
  return MODELS[cfg.name](cfg, rngs=nnx.Rngs(params=seed))
