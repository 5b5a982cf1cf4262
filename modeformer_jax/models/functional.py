"""A model as plain trees: its structure (an nnx GraphDef) plus its parameters and BatchNorm statistics as pure
nested dicts of arrays. Training, inference and export pass models around in this form (a train state, a
checkpoint and an export hold these trees) and rebuild the nnx module with `merge` where they run it, which
costs nothing after tracing."""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections
from flax import nnx

from modeformer_jax.models import build_model

PyTree = Any


@dataclasses.dataclass
class Model:
  """The model split for functional use: structure (graphdef) plus initial values."""
  graphdef: nnx.GraphDef
  params: PyTree
  batch_stats: PyTree

  def merge(self, params: PyTree, batch_stats: PyTree) -> nnx.Module:
    return nnx.merge(self.graphdef, nnx.State(params), nnx.State(batch_stats))


def split_model(model: nnx.Module) -> Model:
  graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  return Model(graphdef, nnx.to_pure_dict(params), nnx.to_pure_dict(stats))


def abstract_model(cfg: ml_collections.ConfigDict, seed: int = 0) -> Model:
  """The model of `cfg` without computing it: its structure, with jax.ShapeDtypeStruct trees as weights (the
  target a checkpoint or an export is read into)."""
  return split_model(nnx.eval_shape(lambda: build_model(cfg, seed=seed)))
