"""Parameter counts per module (SPEC section 2 asks the summary to show this breakdown)."""

from __future__ import annotations

import collections

import jax
import ml_collections
from flax import nnx

from modeformer_jax.models import build_model


def _group(path: tuple) -> str:
  names = [str(p) for p in path]
  if "token" in names or "pos" in names:
    return f"{names[0]}.{names[-1]}"
  return ".".join(names[:2])


def parameter_counts(model_cfg: ml_collections.ConfigDict) -> dict[str, int]:
  """{module: trainable parameter count} in model order, e.g. video.cnn, video.temporal, video.token, ...

  Counts weights, biases and BatchNorm scale/offset (not running statistics). No weights are allocated.
  """
  model = nnx.eval_shape(lambda: build_model(model_cfg))
  counts: dict[str, int] = collections.OrderedDict()
  for path, leaf in jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(nnx.state(model, nnx.Param)))[0]:
    key = _group(tuple(getattr(k, "key", getattr(k, "idx", k)) for k in path))
    counts[key] = counts.get(key, 0) + leaf.size
  return counts
