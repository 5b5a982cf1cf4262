"""A model as plain trees: its structure (an nnx GraphDef) plus its parameters and BatchNorm statistics as pure
nested dicts of arrays. Training, inference and export pass models around in this form (a train state, a
checkpoint and an export hold these trees) and rebuild the nnx module with `merge` where they run it, which
costs nothing after tracing."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
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

  def module(self) -> nnx.Module:
    """The nnx module with this model's own weights."""
    return self.merge(self.params, self.batch_stats)


def split_model(model: nnx.Module) -> Model:
  graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  return Model(graphdef, nnx.to_pure_dict(params), nnx.to_pure_dict(stats))


def abstract_model(cfg: ml_collections.ConfigDict, seed: int = 0) -> Model:
  """The model of `cfg` without computing it: its structure, with jax.ShapeDtypeStruct trees as weights (the
  target a checkpoint or an export is read into)."""
  return split_model(nnx.eval_shape(lambda: build_model(cfg, seed=seed)))


def init_program(cfg: ml_collections.ConfigDict, seed: int = 0) -> jax.stages.Lowered:
  """The lowered program that computes the model's initial weights: () -> (params, batch_stats)."""
  def init():
    model = split_model(build_model(cfg, seed=seed))
    return model.params, model.batch_stats

  return jax.jit(init).lower()


def init_weights(cfg: ml_collections.ConfigDict, seed: int = 0) -> Model:
  """The model of `cfg` with its initial weights, computed by one compiled program: built op by op, each
  initialiser would compile on its own (37 s for the tests' tiny transformer on a loaded 2-core CPU), and the
  59M model would cost seconds of dispatch.

  On the CPU the program is compiled without LLVM's optimisations: it runs once, in milliseconds either way, but
  optimising its random-number code took as long as compiling the train step (bench/init_compile.py; the
  weights differ by float rounding)."""
  options = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
  params, batch_stats = init_program(cfg, seed).compile(options)()
  return Model(abstract_model(cfg, seed).graphdef, params, batch_stats)
